"""The decide step's exact groups: records of the same word sequence, the first of each in
keep order."""

from __future__ import annotations

import numpy as np

from corpus_clean.dedup.decide import exact_groups


def test_exact_groups_tell_apart_hashes_sharing_their_first_half() -> None:
    a, b = [1, 2], [1, 3]
    hashes = np.array([a, b, a, b, a], dtype=np.uint64)
    groups = exact_groups(hashes, np.ones(5, np.int64), np.arange(5))
    assert groups.distinct.tolist() == [0, 1]
    assert list(zip(groups.firsts, groups.repeats, strict=True)) == [(0, 2), (1, 3), (0, 4)]
    # In another keep order, a group's first is its first in that order.
    groups = exact_groups(hashes, np.ones(5, np.int64), np.array([4, 3, 2, 1, 0]))
    assert groups.distinct.tolist() == [3, 4]
    assert list(zip(groups.firsts, groups.repeats, strict=True)) == [(4, 0), (3, 1), (4, 2)]
