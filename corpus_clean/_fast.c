/* The two inner loops of deduplication, in C.
 *
 * shingle_keys: texts -> word hashes -> shingle keys. numpy needs a dozen passes over
 * every character to find and hash words; this is one pass, over the str's own data.
 * shingles.py documents what a word and a shingle are.
 *
 * min_hashes: shingle sets -> MinHash signatures. numpy needs three passes over every
 * shingle per permutation; here each shingle is loaded once and all permutations run
 * over it in vector registers. minhash.py documents the scheme (datasketch's affine32).
 *
 * common_count: the size of the intersection of two sorted shingle sets, in one merge;
 * numpy's searchsorted and masks cost ten times as much on sets of a few hundred.
 *
 * common_prefix: how many leading bytes two lines share (an output line that is mostly
 * its input line is parked as a span of the input file, see io/spill.py).
 *
 * fold_lines: a text -> its non-blank lines and, for each ASCII line, its folded UTF-8 (what
 * learning hashes and compares: learn.fold). Learning folds every line of every article
 * twice (fit pass and second pass); in Python that was a fifth of a run. Lines with other
 * characters (NFC, full casefolding) are left to Python.
 *
 * sentence_starts: where the last two sentences of a paragraph start (learn.closing_sentences,
 * looked for in the last paragraphs of every article), without a regex's match objects.
 *
 * sketch_texts: what learning's fit pass keeps of every article (learn.Sketch), in one pass
 * over each text: its lines folded as fold_lines folds them, each one's hash and length, the
 * pieces of its long lines (their sentences hashed: how learning tells copies of an article
 * apart from different articles), and its last paragraph's closing sentences folded and
 * hashed; as the bytes of the Sketch's arrays, a batch of texts in one call (record by
 * record from Python, with a list of folded lines each, it cost 0.8 s per 100,000 articles,
 * this 0.25 s). The hashes of lines are xxhash's (its Python function, called from here),
 * since they key what is learned; a line C cannot fold is folded by a Python callable.
 *
 * Everything around them (lowercasing, sorting, band keys) stays in Python and numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* One text's words and shingle keys, appended at words + *n_words and keys + *n_keys. */
#define DEFINE_SHINGLE_TEXT(NAME, CHAR)                                                       \
    static void NAME(const CHAR *code, Py_ssize_t length, uint64_t doc, const uint8_t *table, \
                     Py_ssize_t size, int bits, uint64_t *words, Py_ssize_t *n_words,         \
                     uint64_t *keys, Py_ssize_t *n_keys)                                      \
    {                                                                                         \
        Py_ssize_t first_word = *n_words, n = *n_words;                                       \
        uint64_t hash = 0;                                                                    \
        int in_word = 0;                                                                      \
        for (Py_ssize_t i = 0; i < length; i++) {                                             \
            int kind = char_class(code[i], table);                                            \
            if (kind == WORD) {                                                               \
                hash = (in_word ? hash : 0) * PRIME + code[i] + 1;                            \
                in_word = 1;                                                                  \
                continue;                                                                     \
            }                                                                                 \
            if (in_word)                                                                      \
                words[n++] = fmix64(hash);                                                    \
            in_word = 0;                                                                      \
            if (kind == SOLO)                                                                 \
                words[n++] = fmix64((uint64_t)code[i] + 1);                                   \
        }                                                                                     \
        if (in_word)                                                                          \
            words[n++] = fmix64(hash);                                                        \
        *n_words = n;                                                                         \
        shingle_text(words + first_word, n - first_word, doc, size, bits, keys, n_keys);      \
    }

static void shingle_text(const uint64_t *words, Py_ssize_t count, uint64_t doc, Py_ssize_t size,
                         int bits, uint64_t *keys, Py_ssize_t *n_keys)
{
    Py_ssize_t starts = count >= size ? count - size + 1 : (count > 0);
    Py_ssize_t width = count >= size ? size : count;
    for (Py_ssize_t s = 0; s < starts; s++) {
        uint64_t combined = words[s];
        for (Py_ssize_t j = 1; j < width; j++)
            combined = combined * SHINGLE_MULT + words[s + j];
        keys[(*n_keys)++] = (doc << bits) | (fmix64(combined) >> (64 - bits));
    }
}

DEFINE_SHINGLE_TEXT(shingle_ucs1, Py_UCS1)
DEFINE_SHINGLE_TEXT(shingle_ucs2, Py_UCS2)
DEFINE_SHINGLE_TEXT(shingle_ucs4, Py_UCS4)

