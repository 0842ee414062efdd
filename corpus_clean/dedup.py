"""Exact and near-duplicate removal: hash, MinHash LSH, verification, union-find clusters.

Two passes, because a cluster's keeper is known only once every record is seen (and
``--keep longest`` may pick a late one): the first pass spools the records and keeps
only what deduplication needs (band keys, an exact-text hash, the text's shingle set in
a store); the second pass reads the spool back in input order and tells each record's
verdict. Spool and shingle store keep what fits a memory budget (``io.MEMORY_BUDGET``)
and put the rest on disk; the rest of memory grows with the records (band keys, ids,
hashes): a run over 1,000,000 articles peaked at 1.4 GB, budget included.
"""

from __future__ import annotations

import array
import bisect
import collections
import functools
import itertools
import os
import pickle
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

import numpy as np
import numpy.typing as npt
import xxhash
from rapidfuzz import fuzz

from . import _fast
from .io import MemoryBudget, Spool, TemporaryFileError, close_temporary_file, temporary_file
from .minhash import SCHEME, MinHasher
from .options import DedupOptions
from .record import Record
from .shingles import SHINGLE_BITS, U64, Shingles, shingle_batch
from .stats import Stats

#: Bucket size up to which every pair in an LSH bucket is a candidate; beyond it each
#: member is paired with the bucket's first and previous members only, which keeps a
#: degenerate bucket from costing quadratic time while chains still connect.
_FULL_PAIRS_UP_TO = 32
HASHING = f"{SCHEME}/shingle-poly64-fmix-{SHINGLE_BITS}bit"


@dataclass
class Fingerprints:
    """What deduplication keeps of a batch of texts, computed in a worker process."""

    band_keys: U64  # (texts, bands)
    exact: bytes  # a 16-byte hash of each text's word sequence, one after another
    shingles: Shingles  # flat, sorted per text
    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    #: Normalized text of texts too short for a meaningful Jaccard (index -> text).
    short_texts: dict[int, str] = field(default_factory=dict)

    def shingles_of(self, i: int) -> Shingles:
        return self.shingles[self.offsets[i] : self.offsets[i + 1]]


class Fingerprinter:
    """Texts -> Fingerprints. Picklable: the pipeline runs it in worker processes."""

    def __init__(self, options: DedupOptions) -> None:
        self.options = options
        bands, rows = options.bands_rows
        self.minhasher = MinHasher(options.num_perm, options.seed, bands, rows)

    def settings(self) -> dict[str, object]:
        """Everything that must match for two fingerprints to be comparable."""
        bands, rows = self.options.bands_rows
        return {
            "num_perm": self.options.num_perm,
            "bands": bands,
            "rows": rows,
            "seed": self.options.seed,
            "shingle": "words",
            "shingle_size": self.options.shingles.size,
            "hashing": HASHING,
            "tokenizer_version": self.options.shingles.tokenizer_version,
        }

    def fingerprint(self, texts: Sequence[str]) -> Fingerprints:
        batch = shingle_batch(texts, self.options.shingles.size)
        signatures = self.minhasher.signatures(batch.shingles, batch.offsets)
        short_limit = int(self.options.short_text_shingles / self.options.threshold) + 1
        counts = np.diff(batch.offsets)
        words = batch.words.data.cast("B")  # its slices cost less than numpy's
        bounds = (batch.word_offsets * batch.words.itemsize).tolist()
        return Fingerprints(
            band_keys=self.minhasher.band_keys(signatures),
            exact=b"".join(
                xxhash.xxh3_128_digest(words[a:b]) for a, b in itertools.pairwise(bounds)
            ),
            shingles=batch.shingles,
            offsets=batch.offsets,
            lengths=np.array([len(text) for text in texts], dtype=np.int64),
            short_texts={
                i: " ".join(texts[i].lower().split())
                for i in np.flatnonzero(counts < short_limit).tolist()
            },
        )


@dataclass(frozen=True)
class Verdict:
    """Why a record is removed: it duplicates ``duplicate_of`` (the record kept)."""

    duplicate_of: str
    similarity: float
    #: The record whose verified similarity put this one in the cluster.
    matched_id: str
    #: "exact", "near", or "index" (an article accepted by an earlier run).
    kind: str

    def as_fields(self) -> dict[str, object]:
        return {
            "duplicate_of": self.duplicate_of,
            "similarity": round(self.similarity, 4),
            "matched_id": self.matched_id,
            "duplicate_kind": self.kind,
        }


@dataclass(frozen=True)
class Accepted:
    """A kept article as an index stores it: no text, just what finds and verifies it."""

    id: str
    title: str | None
    source: str
    band_keys: U64
    shingles: Shingles


