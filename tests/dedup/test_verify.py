"""The verify step's exact Jaccard similarity of two shingle sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus_clean.dedup import jaccard

hashes = st.sets(st.integers(0, 2**32 - 1), max_size=60)


@settings(max_examples=200, deadline=None)
@given(hashes, hashes, hashes)
def test_jaccard_is_the_jaccard_of_the_sets(
    only_a: set[int], only_b: set[int], both: set[int]
) -> None:
    a, b = only_a | both, only_b | both
    as_array = [np.array(sorted(values), dtype=np.uint32) for values in (a, b)]
    expected = len(a & b) / len(a | b) if a | b else 1.0
    assert jaccard(*as_array) == pytest.approx(expected)