static PyObject *shingle_keys(PyObject *self, PyObject *args)
{
    PyObject *texts;
    Py_buffer classes;
    int size, bits;
    PyObject *words_out = NULL, *word_offsets_out = NULL, *keys_out = NULL, *result = NULL;

    if (!PyArg_ParseTuple(args, "O!y*ii", &PyList_Type, &texts, &classes, &size, &bits))
        return NULL;
    Py_ssize_t n_docs = PyList_GET_SIZE(texts), n_chars = 0;
    if (classes.len != 0x10000 || size < 1 || bits < 1 || bits > 63 ||
        (n_docs >> (64 - bits)) > 0) {
        PyErr_SetString(PyExc_ValueError, "shingle_keys: bad arguments");
        goto done;
    }
    for (Py_ssize_t doc = 0; doc < n_docs; doc++) {
        PyObject *text = PyList_GET_ITEM(texts, doc);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "shingle_keys: texts must be str");
            goto done;
        }
        n_chars += PyUnicode_GET_LENGTH(text);
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
    const uint8_t *table = classes.buf;
    Py_ssize_t n_words = 0, n_keys = 0;

    word_offsets[0] = 0;
    for (Py_ssize_t doc = 0; doc < n_docs; doc++) {
        PyObject *text = PyList_GET_ITEM(texts, doc);
        const void *data = PyUnicode_DATA(text);
        Py_ssize_t length = PyUnicode_GET_LENGTH(text);
        switch (PyUnicode_KIND(text)) {
        case PyUnicode_1BYTE_KIND:
            shingle_ucs1(data, length, doc, table, size, bits, words, &n_words, keys, &n_keys);
            break;
        case PyUnicode_2BYTE_KIND:
            shingle_ucs2(data, length, doc, table, size, bits, words, &n_words, keys, &n_keys);
            break;
        default:
            shingle_ucs4(data, length, doc, table, size, bits, words, &n_words, keys, &n_keys);
        }
        word_offsets[doc + 1] = n_words;
    }

    if (_PyBytes_Resize(&words_out, n_words * 8) < 0 || _PyBytes_Resize(&keys_out, n_keys * 8) < 0)
        goto done;
    result = Py_BuildValue("(OOO)", words_out, word_offsets_out, keys_out);

done:
    Py_XDECREF(words_out);
    Py_XDECREF(word_offsets_out);
    Py_XDECREF(keys_out);
    PyBuffer_Release(&classes);
    return result;
}

static inline uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6BU;
    h ^= h >> 13;
    h *= 0xC2B2AE35U;
    h ^= h >> 16;
    return h;
}

/* Built for AVX2 and for plain x86-64 where the compiler can; the CPU picks at load time. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

VECTOR_CLONES
static void sign(const uint32_t *restrict shingles, const int64_t *restrict offset,
                 Py_ssize_t n_docs, const uint32_t *restrict a, const uint32_t *restrict b,
                 Py_ssize_t num_perm, uint32_t *restrict out)
{
    for (Py_ssize_t doc = 0; doc < n_docs; doc++) {
        uint32_t *restrict signature = out + doc * num_perm;
        for (Py_ssize_t k = 0; k < num_perm; k++)
            signature[k] = UINT32_MAX;
        for (int64_t i = offset[doc]; i < offset[doc + 1]; i++) {
            const uint32_t h = fmix32(shingles[i]);
            for (Py_ssize_t k = 0; k < num_perm; k++) {
                const uint32_t permuted = a[k] * h + b[k];
                signature[k] = permuted < signature[k] ? permuted : signature[k];
            }
        }
    }
}

static PyObject *min_hashes(PyObject *self, PyObject *args)
{
    Py_buffer shingles, offsets, a, b;
    PyObject *out = NULL;

    if (!PyArg_ParseTuple(args, "y*y*y*y*", &shingles, &offsets, &a, &b))
        return NULL;
    Py_ssize_t n_docs = offsets.len / 8 - 1, num_perm = a.len / 4;
    const int64_t *offset = offsets.buf;
    if (shingles.len % 4 || offsets.len % 8 || offsets.len < 8 || a.len % 4 ||
        a.len != b.len || num_perm < 1 || offset[0] < 0 ||
        offset[n_docs] > shingles.len / 4) {
        PyErr_SetString(PyExc_ValueError, "min_hashes: bad argument shapes");
        goto done;
    }
    for (Py_ssize_t doc = 0; doc < n_docs; doc++) {
        if (offset[doc + 1] < offset[doc]) {
            PyErr_SetString(PyExc_ValueError, "min_hashes: offsets go backwards");
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, n_docs * num_perm * 4);
    if (!out)
        goto done;
    uint32_t *signatures = (uint32_t *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    sign(shingles.buf, offset, n_docs, a.buf, b.buf, num_perm, signatures);
    Py_END_ALLOW_THREADS

done:
    PyBuffer_Release(&shingles);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return out;
}


static PyObject *common_count(PyObject *self, PyObject *args)
{
    Py_buffer a, b;
    if (!PyArg_ParseTuple(args, "y*y*", &a, &b))
        return NULL;
    PyObject *result = NULL;
    if (a.len % 4 || b.len % 4) {
        PyErr_SetString(PyExc_ValueError, "common_count: not uint32 arrays");
        goto done;
    }
    const uint32_t *x = a.buf, *y = b.buf;
    const uint32_t *x_end = x + a.len / 4, *y_end = y + b.len / 4;
    Py_ssize_t common = 0;
    while (x < x_end && y < y_end) {
        if (*x < *y)
            x++;
        else if (*y < *x)
            y++;
        else {
            common++;
            x++;
            y++;
        }
    }
    result = PyLong_FromSsize_t(common);
done:
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return result;
}

static PyObject *common_prefix(PyObject *self, PyObject *args)
{
    Py_buffer a, b;
    if (!PyArg_ParseTuple(args, "y*y*", &a, &b))
        return NULL;
    const char *x = a.buf, *y = b.buf;
    Py_ssize_t n = a.len < b.len ? a.len : b.len, i = 0;
    while (i + 8 <= n && memcmp(x + i, y + i, 8) == 0)
        i += 8;
    while (i < n && x[i] == y[i])
        i++;
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return PyLong_FromSsize_t(i);
}

/* Python's str.split() and str.strip() whitespace among ASCII characters. */
static const uint8_t ASCII_SPACE[128] = {['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1,
                                         ['\r'] = 1, [0x1C] = 1,  [0x1D] = 1,  [0x1E] = 1,
                                         [0x1F] = 1, [' '] = 1};

static inline int ascii_space(Py_UCS4 ch)
{
    return ch < 128 && ASCII_SPACE[ch];
}

/* The folded UTF-8 of an ASCII line (see learn.fold): as it is when longer than fold_max
 * characters, else lowercased, whitespace runs as one space, stripped. No branch on the
 * characters (one on whether each is a space would mispredict at every word): a space owed
 * before the next word is written, and kept if a word follows; each character is written,
 * and kept if it is not a space. */
static PyObject *fold_ascii(const char *line, Py_ssize_t n, Py_ssize_t fold_max)
{
    if (n > fold_max)
        return PyBytes_FromStringAndSize(line, n);
    char folded[n + 1]; /* what is kept is never longer than the line: one more to write */
    Py_ssize_t used = 0;
    int owed = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t ch = (uint8_t)line[i];
        int space = ASCII_SPACE[ch & 0x7F];
        folded[used] = ' ';
        used += owed & !space;
        folded[used] = (char)(ch + (((unsigned)ch - 'A' < 26u) << 5));
        used += !space;
        owed = space & (used > 0);
    }
    return PyBytes_FromStringAndSize(folded, used);
}