class AcceptedIndex(Protocol):
    """Articles accepted by earlier runs (see ``index.py``), consulted before keeping one."""

    def candidates(self, band_keys: U64) -> list[list[int]]:
        """For each row of band keys, the entries sharing at least one key."""
        ...

    def shingles(self, entry: int) -> Shingles: ...

    def article_id(self, entry: int) -> str: ...

    def accept(self, kept: Iterable[Accepted], run_label: str) -> int:
        """Add articles kept by a run, in one transaction; return how many were added."""
        ...


class ShingleStore:
    """Shingle sets of every record seen: verification reads the few it needs.

    The first sets stay in memory as far as the ``memory`` budget goes, as the batch
    arrays they came in; the rest go to a temporary file a few megabytes at a time (see
    ``io.Spool``, which holds records the same way).
    """

    def __init__(self, memory: MemoryBudget | None = None) -> None:
        self._held: list[Shingles] = []
        self._held_from: list[int] = []  # where each held array starts, in shingles
        self._held_size = 0
        self._memory = memory if memory is not None else MemoryBudget()
        self._file: IO[bytes] | None = None
        # Of each set, in shingles (held ones, then the file's): 8 bytes each, not a Python int.
        self._offsets = array.array("q", [0])
        self._pending = bytearray()
        self._flushed = 0

    def extend(self, shingles: Shingles, offsets: npt.NDArray[np.int64]) -> None:
        """Add the sets ``shingles[offsets[i]:offsets[i+1]]`` of a batch, in order: in
        memory while the whole batch fits, else on disk, as is every batch after it."""
        sets = shingles[offsets[0] : offsets[-1]]
        base = self._offsets[-1] - int(offsets[0])
        self._offsets.frombytes((offsets[1:] + base).astype(np.int64).tobytes())
        if self._file is None and self._memory.take(sets.nbytes):
            self._held.append(sets)
            self._held_from.append(self._held_size)
            self._held_size += len(sets)
            return
        if self._file is None:
            self._file = temporary_file("corpus-clean-shingles-")
        self._pending += sets.tobytes()
        if len(self._pending) > 1 << 22:
            self._flush()

    def _flush(self) -> None:
        assert self._file is not None
        try:
            self._file.write(self._pending)
            self._file.flush()
        except OSError as err:
            raise TemporaryFileError.of(err) from err
        self._flushed += len(self._pending)
        self._pending.clear()

    def get(self, i: int) -> Shingles:
        start, end = self._offsets[i], self._offsets[i + 1]
        if start == end:
            return np.zeros(0, dtype=np.uint32)
        if end <= self._held_size:
            k = bisect.bisect_right(self._held_from, start) - 1
            return self._held[k][start - self._held_from[k] : end - self._held_from[k]]
        assert self._file is not None
        size = np.dtype(np.uint32).itemsize
        if (end - self._held_size) * size > self._flushed:
            self._flush()
        try:
            data = os.pread(
                self._file.fileno(), (end - start) * size, (start - self._held_size) * size
            )
        except OSError as err:
            raise TemporaryFileError.of(err) from err
        return np.frombuffer(data, dtype=np.uint32)

    def close(self) -> None:
        self._held.clear()
        if self._file is not None:
            close_temporary_file(self._file)


def jaccard(a: Shingles, b: Shingles) -> float:
    """Exact Jaccard similarity of two sorted sets of unique hashes."""
    if not len(a) or not len(b):
        return 1.0 if len(a) == len(b) else 0.0
    common = _fast.common_count(a, b)
    return common / (len(a) + len(b) - common)


class _Clusters:
    """Union-find where the root is always the member that wins: lowest rank."""

    def __init__(self, ranks: list[int]) -> None:
        self.parent = list(range(len(ranks)))
        self.rank = ranks

    def add(self, rank: int) -> int:
        self.parent.append(len(self.parent))
        self.rank.append(rank)
        return len(self.parent) - 1

    def find(self, node: int) -> int:
        parent = self.parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if self.rank[rb] < self.rank[ra]:
                ra, rb = rb, ra
            self.parent[rb] = ra


