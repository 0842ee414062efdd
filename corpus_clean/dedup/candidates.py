"""Step 2, over every record's band keys at once: records sharing an LSH bucket become
candidate pairs, in walk order. ``BandKeys`` holds the keys of a run as they arrive."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt

from .shingles import U64

#: Bucket size up to which every pair in an LSH bucket is a candidate; beyond it each
#: member is paired with the bucket's first members in walk order only, which keeps a
#: degenerate bucket from costing quadratic time while a copy still meets the original.
FULL_PAIRS_UP_TO = 32

#: Candidate pairs (earlier, later) as two aligned arrays of record positions.
Pairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]


class BandKeys:
    """The band keys (then containment keys) of every record, batch after batch; a
    batch's ``(records, keys)`` array is kept as it came until all are needed at once."""

    def __init__(self, bands: int) -> None:
        self.bands = bands  # the LSH bands; any columns after them are containment keys
        self._batches: list[U64] = []
        self._records = 0

    def append(self, keys: U64) -> None:
        self._batches.append(keys)
        self._records += len(keys)

    def columns(self, nodes: npt.NDArray[np.int64]) -> Iterator[U64]:
        """The keys of ``nodes`` in one column after another, so that the whole matrix
        of every record's keys need not be built."""
        for band in range(self._batches[0].shape[1] if self._batches else 0):
            column = np.concatenate([np.zeros(0, np.uint64), *(k[:, band] for k in self._batches)])
            yield column[nodes]

    def tables(self, nodes: npt.NDArray[np.int64]) -> Iterator[U64]:
        """What LSH buckets ``nodes`` by, one table after another: each band's keys, then
        the containment keys of all columns as one table (a text's smallest hashes are
        a set: the same hash may stand in another column of another text), as a
        ``(len(nodes), keys)`` array."""
        columns = self.columns(nodes)
        yield from itertools.islice(columns, self.bands)
        containment = list(columns)
        if containment:
            table = np.stack(containment, axis=1)
            del containment  # memory holds the keys once while they are sorted
            yield table

    def of(self, n: int) -> U64:
        """The keys of record ``n`` (what an index stores to find it again). The first
        call joins the batches into one array, a batch at a time so that memory never
        holds them twice."""
        if len(self._batches) != 1:
            batches, self._batches = self._batches[::-1], []
            width = batches[0].shape[1] if batches else self.bands
            keys = np.empty((self._records, width), dtype=np.uint64)
            done = 0
            while batches:
                batch = batches.pop()
                keys[done : done + len(batch)] = batch
                done += len(batch)
            self._batches = [keys]
        row: U64 = self._batches[0][n]
        return row


def candidate_pairs(
    bands: Iterable[U64], nodes: npt.NDArray[np.int64], position: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs (earlier, later) of records sharing an LSH bucket in any band, each once,
    sorted by the later one's ``position`` in the walk, then the earlier one's. ``bands``
    gives each band's keys of the ``nodes``, a band at a time (``keys.T`` of a nodes x
    bands matrix will do); a 2-d ``(len(nodes), k)`` array is one table in which each
    node stands under k different keys.

    In a bucket of more than ``FULL_PAIRS_UP_TO`` members, each is paired with the
    first ``FULL_PAIRS_UP_TO`` of the bucket in walk order only: a degenerate bucket
    costs linear time, and a copy still meets the kept original of its bucket.
    """
    none = np.zeros(0, np.int64)
    if len(nodes) < 2:
        return none, none
    places = position[nodes]
    pairs: list[npt.NDArray[np.int64]] = []
    for table in bands:
        keys, width = table.ravel(), table.size // len(places)  # key i is node i // width's
        order = np.argsort(keys)  # bucket members are sorted below
        column = keys[order]
        equal = column[1:] == column[:-1]
        del column
        if not equal.any():
            continue
        # Runs of equal keys, as [start, end) positions in sorted order.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], equal.view(np.int8), [0]))))
        starts, ends = edges[::2], edges[1::2] + 1
        sizes = ends - starts
        # Buckets of one size at a time, as rows of a matrix: a few array operations per
        # size instead of a few per bucket.
        for size in sorted_unique(sizes).tolist():
            at = order[starts[sizes == size, None] + np.arange(size)]
            members = np.sort(places[at // width if width > 1 else at])
            left, right = _bucket_pairs(size)
            pairs.append(np.stack((members[:, left].ravel(), members[:, right].ravel()), axis=1))
    if not pairs:
        return none, none
    every = np.concatenate(pairs)
    every = every[every[:, 0] != every[:, 1]]  # a key that a text holds twice is one
    span = len(position)
    codes = sorted_unique(every[:, 1] * span + every[:, 0])  # by later place, then earlier
    walk = np.empty(span, np.int64)
    walk[position] = np.arange(span)
    return walk[codes % span], walk[codes // span]


def sorted_unique(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``np.unique`` by one sort: numpy 2.4 finds the distinct integers of an array by
    hashing, measured 84 times slower on 4 million random codes (4.45 s against 0.053 s);
    ``dedup`` of a million articles resolved in 10.1 s instead of 10.7 s."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def _bucket_pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index pairs (i < j) of a bucket of n members sorted in walk order, with i among
    the first ``FULL_PAIRS_UP_TO``."""
    if n <= FULL_PAIRS_UP_TO:
        return _all_pairs(n)
    left = np.repeat(np.arange(FULL_PAIRS_UP_TO), n - 1 - np.arange(FULL_PAIRS_UP_TO))
    right = np.concatenate([np.arange(i + 1, n) for i in range(FULL_PAIRS_UP_TO)])
    return left, right


@functools.cache
def _all_pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index pairs (i < j) of n items; small buckets of a few sizes recur thousands of
    times (big ones are rare, and their pairs are not kept)."""
    left, right = np.triu_indices(n, 1)
    return left, right
