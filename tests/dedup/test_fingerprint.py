"""Fingerprints of a batch, taken apart and put together by text: what the second pass
of learning reuses of the fingerprints its workers took while the fit ran."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus_clean.dedup import Fingerprinter
from corpus_clean.dedup.fingerprint import Fingerprints
from corpus_clean.options import DedupOptions

FINGERPRINTER = Fingerprinter(DedupOptions(containment=0.8))
WORDS = st.sampled_from(["river", "bridge", "town", "story", "night", "桥", "河", "the", "a"])
TEXTS = st.lists(st.lists(WORDS, max_size=40).map(" ".join), max_size=8)
DATES = st.none() | st.sampled_from(["2024-01-02", "2025-06-07"])


def _same(a: Fingerprints, b: Fingerprints) -> None:
    assert np.array_equal(a.band_keys, b.band_keys)
    assert a.exact == b.exact
    assert np.array_equal(a.shingles, b.shingles)
    assert np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.lengths, b.lengths)
    assert a.short_texts == b.short_texts
    assert a.dates == b.dates


@settings(max_examples=60, deadline=None)
@given(TEXTS, TEXTS, st.data())
def test_fingerprints_joined_and_selected_are_those_of_the_texts_so_ordered(
    first: list[str], second: list[str], data: st.DataObject
) -> None:
    texts = first + second
    dates = data.draw(st.lists(DATES, min_size=len(texts), max_size=len(texts)))
    whole = FINGERPRINTER.fingerprint(texts, dates)
    parts = Fingerprints.joined(
        FINGERPRINTER.fingerprint(first, dates[: len(first)]),
        FINGERPRINTER.fingerprint(second, dates[len(first) :]),
    )
    _same(parts, whole)
    rows = data.draw(st.lists(st.integers(0, max(0, len(texts) - 1)), max_size=10))
    if texts:
        chosen = FINGERPRINTER.fingerprint([texts[r] for r in rows], [dates[r] for r in rows])
        _same(whole.select(rows), chosen)
