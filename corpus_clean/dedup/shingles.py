"""Text -> shingle hashes, with array operations instead of string joins.

Text is lowercased and punctuation folded. A word is a run of letters and digits; each
character of a script written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) is a
word of its own, so Chinese is shingled by characters and mixed text works too. A
shingle is ``size`` consecutive words.

Hashes, all modulo 2**64: a word of code points c1..cn hashes to
``fmix64(((c1 + 1) * P + c2 + 1) * P + ... + cn + 1)``, a word-by-itself character c to
``fmix64(c + 1)``; a shingle of word hashes w1..wk to ``fmix64(w1 * M**(k-1) + ... + wk)``,
of which the top ``SHINGLE_BITS`` bits are kept. The loop over characters is in C
(``_fast.c``); a test checks it against a plain-Python transcription of these lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .. import _fast

U64 = npt.NDArray[np.uint64]
#: A sorted set of shingle hashes (``SHINGLE_BITS`` bits each).
Shingles = npt.NDArray[np.uint32]

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
#: Bits kept of a shingle hash (see shingle_batch).
SHINGLE_BITS = 32


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
    shingles: Shingles
    offsets: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def shingles_of(self, i: int) -> Shingles:
        return self.shingles[self.offsets[i] : self.offsets[i + 1]]

    def words_of(self, i: int) -> U64:
        return self.words[self.word_offsets[i] : self.word_offsets[i + 1]]


def shingle_batch(texts: Sequence[str], size: int) -> ShingleBatch:
    """Words and ``size``-word shingles of every text, computed in one pass over all of them.

    A text shorter than ``size`` words is one shingle of all its words; an empty one has
    none. Shingle hashes keep 32 bits, so that (text number, hash) packs into one uint64
    and a plain sort groups and orders them, and a set takes 4 bytes a shingle to store
    and ship between processes. Two articles of a few hundred shingles then share a
    shingle by chance once in tens of thousands of comparisons, which moves their
    Jaccard similarity by well under 1%.
    """
    if len(texts) >= 1 << (64 - SHINGLE_BITS):
        raise ValueError("too many texts for one batch")
    # A lone surrogate (from a JSON escape) is a code point like any other.
    words_bytes, word_offsets_bytes, keys_bytes = _fast.shingle_keys(
        [text.lower() for text in texts], _CLASSES, size, SHINGLE_BITS
    )
    words = np.frombuffer(words_bytes, dtype=np.uint64)
    word_offsets = np.frombuffer(word_offsets_bytes, dtype=np.int64)
    keys = np.frombuffer(keys_bytes, dtype=np.uint64).copy()
    keys.sort()
    fresh = np.ones(len(keys), dtype=bool)
    fresh[1:] = keys[1:] != keys[:-1]
    keys = keys[fresh]
    # Both sides uint64: searchsorted would otherwise compare them as float64 copies.
    texts_of_keys = keys >> np.uint64(SHINGLE_BITS)
    offsets = np.searchsorted(texts_of_keys, np.arange(len(texts) + 1, dtype=np.uint64))
    shingles = (keys & np.uint64((1 << SHINGLE_BITS) - 1)).astype(np.uint32)
    return ShingleBatch(words, word_offsets, shingles, offsets.astype(np.int64))
