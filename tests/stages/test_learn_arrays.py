"""The fit's array helpers: occurrences in order, copies joined into clusters."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus_clean.stages.learn.arrays import components, once_per_record


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 9)), min_size=1, max_size=40
    )
)
def test_occurrences_are_sorted_by_key_then_record_once_each(
    occurrences: list[tuple[int, int, int]],
) -> None:
    # Keys that differ in their lowest bits only share the bits the one sort orders by.
    high = [0x9E3779B97F4A7C15, 0xFFFFFFFFFFFFFFF0, 1 << 40, 0]
    keys = [high[h] ^ low for h, low, _ in occurrences]
    records = sorted(record for _, _, record in occurrences)
    key, record = np.array(keys, dtype=np.uint64), np.array(records, dtype=np.int64)
    got_key, got_record, at = once_per_record(key, record)
    expected = sorted(set(zip(keys, records, strict=True)))
    assert list(zip(got_key.tolist(), got_record.tolist(), strict=True)) == expected
    assert key[at].tolist() == got_key.tolist() and record[at].tolist() == got_record.tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40),
        )
    )
)
def test_copies_are_clustered_under_the_smallest_record_joined_to_them(
    graph: tuple[int, list[tuple[int, int]]],
) -> None:
    n, pairs = graph
    smallest = list(range(n))
    for _ in range(n):  # the least record reachable, by relaxing every pair n times
        for x, y in pairs:
            smallest[x] = smallest[y] = min(smallest[x], smallest[y])
    a = np.array([x for x, _ in pairs], dtype=np.int64)
    b = np.array([y for _, y in pairs], dtype=np.int64)
    assert components(n, a, b).tolist() == smallest
    assert components(n, b[::-1], a[::-1]).tolist() == smallest
