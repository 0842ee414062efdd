"""Step 4: the decision rule, by input position. Records are walked in keep order and
one is a duplicate when it is similar enough to an article already kept (indexed
articles are kept before everything in this run); otherwise it is kept. Exact copies
follow the first of their group.

The functions here see positions, ranks and pairs only: what a record's shingles say
comes from a ``Verifier`` (``verify``), so the walk is the same whether the sets sit in
this process or on other machines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .candidates import Pairs
from .verify import Match, Verifier

I64 = npt.NDArray[np.int64]


def keep_ranks(keep: str, lengths: I64, dates: Sequence[str | None]) -> I64:
    """Each record's place in keep order (``--keep``: "first", "longest" or
    "earliest"); rank 0 is walked first. ``lengths``: each text's characters;
    ``dates``: each record's date (None when unknown)."""
    n = len(lengths)
    if keep == "first":
        return np.arange(n, dtype=np.int64)
    if keep == "longest":  # the longest text first, then input order
        order = np.lexsort((np.arange(n), -lengths))
    else:  # earliest: by date (ISO dates sort as text), undated last, then input order
        order = np.array(
            sorted(range(n), key=lambda i: (dates[i] is None, dates[i] or "")), dtype=np.int64
        )
    ranks = np.empty(n, np.int64)
    ranks[order] = np.arange(n)
    return ranks


@dataclass(frozen=True)
class ExactGroups:
    """Records grouped by the exact hash of their word sequence."""

    #: The first of each group in keep order, sorted by position: the records LSH and
    #: the index see.
    distinct: I64
    #: Each other member of a group (by position), beside its group's first.
    firsts: list[int]
    repeats: list[int]


def exact_groups(hashes: npt.NDArray[np.uint64], counts: I64, ranks: I64) -> ExactGroups:
    """Group records by ``hashes`` (``(records, 2)``: each text's 128-bit word-sequence
    hash, as ``Fingerprints.exact`` holds them), the first of a group in keep order.

    Texts without a word (``counts``, their shingles, is 0: a title-only article) share
    no content to compare: each is a group of its own, and none is a duplicate of another.
    """
    worded = np.flatnonzero(counts > 0)
    worded = worded[np.argsort(ranks[worded], kind="stable")]  # in keep order
    hashes = hashes[worded]
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
    return ExactGroups(
        np.sort(members[starts]), group_first[repeats].tolist(), members[repeats].tolist()
    )


def walk_order(pairs: Pairs, ranks: I64, counts: I64, verifier: Verifier) -> Pairs:
    """With containment on: the candidate pairs (in keep order) put in walk order. An
    excerpt below the Jaccard threshold waits in the walk until each of its containers
    has been walked, so that the container is kept and never its excerpt."""
    position = walk_positions(ranks, counts, verifier.containments(*pairs))
    return in_walk_order(*pairs, position)


def walk_positions(ranks: I64, counts: I64, containments: list[tuple[int, int]]) -> I64:
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


def in_walk_order(a: I64, b: I64, position: I64) -> Pairs:
    """Pairs as (earlier, later) in the walk, sorted by the later one, then the earlier."""
    swap = position[a] > position[b]
    earlier, later = np.where(swap, b, a), np.where(swap, a, b)
    order = np.lexsort((position[earlier], position[later]))
    return earlier[order], later[order]


def decide(
    records: int,
    pairs: Pairs,
    verifier: Verifier,
    groups: ExactGroups,
    indexed: dict[int, Match] | None = None,
) -> dict[int, Match]:
    """The match of every record that is not kept, by position.

    ``pairs``: the candidate pairs (earlier, later) in walk order; ``indexed``: the
    records that duplicate an indexed article (``verify.index_matches``), removed before
    the walk. A record's match is the kept article it is most similar to, the earliest
    in walk order on a tie. Only kept articles are compared with, so a removed record
    is always close to what stands for it (no chains), and an article with hundreds of
    copies costs one comparison per copy.
    """
    best = dict(indexed or {})
    removed = bytearray(records)  # final for a record once the walk has passed it
    for n in best:
        removed[n] = 1
    for a, b in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):  # in walk order
        if removed[a]:
            continue  # compare with kept articles only
        match = verifier.duplicate_of_node(b, a)
        if match is None:
            continue
        removed[b] = 1
        if b not in best or match[0] > best[b].similarity:  # on a tie the earlier-kept stays
            best[b] = Match(match[0], a, match[1], match[2])
    for first, n in zip(groups.firsts, groups.repeats, strict=True):
        # An exact copy is as similar to everything as its group's first; when that
        # one is kept, the copy is its duplicate.
        best[n] = best.get(first, Match(1.0, first, "exact", None))
    return best
