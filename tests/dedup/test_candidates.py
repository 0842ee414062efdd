"""The candidates step: records sharing an LSH bucket, as pairs in walk order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from corpus_clean.dedup.candidates import candidate_pairs, sorted_unique


def expected_pairs(
    keys: np.ndarray, nodes: np.ndarray, position: np.ndarray
) -> list[tuple[int, int]]:
    """The candidate pairs spelled out bucket by bucket: every pair in a bucket of up to
    32 members; in a bigger one each member with the first 32 in walk order."""
    pairs = set()
    for band in range(keys.shape[1]):
        buckets: dict[int, list[int]] = {}
        for row, key in enumerate(keys[:, band].tolist()):
            buckets.setdefault(key, []).append(int(nodes[row]))
        for bucket in buckets.values():
            members = sorted(bucket, key=lambda node: position[node])
            pairs |= {(a, b) for i, a in enumerate(members[:32]) for b in members[i + 1 :]}
    return sorted(pairs, key=lambda pair: (position[pair[1]], position[pair[0]]))


@pytest.mark.parametrize(("records", "distinct_keys"), [(0, 1), (1, 1), (60, 40), (300, 3)])
@pytest.mark.parametrize("shuffled", [False, True])
def test_candidate_pairs_are_every_bucket_pair_once_in_walk_order(
    records: int, distinct_keys: int, shuffled: bool
) -> None:
    generator = np.random.default_rng(records)
    keys = generator.integers(0, distinct_keys, size=(records, 4)).astype(np.uint64)
    span = 10 * records + 1
    nodes = np.sort(generator.choice(span, size=records, replace=False))
    position = generator.permutation(span) if shuffled else np.arange(span)
    earlier, later = candidate_pairs(keys.T, nodes.astype(np.int64), position)
    assert list(zip(earlier, later, strict=True)) == expected_pairs(keys, nodes, position)


@given(st.lists(st.integers(-(2**62), 2**62), max_size=60))
def test_sorted_unique_is_numpys_unique(values: list[int]) -> None:
    codes = np.array(values, dtype=np.int64)
    assert np.array_equal(sorted_unique(codes), np.unique(codes))
