"""What an index keeps of what learning saw: recurrence evidence and articles' marks."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .arrays import NO_KEY, site_numbers


@dataclass(frozen=True)
class Wanted:
    """What a run's learning asks an index for (``Prior``): the rows of its sites, of
    its lines on any site (a line on many sites is learned across them), of its sites'
    closing sentences and of its articles' marks (mark 0: a site's pages). Hashes as
    int64 (the index's), sorted, once each; closing sentences and marks as pairs of
    arrays, a site (a number among ``sites``) and a hash, sorted by site then hash."""

    sites: list[str]
    lines: np.ndarray
    tails: tuple[np.ndarray, np.ndarray]
    marks: tuple[np.ndarray, np.ndarray]


class Prior(Protocol):
    """Where what earlier runs saw is read from (an index)."""

    def learned_evidence(self, wanted: Wanted | None = None) -> Evidence:
        """Every row, or those ``wanted`` asks for: an index holds dozens of rows for
        every page it took, a run needs those of its own input."""
        ...


#: Copy clusters an index keeps of each recurring line, closing sentence and site (the
#: smallest keys: beyond that many, the count is estimated from them).
EVIDENCE_KEYS = 32
#: Kinds of evidence rows: a line of a site, a closing sentence of a site, the site, and
#: a mark of an article of a site (see ``copies.article_marks``).
LINE_ROW, TAIL_ROW, SITE_ROW, MARK_ROW = 0, 1, 2, 3
#: An article's marks: its smallest sentence hashes of its own (see ``copies.article_marks``); and
#: how many keys of the articles holding a mark an index keeps (the smallest: copies of
#: an article hold its marks under its key, so most marks have one).
MARKS = 8
MARK_KEYS = 4
#: The most lines a short article marked by its lines (see ``copies.article_marks``) may have.
EDIT_MARK_LINES = 32
#: Marks read or written at a time (an index of a million articles holds some six million).
MARK_CHUNK = 1 << 16


@dataclass
class KeySets:
    """Per row, a few distinct cluster keys, the smallest first: ``counts`` of them a row,
    the rows' keys one after another in ``flat``. Most rows of an index (a line seen on
    one page) hold one key, so they are kept ragged, not as rows of ``EVIDENCE_KEYS``."""

    counts: np.ndarray
    flat: np.ndarray

    @classmethod
    def none(cls, n: int) -> KeySets:
        return cls(np.zeros(n, dtype=np.int64), np.zeros(0, dtype=np.uint64))

    @classmethod
    def smallest(
        cls, group: np.ndarray, keys: np.ndarray, n_groups: int, width: int = EVIDENCE_KEYS
    ) -> KeySets:
        """Per group, its smallest ``width`` distinct keys (``NO_KEY`` is none)."""
        if not len(group):
            return cls.none(n_groups)
        order = np.lexsort((keys, group))
        g, k = group[order], keys[order]
        new = np.ones(len(g), dtype=bool)
        new[1:] = (g[1:] != g[:-1]) | (k[1:] != k[:-1])
        g, k = g[new], k[new]
        rank = np.arange(len(g)) - np.searchsorted(g, g, side="left")
        keep = (rank < width) & (k != NO_KEY)
        counts = np.bincount(g[keep], minlength=n_groups).astype(np.int64)
        return cls(counts, k[keep].astype(np.uint64))

    @classmethod
    def of_blobs(cls, blobs: Sequence[bytes]) -> KeySets:
        """From little-endian uint64 bytes a row, as the index stores them."""
        width = 8 * EVIDENCE_KEYS
        blobs = [blob[:width] for blob in blobs]
        counts = np.fromiter((len(blob) // 8 for blob in blobs), dtype=np.int64, count=len(blobs))
        flat = np.frombuffer(b"".join(blobs), dtype="<u8").astype(np.uint64)
        return cls(counts, flat)

    @classmethod
    def concat(cls, parts: Sequence[KeySets]) -> KeySets:
        return cls(
            np.concatenate([part.counts for part in parts]),
            np.concatenate([part.flat for part in parts]),
        )

    def __len__(self) -> int:
        return len(self.counts)

    def starts(self) -> np.ndarray:
        """Where each row's keys begin in ``flat``."""
        starts: np.ndarray = np.cumsum(self.counts) - self.counts
        return starts

    def ranks(self) -> np.ndarray:
        """Each key's place in its row of ``flat`` (0: the smallest)."""
        ranks: np.ndarray = np.arange(len(self.flat)) - np.repeat(self.starts(), self.counts)
        return ranks

    def row_of_keys(self) -> np.ndarray:
        """The row of each key of ``flat``."""
        return np.repeat(np.arange(len(self.counts), dtype=np.int64), self.counts)

    def __getitem__(self, which: np.ndarray) -> KeySets:
        """The rows ``which`` (positions or a mask), in its order."""
        rows = np.flatnonzero(which) if which.dtype == bool else which.astype(np.int64)
        counts = self.counts[rows]
        # Each key taken: its place among those taken, moved to where its row begins.
        at = np.arange(int(counts.sum()), dtype=np.int64)
        at += np.repeat(self.starts()[rows] - (np.cumsum(counts) - counts), counts)
        return KeySets(counts, self.flat[at])

    def found(self, found: np.ndarray) -> KeySets:
        """Per position, the row ``found`` names (none where -1)."""
        has = found >= 0
        rows = self[found[has]]
        counts = np.zeros(len(found), dtype=np.int64)
        counts[has] = rows.counts
        return KeySets(counts, rows.flat)

    def first(self, k: int) -> KeySets:
        """Each row's ``k`` smallest keys."""
        return KeySets(np.minimum(self.counts, k), self.flat[self.ranks() < k])

    def dense(self, width: int) -> np.ndarray:
        """As rows of ``width`` keys, ``NO_KEY`` padded (at most ``width`` a row)."""
        out = np.full((len(self.counts), width), NO_KEY, dtype=np.uint64)
        out[self.row_of_keys(), self.ranks()] = self.flat
        return out

    def kth(self, k: int) -> np.ndarray:
        """Per row, its key ``k`` (from 0), ``NO_KEY`` where it holds fewer."""
        out = np.full(len(self.counts), NO_KEY, dtype=np.uint64)
        has = self.counts > k
        out[has] = self.flat[self.starts()[has] + k]
        return out

    def blobs(self) -> Iterator[bytes]:
        """Each row's keys as little-endian uint64 bytes (``of_blobs`` reads them)."""
        buffer = self.flat.astype("<u8").tobytes()
        for start, end in zip(
            (8 * self.starts()).tolist(), (8 * np.cumsum(self.counts)).tolist(), strict=True
        ):
            yield buffer[start:end]


