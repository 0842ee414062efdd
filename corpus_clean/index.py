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
* One run at a time. An exclusive ``flock`` on ``PATH.lock``, taken at open and held
  until close, makes a second run wait (bounded) and then fail, rather than deduplicate
  against an index the first is about to change. The kernel drops the lock when its
  holder dies, so a killed run never leaves a stale lock behind.
* Flat memory. A lookup joins a temporary table of query keys against the band table's
  primary key; nothing is loaded whole, and SQLite's page cache is capped.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import TypedDict

import numpy as np

from .dedup import Accepted
from .errors import CorpusCleanError
from .options import lsh_bands
from .shingles import U64, Shingles

#: "ccix" in the SQLite header: tells our files from other SQLite databases.
APPLICATION_ID = 0x63636978
#: Bumped whenever the schema or the shingle encoding changes.
FORMAT_VERSION = 1
#: SQLite page cache, in KiB: enough for the upper levels of the band B-tree, so a lookup
#: costs about one leaf read per key, and fixed whatever the size of the index.
CACHE_KIB = 64 * 1024
#: Articles ``accept`` reads, checks and writes at a time: bounds its memory, and is large
#: enough that each chunk's band rows, sorted, share B-tree leaves.
_ACCEPT_CHUNK = 10_000
#: Ids per ``IN (...)`` list: below SQLite's oldest limit on query parameters (999).
_ID_CHUNK = 900
#: Problems of one kind that ``verify`` lists before it only counts the rest.
_SHOWN_PROBLEMS = 5

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE runs (
    run INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    time TEXT NOT NULL,
    added INTEGER NOT NULL,
    skipped INTEGER NOT NULL
);
CREATE TABLE articles (
    entry INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT,
    source TEXT NOT NULL,
    run INTEGER NOT NULL REFERENCES runs (run)
);
-- Apart from articles, so that scanning or counting articles does not read them.
CREATE TABLE shingles (entry INTEGER PRIMARY KEY, data BLOB NOT NULL);
-- One B-tree keyed by band key: a lookup is one descent, and a run's inserts, sorted by
-- key, touch each leaf once. Keys are uint64 stored as int64 (same bits).
CREATE TABLE bands (
    key INTEGER NOT NULL,
    entry INTEGER NOT NULL,
    PRIMARY KEY (key, entry)
) WITHOUT ROWID;
"""


class IndexStoreError(CorpusCleanError):
    """An index that cannot be used as asked; the message says how to fix it."""


class RunInfo(TypedDict):
    """One run that added to the index: its label, when it committed, what it did."""

    label: str
    time: str
    added: int
    #: Kept articles not added because their id was already in the index.
    skipped: int


class IndexInfo(TypedDict):
    """What ``IndexStore.info`` reports (``corpus-clean index info`` prints it as JSON)."""

    path: str
    format: int
    articles: int
    runs: list[RunInfo]
    settings: dict[str, object]
    file_bytes: int


def encode_shingles(values: Shingles) -> bytes:
    """A sorted shingle set as bytes: width, first value, then the gaps in ``width`` bytes.

    Gaps between sorted 32-bit hashes of a few hundred shingles fit in 3 bytes, so this
    stores a typical article in ~3 bytes per shingle instead of 4 (the set is most of the
    file). Gaps are taken modulo 2**32, so any array round-trips exactly.
    """
    if not len(values):
        return b""
    gaps = np.diff(values).astype("<u4", copy=False)
    width = max(1, (int(gaps.max()).bit_length() + 7) // 8) if len(gaps) else 1
    body = gaps.view(np.uint8).reshape(-1, 4)[:, :width]
    return bytes([width]) + int(values[0]).to_bytes(4, "little") + body.tobytes()


def decode_shingles(data: bytes) -> Shingles:
    """The inverse of ``encode_shingles``; ``ValueError`` if ``data`` cannot be one."""
    if not data:
        return np.zeros(0, dtype=np.uint32)
    width = data[0]
    body = np.frombuffer(data, dtype=np.uint8, offset=min(5, len(data)))
    if not 1 <= width <= 4 or len(data) < 5 or len(body) % width:
        raise ValueError(f"{len(data)} bytes of width {width} are not an encoded shingle set")
    gaps = np.zeros((len(body) // width, 4), dtype=np.uint8)
    gaps[:, :width] = body.reshape(-1, width)
    values = np.empty(len(gaps) + 1, dtype=np.uint32)
    values[0] = int.from_bytes(data[1:5], "little")
    np.cumsum(gaps.view("<u4").ravel(), out=values[1:])
    values[1:] += values[0]
    return values


def _normalized(settings: dict[str, object]) -> dict[str, object]:
    """Settings as they read back from the file, so that a tuple equals a list."""
    loaded: dict[str, object] = json.loads(json.dumps(settings, sort_keys=True))
    return loaded


def _settings_hint(stored: dict[str, object]) -> str:
    """How to re-run with the index's settings, in the CLI's terms where we can say it."""
    num_perm, bands, rows = stored.get("num_perm"), stored.get("bands"), stored.get("rows")
    if not all(isinstance(v, int) for v in (num_perm, bands, rows)):
        return "re-run with the options the index was built with"
    assert isinstance(num_perm, int)
    thresholds = [t / 100 for t in range(5, 101) if lsh_bands(t / 100, num_perm) == (bands, rows)]
    flags = f"--num-perm {num_perm}"
    if thresholds:
        low, high = thresholds[0], thresholds[-1]
        example = 0.8 if low <= 0.8 <= high else low
        span = f"{low:g}" if low == high else f"from {low:g} to {high:g}, e.g. {example:g}"
        flags += f" and a --threshold {span}"
    return f"re-run with the index's settings ({flags}; --seed {stored.get('seed')})"


class _Lock:
    """An exclusive (or, for read-only use, shared) ``flock`` on ``PATH.lock``.

    The file stays beside the index: removing it while a run holds the lock would let the
    next run lock a new file and go in as well.
    """

    def __init__(self, fd: int, *, shared: bool) -> None:
        self._fd = fd
        self._shared = shared

    @classmethod
    def acquire(cls, index: Path, wait_seconds: float, *, shared: bool) -> _Lock:
        path = Path(f"{index}.lock")
        try:
            fd = os.open(path, (os.O_RDONLY if shared else os.O_RDWR) | os.O_CREAT, 0o644)
        except OSError as err:
            raise IndexStoreError(
                f"cannot open the lock file {path} ({err.strerror}): the folder of the index "
                "must exist and, to change the index, be writable"
            ) from err
        deadline = time.monotonic() + wait_seconds
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    holder = _live_pid(os.pread(fd, 32, 0))
                    os.close(fd)
                    by = f" (process {holder})" if holder else ""
                    raise IndexStoreError(
                        f"{index} is in use by another corpus-clean run{by}; waited "
                        f"{wait_seconds:g} s for it. Runs on one index must take turns: "
                        "re-run when that one has finished"
                    ) from None
                time.sleep(min(0.05, left))
        if not shared:  # for the message above; the lock itself is the kernel's
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return cls(fd, shared=shared)

    def release(self) -> None:
        if not self._shared:
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor drops the flock


def _live_pid(data: bytes) -> int | None:
    """The pid a writer left in the lock file, if that process still runs (a killed
    writer cannot clear it)."""
    try:
        pid = int(data.decode("ascii").strip())
        os.kill(pid, 0)
    except (ValueError, UnicodeDecodeError, ProcessLookupError):
        return None
    except PermissionError:  # alive, but another user's
        return pid
    return pid


def _no_index(path: Path) -> IndexStoreError:
    return IndexStoreError(
        f"no index at {path}: check the path, or start one with "
        f"'corpus-clean run ... --index {path}'"
    )


def _has_index_file(path: Path) -> bool:
    """Whether ``path`` holds something; an empty file is what a first run killed before
    its commit leaves behind, and counts as no index."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