class DuplicateFinder:
    """Decides which records are duplicates from their fingerprints alone.

    ``add`` every batch in input order, then ``resolve`` once. Per record it keeps the
    band keys, an exact-text hash, the length and the shingle count in memory, and the
    shingle set on disk; never the text.
    """

    def __init__(
        self,
        options: DedupOptions,
        index: AcceptedIndex | None = None,
        memory: MemoryBudget | None = None,
    ) -> None:
        self.options = options
        self.index = index
        self.ids: list[str] = []
        self._exact: list[bytes] = []  # per batch
        self._keys: list[U64] = []
        self._lengths: list[npt.NDArray[np.int64]] = []
        self._counts: list[npt.NDArray[np.int64]] = []
        self._short_texts: dict[int, str] = {}
        self._store = ShingleStore(memory)

    def add(self, ids: Sequence[str], prints: Fingerprints) -> None:
        base = len(self.ids)
        self.ids.extend(ids)
        self._exact.append(prints.exact)
        self._keys.append(prints.band_keys)
        self._lengths.append(prints.lengths)
        self._counts.append(np.diff(prints.offsets))
        self._short_texts.update({base + i: text for i, text in prints.short_texts.items()})
        self._store.extend(prints.shingles, prints.offsets)

    def band_keys(self, n: int) -> U64:
        """The LSH band keys of record ``n`` (what an index stores to find it again)."""
        keys: U64 = self._all_keys[n]
        return keys

    def shingles(self, n: int) -> Shingles:
        return self._store.get(n)

    def close(self) -> None:
        self._store.close()

    def _band_columns(self, nodes: npt.NDArray[np.int64]) -> Iterator[U64]:
        """The keys of ``nodes`` in one band after another, so that the whole matrix of
        every record's keys need not be built."""
        for band in range(self.options.bands_rows[0]):
            column = np.concatenate([np.zeros(0, np.uint64), *(k[:, band] for k in self._keys)])
            yield column[nodes]

    @property
    def _all_keys(self) -> U64:
        """The band keys of every record in one array, built a batch at a time so that
        memory never holds them twice."""
        if len(self._keys) != 1:
            batches, self._keys = self._keys[::-1], []
            keys = np.empty((len(self.ids), self.options.bands_rows[0]), dtype=np.uint64)
            done = 0
            while batches:
                batch = batches.pop()
                keys[done : done + len(batch)] = batch
                done += len(batch)
            self._keys = [keys]
        return self._keys[0]

    def _exact_groups(
        self, counts: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], list[int], list[int]]:
        """Records grouped by the exact hash of their word sequence: the first of each
        group (sorted), and each later member (in input order) beside its group's first.

        Texts without a word (a title-only article) share no content to compare: each
        is a group of its own, and none is a duplicate of another.
        """
        worded = np.flatnonzero(counts > 0)
        hashes = np.frombuffer(b"".join(self._exact), dtype=np.uint64).reshape(-1, 2)[worded]
        # By hash, then position. Sorting by the first 64 bits is enough unless two
        # different hashes share them, which is looked for.
        order = np.argsort(hashes[:, 0], kind="stable")
        by_first = hashes[order]
        if ((by_first[1:, 0] == by_first[:-1, 0]) & (by_first[1:, 1] != by_first[:-1, 1])).any():
            order = np.lexsort((worded, hashes[:, 1], hashes[:, 0]))
        hashes, members = hashes[order], worded[order]
        starts = np.ones(len(members), dtype=bool)
        starts[1:] = (hashes[1:] != hashes[:-1]).any(axis=1)
        group_first = members[starts][np.cumsum(starts) - 1]
        repeats = np.flatnonzero(~starts)
        repeats = repeats[np.argsort(members[repeats], kind="stable")]
        return (
            np.sort(members[starts]),
            group_first[repeats].tolist(),
            members[repeats].tolist(),
        )

    def resolve(self, stats: Stats) -> dict[int, Verdict]:
        """Cluster the records; the verdict of every record that is not kept, by position."""
        ids, threshold = self.ids, self.options.threshold
        counts = np.concatenate(self._counts) if self._counts else np.zeros(0, np.int64)
        if self.options.keep == "longest":  # the longest text first, then the earliest
            lengths = np.concatenate([np.zeros(0, np.int64), *self._lengths])
            by_rank = np.lexsort((np.arange(len(ids)), -lengths))
            ranks = np.empty(len(ids), np.int64)
            ranks[by_rank] = np.arange(len(ids))
            clusters = _Clusters(ranks.tolist())
        else:
            clusters = _Clusters(list(range(len(ids))))
        verified = rejected = 0
        best: dict[int, tuple[float, int, str]] = {}

        def link(a: int, b: int, similarity: float, kind: str) -> None:
            clusters.union(a, b)
            for node, other in ((a, b), (b, a)):
                if node < len(ids) and similarity > best.get(node, (-1.0, 0, ""))[0]:
                    best[node] = (similarity, other, kind)

        distinct, firsts, repeats = self._exact_groups(counts)
        for first, n in zip(firsts, repeats, strict=True):
            clusters.union(first, n)
            best[n] = (1.0, first, "exact")
            best.setdefault(first, (1.0, n, "exact"))

        def similar(a: int, b_shingles: Shingles, b: int | None) -> float | None:
            a_shingles = self._store.get(a)
            small, large = sorted((len(a_shingles), len(b_shingles)))
            if small < threshold * large:
                return None  # the Jaccard similarity is at most small / large
            nonlocal verified
            verified += 1
            short = self._short_texts
            if a in short and b is not None and b in short:
                score = fuzz.ratio(short[a], short[b]) / 100.0
            else:
                score = jaccard(a_shingles, b_shingles)
            return score if score >= threshold else None

        find, shingles_of = clusters.find, self._store.get  # the loop runs per candidate pair
        for a, b in _candidate_pairs(self._band_columns(distinct), distinct):
            if find(a) == find(b):
                continue
            score = similar(a, shingles_of(b), b)
            if score is not None:
                link(a, b, score, "near")
            else:
                rejected += 1

        indexed: dict[int, str] = {}  # cluster node -> id of the indexed article
        if self.index is not None and len(distinct):
            entry_node: dict[int, int] = {}
            found = self.index.candidates(np.stack(list(self._band_columns(distinct)), axis=1))
            for n, entries in zip(distinct.tolist(), found, strict=True):
                for entry in entries:
                    score = similar(n, self.index.shingles(entry), None)
                    if score is None:
                        rejected += 1
                        continue
                    if entry not in entry_node:
                        # An indexed article outranks every record of the run.
                        entry_node[entry] = clusters.add(entry - (1 << 62))
                        indexed[entry_node[entry]] = self.index.article_id(entry)
                    link(entry_node[entry], n, score, "index")

        stats.add("candidates_verified", verified)
        stats.add("candidates_rejected", rejected)
        verdicts: dict[int, Verdict] = {}
        run_size = len(ids)  # nodes from run_size on are indexed articles
        for n in sorted(best):  # the records never linked keep themselves
            root = find(n)
            if root != n:
                similarity, partner, kind = best[n]
                verdicts[n] = Verdict(
                    ids[root] if root < run_size else indexed[root],
                    similarity,
                    ids[partner] if partner < run_size else indexed[partner],
                    "index" if root in indexed else kind,
                )
        for kind, count in collections.Counter(v.kind for v in verdicts.values()).items():
            stats.add(f"duplicates_{kind}", count)
        stats.add("kept", len(ids) - len(verdicts))
        return verdicts


