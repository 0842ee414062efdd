"""The persistent index of articles accepted by earlier runs (``--index PATH``).

One SQLite file holds, for every accepted article, what LSH lookup and verification
need (its band keys, in a table ordered by key, and its shingle set) plus its id, title,
source and the run that added it, and the fingerprint settings every entry was computed
with: fingerprints made with other settings cannot be compared, so such a run is refused.

Why it is built this way:

* All or nothing. A run adds everything it kept in one transaction, after the CLI has
  published the output. SQLite's rollback journal with ``synchronous=FULL`` makes the
  commit atomic even under kill -9 or power loss: a journal left by a killed run is rolled
  back by the next opener. The rollback journal rather than WAL keeps every committed
  index whole in the one file, which is what users copy between CI jobs.
  Until something opens it after a kill, the file alone is not whole: copy it with its
  ``PATH-journal``, or open it once first (``index info`` says when it rolled one back).
* One run at a time. An exclusive ``flock`` on the index file itself, taken at open and
  held until close, makes a second run wait (bounded) and then fail, rather than
  deduplicate against an index the first is about to change. Locking the file (its
  inode), not a name beside it, serializes runs that reach one index through a symlink,
  a hard link or another mount, and needs no new file, so a read-only copy can be read.
  The kernel drops the lock when its holder dies, and forked workers close their copy,
  so a killed run never leaves a stale lock behind. (``flock`` and the POSIX locks
  SQLite takes on the same file do not interact.)
* An article is its content and its id. A kept article whose id and shingle set are
  both indexed adds nothing (re-running a scrape adds nothing); one whose id is indexed
  with other content is a new entry, counted as an id reused: ids such as ``FILE:LINE``
  recur night after night for other articles.
* Flat memory. A lookup joins a temporary table of query keys against the band table's
  primary key; nothing is loaded whole, and SQLite's page cache is capped.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypedDict, TypeVar

import numpy as np

from ..dedup.shingles import U64, Shingles
from ..stages.learn import LINE_ROW, MARK_ROW, SITE_ROW, TAIL_ROW, Evidence, Marks, Wanted
from . import Accepted, CommitError, IndexStoreError, schema
from .codec import content_hash, decode_shingles, encode_shingles, storable
from .lock import IndexLock, has_index_file, no_index
from .verify import IndexCheck

#: SQLite page cache, in KiB: enough for the upper levels of the band B-tree, so a lookup
#: costs about one leaf read per key, and fixed whatever the size of the index.
CACHE_KIB = 64 * 1024
#: Articles ``accept`` reads, checks and writes at a time: bounds its memory, and is large
#: enough that each chunk's band rows, sorted, share B-tree leaves.
_ACCEPT_CHUNK = 10_000
#: Articles ``candidates`` looks up in one query: bounds the query's memory (a few MB).
_LOOKUP_ROWS = 20_000
#: Values (ids, marks) per ``IN (...)`` list: below SQLite's oldest limit on query
#: parameters (999).
_IN_CHUNK = 900
#: The columns of a row of learned evidence, and of a mark (``learn.Evidence.of_rows``,
#: ``learn.Marks.of_rows``).
_EVIDENCE = "site, kind, hash, pages, keys, anchored, anchored_keys, inside, length"
_MARK = "site, hash, keys, pages"


class RunInfo(TypedDict):
    """One run that added to the index: its label, when it committed, what it did."""

    label: str
    time: str
    added: int
    #: Kept articles not added because their id and content were already in the index.
    skipped: int
    #: Articles added whose id the index already held for other content.
    id_reused: int


class LearnedInfo(TypedDict):
    """What the index keeps of what learning saw (``learn.Evidence``), in rows."""

    sites: int
    lines: int
    closing_sentences: int
    #: Articles' marks, by which a later run knows their copies (``learn.copies.article_marks``).
    marks: int
    #: Runs that learned, which learned lines age by (``--learn-forget-after``).
    learning_runs: int
    #: Lines seen on one article only, by how many of those runs have not seen them
    #: since (0: the last one did), as the keys say: what forgetting will drop next.
    lines_seen_once_by_age: dict[str, int]


class IndexInfo(TypedDict):
    """What ``IndexStore.info`` reports (``corpus-clean index info`` prints it as JSON)."""

    path: str
    format: int
    articles: int
    runs: list[RunInfo]
    settings: dict[str, object]
    learned: LearnedInfo
    file_bytes: int


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _reads(
    method: Callable[Concatenate[IndexStore, _P], _T],
) -> Callable[Concatenate[IndexStore, _P], _T]:
    """An SQLite error while reading means a damaged file (bit rot, a dropped table): say
    so in one line, not with a traceback."""

    @functools.wraps(method)
    def reading(store: IndexStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(store, *args, **kwargs)
        except sqlite3.DatabaseError as err:
            raise store.damaged(str(err)) from err

    return reading


class IndexStore:
    """Articles accepted by earlier runs, in one SQLite file: an ``IndexReader`` and an
    ``IndexWriter`` (see ``storage``).

    Open it with ``IndexStore.open`` and use it as a context manager: the lock is held
    until ``close``.
    """

    def __init__(
        self,
        path: Path,
        db: sqlite3.Connection,
        lock: IndexLock | None,
        settings: dict[str, object],
        *,
        created: bool,
        readonly: bool,
        format_version: int,
        rolled_back: bool,
    ) -> None:
        self.path = path
        self.settings = settings
        #: The format of the file: an older one is read as it is, and migrated on writing.
        self.format = format_version
        #: Whether opening rolled back a journal a killed run left (see ``open``).
        self.rolled_back = rolled_back
        #: What the last ``accept`` did, as the run's row in ``info`` records it.
        self.accepted: RunInfo | None = None
        #: How many learned lines the last ``accept`` forgot (see ``_forget``).
        self.forgotten = 0
        self._db = db
        self._lock = lock
        self._closed = False
        self._created = created
        self._readonly = readonly
        bands, containment_keys = settings["bands"], settings.get("containment_keys", 0)
        assert isinstance(bands, int), "checked when the settings were read"
        assert isinstance(containment_keys, int), "a setting dedup writes"
        # Keys per article: its LSH band keys, then its containment keys (dedup.fingerprint).
        self._bands = bands + containment_keys

    @classmethod
    def open(
        cls,
        path: str | Path,
        settings: dict[str, object] | None,
        *,
        create: bool = True,
        wait_seconds: float = 30.0,
        readonly: bool = False,
        take_turn: bool = True,
    ) -> IndexStore:
        """Open the index at ``path``, waiting up to ``wait_seconds`` for another run.

        ``settings`` (``Fingerprinter.settings()``) must equal the index's, else
        ``IndexStoreError`` lists what differs and nothing is changed; ``None`` takes the
        index's own (for info and verify). A missing index is created when ``create``;
        it is laid out only with the first ``accept``, so a failed first run leaves no
        file. ``readonly`` takes a shared lock, so several readers can run at once; a
        format-1 index is migrated in place only when opened for writing.

        ``take_turn=False`` (read-only only) does not wait for a writer: it reads under
        SQLite's own locks, which give every statement (and ``info``, which reads in one
        transaction) a consistent snapshot of the last commit. Good enough for a look at
        the figures; a check or a verify takes its turn, so the file stays as it read it.
        """
        path = Path(path)
        writing = not readonly and create and settings is not None
        if not has_index_file(path) and not writing:
            raise no_index(path)
        if writing and not os.access(path.parent, os.W_OK | os.X_OK):  # for the journal
            raise IndexStoreError(
                f"cannot change the index {path}: its folder must exist and be writable"
            )
        optional = readonly and not take_turn
        wait = 0 if optional else wait_seconds
        lock = IndexLock.acquire(path, wait, shared=readonly, create=writing, optional=optional)
        # Under the lock no run is writing, so a journal beside the index is one a killed
        # run left; reading the file rolls it back.
        journal = Path(f"{path}-journal")
        journal_left = lock is not None and has_index_file(journal)
        created = False
        try:
            db = sqlite3.connect(path, timeout=wait_seconds, isolation_level=None)
            try:
                format_version, stored = schema.read_settings(path, db, journal_left=journal_left)
                if stored is None:  # an empty file, or one a killed first run left
                    if not writing:
                        raise no_index(path)
                    assert settings is not None
                    stored, created, format_version = (
                        schema.normalized(settings),
                        True,
                        schema.FORMAT_VERSION,
                    )
                elif settings is not None:
                    schema.check_settings(path, stored, schema.normalized(settings))
                db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                db.execute("PRAGMA synchronous = FULL")
                if created:
                    schema.create(db, stored)
                elif not readonly:
                    schema.check_schema(path, db, format_version)
                    if format_version != schema.FORMAT_VERSION:
                        schema.migrate(path, db, format_version)
                        format_version = schema.FORMAT_VERSION
                db.execute("CREATE TEMP TABLE query (key INTEGER NOT NULL, row INTEGER NOT NULL)")
            except BaseException:
                db.close()
                if created and not has_index_file(path):
                    path.unlink(missing_ok=True)
                raise
        except BaseException:
            if writing and lock is not None and not has_index_file(path):
                path.unlink(missing_ok=True)  # the empty file the lock created
            if lock is not None:
                lock.release()
            raise
        return cls(
            path,
            db,
            lock,
            stored,
            created=created,
            readonly=readonly,
            format_version=format_version,
            rolled_back=journal_left and not journal.exists(),
        )

    def damaged(self, detail: str) -> IndexStoreError:
        """The error for an index whose file does not read as it should."""
        return IndexStoreError(
            f"{self.path} is damaged ({detail}); see 'corpus-clean index verify {self.path}', "
            "then start a new index or restore a copy"
        )

    # -- reading (IndexReader) --------------------------------------------------------------

    @_reads
    def candidates(self, band_keys: U64) -> list[list[int]]:
        """For each row of ``(n, bands)`` band keys, the entries sharing at least one key,
        sorted and unique. One query per ``_LOOKUP_ROWS`` rows (bounding its memory,
        whatever the size of the run); keys go in sorted, so the join walks the band
        B-tree in order. An index without band keys (a first night's) is not asked: the
        query table alone took 12 of a first night's 75 s at 200,000 articles."""
        keys = np.ascontiguousarray(band_keys, dtype=np.uint64)
        if keys.ndim != 2 or keys.shape[1] != self._bands:
            raise ValueError(f"band keys must have shape (n, {self._bands}), not {keys.shape}")
        found: list[list[int]] = [[] for _ in range(len(keys))]
        if self._db.execute("SELECT 1 FROM bands LIMIT 1").fetchone() is None:
            return found
        for start in range(0, len(keys), _LOOKUP_ROWS):
            self._look_up(keys[start : start + _LOOKUP_ROWS], found, start)
        return found

    def _look_up(self, keys: U64, found: list[list[int]], first_row: int) -> None:
        flat = keys.view(np.int64).ravel()
        rows = np.repeat(np.arange(first_row, first_row + len(keys)), keys.shape[1])
        order = np.argsort(flat, kind="stable")
        # A savepoint works inside the open transaction of a new index and outside one;
        # rolling back to it empties the query table again.
        self._db.execute("SAVEPOINT lookup")
        try:
            self._db.executemany(
                "INSERT INTO temp.query (key, row) VALUES (?, ?)",
                zip(flat[order].tolist(), rows[order].tolist(), strict=True),
            )
            # CROSS JOIN keeps the small query table outside: one descent per key.
            for row, entry in self._db.execute(
                "SELECT DISTINCT q.row, b.entry FROM temp.query AS q CROSS JOIN bands AS b "
                "ON b.key = q.key ORDER BY q.row, b.entry"
            ):
                found[row].append(entry)
        finally:
            self._db.execute("ROLLBACK TO lookup")
            self._db.execute("RELEASE lookup")

    @_reads
    def shingles(self, entry: int) -> Shingles:
        """The sorted unique shingle hashes of an entry, as ``dedup.Fingerprints`` has them."""
        row = self._db.execute("SELECT data FROM shingles WHERE entry = ?", (entry,)).fetchone()
        if row is None:
            raise KeyError(entry)
        if not isinstance(row[0], bytes):
            raise self.damaged(f"the shingle set of entry {entry} is not a blob")
        try:
            return decode_shingles(row[0])
        except ValueError as err:
            raise self.damaged(f"the shingle set of entry {entry}: {err}") from err

    @_reads
    def article_id(self, entry: int) -> str:
        row = self._db.execute("SELECT id FROM articles WHERE entry = ?", (entry,)).fetchone()
        if row is None:
            raise KeyError(entry)
        article_id: str = row[0]
        return article_id

    @_reads
    def article(self, entry: int) -> dict[str, object]:
        """An entry's id, title, source and the label of the run that added it."""
        row = self._db.execute(
            "SELECT a.id, a.title, a.source, r.label FROM articles AS a "
            "JOIN runs AS r ON r.run = a.run WHERE a.entry = ?",
            (entry,),
        ).fetchone()
        if row is None:
            raise KeyError(entry)
        return dict(zip(("id", "title", "source", "run"), row, strict=True))

    # -- writing (IndexWriter) --------------------------------------------------------------

    def accept(
        self,
        kept: Iterable[Accepted],
        run_label: str,
        learned: Evidence | None = None,
        forget_runs: int = 0,
    ) -> int:
        """Add a run's kept articles (``pipeline.Result.kept``, or any iterable: it is read
        in chunks, so a generator keeps memory flat) in one transaction; return how many
        were added (``accepted`` tells the rest).

        An article whose id and content are both in the index already is skipped, not an
        error: re-running a scrape must not fail. One whose id is there with other
        content is added, and counted as an id reused. Both counts are kept in the run's
        row (see ``info``). ``learned``, what the run's learning saw merged with what the
        index held (``learned_evidence``), replaces the index's rows of the same patterns,
        each marked as seen by this run; then the lines seen on one article that no run
        that learned has seen in the last ``forget_runs`` of them (0: none is) are
        dropped (``forgotten`` counts them). Any failure rolls the whole run back; an
        SQLite one raises ``CommitError``.
        """
        if self._readonly:
            raise IndexStoreError(f"{self.path} was opened read-only; open it to write")
        started = datetime.now(UTC).isoformat(timespec="seconds")
        added = seen = reused = 0
        try:
            if not self._db.in_transaction:
                self._db.execute("BEGIN IMMEDIATE")
            run = self._db.execute(
                "INSERT INTO runs (label, time, added, skipped) VALUES (?, ?, 0, 0)",
                (run_label, started),
            ).lastrowid
            assert run is not None  # an INSERT's row
            (first,) = self._db.execute(
                "SELECT coalesce(max(entry), 0) + 1 FROM articles"
            ).fetchone()
            articles = iter(kept)
            known: set[tuple[str, bytes]] = set()  # (id, content) added by this run
            while chunk := list(itertools.islice(articles, _ACCEPT_CHUNK)):
                seen += len(chunk)
                fresh, chunk_reused = self._fresh(chunk, known)
                reused += chunk_reused
                added += self._insert(fresh, first + added, run)
            self._db.execute(
                "UPDATE runs SET added = ?, skipped = ?, id_reused = ? WHERE run = ?",
                (added, seen - added, reused, run),
            )
            forgotten = 0
            if learned is not None:
                seen_at = self._learning_run()
                self._db.executemany(
                    "INSERT OR REPLACE INTO learned (site, kind, hash, pages, keys, anchored, "
                    "anchored_keys, inside, length, run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ((storable(row[0]), *row[1:], seen_at) for row in learned.rows()),
                )
                if forget_runs > 0:
                    forgotten = self._forget(seen_at, forget_runs)
            self._db.execute("COMMIT")
        except BaseException as err:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise CommitError(self.path, str(err)) from err
            raise
        self.accepted = RunInfo(
            label=run_label, time=started, added=added, skipped=seen - added, id_reused=reused
        )
        self.forgotten = forgotten
        return added

    def _learning_run(self) -> int:
        """This run's number among the runs that learned, which the learned rows are
        stamped with and forgotten by: a run that does not learn (``--no-learn``, ``index
        add``) sees no line, so it ages none. Counted in ``meta``; an index without the
        count (whose rows older code stamped with the run's own number) counts on from
        the last run that learned."""
        number = self._learning_runs() + 1
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('learning_runs', ?)", (str(number),)
        )
        return number

    def _learning_runs(self) -> int:
        """How many runs learned (see ``_learning_run``)."""
        if self.format < 5:
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key = 'learning_runs'").fetchone()
        if row is None:
            row = self._db.execute("SELECT coalesce(max(run), 0) FROM learned").fetchone()
        return int(row[0])

    def _forget(self, run: int, forget_runs: int) -> int:
        """Drop the lines seen on one article that no run that learned has seen in the
        last ``forget_runs`` of them (``run``: this one's number among them), of one
        slice of the lines' hashes (the ``run % forget_runs``-th of ``forget_runs``, read
        through ``learned_lines``): so each commit reads a fraction of the lines, not all
        (a million: 4 s; a thirtieth of them, 0.2 s), and a line goes between
        ``forget_runs`` and twice as many such runs after it was last seen. Returns how
        many went."""
        width = 2**64 // forget_runs
        low = -(2**63) + (run % forget_runs) * width
        high = low + width - 1 if run % forget_runs < forget_runs - 1 else 2**63 - 1
        deleted: int = self._db.execute(
            "DELETE FROM learned WHERE kind = ? AND hash BETWEEN ? AND ? AND pages = 1 "
            "AND run <= ?",
            (LINE_ROW, low, high, run - forget_runs),
        ).rowcount
        return deleted

    def _fresh(
        self, chunk: list[Accepted], known: set[tuple[str, bytes]]
    ) -> tuple[list[tuple[Accepted, str, bytes, bytes]], int]:
        """The articles of a chunk the index does not hold yet (nor ``known``: earlier
        chunks of this run), checked, with their id as stored, content hash and encoded
        shingle set; and how many of them reuse an id the index holds."""
        ids = [storable(article.id) for article in chunk]
        contents = [content_hash(article.shingles) for article in chunk]
        indexed = self._present(ids) | known
        ids_indexed = {article_id for article_id, _ in indexed}
        fresh = []
        reused = 0
        for article, article_id, content in zip(chunk, ids, contents, strict=True):
            keys, shingles = article.band_keys, article.shingles
            if keys.shape != (self._bands,):
                raise ValueError(
                    f"{article.id}: band keys of shape {keys.shape}, not ({self._bands},)"
                )
            if len(shingles) > 1 and not bool(np.all(shingles[1:] > shingles[:-1])):
                raise ValueError(f"{article.id}: shingles must be sorted and unique")
            if (article_id, content) in indexed:
                continue
            indexed.add((article_id, content))
            known.add((article_id, content))
            if article_id in ids_indexed:
                reused += 1
            ids_indexed.add(article_id)
            fresh.append((article, article_id, content, encode_shingles(shingles)))
        return fresh, reused

    def _insert(
        self, fresh: list[tuple[Accepted, str, bytes, bytes]], first: int, run: int | None
    ) -> int:
        """Write articles as entries ``first``, ``first + 1``, ...; return how many."""
        entries = range(first, first + len(fresh))
        self._db.executemany(
            "INSERT INTO articles (entry, id, content, title, source, run) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    entry,
                    article_id,
                    content,
                    None if article.title is None else storable(article.title),
                    storable(article.source),
                    run,
                )
                for entry, (article, article_id, content, _) in zip(entries, fresh, strict=True)
            ),
        )
        self._db.executemany(
            "INSERT INTO shingles (entry, data) VALUES (?, ?)",
            ((entry, data) for entry, (*_, data) in zip(entries, fresh, strict=True)),
        )
        self._db.executemany(
            "INSERT INTO bands (key, entry) VALUES (?, ?)",
            self._band_rows([(article, data) for article, *_, data in fresh], first),
        )
        return len(fresh)

    def _present(self, ids: list[str]) -> set[tuple[str, bytes]]:
        """(id, content) of the indexed articles with one of these ids."""
        present: set[tuple[str, bytes]] = set()
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            present.update(
                self._db.execute(f"SELECT id, content FROM articles WHERE id IN ({marks})", chunk)
            )
        return present

    def _band_rows(
        self, fresh: list[tuple[Accepted, bytes]], first: int
    ) -> Iterator[tuple[int, int]]:
        """(key, entry) rows sorted by key, so inserting them visits each B-tree leaf once.

        An article without shingles gets none: dedup never looks such an article up, and
        all of them share the keys of the empty signature, which would make one bucket
        that grows with every run.
        """
        numbered = [
            (first + n, article.band_keys) for n, (article, data) in enumerate(fresh) if data
        ]
        if not numbered:
            return iter(())
        keys = np.stack([k for _, k in numbered]).view(np.int64).ravel()
        entries = np.repeat(np.array([entry for entry, _ in numbered]), self._bands)
        order = np.argsort(keys, kind="stable")
        return zip(keys[order].tolist(), entries[order].tolist(), strict=True)

    @_reads
    def learned_evidence(self, wanted: Wanted | None = None) -> Evidence:
        """What learning saw in earlier runs (none in an index of an older format): every
        row, or those ``wanted`` asks for (``learn.Prior``), looked up by key, not read
        from the millions an index of many pages holds. An index that holds none (a first
        night's) is not asked."""
        if self.format < 3:
            return Evidence.empty()
        with self._snapshot():
            if self._db.execute("SELECT 1 FROM learned LIMIT 1").fetchone() is None:
                return Evidence.empty()
            if wanted is None:
                rows = self._db.execute(
                    f"SELECT {_EVIDENCE} FROM learned WHERE kind != ? ORDER BY site, kind, hash",
                    (MARK_ROW,),
                ).fetchall()
                marks = Marks.of_rows(
                    self._db.execute(
                        f"SELECT {_MARK} FROM learned WHERE kind = ? ORDER BY site, hash",
                        (MARK_ROW,),
                    )
                )
                return Evidence.of_rows(rows, marks)
            site_row = f"SELECT {_EVIDENCE} FROM learned WHERE site = ? AND kind = ? AND hash = 0"
            rows = [
                *(
                    row
                    for site in wanted.sites
                    for row in self._db.execute(site_row, (site, SITE_ROW))
                ),
                *self._pairs(_EVIDENCE, TAIL_ROW, wanted.sites, wanted.tails),
                *self._lines(wanted.lines),
            ]
            rows.sort(key=lambda row: (row[0], row[1], row[2]))
            marks = Marks.of_rows(self._pairs(_MARK, MARK_ROW, wanted.sites, wanted.marks))
            return Evidence.of_rows(rows, marks)

    def _pairs(
        self,
        columns: str,
        kind: int,
        sites: list[str],
        pairs: tuple[np.ndarray, np.ndarray],
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of a kind of these (site number, hash) pairs (``learn.Wanted``) that
        the index holds, ``_IN_CHUNK`` at a time, each one descent of the primary key."""
        site_of, hashes = pairs
        bounds = np.searchsorted(site_of, np.arange(len(sites) + 1))
        for number, site in enumerate(sites):
            of_site = hashes[bounds[number] : bounds[number + 1]]
            for first in range(0, len(of_site), _IN_CHUNK):
                chunk = of_site[first : first + _IN_CHUNK].tolist()
                yield from self._db.execute(
                    f"SELECT {columns} FROM learned WHERE site = ? AND kind = ? "
                    f"AND hash IN ({', '.join('?' * len(chunk))}) ORDER BY hash",
                    (site, kind, *chunk),
                )

    def _lines(self, hashes: np.ndarray) -> Iterator[tuple[Any, ...]]:
        """The learned lines of any site with these hashes: looked up by the
        ``learned_lines`` index (format 4 on) when the input has fewer lines than the
        index, else (and in an index of format 3, read as it is) all read and sifted."""
        count = "SELECT count(*) FROM learned WHERE kind = ?"
        held = self._db.execute(count, (LINE_ROW,)).fetchone()[0] if self.format >= 4 else 0
        if self.format < 4 or len(hashes) > held:
            every = self._db.execute(f"SELECT {_EVIDENCE} FROM learned WHERE kind = ?", (LINE_ROW,))
            while chunk := list(itertools.islice(every, _LOOKUP_ROWS)):
                found = np.isin(np.array([row[2] for row in chunk], dtype=np.int64), hashes)
                yield from itertools.compress(chunk, found.tolist())
            return
        for first in range(0, len(hashes), _IN_CHUNK):
            chunk = hashes[first : first + _IN_CHUNK].tolist()
            yield from self._db.execute(
                f"SELECT {_EVIDENCE} FROM learned WHERE kind = ? "
                f"AND hash IN ({', '.join('?' * len(chunk))})",
                (LINE_ROW, *chunk),
            )

    # -- inspection -----------------------------------------------------------------------

    @_reads
    def articles(self) -> int:
        """How many articles the index holds (what a run asks of it: ``info`` counts the
        learned evidence too, seconds on a large index)."""
        count: int = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
        return count

    @_reads
    def info(self) -> IndexInfo:
        """What the index holds: article count, runs, settings, learned evidence, file
        size, path. Read in one transaction, so the figures agree even while a run
        commits."""
        reused = "id_reused" if self.format >= 2 else "0"
        with self._snapshot():
            articles = self.articles()
            runs = [
                RunInfo(label=label, time=at, added=added, skipped=skipped, id_reused=ids)
                for label, at, added, skipped, ids in self._db.execute(
                    f"SELECT label, time, added, skipped, {reused} FROM runs ORDER BY run"
                )
            ]
            rows = self._learned_rows()
            learning_runs = self._learning_runs()
            ages = self._lines_seen_once_by_age(learning_runs)
        return {
            "path": str(self.path),
            "format": self.format,
            "articles": articles,
            "runs": runs,
            "settings": self.settings,
            "learned": {
                "sites": rows.get(SITE_ROW, 0),
                "lines": rows.get(LINE_ROW, 0),
                "closing_sentences": rows.get(TAIL_ROW, 0),
                "marks": rows.get(MARK_ROW, 0),
                "learning_runs": learning_runs,
                "lines_seen_once_by_age": ages,
            },
            "file_bytes": self.path.stat().st_size,
        }

    def _lines_seen_once_by_age(self, learning_runs: int) -> dict[str, int]:
        if self.format < 5:  # rows without the run that last saw them
            return {}
        return {
            str(age): lines
            for age, lines in self._db.execute(
                "SELECT ? - run AS age, count(*) FROM learned WHERE kind = ? AND pages = 1 "
                "GROUP BY age ORDER BY age",
                (learning_runs, LINE_ROW),
            )
        }

    def _learned_rows(self) -> dict[int, int]:
        """Rows of learned evidence by kind; of the marks, not the rows counting each
        site's pages (mark 0)."""
        if self.format < 3:
            return {}
        return {
            kind: rows - site_pages
            for kind, rows, site_pages in self._db.execute(
                "SELECT kind, count(*), sum(hash = 0 AND kind = ?) FROM learned GROUP BY kind",
                (MARK_ROW,),
            )
        }

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        if self._db.in_transaction:  # a new index, laid out but not committed yet
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def elsewhere(self) -> IndexAt:
        """This index as a task in another process reads what learning saw in it."""
        return IndexAt(None if self._created else str(self.path.resolve()), self.settings)

    def verify(self) -> list[str]:
        """Problems found (empty: healthy); see ``storage.verify.IndexCheck``."""
        return IndexCheck(self._db, self.format, self.settings, self._bands).problems()

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Roll back anything not accepted, close the file and release the lock. A new
        index that never accepted anything is removed again: a failed first run leaves
        nothing behind."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.close()
            if self._created and not has_index_file(self.path):
                self.path.unlink(missing_ok=True)
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class IndexAt:
    """An index by its path (``None``: one this run lays out, empty until it commits),
    for a task in another process to read what learning saw in it (read-only, not
    waiting: the run holds the index's lock)."""

    path: str | None
    settings: dict[str, object]

    def learned_evidence(self, wanted: Wanted | None = None) -> Evidence:
        if self.path is None:
            return Evidence.empty()
        with IndexStore.open(self.path, self.settings, readonly=True, take_turn=False) as store:
            return store.learned_evidence(wanted)
