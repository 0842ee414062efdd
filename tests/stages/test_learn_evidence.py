"""What an index keeps of learning's evidence: key sets and articles' marks."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from learn_pages import KEY_ROWS, key_lists, key_sets

from corpus_clean.stages.learn.arrays import NO_KEY
from corpus_clean.stages.learn.evidence import (
    EVIDENCE_KEYS,
    KeySets,
    Marks,
)


@settings(max_examples=200, deadline=None)
@given(KEY_ROWS, st.randoms(use_true_random=False))
def test_key_sets_are_rows_of_sorted_keys(rows: list[set[int]], rnd: random.Random) -> None:
    keys = key_sets(rows)
    assert key_lists(keys) == [sorted(row) for row in rows]
    assert keys.dense(EVIDENCE_KEYS).tolist() == [
        sorted(row) + [int(NO_KEY)] * (EVIDENCE_KEYS - len(row)) for row in rows
    ]
    assert keys.kth(1).tolist() == [sorted(row)[1] if len(row) > 1 else int(NO_KEY) for row in rows]
    assert key_lists(keys.first(2)) == [sorted(row)[:2] for row in rows]
    picked = [rnd.randrange(len(rows)) for _ in range(rnd.randrange(8))]
    assert key_lists(keys[np.array(picked, dtype=np.int64)]) == [sorted(rows[i]) for i in picked]
    found = np.array([rnd.randrange(-1, len(rows)) for _ in range(5)], dtype=np.int64)
    assert key_lists(keys.found(found)) == [sorted(rows[i]) if i >= 0 else [] for i in found]
    group = np.array([g for g, row in enumerate(rows) for _ in row], dtype=np.int64)
    flat = np.array([k for row in rows for k in rnd.sample(sorted(row), len(row))], np.uint64)
    assert key_lists(KeySets.smallest(group, flat, len(rows), 3)) == [
        sorted(row)[:3] for row in rows
    ]


@given(
    st.dictionaries(
        st.tuples(
            st.sampled_from(["a.example", "b.example", "news"]), st.integers(-(2**63), 2**63 - 1)
        ),
        st.tuples(
            st.lists(st.integers(0, 2**64 - 2), max_size=4, unique=True), st.integers(0, 2**40)
        ),
        max_size=30,
    )
)
def test_marks_read_back_as_the_index_stores_them(
    marks: dict[tuple[str, int], tuple[list[int], int]],
) -> None:
    rows = [
        (site, mark, np.array(keys, dtype="<u8").tobytes(), holders)
        for (site, mark), (keys, holders) in marks.items()
    ]
    assert list(Marks.of_rows(iter(rows)).rows()) == sorted(rows)


def test_marks_are_read_a_chunk_at_a_time_and_come_back_whole() -> None:
    rows = [
        (f"site{n % 7}", n - 2**62, np.array([n, 2 * n], dtype="<u8").tobytes(), n % 5)
        for n in range(70_000)
    ]
    assert list(Marks.of_rows(iter(rows)).rows()) == sorted(rows)