class IndexStore:
    """Articles accepted by earlier runs; satisfies ``dedup.AcceptedIndex``.

    Open it with ``IndexStore.open`` and use it as a context manager: the lock is held
    until ``close``.
    """

    def __init__(
        self,
        path: Path,
        db: sqlite3.Connection,
        lock: _Lock,
        settings: dict[str, object],
        *,
        created: bool,
        readonly: bool,
    ) -> None:
        self.path = path
        self.settings = settings
        self._db = db
        self._lock: _Lock | None = lock
        self._created = created
        self._readonly = readonly
        bands = settings["bands"]
        assert isinstance(bands, int), "checked when the settings were read"
        self._bands = bands

    @classmethod
    def open(
        cls,
        path: str | Path,
        settings: dict[str, object] | None,
        *,
        create: bool = True,
        wait_seconds: float = 30.0,
        readonly: bool = False,
    ) -> IndexStore:
        """Open the index at ``path``, waiting up to ``wait_seconds`` for another run.

        ``settings`` (``Fingerprinter.settings()``) must equal the index's, else
        ``IndexStoreError`` lists what differs and nothing is changed; ``None`` takes the
        index's own (for info and verify). A missing index is created when ``create``;
        it reaches the disk only with the first ``accept``, so a failed first run leaves
        no file. ``readonly`` takes a shared lock, so several readers can run at once.
        """
        path = Path(path)
        if not _has_index_file(path) and (readonly or not create or settings is None):
            raise _no_index(path)
        lock = _Lock.acquire(path, wait_seconds, shared=readonly)
        created = False
        try:
            db = sqlite3.connect(path, timeout=wait_seconds, isolation_level=None)
            try:
                stored = cls._read_settings(path, db)
                if stored is None:  # an empty file, or one a killed first run left
                    if readonly or not create or settings is None:
                        raise _no_index(path)
                    stored, created = _normalized(settings), True
                elif settings is not None:
                    cls._check_settings(path, stored, _normalized(settings))
                db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                db.execute("PRAGMA synchronous = FULL")
                if created:
                    cls._create(db, stored)
                db.execute("CREATE TEMP TABLE query (key INTEGER NOT NULL, row INTEGER NOT NULL)")
            except BaseException:
                db.close()
                if created and not _has_index_file(path):
                    path.unlink(missing_ok=True)
                raise
        except BaseException:
            lock.release()
            raise
        return cls(path, db, lock, stored, created=created, readonly=readonly)

    @staticmethod
    def _read_settings(path: Path, db: sqlite3.Connection) -> dict[str, object] | None:
        """The index's settings (None for an empty database), after checking that the file
        is an index we can read. Reading first rolls back what a killed run left."""
        fix = "pass the path of a corpus-clean index, or a new path to start one"
        try:
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if application_id != APPLICATION_ID:
                if db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0:
                    return None
                raise IndexStoreError(
                    f"{path} is an SQLite file but not a corpus-clean index; {fix}"
                )
            if version != FORMAT_VERSION:
                raise IndexStoreError(
                    f"{path} is an index of format {version}; this corpus-clean reads format "
                    f"{FORMAT_VERSION}. Use the corpus-clean that made it, or start a new index"
                )
            row = db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        except sqlite3.DatabaseError as err:
            raise IndexStoreError(f"{path} cannot be read as an index ({err}); {fix}") from err
        loaded = json.loads(row[0]) if row is not None else None
        if (
            not isinstance(loaded, dict)
            or not isinstance(loaded.get("bands"), int)
            or loaded["bands"] < 1
        ):
            raise IndexStoreError(
                f"{path} is damaged: it records no usable settings. Start a new index"
            )
        return loaded

    @staticmethod
    def _check_settings(path: Path, stored: dict[str, object], wanted: dict[str, object]) -> None:
        differences = [
            f"  {key}: {stored.get(key, '(none)')} in the index, {wanted.get(key, '(none)')} now"
            for key in sorted(stored.keys() | wanted.keys())
            if stored.get(key) != wanted.get(key)
        ]
        if differences:
            raise IndexStoreError(
                f"{path} was built with other fingerprint settings, so its articles cannot "
                "be compared with this run's:\n" + "\n".join(differences) + "\n"
                f"To proceed, {_settings_hint(stored)}, or start a new index with another "
                "--index path. The index was not changed."
            )

    @staticmethod
    def _create(db: sqlite3.Connection, settings: dict[str, object]) -> None:
        """Lay out a new index in a transaction that the first ``accept`` commits (and
        ``close`` rolls back): until then the file stays empty."""
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("settings", json.dumps(settings, sort_keys=True)),
                ("created", datetime.now(UTC).isoformat(timespec="seconds")),
            ],
        )

    # -- lookup (dedup.AcceptedIndex) ---------------------------------------------------

    def candidates(self, band_keys: U64) -> list[list[int]]:
        """For each row of ``(n, bands)`` band keys, the entries sharing at least one key,
        sorted and unique. One query for the whole batch; keys go in sorted, so the join
        walks the band B-tree in order."""
        keys = np.ascontiguousarray(band_keys, dtype=np.uint64)
        if keys.ndim != 2 or keys.shape[1] != self._bands:
            raise ValueError(f"band keys must have shape (n, {self._bands}), not {keys.shape}")
        found: list[list[int]] = [[] for _ in range(len(keys))]
        if not keys.size:
            return found
        flat = keys.view(np.int64).ravel()
        rows = np.repeat(np.arange(len(keys)), keys.shape[1])
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
            pairs = self._db.execute(
                "SELECT DISTINCT q.row, b.entry FROM temp.query AS q CROSS JOIN bands AS b "
                "ON b.key = q.key ORDER BY q.row, b.entry"
            ).fetchall()
        finally:
            self._db.execute("ROLLBACK TO lookup")
            self._db.execute("RELEASE lookup")
        for row, entry in pairs:
            found[row].append(entry)
        return found

    def shingles(self, entry: int) -> Shingles:
        """The sorted unique shingle hashes of an entry, as ``dedup.Fingerprints`` has them."""
        row = self._db.execute("SELECT data FROM shingles WHERE entry = ?", (entry,)).fetchone()
        if row is None:
            raise KeyError(entry)
        return decode_shingles(row[0])

    def article_id(self, entry: int) -> str:
        row = self._db.execute("SELECT id FROM articles WHERE entry = ?", (entry,)).fetchone()
        if row is None:
            raise KeyError(entry)
        article_id: str = row[0]
        return article_id

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

    # -- update ---------------------------------------------------------------------------

    def accept(self, kept: Iterable[Accepted], run_label: str) -> int:
        """Add a run's kept articles (``pipeline.Result.kept``, or any iterable: it is read
        in chunks, so a generator keeps memory flat) in one transaction; return how many
        were added.

        An article whose id is already in the index is skipped, not an error: re-running
        a scrape must not fail. Skips are counted in the run's row (see ``info``). Any
        failure rolls the whole run back; an SQLite one raises ``IndexStoreError``.
        """
        if self._readonly:
            raise IndexStoreError(f"{self.path} was opened read-only; open it to write")
        started = datetime.now(UTC).isoformat(timespec="seconds")
        added = seen = 0
        try:
            if not self._db.in_transaction:
                self._db.execute("BEGIN IMMEDIATE")
            run = self._db.execute(
                "INSERT INTO runs (label, time, added, skipped) VALUES (?, ?, 0, 0)",
                (run_label, started),
            ).lastrowid
            (first,) = self._db.execute(
                "SELECT coalesce(max(entry), 0) + 1 FROM articles"
            ).fetchone()
            articles = iter(kept)
            while chunk := list(islice(articles, _ACCEPT_CHUNK)):
                seen += len(chunk)
                added += self._insert(self._fresh(chunk), first + added, run)
            self._db.execute(
                "UPDATE runs SET added = ?, skipped = ? WHERE run = ?", (added, seen - added, run)
            )
            self._db.execute("COMMIT")
        except BaseException as err:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise IndexStoreError(
                    f"could not add this run's articles to {self.path} ({err}); the index is "
                    "unchanged. Fix the cause and re-run"
                ) from err
            raise
        return added

    def _fresh(self, chunk: list[Accepted]) -> list[tuple[Accepted, bytes]]:
        """The articles of a chunk whose ids the index does not hold yet (earlier chunks of
        this run included), checked and with their shingle sets encoded."""
        present = self._present([article.id for article in chunk])
        fresh = []
        for article in chunk:
            keys, shingles = article.band_keys, article.shingles
            if keys.shape != (self._bands,):
                raise ValueError(
                    f"{article.id}: band keys of shape {keys.shape}, not ({self._bands},)"
                )
            if len(shingles) > 1 and not bool(np.all(shingles[1:] > shingles[:-1])):
                raise ValueError(f"{article.id}: shingles must be sorted and unique")
            if article.id not in present:
                present.add(article.id)
                fresh.append((article, encode_shingles(shingles)))
        return fresh

    def _insert(self, fresh: list[tuple[Accepted, bytes]], first: int, run: int | None) -> int:
        """Write articles as entries ``first``, ``first + 1``, ...; return how many."""
        entries = range(first, first + len(fresh))
        self._db.executemany(
            "INSERT INTO articles (entry, id, title, source, run) VALUES (?, ?, ?, ?, ?)",
            (
                (entry, article.id, article.title, article.source, run)
                for entry, (article, _) in zip(entries, fresh, strict=True)
            ),
        )
        self._db.executemany(
            "INSERT INTO shingles (entry, data) VALUES (?, ?)",
            ((entry, data) for entry, (_, data) in zip(entries, fresh, strict=True)),
        )
        self._db.executemany(
            "INSERT INTO bands (key, entry) VALUES (?, ?)", self._band_rows(fresh, first)
        )
        return len(fresh)

    def _present(self, ids: list[str]) -> set[str]:
        """Which of these ids the index already holds."""
        present: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ", ".join("?" * len(chunk))
            present.update(
                row[0]
                for row in self._db.execute(f"SELECT id FROM articles WHERE id IN ({marks})", chunk)
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

    # -- inspection -----------------------------------------------------------------------

    def info(self) -> IndexInfo:
        """What the index holds: article count, runs, settings, file size, path."""
        articles = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
        runs = [
            RunInfo(label=label, time=at, added=added, skipped=skipped)
            for label, at, added, skipped in self._db.execute(
                "SELECT label, time, added, skipped FROM runs ORDER BY run"
            )
        ]
        return {
            "path": str(self.path),
            "format": FORMAT_VERSION,
            "articles": articles,
            "runs": runs,
            "settings": self.settings,
            "file_bytes": self.path.stat().st_size,
        }

    def verify(self) -> list[str]:
        """Problems found (empty: healthy). Reads the whole file, streaming: SQLite's own
        integrity check, then that every article has its band rows and a shingle set that
        decodes to sorted unique hashes, and that nothing refers to a missing row."""
        problems = [
            f"SQLite integrity check: {row[0]}"
            for row in self._db.execute("PRAGMA integrity_check")
            if row[0] != "ok"
        ]
        problems += self._settings_problems()
        problems += self._article_problems()
        orphans = {
            "shingle sets": "SELECT count(*) FROM shingles "
            "WHERE entry NOT IN (SELECT entry FROM articles)",
            "articles of unknown runs": "SELECT count(*) FROM articles "
            "WHERE run NOT IN (SELECT run FROM runs)",
        }
        for what, query in orphans.items():
            if count := self._db.execute(query).fetchone()[0]:
                problems.append(f"{count} {what} without their row")
        articles, added = self._db.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT coalesce(sum(added), 0) FROM runs)"
        ).fetchone()
        if articles != added:
            problems.append(f"{articles} articles, but the runs record {added} added")
        return problems

    def _settings_problems(self) -> list[str]:
        required = (
            "num_perm",
            "bands",
            "rows",
            "seed",
            "shingle",
            "shingle_size",
            "hashing",
            "tokenizer_version",
        )
        missing = [key for key in required if key not in self.settings]
        return [f"settings lack {', '.join(missing)}"] if missing else []

    def _article_problems(self) -> list[str]:
        """Walk articles (with their shingle sets) and band-row counts, both in entry order."""
        found: dict[str, list[str]] = {}

        def note(kind: str, detail: str) -> None:
            found.setdefault(kind, []).append(detail)

        counts = self._db.execute("SELECT entry, count(*) FROM bands GROUP BY entry ORDER BY entry")
        pending = next(counts, None)
        for entry, data in self._db.execute(
            "SELECT a.entry, s.data FROM articles AS a "
            "LEFT JOIN shingles AS s ON s.entry = a.entry ORDER BY a.entry"
        ):
            while pending is not None and pending[0] < entry:
                note("band rows of no article", str(pending[0]))
                pending = next(counts, None)
            band_rows = 0
            if pending is not None and pending[0] == entry:
                band_rows = pending[1]
                pending = next(counts, None)
            if data is None:
                note("articles without a shingle set", str(entry))
                continue
            try:
                values = decode_shingles(data)
            except ValueError as err:
                note("shingle sets that do not decode", f"{entry} ({err})")
                continue
            if len(values) > 1 and not bool(np.all(values[1:] > values[:-1])):
                note("shingle sets not sorted and unique", str(entry))
            expected = self._bands if len(values) else 0
            if band_rows != expected:
                note(f"articles without {expected} band rows", f"{entry} has {band_rows}")
        while pending is not None:
            note("band rows of no article", str(pending[0]))
            pending = next(counts, None)
        problems = []
        for kind, details in found.items():
            shown = ", ".join(details[:_SHOWN_PROBLEMS])
            more = (
                f" and {len(details) - _SHOWN_PROBLEMS} more"
                if len(details) > _SHOWN_PROBLEMS
                else ""
            )
            problems.append(f"{len(details)} {kind}: entry {shown}{more}")
        return problems

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Roll back anything not accepted, close the file and release the lock. A new
        index that never accepted anything is removed again: a failed first run leaves
        nothing behind."""
        if self._lock is None:
            return
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.close()
            if self._created and not _has_index_file(self.path):
                self.path.unlink(missing_ok=True)
        finally:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