/* Whether a character that is not ASCII folds to itself (learn.fold): no case, no canonical
 * decomposition, never combined or reordered by NFC. Han, CJK and general punctuation, and
 * fullwidth punctuation: what Chinese lines are made of. */
static inline int folds_to_itself(Py_UCS4 ch)
{
    return (ch >= 0x4E00 && ch <= 0x9FFF) || (ch >= 0x3400 && ch <= 0x4DBF) ||
           (ch >= 0x3001 && ch <= 0x3029) || (ch >= 0x3030 && ch <= 0x303F) ||
           (ch >= 0x2010 && ch <= 0x2027) || (ch >= 0x2030 && ch <= 0x205E) ||
           (ch >= 0xFF01 && ch <= 0xFF20) || (ch >= 0xFF3B && ch <= 0xFF40) ||
           (ch >= 0xFF5B && ch <= 0xFF65);
}

/* The folded UTF-8 of the line text[start:end], where C can tell it (learn.fold): as it is
 * when longer than fold_max characters; else when every character but whitespace is ASCII
 * or folds_to_itself. None for Python to fold (NULL on an error). */
static PyObject *fold_span(PyObject *text, Py_ssize_t start, Py_ssize_t end, Py_ssize_t fold_max)
{
    Py_ssize_t n = end - start;
    if (PyUnicode_IS_ASCII(text)) /* its characters are its UTF-8 */
        return fold_ascii((const char *)PyUnicode_DATA(text) + start, n, fold_max);
    if (n > fold_max) {
        PyObject *line = PyUnicode_Substring(text, start, end);
        if (line == NULL)
            return NULL;
        PyObject *utf8 = PyUnicode_AsUTF8String(line);
        Py_DECREF(line);
        if (utf8 == NULL) { /* a lone surrogate: Python writes it with surrogatepass */
            PyErr_Clear();
            return Py_NewRef(Py_None);
        }
        return utf8;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    char folded[3 * (n > 0 ? n : 1)];
    Py_ssize_t used = 0;
    int space = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 128 ? ascii_space(ch) : Py_UNICODE_ISSPACE(ch)) {
            space = used > 0;
            continue;
        }
        if (space) {
            folded[used++] = ' ';
            space = 0;
        }
        if (ch < 128)
            folded[used++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        else if (!folds_to_itself(ch))
            return Py_NewRef(Py_None);
        else { /* all of them lie between U+0800 and U+FFFF: three bytes */
            folded[used++] = (char)(0xE0 | (ch >> 12));
            folded[used++] = (char)(0x80 | ((ch >> 6) & 0x3F));
            folded[used++] = (char)(0x80 | (ch & 0x3F));
        }
    }
    return PyBytes_FromStringAndSize(folded, used);
}

