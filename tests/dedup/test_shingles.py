"""Words and shingles: the compiled loop (``_fast.c``) against a plain-Python transcription
of the definition in ``corpus_clean/dedup/shingles.py``'s docstring."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import SAMPLE_FILES

from corpus_clean.dedup.shingles import SHINGLE_BITS, shingle_batch

MASK = (1 << 64) - 1
P = 0x100000001B3
M = 0x9E3779B97F4A7C15
#: Scripts written without spaces: every letter is a word of its own.
SOLO_RANGES = [
    (0x0E00, 0x0EFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
]


def fmix64(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK
    return k ^ (k >> 33)


def kind(ch: str) -> str:
    code = ord(ch)
    if code >= 0x20000:
        return "solo"  # CJK extension B and later
    if code > 0xFFFF or not ch.isalnum():
        return "separator"  # punctuation, spaces, emoji and other symbols
    return "solo" if any(lo <= code <= hi for lo, hi in SOLO_RANGES) else "word"


@functools.lru_cache(maxsize=64)
def reference_words(text: str) -> list[int]:
    words: list[int] = []
    running: int | None = None
    for ch in text.lower():
        what = kind(ch)
        if what == "word":
            running = (((running or 0) * P) + ord(ch) + 1) & MASK
            continue
        if running is not None:
            words.append(fmix64(running))
            running = None
        if what == "solo":
            words.append(fmix64(ord(ch) + 1))
    if running is not None:
        words.append(fmix64(running))
    return words


def reference_shingles(text: str, size: int) -> list[int]:
    words = reference_words(text)
    if not words:
        return []
    width = min(size, len(words))
    found = set()
    for start in range(len(words) - width + 1):
        combined = words[start]
        for word in words[start + 1 : start + width]:
            combined = (combined * M + word) & MASK
        found.add(fmix64(combined) >> (64 - SHINGLE_BITS))
    return sorted(found)


def check(texts: list[str], size: int) -> None:
    batch = shingle_batch(texts, size)
    assert len(batch) == len(texts)
    for i, text in enumerate(texts):
        assert batch.words_of(i).tolist() == reference_words(text), repr(text[:80])
        assert batch.shingles_of(i).tolist() == reference_shingles(text, size), repr(text[:80])


@pytest.mark.parametrize("size", [1, 3, 5])
def test_seed_pages_match_the_definition(size: int) -> None:
    check([page.read_text("utf-8") for page in SAMPLE_FILES], size)


def test_edge_cases_match_the_definition() -> None:
    check(
        [
            "",
            "   ",
            "!!!",
            "one",
            "two words",
            "Mixed 中文 and English, 日本語のかな。",
            "\U00020000\U0002a6d6 extension B",
            "emoji \U0001f600 fold away",
            "lone \ud83d surrogate",
            "\u0130stanbul \u1e9e",
            "x" * 3000,
            "tab\tand\nnewline",
        ],
        5,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=60), max_size=8), st.integers(1, 6))
def test_any_text_matches_the_definition(texts: list[str], size: int) -> None:
    check(texts, size)


def test_words_do_not_depend_on_the_rest_of_the_batch() -> None:
    alone = shingle_batch(["the same words here"], 2)
    among = shingle_batch(["before", "the same words here", "after it"], 2)
    assert np.array_equal(alone.words_of(0), among.words_of(1))
    assert np.array_equal(alone.shingles_of(0), among.shingles_of(1))