class Deduplicator:
    """The dedup stage over records: ``run`` yields every record with its verdict
    (None = kept), in input order. Records wait in a spool on disk until all are seen."""

    def __init__(self, options: DedupOptions, index: AcceptedIndex | None = None) -> None:
        self.options = options
        self.index = index

    def run(
        self, batches: Iterable[tuple[list[Record], Fingerprints]], stats: Stats
    ) -> Iterator[tuple[Record, Verdict | None]]:
        memory = MemoryBudget()
        finder = DuplicateFinder(self.options, self.index, memory)
        spool = Spool(memory)
        try:
            for records, prints in batches:
                finder.add([record.id for record in records], prints)
                for record in records:
                    spool.append(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
            verdicts = finder.resolve(stats)
            for n, data in enumerate(spool.read()):
                yield pickle.loads(data), verdicts.get(n)
        finally:
            spool.close()
            finder.close()


def _candidate_pairs(
    bands: Iterable[U64], nodes: npt.NDArray[np.int64]
) -> Iterator[tuple[int, int]]:
    """Pairs (earlier, later) of records sharing an LSH bucket in any band, each once, in
    a fixed order. ``bands`` gives each band's keys of the ``nodes``, a band at a time
    (``keys.T`` of a nodes x bands matrix will do)."""
    if len(nodes) < 2:
        return
    pairs: list[npt.NDArray[np.int64]] = []
    for keys in bands:
        order = np.argsort(keys)  # bucket members are sorted below
        column = keys[order]
        equal = column[1:] == column[:-1]
        if not equal.any():
            continue
        # Runs of equal keys, as [start, end) positions in sorted order.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], equal.view(np.int8), [0]))))
        starts, ends = edges[::2], edges[1::2] + 1
        sizes = ends - starts
        # Buckets of one size at a time, as rows of a matrix: a few array operations per
        # size instead of a few per bucket.
        for size in np.unique(sizes).tolist():
            members = np.sort(nodes[order[starts[sizes == size, None] + np.arange(size)]])
            if size <= _FULL_PAIRS_UP_TO:
                left, right = _all_pairs(size)
            else:
                later = np.arange(1, size)
                left, right = np.concatenate((np.zeros_like(later), later - 1)), np.tile(later, 2)
            pairs.append(np.stack((members[:, left].ravel(), members[:, right].ravel()), axis=1))
    if not pairs:
        return
    every = np.concatenate(pairs)
    low, high = every.min(axis=1), every.max(axis=1)
    span = int(nodes.max()) + 1
    codes = np.sort(high * span + low)  # by later record, then earlier
    codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
    yield from zip((codes % span).tolist(), (codes // span).tolist(), strict=True)


@functools.cache
def _all_pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index pairs (i < j) of n items; buckets of a few sizes recur thousands of times."""
    left, right = np.triu_indices(n, 1)
    return left, right