/* Where the line that starts at start ends (its newline, or n) and whether it is blank. */
#define LINE_END(NAME, CHAR)                                                                \
    static Py_ssize_t NAME(const CHAR *data, Py_ssize_t start, Py_ssize_t n, int *blank)    \
    {                                                                                       \
        Py_ssize_t end = start;                                                             \
        if (sizeof(CHAR) == 1) {                                                            \
            const void *at = memchr(data + start, '\n', (size_t)(n - start));               \
            end = at == NULL ? n : (const CHAR *)at - data;                                 \
        } else                                                                              \
            while (end < n && data[end] != '\n')                                            \
                end++;                                                                      \
        *blank = 1;                                                                         \
        for (Py_ssize_t i = start; i < end && *blank; i++)                                  \
            *blank = data[i] < 128 ? ascii_space(data[i]) : Py_UNICODE_ISSPACE(data[i]);    \
        return end;                                                                         \
    }

LINE_END(line_end_1, Py_UCS1)
LINE_END(line_end_2, Py_UCS2)
LINE_END(line_end_4, Py_UCS4)

static inline Py_ssize_t line_end(int kind, const void *data, Py_ssize_t start, Py_ssize_t n,
                                  int *blank)
{
    return kind == PyUnicode_1BYTE_KIND   ? line_end_1(data, start, n, blank)
           : kind == PyUnicode_2BYTE_KIND ? line_end_2(data, start, n, blank)
                                          : line_end_4(data, start, n, blank);
}

static PyObject *fold_lines(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_ssize_t fold_max;
    if (!PyArg_ParseTuple(args, "Un", &text, &fold_max))
        return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *lines = PyList_New(0), *folded = PyList_New(0);
    if (lines == NULL || folded == NULL)
        goto fail;
    for (Py_ssize_t start = 0; start <= n;) {
        int blank;
        Py_ssize_t end = line_end(kind, data, start, n, &blank);
        if (!blank) {
            PyObject *line = PyUnicode_Substring(text, start, end);
            if (line == NULL || PyList_Append(lines, line) < 0) {
                Py_XDECREF(line);
                goto fail;
            }
            Py_DECREF(line);
            PyObject *key = fold_span(text, start, end, fold_max);
            if (key == NULL || PyList_Append(folded, key) < 0) {
                Py_XDECREF(key);
                goto fail;
            }
            Py_DECREF(key);
        }
        start = end + 1;
    }
    return Py_BuildValue("(NN)", lines, folded);
fail:
    Py_XDECREF(lines);
    Py_XDECREF(folded);
    return NULL;
}

/* learn._SENTENCE_END, character by character: a stop . ! ? then closing quotes or brackets,
 * then whitespace or (not taken) a Han character; or a CJK stop, its closers, any whitespace.
 * The end of the sentence end that starts at i, or -1 if none starts there. */
static Py_ssize_t sentence_end_at(int kind, const void *data, Py_ssize_t i, Py_ssize_t n)
{
    Py_UCS4 ch = PyUnicode_READ(kind, data, i);
    int cjk = ch == 0x3002 || ch == 0xFF01 || ch == 0xFF1F;
    if (!cjk && ch != '.' && ch != '!' && ch != '?')
        return -1;
    Py_ssize_t j = i + 1;
    for (; j < n; j++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, j);
        int closer = cjk ? (c == 0x201D || c == 0x2019 || c == 0x300D || c == 0x300F || c == 0xFF09)
                         : (c == '"' || c == '\'' || c == 0x201D || c == 0x2019 || c == ')' || c == ']');
        if (!closer)
            break;
    }
    Py_ssize_t k = j;
    while (k < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k)))
        k++;
    if (cjk || k > j)
        return k;
    if (j < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, j);
        if (c >= 0x3400 && c <= 0x9FFF)
            return j;
    }
    return -1;
}

/* Whether text[start:] is a sentence (learn._is_sentence): min_chars long, with a letter or
 * digit (re's [^\W_]). */
static int is_sentence(int kind, const void *data, Py_ssize_t start, Py_ssize_t n,
                       Py_ssize_t min_chars)
{
    if (n - start < min_chars)
        return 0;
    for (Py_ssize_t i = start; i < n; i++)
        if (Py_UNICODE_ISALNUM(PyUnicode_READ(kind, data, i)))
            return 1;
    return 0;
}

static const uint8_t LATIN1_STOP[256] = {['.'] = 1, ['!'] = 1, ['?'] = 1};