@dataclass
class Evidence:
    """What runs saw of each recurring line and closing sentence of a site, and of each
    site, as an index keeps it between runs: per row, on how many copy clusters it stood
    (``pages``) and the smallest ``EVIDENCE_KEYS`` stable keys of those clusters (a copy
    of an article seen in an earlier run has the same key, so a repost still counts
    once), and for a line: on how many clusters it was anchored (with their keys),
    whether it stood between two lines that are not learned, and its length in bytes."""

    #: The sites, sorted; ``sites`` numbers a row's among them.
    names: np.ndarray
    sites: np.ndarray
    kinds: np.ndarray
    hashes: np.ndarray
    pages: np.ndarray
    keys: KeySets
    anchored: np.ndarray
    anchored_keys: KeySets
    inside: np.ndarray
    lengths: np.ndarray
    #: The articles' marks, kept apart: a few of them for every article (see ``Marks``).
    marks: Marks = field(default_factory=lambda: Marks.of_rows([]))

    @classmethod
    def empty(cls) -> Evidence:
        return cls.of_rows([])

    @classmethod
    def of_rows(
        cls,
        rows: Sequence[tuple[str, int, int, int, bytes, int, bytes, int, int]],
        marks: Marks | None = None,
    ) -> Evidence:
        """From rows (site, kind, hash as int64, pages, keys, anchored, anchored keys,
        inside, length), keys as little-endian uint64 bytes, as the index stores them;
        the marks among them, or given apart (``marks``: read a chunk at a time)."""
        if marks is None:
            marks = Marks.of_rows(
                (row[0], row[2], row[4], row[3]) for row in rows if row[1] == MARK_ROW
            )
        rows = [row for row in rows if row[1] != MARK_ROW]
        columns = list(zip(*rows, strict=True)) if rows else [()] * 9
        names, sites = site_numbers(list(columns[0]))
        return cls(
            names=names,
            sites=sites,
            kinds=np.array(columns[1], dtype=np.int64),
            hashes=np.array(columns[2], dtype=np.int64).view(np.uint64),
            pages=np.array(columns[3], dtype=np.int64),
            keys=KeySets.of_blobs(columns[4]),
            anchored=np.array(columns[5], dtype=np.int64),
            anchored_keys=KeySets.of_blobs(columns[6]),
            inside=np.array(columns[7], dtype=np.int64),
            lengths=np.array(columns[8], dtype=np.int64),
            marks=marks,
        )

    def rows(self) -> Iterator[tuple[str, int, int, int, bytes, int, bytes, int, int]]:
        """The rows ``of_rows`` reads, in a stable order (the marks' last)."""
        yield from self._rows()
        for site, mark, keys, holders in self.marks.rows():
            yield (site, MARK_ROW, mark, holders, keys, 0, b"", 0, 0)

    def _rows(self) -> Iterator[tuple[str, int, int, int, bytes, int, bytes, int, int]]:
        names = self.names.tolist()
        yield from zip(
            (names[site] for site in self.sites.tolist()),
            self.kinds.tolist(),
            self.hashes.view(np.int64).tolist(),
            self.pages.tolist(),
            self.keys.blobs(),
            self.anchored.tolist(),
            self.anchored_keys.blobs(),
            self.inside.tolist(),
            self.lengths.tolist(),
            strict=True,
        )

    def __len__(self) -> int:
        return len(self.kinds)

    def select(self, which: np.ndarray) -> Evidence:
        """The rows ``which`` (the marks all)."""
        return Evidence(
            self.names,
            self.sites[which],
            self.kinds[which],
            self.hashes[which],
            self.pages[which],
            self.keys[which],
            self.anchored[which],
            self.anchored_keys[which],
            self.inside[which],
            self.lengths[which],
            self.marks,
        )


