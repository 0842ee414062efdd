"""The index of articles accepted by earlier runs, behind two narrow protocols: what a
run reads of it (``IndexReader``: dedup's lookups, learning's evidence) and what a run
that succeeded writes (``IndexWriter``). ``storage.sqlite.IndexStore`` is the one
backend: a single SQLite file (``--index PATH``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import CorpusCleanError

if TYPE_CHECKING:
    from ..dedup.shingles import U64, Shingles
    from ..stages.learn import Evidence, Wanted


@dataclass(frozen=True)
class Accepted:
    """A kept article as an index stores it: no text, just what finds and verifies it."""

    id: str
    title: str | None
    source: str
    band_keys: U64
    shingles: Shingles


class IndexReader(Protocol):
    """What a run consults before keeping an article, and learning's earlier counts."""

    def candidates(self, band_keys: U64) -> list[list[int]]:
        """For each row of band keys, the entries sharing at least one key, in the order
        they were accepted."""
        ...

    def shingles(self, entry: int) -> Shingles:
        """An entry's sorted unique shingle hashes, as ``Fingerprints`` holds them."""
        ...

    def article_id(self, entry: int) -> str: ...

    def learned_evidence(self, wanted: Wanted | None = None) -> Evidence:
        """What learning saw in earlier runs (see ``learn.Prior``)."""
        ...


class IndexWriter(Protocol):
    """What a run adds once its output is published."""

    def accept(
        self,
        kept: Iterable[Accepted],
        run_label: str,
        learned: Evidence | None = None,
        forget_runs: int = 0,
    ) -> int:
        """Add the articles a run kept (and what its learning saw, forgetting the lines
        seen once that no run saw in the last ``forget_runs``), in one transaction;
        return how many were added."""
        ...


class IndexStoreError(CorpusCleanError):
    """An index that cannot be used as asked; the message says how to fix it."""


class CommitError(IndexStoreError):
    """A run's articles could not be added (a full disk, say); the index is unchanged."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"could not add this run's articles to {path} ({reason}); the index is "
            "unchanged. Fix the cause and re-run"
        )
