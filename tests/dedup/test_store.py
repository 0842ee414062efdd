"""Where a run's shingle sets wait for verification: memory first, then disk."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus_clean.dedup.store import ShingleStore
from corpus_clean.io.spill import MemoryBudget


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.lists(st.integers(0, 2**32 - 1), max_size=5), max_size=4), max_size=6),
    st.integers(0, 120),
)
def test_shingle_store_gives_back_each_set(batches: list[list[list[int]]], memory: int) -> None:
    """Held in memory up to ``memory`` bytes, on disk after: every set comes back whole."""
    store = ShingleStore(MemoryBudget(memory))
    try:
        given_sets = []
        for sets in batches:
            arrays = [np.array(sorted(set(values)), dtype=np.uint32) for values in sets]
            offsets = np.concatenate(([0], np.cumsum([len(a) for a in arrays]))).astype(np.int64)
            store.extend(np.concatenate([*arrays, np.zeros(0, np.uint32)]), offsets)
            given_sets.extend(arrays)
        for i, expected in enumerate(given_sets):
            assert store.get(i).tolist() == expected.tolist()
    finally:
        store.close()
