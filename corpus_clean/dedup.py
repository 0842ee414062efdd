"""Exact and near-duplicate removal: hash, MinHash LSH, verification, a walk in keep order.

Two passes, because what is kept is known only once every record is seen (``--keep
longest`` or ``earliest`` may walk a late one first): the first pass spools the records
and keeps only what deduplication needs (band keys, an exact-text hash, the text's
shingle set in a store); the second pass reads the spool back in input order and tells each record's
verdict. Spool and shingle store are spill stores (``io.spill``): they keep what fits a
memory budget and put the rest on disk; the rest of memory grows with the records (band keys, ids,
hashes): a run over 1,000,000 articles peaked at 1.4 GB, budget included (1.8 GB with
containment keys).
"""

from __future__ import annotations

import collections
import functools
import itertools
import pickle
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
import xxhash
from rapidfuzz import fuzz

from . import _fast
from .io.spill import MemoryBudget, SpillStore
from .minhash import SCHEME, MinHasher
from .options import DedupOptions
from .record import Record
from .shingles import SHINGLE_BITS, U64, ShingleBatch, Shingles, fmix64, shingle_batch
from .stats import Stats

#: Bucket size up to which every pair in an LSH bucket is a candidate; beyond it each
#: member is paired with the bucket's first members in walk order only, which keeps a
#: degenerate bucket from costing quadratic time while a copy still meets the original.
_FULL_PAIRS_UP_TO = 32
HASHING = f"{SCHEME}/shingle-poly64-fmix-{SHINGLE_BITS}bit"
#: Mixed into containment keys, so that they never meet a band key; and the salts of the
#: keys that stand in for the missing ones of a text with fewer shingles than keys.
_CONTAINMENT_TAG = np.uint64(0xC0 << 40)
_PAD_SALTS = fmix64(np.arange(1 << 20, (1 << 20) + 256, dtype=np.uint64))


@dataclass
class Fingerprints:
    """What deduplication keeps of a batch of texts, computed in a worker process."""

    band_keys: U64  # (texts, bands + containment keys)
    exact: bytes  # a 16-byte hash of each text's word sequence, one after another
    shingles: Shingles  # flat, sorted per text
    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    #: Normalized text of texts too short for a meaningful Jaccard (index -> text).
    short_texts: dict[int, str] = field(default_factory=dict)
    #: Each text's ``date`` field (``--keep earliest`` walks by it), None when unknown.
    dates: list[str | None] | None = None

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
        containment = (
            {"containment_keys": self.options.containment_keys}
            if self.options.containment_keys
            else {}
        )
        return {
            **containment,
            "num_perm": self.options.num_perm,
            "bands": bands,
            "rows": rows,
            "seed": self.options.seed,
            "shingle": "words",
            "shingle_size": self.options.shingles.size,
            "hashing": HASHING,
            "tokenizer_version": self.options.shingles.tokenizer_version,
        }

    def fingerprint(
        self, texts: Sequence[str], dates: Sequence[str | None] | None = None
    ) -> Fingerprints:
        batch = shingle_batch(texts, self.options.shingles.size)
        signatures = self.minhasher.signatures(batch.shingles, batch.offsets)
        short_limit = int(self.options.short_text_shingles / self.options.threshold) + 1
        counts = np.diff(batch.offsets)
        words = batch.words.data.cast("B")  # its slices cost less than numpy's
        bounds = (batch.word_offsets * batch.words.itemsize).tolist()
        band_keys = self.minhasher.band_keys(signatures)
        short = counts < short_limit
        if self.options.containment_keys:
            keys = _containment_keys(batch, band_keys, self.options.containment_keys, short)
            band_keys = np.hstack((band_keys, keys))
        return Fingerprints(
            band_keys=band_keys,
            exact=b"".join(
                xxhash.xxh3_128_digest(words[a:b]) for a, b in itertools.pairwise(bounds)
            ),
            shingles=batch.shingles,
            offsets=batch.offsets,
            lengths=np.array([len(text) for text in texts], dtype=np.int64),
            short_texts={
                i: " ".join(texts[i].lower().split()) for i in np.flatnonzero(short).tolist()
            },
            dates=list(dates) if dates is not None else None,
        )