@dataclass
class Marks:
    """What an index keeps of each article's marks (``copies.article_marks``): per row a
    site (a number among ``names``), a mark and the keys of the articles holding it
    (``MARK_KEYS`` at most, the smallest first, ``NO_KEY`` padded). There are a few for
    every article, so they are kept narrow, not as ``Evidence`` rows of ``EVIDENCE_KEYS``
    keys each."""

    names: np.ndarray
    sites: np.ndarray
    hashes: np.ndarray
    keys: np.ndarray
    #: Pages holding the mark, in all runs (a copy too); under mark 0 (no sentence's
    #: hash), the pages of the site.
    holders: np.ndarray

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[str, int, bytes, int]]) -> Marks:
        """From rows (site, mark as int64, keys as little-endian uint64 bytes, holders),
        taken ``MARK_CHUNK`` at a time."""
        number: dict[str, int] = {}
        sites, hashes, keys, holders = [], [], [], []
        width = 8 * MARK_KEYS
        rows = iter(rows)
        while chunk := list(itertools.islice(rows, MARK_CHUNK)):
            site_of = (number.setdefault(row[0], len(number)) for row in chunk)
            sites.append(np.fromiter(site_of, dtype=np.int64, count=len(chunk)))
            hashes.append(np.fromiter((row[1] for row in chunk), dtype=np.int64, count=len(chunk)))
            padded = b"".join(row[2][:width].ljust(width, b"\xff") for row in chunk)  # NO_KEY
            keys.append(np.frombuffer(padded, dtype="<u8").reshape(-1, MARK_KEYS))
            holders.append(np.fromiter((row[3] for row in chunk), dtype=np.int64, count=len(chunk)))
        # Sites numbered in name order, as ``rows`` writes them.
        names = np.array(list(number), dtype=str)
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return cls(
            names=names[order],
            sites=rank[np.concatenate(sites)] if sites else np.zeros(0, dtype=np.int64),
            hashes=np.concatenate(hashes).view(np.uint64) if hashes else np.zeros(0, np.uint64),
            keys=(
                np.concatenate(keys).astype(np.uint64)
                if keys
                else np.zeros((0, MARK_KEYS), dtype=np.uint64)
            ),
            holders=np.concatenate(holders) if holders else np.zeros(0, dtype=np.int64),
        )

    def rows(self) -> Iterator[tuple[str, int, bytes, int]]:
        """The rows ``of_rows`` reads, sorted by site and mark (as int64, as the index
        sorts them)."""
        signed = self.hashes.view(np.int64)
        order = np.lexsort((signed, self.sites))
        names = self.names.tolist()
        width = 8 * MARK_KEYS
        # ``MARK_CHUNK`` at a time, each row's keys a slice of the chunk's buffer: they
        # stand smallest first, with NO_KEY after them.
        for first in range(0, len(order), MARK_CHUNK):
            at = order[first : first + MARK_CHUNK]
            keys = self.keys[at]
            buffer = keys.astype("<u8").tobytes()
            for n, (site, mark, length, holders) in enumerate(
                zip(
                    self.sites[at].tolist(),
                    signed[at].tolist(),
                    (8 * (keys != NO_KEY).sum(axis=1)).tolist(),
                    self.holders[at].tolist(),
                    strict=True,
                )
            ):
                yield names[site], mark, buffer[n * width : n * width + length], holders

    def __len__(self) -> int:
        return len(self.hashes)
