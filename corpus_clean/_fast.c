/* The inner loop of shingling, in C: code points -> word hashes -> shingle keys.
 *
 * numpy needs a dozen passes over every character to find and hash words; this is one
 * pass. Everything around it (lowercasing, sorting, MinHash) stays in Python and numpy:
 * see shingles.py, which documents what a word and a shingle are.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum { SEPARATOR = 0, WORD = 1, SOLO = 2 };

static const uint64_t PRIME = 0x100000001B3ULL;
static const uint64_t SHINGLE_MULT = 0x9E3779B97F4A7C15ULL;

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 33;
    k *= 0xC4CEB9FE1A85EC53ULL;
    k ^= k >> 33;
    return k;
}

static inline int char_class(uint32_t code, const uint8_t *classes)
{
    if (code < 0x10000)
        return classes[code];
    return code >= 0x20000 ? SOLO : SEPARATOR; /* CJK extensions B+; emoji fold away */
}

static PyObject *shingle_keys(PyObject *self, PyObject *args)
{
    Py_buffer codes, offsets, classes;
    int size, bits;
    PyObject *words_out = NULL, *word_offsets_out = NULL, *keys_out = NULL, *result = NULL;

    if (!PyArg_ParseTuple(args, "y*y*y*ii", &codes, &offsets, &classes, &size, &bits))
        return NULL;
    if (codes.len % 4 || offsets.len % 8 || offsets.len < 8 || classes.len != 0x10000 ||
        size < 1 || bits < 1 || bits > 63) {
        PyErr_SetString(PyExc_ValueError, "shingle_keys: bad argument shapes");
        goto done;
    }
    const uint32_t *code = codes.buf;
    const int64_t *offset = offsets.buf;
    const uint8_t *table = classes.buf;
    Py_ssize_t n_chars = codes.len / 4, n_docs = offsets.len / 8 - 1;
    if (offset[n_docs] != n_chars) {
        PyErr_SetString(PyExc_ValueError, "shingle_keys: offsets do not cover the codes");
        goto done;
    }

    /* At most one word per character, and at most one shingle per word. */
    words_out = PyBytes_FromStringAndSize(NULL, n_chars * 8);
    word_offsets_out = PyBytes_FromStringAndSize(NULL, (n_docs + 1) * 8);
    keys_out = PyBytes_FromStringAndSize(NULL, n_chars * 8);
    if (!words_out || !word_offsets_out || !keys_out)
        goto done;
    uint64_t *words = (uint64_t *)PyBytes_AS_STRING(words_out);
    int64_t *word_offsets = (int64_t *)PyBytes_AS_STRING(word_offsets_out);
    uint64_t *keys = (uint64_t *)PyBytes_AS_STRING(keys_out);
    Py_ssize_t n_words = 0, n_keys = 0;
    const unsigned shift = 64 - bits;

    Py_BEGIN_ALLOW_THREADS
    word_offsets[0] = 0;
    for (Py_ssize_t doc = 0; doc < n_docs; doc++) {
        Py_ssize_t first_word = n_words;
        uint64_t hash = 0;
        int in_word = 0;
        for (int64_t i = offset[doc]; i < offset[doc + 1]; i++) {
            int kind = char_class(code[i], table);
            if (kind == WORD) {
                hash = (in_word ? hash : 0) * PRIME + code[i] + 1;
                in_word = 1;
                continue;
            }
            if (in_word)
                words[n_words++] = fmix64(hash);
            in_word = 0;
            if (kind == SOLO)
                words[n_words++] = fmix64(code[i] + 1);
        }
        if (in_word)
            words[n_words++] = fmix64(hash);
        word_offsets[doc + 1] = n_words;

        Py_ssize_t count = n_words - first_word;
        Py_ssize_t starts = count >= size ? count - size + 1 : (count > 0);
        Py_ssize_t width = count >= size ? size : count;
        for (Py_ssize_t s = 0; s < starts; s++) {
            const uint64_t *w = words + first_word + s;
            uint64_t combined = w[0];
            for (Py_ssize_t j = 1; j < width; j++)
                combined = combined * SHINGLE_MULT + w[j];
            keys[n_keys++] = ((uint64_t)doc << bits) | (fmix64(combined) >> shift);
        }
    }
    Py_END_ALLOW_THREADS

    if (_PyBytes_Resize(&words_out, n_words * 8) < 0 || _PyBytes_Resize(&keys_out, n_keys * 8) < 0)
        goto done;
    result = Py_BuildValue("(OOO)", words_out, word_offsets_out, keys_out);

done:
    Py_XDECREF(words_out);
    Py_XDECREF(word_offsets_out);
    Py_XDECREF(keys_out);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&classes);
    return result;
}

static PyMethodDef methods[] = {
    {"shingle_keys", shingle_keys, METH_VARARGS,
     "shingle_keys(codes, char_offsets, classes, size, bits) -> (words, word_offsets, keys)\n\n"
     "codes: uint32 code points of all texts; char_offsets: int64, texts + 1;\n"
     "classes: uint8 class of each BMP code point. Returns bytes of uint64 word hashes,\n"
     "int64 word offsets per text, and uint64 keys (text << bits | top bits of the shingle\n"
     "hash), unsorted."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "corpus_clean._fast", "Shingling inner loop.", -1, methods,
};

PyMODINIT_FUNC PyInit__fast(void) { return PyModule_Create(&module); }