def _containment_keys(
    batch: ShingleBatch, band_keys: U64, keys: int, short: npt.NDArray[np.bool_]
) -> U64:
    """``(texts, keys)``: each text's ``keys`` smallest shingle hashes (its shingles are
    sorted), as keys of their own. A text with fewer shingles fills the rest with keys
    drawn from its first band key, which meet only a text that shares that band; so
    does a ``short`` text entirely: one of a few shingles is compared by its characters
    (``fuzz.ratio``), which two texts sharing a shingle by chance would often pass.

    A text lying mostly inside another shares with it, with known probability, one of
    the smallest hashes of both (``options.containment_detection``), whatever their
    sizes: what MinHash bands tuned for Jaccard similarity miss.
    """
    starts, ends = batch.offsets[:-1, None], batch.offsets[1:, None]
    at = starts + np.arange(keys)
    present = (at < ends) & ~short[:, None]
    if len(batch.shingles):
        values = batch.shingles[np.minimum(at, len(batch.shingles) - 1)]
    else:
        values = np.zeros(at.shape, np.uint32)
    own = fmix64(values.astype(np.uint64) | _CONTAINMENT_TAG)
    stand_ins = fmix64(band_keys[:, :1] ^ _PAD_SALTS[:keys])
    keyed: U64 = np.where(present, own, stand_ins)
    return keyed


