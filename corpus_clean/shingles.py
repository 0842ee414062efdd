"""Text -> shingle hashes, with array operations instead of string joins.

Text is lowercased and punctuation folded. A word is a run of letters and digits; each
character of a script written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) is a
word of its own, so Chinese is shingled by characters and mixed text works too. A
shingle is ``size`` consecutive words. Every hash is computed over the whole text at once
with numpy: code points -> prefix polynomial hash -> word hashes -> shingle hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]

_WORD, _SOLO = 1, 2
#: Code point ranges where every character is a word: scripts without spaces.
_SOLO_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
)


def _char_classes() -> npt.NDArray[np.uint8]:
    """Class of every BMP code point: 0 separator, 1 word character, 2 a word by itself."""
    classes = np.fromiter(
        (_WORD if chr(c).isalnum() else 0 for c in range(0x10000)), dtype=np.uint8, count=0x10000
    )
    for low, high in _SOLO_RANGES:
        classes[low : high + 1] = np.where(classes[low : high + 1] == _WORD, _SOLO, 0)
    return classes


_CLASSES = _char_classes()
_P = np.uint64(0x100000001B3)
#: Longest word hashed exactly; later characters of a longer word share the last power.
_MAX_WORD = 1024
_POWERS = np.ones(_MAX_WORD, dtype=np.uint64)
np.cumprod(np.full(_MAX_WORD - 1, _P, dtype=np.uint64), out=_POWERS[1:])
_SHINGLE_MULT = np.uint64(0x9E3779B97F4A7C15)
#: Bits kept of a shingle hash (see shingle_batch).
SHINGLE_BITS = 44
_MASK64 = (1 << 64) - 1


def fmix64(values: U64) -> U64:
    """MurmurHash3's 64-bit finalizer (a bijection): spreads every input bit over the output."""
    values = values ^ (values >> np.uint64(33))
    values *= np.uint64(0xFF51AFD7ED558CCD)
    values ^= values >> np.uint64(33)
    values *= np.uint64(0xC4CEB9FE1A85EC53)
    values ^= values >> np.uint64(33)
    return values


@dataclass(frozen=True)
class ShingleBatch:
    """The words and shingles of many texts, in flat arrays with per-text offsets.

    Text ``i`` has words ``words[word_offsets[i]:word_offsets[i + 1]]`` and sorted unique
    shingles ``shingles[offsets[i]:offsets[i + 1]]``.
    """

    words: U64
    word_offsets: npt.NDArray[np.int64]
    shingles: U64
    offsets: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def shingles_of(self, i: int) -> U64:
        return self.shingles[self.offsets[i] : self.offsets[i + 1]]

    def words_of(self, i: int) -> U64:
        return self.words[self.word_offsets[i] : self.word_offsets[i + 1]]


def shingle_batch(texts: Sequence[str], size: int) -> ShingleBatch:
    """Words and ``size``-word shingles of every text, computed in one pass over all of them.

    A text shorter than ``size`` words is one shingle of all its words; an empty one has
    none. Shingle hashes keep 44 bits, so that (text number, hash) packs into one uint64
    and a plain sort groups and orders them; 44 bits still make a collision between two
    articles' shingles a one-in-ten-million event.
    """
    if len(texts) >= 1 << (64 - SHINGLE_BITS):
        raise ValueError("too many texts for one batch")
    lowered = [text.lower() for text in texts]
    char_offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) + 1 for t in lowered], out=char_offsets[1:])
    words, word_starts = _words("\n".join(lowered) + "\n")
    word_offsets = np.searchsorted(word_starts, char_offsets).astype(np.int64)
    counts = np.diff(word_offsets)
    padded = np.concatenate((words, np.zeros(size, dtype=np.uint64)))
    combined = words.copy()
    for offset in range(1, size):
        combined *= _SHINGLE_MULT
        combined += padded[offset : offset + len(words)]
    # A shingle starts at every word followed by size - 1 words of the same text:
    # positions [first word, last word - size + 1) of each text, marked by a running sum.
    firsts = word_offsets[:-1]
    lasts = np.maximum(word_offsets[1:] - size + 1, firsts)
    marks = np.bincount(firsts, minlength=len(words) + 1) - np.bincount(
        lasts, minlength=len(words) + 1
    )
    starts = np.cumsum(marks[:-1]) > 0
    short = np.flatnonzero((counts > 0) & (counts < size))
    for doc in short:  # fewer words than a shingle: one shingle of all the words
        first = word_offsets[doc]
        value = int(words[first])
        for offset in range(1, int(counts[doc])):
            value = (value * int(_SHINGLE_MULT) + int(words[first + offset])) & _MASK64
        combined[first] = value
        starts[first] = True
    docs = np.repeat(np.arange(len(texts), dtype=np.uint64), counts)
    keys = (docs[starts] << np.uint64(SHINGLE_BITS)) | (
        fmix64(combined[starts]) >> np.uint64(64 - SHINGLE_BITS)
    )
    keys.sort()
    fresh = np.ones(len(keys), dtype=bool)
    fresh[1:] = keys[1:] != keys[:-1]
    keys = keys[fresh]
    offsets = np.searchsorted(keys >> np.uint64(SHINGLE_BITS), np.arange(len(texts) + 1))
    shingles = keys & np.uint64((1 << SHINGLE_BITS) - 1)
    return ShingleBatch(words, word_offsets, shingles, offsets.astype(np.int64))


def _words(text: str) -> tuple[U64, npt.NDArray[np.int64]]:
    """A 64-bit hash and the start offset of every word of already-lowercased text."""
    # surrogatepass: a lone surrogate from a JSON escape is a code point like any other.
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    classes = _CLASSES[np.minimum(codes, 0xFFFF)]
    if len(codes) and codes.max() > 0xFFFF:
        classes[codes > 0xFFFF] = 0  # emoji and symbols beyond the BMP fold like punctuation
        classes[codes >= 0x20000] = _SOLO  # CJK extensions B and later
    is_word = classes == _WORD
    edges = np.diff(is_word.view(np.int8), prepend=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    solo = np.flatnonzero(classes == _SOLO)
    if len(solo):
        starts = np.sort(np.concatenate((starts, solo)))
    # Polynomial hash of each word: sum of code * P**(position in word), summed per word
    # (separators weigh nothing, so each sum runs from one word's start to the next's).
    word_start = np.zeros(len(codes), dtype=np.int64)
    word_start[starts] = starts
    np.maximum.accumulate(word_start, out=word_start)
    offset_in_word = np.arange(len(codes)) - word_start
    np.minimum(offset_in_word, _MAX_WORD - 1, out=offset_in_word)
    weighted = np.where(classes != 0, codes, 0).astype(np.uint64) * _POWERS[offset_in_word]
    hashes = np.add.reduceat(weighted, starts) if len(starts) else weighted[:0]
    return fmix64(hashes), starts.astype(np.int64)
