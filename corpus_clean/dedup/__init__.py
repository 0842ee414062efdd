"""Exact and near-duplicate removal, as named steps over arrays.

1. ``fingerprint`` (per shard or batch, in the workers): ``Fingerprinter.fingerprint``
   gives each text's band keys, exact-text hash and shingle set (``Fingerprints``).
2. ``candidates`` (over every record's band keys): ``candidate_pairs`` groups records
   by band key into candidate pairs, in walk order.
3. ``verify``: a ``Verifier`` compares shingle sets exactly; ``index_matches`` checks
   each distinct record against the index's candidates.
4. ``decide``: keep order (``keep_ranks``), exact groups (``exact_groups``), the walk
   order of excerpts (``walk_order``), then ``decide``: the match of every record not
   kept, by input position.
5. ``annotate``: ``Verdict`` fields for the removed, cluster fields for the kept.

``DuplicateFinder`` composes them for a run: the driver ``add``s each batch's
fingerprints in input order, then ``resolve``s once, because what is kept is known only
once every record is seen (``--keep longest`` or ``earliest`` may walk a late one
first). It keeps per record what dedup needs (band keys, an exact-text hash, the shingle
set in a ``ShingleStore``), never the text. The store keeps what fits a memory budget
(``options.MEMORY_BUDGET``) and puts the rest on disk; the rest of memory grows with the
records (band keys, ids, hashes): a run over 1,000,000 articles peaked at 1.4 GB,
budget included (1.8 GB with containment keys).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..io import MemoryBudget
from ..options import DedupOptions
from ..stats import Stats
from ..storage import IndexReader
from .annotate import Annotations, Verdict, annotate
from .candidates import BandKeys, candidate_pairs
from .decide import decide, exact_groups, keep_ranks, walk_order
from .fingerprint import Fingerprinter, Fingerprints
from .shingles import U64, Shingles
from .store import ShingleStore
from .verify import Match, Verifier, index_matches, jaccard

__all__ = [
    "DuplicateFinder",
    "Fingerprinter",
    "Fingerprints",
    "Match",
    "Verdict",
    "Verifier",
    "jaccard",
]


class DuplicateFinder:
    """Decides which records are duplicates from their fingerprints alone.

    ``add`` every batch in input order, then ``resolve`` once. Per record it keeps the
    band keys, an exact-text hash, the length, the date and the shingle count in memory,
    and the shingle set in a store (memory, then disk); never the text.
    """

    def __init__(
        self,
        options: DedupOptions,
        index: IndexReader | None = None,
        memory: MemoryBudget | None = None,
    ) -> None:
        self.options = options
        self.index = index
        self.ids: list[str] = []
        self._exact: list[bytes] = []  # per batch
        self._keys = BandKeys(options.bands_rows[0])
        self._lengths: list[npt.NDArray[np.int64]] = []
        self._counts: list[npt.NDArray[np.int64]] = []
        self._dates: list[str | None] = []
        self._short_texts: dict[int, str] = {}
        self._store = ShingleStore(memory)
        self._annotations = Annotations({}, self.ids, {})
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
        return self._keys.of(n)

    def shingles(self, n: int) -> Shingles:
        return self._store.get(n)

    def close(self) -> None:
        self._store.close()

    def resolve(self, stats: Stats) -> dict[int, Verdict]:
        """The verdict of every record that is not kept, by position: the steps
        ``candidates`` -> ``verify`` -> ``decide`` -> ``annotate`` over what was added.

        One rule, in this run and against an index alike: records are walked in keep
        order, and one is a duplicate when it is similar enough to an article already
        kept (indexed articles are kept before everything in this run); its
        ``duplicate_of`` is the kept article it is most similar to, the earliest in keep
        order on a tie. Otherwise it is kept.

        Similar enough: Jaccard similarity at least the threshold, or (containment on)
        lying at least ``containment`` inside a longer kept article. So that the
        container is kept and never its excerpt, an excerpt below the Jaccard threshold
        waits in the walk until each of its containers has been walked.
        """
        ids, index = self.ids, self.index
        counts = _joined(self._counts)
        ranks = keep_ranks(self.options.keep, _joined(self._lengths), self._dates)
        hashes = np.frombuffer(b"".join(self._exact), dtype=np.uint64).reshape(-1, 2)
        groups = exact_groups(hashes, counts, ranks)
        distinct = groups.distinct
        verifier = Verifier(self.options, self._store, self._short_texts, counts)
        pairs = candidate_pairs(self._keys.tables(distinct), distinct, ranks)
        if self.options.containment:
            pairs = walk_order(pairs, ranks, counts, verifier)
        indexed: dict[int, Match] = {}
        extends: dict[int, int] = {}  # node -> an indexed article it contains
        if index is not None and len(distinct):
            keys = np.stack(list(self._keys.columns(distinct)), axis=1)
            indexed, extends = index_matches(index, verifier, distinct, keys)
        matches = decide(len(ids), pairs, verifier, groups, indexed)
        stats.add("candidates_verified", verifier.verified)
        stats.add("candidates_rejected", verifier.rejected)

        indexed_id = functools.cache(index.article_id) if index is not None else _no_entry
        self._annotations = annotate(matches, ids, indexed_id)
        verdicts = self._annotations.verdicts
        self.extended = [
            (ids[n], indexed_id(entry)) for n, entry in sorted(extends.items()) if n not in matches
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
        return self._annotations.kept_fields(n)


def _joined(arrays: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    return np.concatenate([np.zeros(0, np.int64), *arrays])


def _no_entry(entry: int) -> str:
    raise KeyError(entry)  # no index: no verdict names an entry