@dataclass(frozen=True)
class Verdict:
    """Why a record is removed: it duplicates ``duplicate_of``, the kept article it is
    most similar to (kept earlier in this run, or by an earlier run: see ``kind``)."""

    duplicate_of: str
    #: The verified similarity with ``duplicate_of`` (1.0 for an exact copy).
    similarity: float
    #: "exact", "near", "contained" (inside a longer kept article), or "index" (an
    #: article accepted by an earlier run).
    kind: str
    #: The kept record plus every record of this run removed as its duplicate.
    cluster_size: int = 2
    #: When ``similarity`` is a containment (the record lies inside a longer kept
    #: article), the Jaccard similarity of the two.
    jaccard: float | None = None
    #: For kind "index": the index entry of ``duplicate_of`` (ids may be reused).
    indexed_entry: int | None = None

    @property
    def matched_id(self) -> str:
        """The record this one was matched with: always ``duplicate_of`` now that every
        record is compared with kept articles only (kept for older readers)."""
        return self.duplicate_of

    def as_fields(self) -> dict[str, object]:
        return {
            "duplicate_of": self.duplicate_of,
            "similarity": round(self.similarity, 4),
            "matched_id": self.duplicate_of,
            "duplicate_kind": self.kind,
            "cluster_size": self.cluster_size,
            **({"jaccard": round(self.jaccard, 4)} if self.jaccard is not None else {}),
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
    """Shingle sets of every record seen, in a spill store (memory, then disk; held as
    the batch arrays they came in): verification reads the few it needs."""

    def __init__(self, memory: MemoryBudget | None = None) -> None:
        self._sets = SpillStore(memory, prefix="corpus-clean-shingles-")

    def extend(self, shingles: Shingles, offsets: npt.NDArray[np.int64]) -> None:
        """Add the sets ``shingles[offsets[i]:offsets[i+1]]`` of a batch, in order."""
        sets = shingles[offsets[0] : offsets[-1]]
        self._sets.extend_packed(sets, (offsets[1:] - offsets[0]) * sets.itemsize)

    def get(self, i: int) -> Shingles:
        return np.frombuffer(self._sets.get(i), dtype=np.uint32)

    def close(self) -> None:
        self._sets.close()


def jaccard(a: Shingles, b: Shingles) -> float:
    """Exact Jaccard similarity of two sorted sets of unique hashes."""
    if not len(a) or not len(b):
        return 1.0 if len(a) == len(b) else 0.0
    common = _fast.common_count(a, b)
    return common / (len(a) + len(b) - common)


class DuplicateFinder:
    """Decides which records are duplicates from their fingerprints alone.

    ``add`` every batch in input order, then ``resolve`` once. Per record it keeps the
    band keys, an exact-text hash, the length, the date and the shingle count in memory,
    and the shingle set in a store (memory, then disk); never the text.
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
        self._dates: list[str | None] = []
        self._short_texts: dict[int, str] = {}
        self._store = ShingleStore(memory)
        #: Kept record -> its cluster's size, for the kept records that have duplicates.
        self._cluster_sizes: dict[int, int] = {}
        #: (id, indexed id) of each kept record that extends an indexed article (holds
        #: it at least ``containment`` inside it): new content, named in the report.
        self.extended: list[tuple[str, str]] = []

    def add(self, ids: Sequence[str], prints: Fingerprints) -> None:
        base = len(self.ids)
        self.ids.extend(ids)
        self._exact.append(prints.exact)
        self._keys.append(prints.band_keys)
        self._lengths.append(prints.lengths)
        self._counts.append(np.diff(prints.offsets))
        self._dates.extend(prints.dates if prints.dates is not None else [None] * len(ids))
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
        for band in range(self._keys[0].shape[1] if self._keys else 0):
            column = np.concatenate([np.zeros(0, np.uint64), *(k[:, band] for k in self._keys)])
            yield column[nodes]

    def _bucket_keys(self, nodes: npt.NDArray[np.int64]) -> Iterator[U64]:
        """What LSH buckets ``nodes`` by, one table after another: each band's keys, then
        the containment keys of all columns as one table (a text's smallest hashes are
        a set: the same hash may stand in another column of another text), as a
        ``(len(nodes), keys)`` array."""
        bands = self.options.bands_rows[0]
        columns = self._band_columns(nodes)
        yield from itertools.islice(columns, bands)
        containment = list(columns)
        if containment:
            table = np.stack(containment, axis=1)
            del containment  # memory holds the keys once while they are sorted
            yield table

    @property
    def _all_keys(self) -> U64:
        """The band keys of every record in one array, built a batch at a time so that
        memory never holds them twice."""
        if len(self._keys) != 1:
            batches, self._keys = self._keys[::-1], []
            width = batches[0].shape[1] if batches else self.options.bands_rows[0]
            keys = np.empty((len(self.ids), width), dtype=np.uint64)
            done = 0
            while batches:
                batch = batches.pop()
                keys[done : done + len(batch)] = batch
                done += len(batch)
            self._keys = [keys]
        return self._keys[0]

    def _keep_ranks(self) -> npt.NDArray[np.int64]:
        """Each record's place in keep order (``--keep``); rank 0 is walked first."""
        n = len(self.ids)
        if self.options.keep == "first":
            return np.arange(n, dtype=np.int64)
        if self.options.keep == "longest":  # the longest text first, then input order
            lengths = np.concatenate([np.zeros(0, np.int64), *self._lengths])
            order = np.lexsort((np.arange(n), -lengths))
        else:  # earliest: by date (ISO dates sort as text), undated last, then input order
            dates = self._dates
            order = np.array(
                sorted(range(n), key=lambda i: (dates[i] is None, dates[i] or "")), dtype=np.int64
            )
        ranks = np.empty(n, np.int64)
        ranks[order] = np.arange(n)
        return ranks

    def _exact_groups(
        self, counts: npt.NDArray[np.int64], ranks: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], list[int], list[int]]:
        """Records grouped by the exact hash of their word sequence: the first of each
        group in keep order (sorted by position), and each other member beside it.

        Texts without a word (a title-only article) share no content to compare: each
        is a group of its own, and none is a duplicate of another.
        """
        worded = np.flatnonzero(counts > 0)
        worded = worded[np.argsort(ranks[worded], kind="stable")]  # in keep order
        hashes = np.frombuffer(b"".join(self._exact), dtype=np.uint64).reshape(-1, 2)[worded]
        # By hash, then keep order. Sorting by the first 64 bits is enough unless two
        # different hashes share them, which is looked for.
        order = np.argsort(hashes[:, 0], kind="stable")
        by_first = hashes[order]
        if ((by_first[1:, 0] == by_first[:-1, 0]) & (by_first[1:, 1] != by_first[:-1, 1])).any():
            order = np.lexsort((np.arange(len(worded)), hashes[:, 1], hashes[:, 0]))
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
        """The verdict of every record that is not kept, by position.

        One rule, in this run and against an index alike: records are walked in keep
        order, and one is a duplicate when it is similar enough to an article already
        kept (indexed articles are kept before everything in this run); its
        ``duplicate_of`` is the kept article it is most similar to, the earliest in keep
        order on a tie. Otherwise it is kept. Only kept articles are compared with, so a
        removed record is always close to what stands for it (no chains), and an article
        with hundreds of copies costs one comparison per copy.

        Similar enough: Jaccard similarity at least the threshold, or (containment on)
        lying at least ``containment`` inside a longer kept article. So that the
        container is kept and never its excerpt, an excerpt below the Jaccard threshold
        waits in the walk until each of its containers has been walked.
        """
        ids = self.ids
        counts = np.concatenate(self._counts) if self._counts else np.zeros(0, np.int64)
        ranks = self._keep_ranks()
        distinct, firsts, repeats = self._exact_groups(counts, ranks)
        verify = _Verifier(self.options, self._store, self._short_texts, counts)
        earlier, later = _candidate_pairs(self._bucket_keys(distinct), distinct, ranks)
        position = ranks
        if self.options.containment:
            position = _walk_positions(ranks, counts, verify.containments(earlier, later))
            earlier, later = _in_walk_order(earlier, later, position)

        # node -> (similarity, the kept node or index entry it duplicates, kind, Jaccard
        # when the similarity is a containment)
        best: dict[int, tuple[float, int, str, float | None]] = {}
        extends: dict[int, int] = {}  # node -> an indexed article it contains
        if self.index is not None and len(distinct):
            found = self.index.candidates(np.stack(list(self._band_columns(distinct)), axis=1))
            for n, entries in zip(distinct.tolist(), found, strict=True):
                for entry in entries:  # in the order the index accepted them
                    indexed = self.index.shingles(entry)
                    match = verify.duplicate(n, indexed, None)
                    if match is not None:
                        if n not in best or match[0] > best[n][0]:
                            best[n] = (match[0], entry, "index", match[2])
                    elif verify.contains(n, indexed):
                        extends.setdefault(n, entry)
        removed = bytearray(len(ids))  # final for a record once the walk has passed it
        for n in best:
            removed[n] = 1
        for a, b in zip(earlier.tolist(), later.tolist(), strict=True):  # in walk order of b, a
            if removed[a]:
                continue  # compare with kept articles only
            match = verify.duplicate_of_node(b, a)
            if match is None:
                continue
            removed[b] = 1
            if b not in best or match[0] > best[b][0]:  # on a tie the earlier-kept stays
                best[b] = (match[0], a, match[1], match[2])
        for first, n in zip(firsts, repeats, strict=True):
            # An exact copy is as similar to everything as its group's first; when that
            # one is kept, the copy is its duplicate.
            best[n] = best.get(first, (1.0, first, "exact", None))

        stats.add("candidates_verified", verify.verified)
        stats.add("candidates_rejected", verify.rejected)
        sizes = collections.Counter((kind == "index", kept) for _, kept, kind, _ in best.values())
        self._cluster_sizes = {
            kept: size + 1 for (indexed, kept), size in sizes.items() if not indexed
        }
        indexed_ids: dict[int, str] = {}

        def indexed_id(entry: int) -> str:
            if entry not in indexed_ids:
                assert self.index is not None
                indexed_ids[entry] = self.index.article_id(entry)
            return indexed_ids[entry]

        verdicts: dict[int, Verdict] = {}
        for n in sorted(best):
            score, kept, kind, jaccard_beside = best[n]
            verdicts[n] = Verdict(
                indexed_id(kept) if kind == "index" else ids[kept],
                score,
                kind,
                sizes[kind == "index", kept] + 1,
                jaccard_beside,
                kept if kind == "index" else None,
            )
        self.extended = [
            (ids[n], indexed_id(entry)) for n, entry in sorted(extends.items()) if n not in best
        ]
        for kind, count in collections.Counter(v.kind for v in verdicts.values()).items():
            stats.add(f"duplicates_{kind}", count)
        stats.add("kept", len(ids) - len(verdicts))
        if self.extended:
            stats.add("extends_indexed", len(self.extended))
            stats.extended.extend({"id": n, "extends": of} for n, of in self.extended)
        return verdicts

    def kept_fields(self, n: int) -> dict[str, object]:
        """Fields that join kept record ``n`` with the records removed as its duplicates
        (``--cluster-fields``): its own id as the cluster's, and the cluster's size."""
        return {"cluster_id": self.ids[n], "cluster_size": self._cluster_sizes.get(n, 1)}


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
        spool = SpillStore(memory)
        try:
            for records, prints in batches:
                finder.add([record.id for record in records], prints)
                for record in records:
                    spool.extend([pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)])
            verdicts = finder.resolve(stats)
            for n, data in enumerate(spool.read()):
                yield pickle.loads(data), verdicts.get(n)
        finally:
            spool.close()
            finder.close()