/* By table below 256: a branch on each character's class mispredicts at every space. */
static inline int is_stop(Py_UCS4 ch)
{
    return ch < 256 ? LATIN1_STOP[ch] : ch == 0x3002 || ch == 0xFF01 || ch == 0xFF1F;
}

/* The last i from `from` to `last` where a stop stands (. ! ? or a CJK stop), or from - 1:
 * what sentence ends start with, looked for one kind of str at a time. */
#define LAST_STOP(NAME, CHAR)                                                     \
    static Py_ssize_t NAME(const CHAR *data, Py_ssize_t from, Py_ssize_t last)    \
    {                                                                             \
        while (last >= from && !is_stop(data[last]))                              \
            last--;                                                               \
        return last;                                                              \
    }

LAST_STOP(last_stop_1, Py_UCS1)
LAST_STOP(last_stop_2, Py_UCS2)
LAST_STOP(last_stop_4, Py_UCS4)

static inline Py_ssize_t last_stop(int kind, const void *data, Py_ssize_t from, Py_ssize_t last)
{
    return kind == PyUnicode_1BYTE_KIND   ? last_stop_1(data, from, last)
           : kind == PyUnicode_2BYTE_KIND ? last_stop_2(data, from, last)
                                          : last_stop_4(data, from, last);
}

/* Where the closing sentences of the line that ends at end start (sentence_starts: at
 * most two, last first, among the sentence ends from offset from on) into found; how many. */
static int closing_starts(int kind, const void *data, Py_ssize_t from, Py_ssize_t end,
                          Py_ssize_t min_chars, Py_ssize_t found[2])
{
    /* Sentence ends never overlap (a stop is neither a closer nor a space), so the last two
     * that end before the line does are found from the right. */
    int count = 0;
    for (Py_ssize_t i = end - 1; count < 2 && (i = last_stop(kind, data, from, i)) >= from; i--) {
        Py_ssize_t at = sentence_end_at(kind, data, i, end);
        if (at >= 0 && at < end)
            found[count++] = at;
    }
    int kept = 0;
    for (int k = 0; k < count; k++)
        if (is_sentence(kind, data, found[k], end, min_chars))
            found[kept++] = found[k];
    return kept;
}

/* sentence_starts of text, a list (NULL on an error). */
static PyObject *starts_of(PyObject *text, Py_ssize_t window, Py_ssize_t min_chars)
{
    Py_ssize_t found[2];
    int count = closing_starts(PyUnicode_KIND(text), PyUnicode_DATA(text), window > 0 ? window : 0,
                               PyUnicode_GET_LENGTH(text), min_chars, found);
    PyObject *starts = PyList_New(0);
    for (int k = 0; starts != NULL && k < count; k++) {
        PyObject *start = PyLong_FromSsize_t(found[k]);
        if (start == NULL || PyList_Append(starts, start) < 0) {
            Py_XDECREF(start);
            Py_CLEAR(starts);
        }
        Py_XDECREF(start);
    }
    return starts;
}

static PyObject *sentence_starts(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_ssize_t window, min_chars;
    if (!PyArg_ParseTuple(args, "Unn", &text, &window, &min_chars))
        return NULL;
    return starts_of(text, window, min_chars);
}

static PyObject *last_sentences(PyObject *self, PyObject *args)
{
    PyObject *lines;
    Py_ssize_t tail_lines, window, min_chars;
    if (!PyArg_ParseTuple(args, "O!nnn", &PyList_Type, &lines, &tail_lines, &window, &min_chars))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(lines);
    for (Py_ssize_t i = n - 1; i > n - 1 - tail_lines && i >= 0; i--) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyUnicode_Check(line))
            return PyErr_Format(PyExc_TypeError, "lines must be str");
        Py_ssize_t length = PyUnicode_GET_LENGTH(line);
        PyObject *starts = starts_of(line, length > window ? length - window : 0, min_chars);
        if (starts == NULL)
            return NULL;
        if (PyList_GET_SIZE(starts) > 0)
            return Py_BuildValue("(nN)", i, starts);
        Py_DECREF(starts);
    }
    return Py_BuildValue("(nN)", (Py_ssize_t)-1, PyList_New(0));
}

/* The pieces of a long line (learn.Sketch): its sentences, each ending at a stop (. ! ? or a
 * CJK stop), then any closing quotes or brackets; after a stop . ! ? and its closers comes
 * ASCII whitespace or a Han character, after a CJK stop anything. What follows the
 * whitespace starts the next piece. On UTF-8 bytes: a stop byte is never inside a
 * character, so no character is decoded. */
