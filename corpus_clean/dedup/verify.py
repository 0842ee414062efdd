"""Step 3: exact comparisons of shingle sets, counted. The walk (``decide``) asks the
``Verifier`` whether a record duplicates a kept one; ``index_matches`` asks it of every
distinct record against the index's candidates, before the walk."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz

from .. import _fast
from ..options import DedupOptions
from .shingles import U64, Shingles

if TYPE_CHECKING:
    from ..storage import IndexReader


class ShingleSets(Protocol):
    """Where a verifier reads the shingle set of record ``n`` (by input position): a
    ``ShingleStore`` in a local run; any store of the sets on other machines will do."""

    def get(self, n: int) -> Shingles: ...


class Match(NamedTuple):
    """What a duplicate was matched with: the similarity, the kept record (its position,
    or its index entry when ``kind`` is "index"), the kind, and the Jaccard beside a
    containment."""

    similarity: float
    kept: int
    kind: str
    jaccard: float | None


#: A verification's outcome: (similarity, "near" or "contained", the Jaccard beside a
#: containment), or None when the record is not a duplicate.
Outcome = tuple[float, str, float | None] | None


def jaccard(a: Shingles, b: Shingles) -> float:
    """Exact Jaccard similarity of two sorted sets of unique hashes."""
    if not len(a) or not len(b):
        return 1.0 if len(a) == len(b) else 0.0
    common = _fast.common_count(a, b)
    return common / (len(a) + len(b) - common)


class Verifier:
    """Exact comparisons of shingle sets, counted (``verified``, ``rejected``): is a
    record a duplicate of a kept one, and which candidate pairs are an excerpt and its
    container. Records are input positions: ``store`` gives their shingle sets,
    ``counts`` their sizes, ``short_texts`` the normalized text of those too short for
    a meaningful Jaccard (``Fingerprints.short_texts``, by position)."""

    def __init__(
        self,
        options: DedupOptions,
        store: ShingleSets,
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

    def duplicate(self, n: int, kept: Shingles, kept_node: int | None) -> Outcome:
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

    def duplicate_of_node(self, n: int, kept_node: int) -> Outcome:
        """``duplicate`` for a kept record of this run."""
        pair = (n, kept_node) if n < kept_node else (kept_node, n)
        common = self._common.pop(pair, None)
        if common is None or (n in self.short_texts and kept_node in self.short_texts):
            return self.duplicate(n, self.store.get(kept_node), kept_node)
        return self._outcome(int(self.counts[n]), int(self.counts[kept_node]), common)

    def _outcome(self, mine: int, kept: int, common: int) -> Outcome:
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


def index_matches(
    index: IndexReader, verifier: Verifier, nodes: npt.NDArray[np.int64], keys: U64
) -> tuple[dict[int, Match], dict[int, int]]:
    """Each of ``nodes`` (band keys: ``keys``, one row each) against the articles the
    index finds for it, in the order the index accepted them: the best match of each
    node that duplicates one (kind "index"), and for a node that is none's duplicate
    but contains one, the first such entry (an extended repost)."""
    best: dict[int, Match] = {}
    extends: dict[int, int] = {}
    found = index.candidates(keys)
    for n, entries in zip(nodes.tolist(), found, strict=True):
        for entry in entries:
            indexed = index.shingles(entry)
            match = verifier.duplicate(n, indexed, None)
            if match is not None:
                if n not in best or match[0] > best[n].similarity:
                    best[n] = Match(match[0], entry, "index", match[2])
            elif verifier.contains(n, indexed):
                extends.setdefault(n, entry)
    return best, extends