class _Verifier:
    """Exact comparisons of shingle sets, counted: is a record a duplicate of a kept
    one, and which candidate pairs are an excerpt and its container."""

    def __init__(
        self,
        options: DedupOptions,
        store: ShingleStore,
        short_texts: dict[int, str],
        counts: npt.NDArray[np.int64],
    ) -> None:
        self.threshold = options.threshold
        self.containment = options.containment
        self.store = store
        self.short_texts = short_texts
        self.counts = counts
        self.verified = self.rejected = 0
        #: Shingles in common of pairs (lower node, higher) compared before the walk, so
        #: that the walk need not read their sets again.
        self._common: dict[tuple[int, int], int] = {}

    def duplicate(
        self, n: int, kept: Shingles, kept_node: int | None
    ) -> tuple[float, str, float | None] | None:
        """Whether record ``n`` duplicates a kept article (its shingles, and its node when
        it is of this run): (similarity, "near" or "contained", the Jaccard beside a
        containment), or None."""
        mine = self.store.get(n)
        small, large = sorted((len(mine), len(kept)))
        near = small >= self.threshold * large  # else the Jaccard is below small / large
        inside = self.containment > 0 and len(kept) > len(mine)
        if not (near or inside):
            return None
        self.verified += 1
        common = _fast.common_count(mine, kept) if small else 0
        short = self.short_texts
        if near and n in short and kept_node is not None and kept_node in short:
            # A few shingles give a coarse Jaccard: these compare by their characters.
            score = fuzz.ratio(short[n], short[kept_node]) / 100.0
            if score >= self.threshold:
                return score, "near", None
            if not inside or common < self.containment * len(mine):
                self.rejected += 1
                return None
            return common / len(mine), "contained", common / (len(mine) + len(kept) - common)
        return self._outcome(len(mine), len(kept), common)

    def duplicate_of_node(self, n: int, kept_node: int) -> tuple[float, str, float | None] | None:
        """``duplicate`` for a kept record of this run."""
        pair = (n, kept_node) if n < kept_node else (kept_node, n)
        common = self._common.pop(pair, None)
        if common is None or (n in self.short_texts and kept_node in self.short_texts):
            return self.duplicate(n, self.store.get(kept_node), kept_node)
        return self._outcome(int(self.counts[n]), int(self.counts[kept_node]), common)

    def _outcome(self, mine: int, kept: int, common: int) -> tuple[float, str, float | None] | None:
        small, large = sorted((mine, kept))
        similarity = common / (mine + kept - common) if large else 1.0
        if small >= self.threshold * large and similarity >= self.threshold:
            return similarity, "near", None
        if self.containment > 0 and kept > mine and common >= self.containment * mine:
            return common / mine, "contained", similarity
        self.rejected += 1
        return None

    def contains(self, n: int, other: Shingles) -> bool:
        """Whether record ``n`` holds ``other`` at least ``containment`` inside it (and is
        not its near duplicate): an extended repost."""
        mine = self.store.get(n)
        if not (self.containment > 0 and len(mine) > len(other) > 0):
            return False
        common = _fast.common_count(mine, other)
        return common >= self.containment * len(other) and common < self.threshold * (
            len(mine) + len(other) - common
        )

    def containments(
        self, earlier: npt.NDArray[np.int64], later: npt.NDArray[np.int64]
    ) -> list[tuple[int, int]]:
        """The candidate pairs that are (excerpt, container): the excerpt at least
        ``containment`` inside the container, yet below the Jaccard threshold (near
        duplicates are left to keep order). Only pairs of unequal enough sizes can be:
        the rest are not compared here."""
        threshold, containment, counts = self.threshold, self.containment, self.counts
        small = np.minimum(counts[earlier], counts[later])
        large = np.maximum(counts[earlier], counts[later])
        # At containment c the Jaccard is at least c*s / (l + s - c*s): below the
        # threshold only for s/l under this.
        room = containment - threshold + threshold * containment
        limit = threshold / room if room > 0 else np.inf
        eligible = np.flatnonzero((small < large) & (small < limit * large))
        found = []
        for a, b in zip(earlier[eligible].tolist(), later[eligible].tolist(), strict=True):
            excerpt, container = (a, b) if counts[a] < counts[b] else (b, a)
            inner, outer = self.store.get(excerpt), self.store.get(container)
            self.verified += 1
            common = _fast.common_count(inner, outer)
            self._common[(a, b) if a < b else (b, a)] = common
            if common >= containment * len(inner) and common < threshold * (
                len(inner) + len(outer) - common
            ):
                found.append((excerpt, container))
        return found