static inline int utf8_closer(const uint8_t *p, Py_ssize_t left)
{
    if (p[0] == '"' || p[0] == '\'' || p[0] == ')' || p[0] == ']')
        return 1;
    if (left >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0x9D || p[2] == 0x99))
        return 3; /* ” ’ */
    if (left >= 3 && p[0] == 0xE3 && p[1] == 0x80 && (p[2] == 0x8D || p[2] == 0x8F))
        return 3; /* 」 』 */
    if (left >= 3 && p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x89)
        return 3; /* ） */
    return 0;
}

static inline int utf8_cjk_stop(const uint8_t *p, Py_ssize_t left)
{
    return left >= 3 && ((p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x82) ||
                         (p[0] == 0xEF && p[1] == 0xBC && (p[2] == 0x81 || p[2] == 0x9F)));
}

static inline int utf8_han(const uint8_t *p, Py_ssize_t left)
{
    /* U+3400..U+9FFF: E3 90 80 .. E9 BF BF */
    return left >= 3 && p[0] >= 0xE3 && p[0] <= 0xE9 && (p[0] != 0xE3 || p[1] >= 0x90);
}

/* The bytes a sentence end starts with: . ! ? and the lead bytes of the CJK stops. */
static const uint8_t MAY_END[256] = {['.'] = 1, ['!'] = 1, ['?'] = 1, [0xE3] = 1, [0xEF] = 1};

/* The first i from i on where MAY_END[s[i]], or n. With SSE2 (every x86-64 CPU has it)
 * sixteen bytes are compared with the five at once. */
static inline Py_ssize_t next_may_end(const uint8_t *s, Py_ssize_t i, Py_ssize_t n)
{
#if defined(__SSE2__)
    const __m128i dot = _mm_set1_epi8('.'), bang = _mm_set1_epi8('!'), ask = _mm_set1_epi8('?'),
                  e3 = _mm_set1_epi8((char)0xE3), ef = _mm_set1_epi8((char)0xEF);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i ascii = _mm_or_si128(_mm_cmpeq_epi8(v, dot), _mm_cmpeq_epi8(v, bang));
        __m128i lead = _mm_or_si128(_mm_cmpeq_epi8(v, e3), _mm_cmpeq_epi8(v, ef));
        ascii = _mm_or_si128(ascii, _mm_cmpeq_epi8(v, ask));
        int found = _mm_movemask_epi8(_mm_or_si128(ascii, lead));
        if (found)
            return i + __builtin_ctz((unsigned)found);
    }
#endif
    while (i < n && !MAY_END[s[i]])
        i++;
    return i;
}

/* Where the sentence end that starts at i ends (after its closers) and where the next
 * sentence starts (after whitespace), or 0 if no sentence ends at i. */
static inline int piece_end_at(const uint8_t *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *end,
                               Py_ssize_t *next)
{
    int cjk = utf8_cjk_stop(s + i, n - i);
    if (!cjk && s[i] != '.' && s[i] != '!' && s[i] != '?')
        return 0;
    Py_ssize_t j = i + (cjk ? 3 : 1);
    for (int step; j < n && (step = utf8_closer(s + j, n - j)) > 0;)
        j += step;
    Py_ssize_t k = j;
    while (k < n && ascii_space(s[k]))
        k++;
    if (!cjk && k == j && !utf8_han(s + j, n - j))
        return 0;
    *end = j;
    *next = k;
    return 1;
}

/* A stable 64-bit hash of bytes (eight at a time, little-endian), never 0. */
static uint64_t piece_hash(const uint8_t *s, Py_ssize_t n)
{
    uint64_t h = SHINGLE_MULT ^ (uint64_t)n;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        h = (h ^ w) * SHINGLE_MULT;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (Py_ssize_t b = n - 1; b >= i; b--)
        w = (w << 8) | s[b];
    h = fmix64(h ^ w);
    return h ? h : 1;
}

/* A growing array of bytes (PyMem). */
typedef struct {
    char *data;
    Py_ssize_t used, size;
} Buffer;

static int put(Buffer *buffer, const void *item, Py_ssize_t n)
{
    if (buffer->used + n > buffer->size) {
        Py_ssize_t size = buffer->size > 0 ? buffer->size : 1024;
        while (size < buffer->used + n)
            size *= 2;
        char *grown = PyMem_Realloc(buffer->data, (size_t)size);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        buffer->data = grown;
        buffer->size = size;
    }
    memcpy(buffer->data + buffer->used, item, (size_t)n);
    buffer->used += n;
    return 0;
}

static inline int put_u32(Buffer *buffer, uint32_t value)
{
    return put(buffer, &value, sizeof value);
}

static inline int put_u64(Buffer *buffer, uint64_t value)
{
    return put(buffer, &value, sizeof value);
}

/* The pieces of the line s[:n], in order: each one's piece_hash into hashes and length into
 * lengths; how many (-1 on an error). */
