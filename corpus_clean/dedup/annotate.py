"""Step 5: the decisions as an output shows them: a ``Verdict`` (its fields on a removed
record), and for a kept record its cluster's id and size (``--cluster-fields``)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .verify import Match


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
class Annotations:
    """The verdict of every record that is not kept (by position), and the fields of
    kept records."""

    verdicts: dict[int, Verdict]
    ids: Sequence[str]
    #: Kept record -> its cluster's size, for the kept records that have duplicates.
    cluster_sizes: dict[int, int]

    def kept_fields(self, n: int) -> dict[str, object]:
        """Fields that join kept record ``n`` with the records removed as its duplicates
        (``--cluster-fields``): its own id as the cluster's, and the cluster's size."""
        return {"cluster_id": self.ids[n], "cluster_size": self.cluster_sizes.get(n, 1)}


def annotate(
    matches: dict[int, Match], ids: Sequence[str], indexed_id: Callable[[int], str]
) -> Annotations:
    """Verdicts from ``decide``'s matches: ``ids`` names the records of this run,
    ``indexed_id`` an index entry."""
    sizes = collections.Counter((m.kind == "index", m.kept) for m in matches.values())
    verdicts: dict[int, Verdict] = {}
    for n in sorted(matches):
        score, kept, kind, jaccard_beside = matches[n]
        verdicts[n] = Verdict(
            indexed_id(kept) if kind == "index" else ids[kept],
            score,
            kind,
            sizes[kind == "index", kept] + 1,
            jaccard_beside,
            kept if kind == "index" else None,
        )
    clusters = {kept: size + 1 for (indexed, kept), size in sizes.items() if not indexed}
    return Annotations(verdicts, ids, clusters)