def _walk_positions(
    ranks: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    containments: list[tuple[int, int]],
) -> npt.NDArray[np.int64]:
    """Each record's place in the walk: keep order, except that an excerpt waits until
    every one of its containers has been walked (containers have more shingles, so
    there is no cycle), right after the last of them."""
    due = ranks.copy()  # the rank of the record after which each is walked
    # A container is itself settled before its excerpts: it is larger.
    for excerpt, container in sorted(containments, key=lambda pair: -counts[pair[0]]):
        due[excerpt] = max(due[excerpt], due[container])
    order = np.lexsort((ranks, -counts, due))  # on one due rank: the larger first
    position = np.empty_like(ranks)
    position[order] = np.arange(len(ranks))
    return position


def _in_walk_order(
    a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], position: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs as (earlier, later) in the walk, sorted by the later one, then the earlier."""
    swap = position[a] > position[b]
    earlier, later = np.where(swap, b, a), np.where(swap, a, b)
    order = np.lexsort((position[earlier], position[later]))
    return earlier[order], later[order]


def _candidate_pairs(
    bands: Iterable[U64], nodes: npt.NDArray[np.int64], position: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs (earlier, later) of records sharing an LSH bucket in any band, each once,
    sorted by the later one's ``position`` in the walk, then the earlier one's. ``bands``
    gives each band's keys of the ``nodes``, a band at a time (``keys.T`` of a nodes x
    bands matrix will do); a 2-d ``(len(nodes), k)`` array is one table in which each
    node stands under k different keys.

    In a bucket of more than ``_FULL_PAIRS_UP_TO`` members, each is paired with the
    first ``_FULL_PAIRS_UP_TO`` of the bucket in walk order only: a degenerate bucket
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
        for size in np.unique(sizes).tolist():
            at = order[starts[sizes == size, None] + np.arange(size)]
            members = np.sort(places[at // width if width > 1 else at])
            left, right = _bucket_pairs(size)
            pairs.append(np.stack((members[:, left].ravel(), members[:, right].ravel()), axis=1))
    if not pairs:
        return none, none
    every = np.concatenate(pairs)
    every = every[every[:, 0] != every[:, 1]]  # a key that a text holds twice is one
    span = len(position)
    codes = np.unique(every[:, 1] * span + every[:, 0])  # by later place, then earlier
    walk = np.empty(span, np.int64)
    walk[position] = np.arange(span)
    return walk[codes % span], walk[codes // span]


def _bucket_pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index pairs (i < j) of a bucket of n members sorted in walk order, with i among
    the first ``_FULL_PAIRS_UP_TO``."""
    if n <= _FULL_PAIRS_UP_TO:
        return _all_pairs(n)
    left = np.repeat(np.arange(_FULL_PAIRS_UP_TO), n - 1 - np.arange(_FULL_PAIRS_UP_TO))
    right = np.concatenate([np.arange(i + 1, n) for i in range(_FULL_PAIRS_UP_TO)])
    return left, right


@functools.cache
def _all_pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index pairs (i < j) of n items; small buckets of a few sizes recur thousands of
    times (big ones are rare, and their pairs are not kept)."""
    left, right = np.triu_indices(n, 1)
    return left, right