static Py_ssize_t put_pieces(const uint8_t *s, Py_ssize_t n, Buffer *hashes, Buffer *lengths)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t start = 0, i = 0; start < n; count++) {
        Py_ssize_t end = n, next = n;
        for (; (i = next_may_end(s, i, n)) < n; i++)
            if (piece_end_at(s, i, n, &end, &next) && next < n)
                break;
        if (i >= n)
            end = next = n;
        if (put_u64(hashes, piece_hash(s + start, end - start)) < 0 ||
            put_u32(lengths, (uint32_t)(end - start)) < 0)
            return -1;
        start = i = next;
    }
    return count;
}

/* What learn.Sketch keeps of the texts, one buffer per array of it (see the docstring of
 * sketch_texts in the method table). */
enum {
    LINE_COUNTS,
    HASHES,
    LENGTHS,
    TAILS,
    TAIL_LINES,
    PIECE_COUNTS,
    PIECES,
    PIECE_LENGTHS,
    ARRAYS
};

typedef struct {
    Py_ssize_t fold_max, tail_lines, window, min_chars, long_line;
    PyObject *fold, *hash;
} SketchArgs;

/* The folded UTF-8 of text[start:end] (learn.fold): fold_span's, else the fold callable's. */
static PyObject *folded_span(PyObject *text, Py_ssize_t start, Py_ssize_t end,
                             const SketchArgs *args)
{
    PyObject *key = fold_span(text, start, end, args->fold_max);
    if (key != Py_None)
        return key;
    Py_DECREF(key);
    PyObject *line = PyUnicode_Substring(text, start, end);
    if (line == NULL)
        return NULL;
    key = PyObject_CallOneArg(args->fold, line);
    Py_DECREF(line);
    if (key != NULL && !PyBytes_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "sketch_texts: fold must return bytes");
        Py_CLEAR(key);
    }
    return key;
}

/* The hash callable's value of a folded line, 0 made 1 (learn.stable_hash); 0 on an error. */
static uint64_t stable_hash_of(PyObject *folded, const SketchArgs *args)
{
    PyObject *value = PyObject_CallOneArg(args->hash, folded);
    if (value == NULL)
        return 0;
    uint64_t hash = PyLong_AsUnsignedLongLong(value);
    Py_DECREF(value);
    if (hash == (uint64_t)-1 && PyErr_Occurred())
        return 0;
    return hash ? hash : 1;
}

/* One text's share of every array; -1 on an error. */
static int sketch_one(PyObject *text, const SketchArgs *args, Buffer *out, Buffer *spans)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), lines = 0, pieces = 0;
    Py_ssize_t first_hash = out[HASHES].used / 8;
    spans->used = 0;
    for (Py_ssize_t start = 0; start <= n;) {
        int blank;
        Py_ssize_t end = line_end(kind, data, start, n, &blank);
        if (!blank) {
            PyObject *folded = folded_span(text, start, end, args);
            if (folded == NULL)
                return -1;
            const uint8_t *s = (const uint8_t *)PyBytes_AS_STRING(folded);
            Py_ssize_t size = PyBytes_GET_SIZE(folded), count = 0;
            uint64_t hash = stable_hash_of(folded, args);
            if (hash == 0 || put_u64(&out[HASHES], hash) < 0 ||
                put_u32(&out[LENGTHS], (uint32_t)size) < 0 ||
                (size >= args->long_line &&
                 (count = put_pieces(s, size, &out[PIECES], &out[PIECE_LENGTHS])) < 0) ||
                put(spans, (Py_ssize_t[2]){start, end}, 2 * sizeof(Py_ssize_t)) < 0) {
                Py_DECREF(folded);
                return -1;
            }
            Py_DECREF(folded);
            pieces += count;
            lines++;
        }
        start = end + 1;
    }
    uint64_t tails[2] = {0, 0}, tail_line = 0;
    const Py_ssize_t *span = (const Py_ssize_t *)spans->data;
    for (Py_ssize_t i = lines - 1; i > lines - 1 - args->tail_lines && i >= 0; i--) {
        Py_ssize_t start = span[2 * i], end = span[2 * i + 1], found[2];
        Py_ssize_t from = end - start > args->window ? end - args->window : start;
        int count = closing_starts(kind, data, from, end, args->min_chars, found);
        if (count == 0)
            continue;
        memcpy(&tail_line, out[HASHES].data + 8 * (first_hash + i), 8);
        for (int k = 0; k < count; k++) {
            PyObject *folded = folded_span(text, found[k], end, args);
            if (folded == NULL)
                return -1;
            tails[k] = stable_hash_of(folded, args);
            Py_DECREF(folded);
            if (tails[k] == 0)
                return -1;
        }
        break;
    }
    return put_u32(&out[LINE_COUNTS], (uint32_t)lines) < 0 ||
                   put_u32(&out[PIECE_COUNTS], (uint32_t)pieces) < 0 ||
                   put(&out[TAILS], tails, sizeof tails) < 0 ||
                   put_u64(&out[TAIL_LINES], tail_line) < 0
               ? -1
               : 0;
}

static PyObject *sketch_texts(PyObject *self, PyObject *args)
{
    PyObject *texts, *result = NULL;
    SketchArgs sketch;
    if (!PyArg_ParseTuple(args, "O!nnnnnOO", &PyList_Type, &texts, &sketch.fold_max,
                          &sketch.tail_lines, &sketch.window, &sketch.min_chars, &sketch.long_line,
                          &sketch.fold, &sketch.hash))
        return NULL;
    Buffer out[ARRAYS] = {{0}}, spans = {0};
    for (Py_ssize_t t = 0; t < PyList_GET_SIZE(texts); t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "sketch_texts: texts must be str");
            goto done;
        }
        Py_INCREF(text); /* the callables run Python code */
        int failed = sketch_one(text, &sketch, out, &spans) < 0;
        Py_DECREF(text);
        if (failed)
            goto done;
    }
    result = PyTuple_New(ARRAYS);
    for (int a = 0; result != NULL && a < ARRAYS; a++) {
        PyObject *array = PyBytes_FromStringAndSize(out[a].data, out[a].used);
        if (array == NULL)
            Py_CLEAR(result);
        else
            PyTuple_SET_ITEM(result, a, array);
    }
done:
    for (int a = 0; a < ARRAYS; a++)
        PyMem_Free(out[a].data);
    PyMem_Free(spans.data);
    return result;
}
static PyMethodDef methods[] = {
    {"shingle_keys", shingle_keys, METH_VARARGS,
     "shingle_keys(texts, classes, size, bits) -> (words, word_offsets, keys)\n\n"
     "texts: list of str; classes: uint8 class of each BMP code point.\n"
     "Returns bytes of uint64 word hashes,\n"
     "int64 word offsets per text, and uint64 keys (text << bits | top bits of the shingle\n"
     "hash), unsorted."},
    {"min_hashes", min_hashes, METH_VARARGS,
     "min_hashes(shingles, offsets, a, b) -> signatures\n\n"
     "shingles: uint32, text i's set at [offsets[i], offsets[i+1]); a, b: uint32 permutation\n"
     "coefficients. Returns bytes of (texts, len(a)) uint32: for each text and permutation k,\n"
     "the least a[k] * fmix32(shingle) + b[k] mod 2**32 (all ones if none)."},
    {"common_prefix", common_prefix, METH_VARARGS,
     "common_prefix(a, b) -> int\n\nHow many leading bytes two bytes-like objects share."},
    {"common_count", common_count, METH_VARARGS,
     "common_count(a, b) -> int\n\n"
     "How many values two sorted uint32 arrays of unique values have in common."},
    {"fold_lines", fold_lines, METH_VARARGS,
     "fold_lines(text, fold_max) -> (lines, folded)\n\n"
     "The text's lines split at newlines that hold more than whitespace (learn.paragraphs),\n"
     "and per line its folded UTF-8 bytes (learn.fold) where C can tell them (ASCII, Han,\n"
     "CJK punctuation, or longer than fold_max), else None."},
    {"sentence_starts", sentence_starts, METH_VARARGS,
     "sentence_starts(text, window, min_chars) -> list[int]\n\n"
     "Where the last and the last but one sentence of the text start (at most two, last\n"
     "first) among sentence ends from offset window on, those that start a sentence of\n"
     "min_chars characters or more with a letter or digit (learn.closing_sentences)."},
    {"last_sentences", last_sentences, METH_VARARGS,
     "last_sentences(lines, tail_lines, window, min_chars) -> (index, starts)\n\n"
     "The last of the last tail_lines lines whose last window characters hold sentence_starts,\n"
     "and those (learn.last_paragraph); (-1, []) if none does."},
    {"sketch_texts", sketch_texts, METH_VARARGS,
     "sketch_texts(texts, fold_max, tail_lines, window, min_chars, long_line, fold, hash)\n"
     "-> (line_counts, hashes, lengths, tails, tail_lines, piece_counts, pieces,\n"
     "    piece_lengths)\n\n"
     "What learn.Sketch keeps of the texts, in one pass over each, as the bytes of its arrays\n"
     "(uint32 counts and lengths, uint64 hashes). Per text its non-blank lines folded\n"
     "(fold_lines; fold(line) -> bytes where C cannot), each one's hash (hash(folded) -> int,\n"
     "0 made 1) and length in bytes; the pieces of those of long_line bytes or more (their\n"
     "sentences: hash and length in bytes); two hashes of the folded closing sentences of its\n"
     "last paragraph (learn.last_paragraph; last first, 0 for none) and that line's hash\n"
     "(0: none)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "corpus_clean._fast", "Inner loops of shingling and MinHash.", -1, methods,
};

PyMODINIT_FUNC PyInit__fast(void)
{
    return PyModule_Create(&module);
}
