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
import fcntl
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec, TypedDict, TypeVar

import numpy as np
import xxhash

from .dedup import Accepted
from .errors import CorpusCleanError
from .options import lsh_bands
from .shingles import U64, Shingles
from .stages.learn import Evidence

#: "ccix" in the SQLite header: tells our files from other SQLite databases.
APPLICATION_ID = 0x63636978
#: Bumped whenever the schema or the shingle encoding changes. Formats 1 (ids unique,
#: no content column) and 2 (no learned boilerplate) are read as they are and migrated
#: when opened for writing.
FORMAT_VERSION = 3
_MIGRATED_FORMATS = (1, 2)
#: SQLite page cache, in KiB: enough for the upper levels of the band B-tree, so a lookup
#: costs about one leaf read per key, and fixed whatever the size of the index.
CACHE_KIB = 64 * 1024
#: Articles ``accept`` reads, checks and writes at a time: bounds its memory, and is large
#: enough that each chunk's band rows, sorted, share B-tree leaves.
_ACCEPT_CHUNK = 10_000
#: Articles ``candidates`` looks up in one query: bounds the query's memory (a few MB).
_LOOKUP_ROWS = 20_000
#: Ids per ``IN (...)`` list: below SQLite's oldest limit on query parameters (999).
_ID_CHUNK = 900
#: Problems of one kind that ``verify`` lists before it only counts the rest.
_SHOWN_PROBLEMS = 5

_ARTICLES = """
CREATE TABLE {name} (
    entry INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    -- xxh3-128 of the shingle set (see content_hash): with id, what identifies an article.
    content BLOB NOT NULL,
    title TEXT,
    source TEXT NOT NULL,
    run INTEGER NOT NULL REFERENCES runs (run)
)"""
#: Identity is looked up by id, which fetches the content too: no query needs an index on it.
_ARTICLE_INDEXES = """
CREATE INDEX articles_by_id ON articles (id);
"""
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE runs (
    run INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    time TEXT NOT NULL,
    added INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    id_reused INTEGER NOT NULL DEFAULT 0
);
{_ARTICLES.format(name="articles")};
{_ARTICLE_INDEXES}
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
#: What learning saw of each site's recurring lines and closing sentences, and of each
#: site (``learn.Evidence``; kind 0 line, 1 closing sentence, 2 the site), so that a run
#: counts what earlier runs saw. Hashes are uint64 stored as int64 (same bits).
_LEARNED = """
CREATE TABLE learned (
    site TEXT NOT NULL,
    kind INTEGER NOT NULL,
    hash INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    keys BLOB NOT NULL,
    anchored INTEGER NOT NULL,
    anchored_keys BLOB NOT NULL,
    inside INTEGER NOT NULL,
    length INTEGER NOT NULL,
    PRIMARY KEY (site, kind, hash)
) WITHOUT ROWID"""
_SCHEMA += _LEARNED + ";\n"
_TABLES = ("meta", "runs", "articles", "shingles", "bands")


def _tables(format_version: int) -> tuple[str, ...]:
    return (*_TABLES, "learned") if format_version >= 3 else _TABLES


#: The schema objects of each format beyond its tables.
_INDEXES = {
    1: ("sqlite_autoindex_articles_1",),
    2: ("articles_by_id",),
    3: ("articles_by_id",),
}


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


class RunInfo(TypedDict):
    """One run that added to the index: its label, when it committed, what it did."""

    label: str
    time: str
    added: int
    #: Kept articles not added because their id and content were already in the index.
    skipped: int
    #: Articles added whose id the index already held for other content.
    id_reused: int


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


def content_hash(values: Shingles) -> bytes:
    """What identifies an article's content in the index: 16 bytes of xxh3-128 over its
    sorted shingle set."""
    return xxhash.xxh3_128_digest(np.ascontiguousarray(values, dtype="<u4").tobytes())


def _stored_content_hash(data: object) -> bytes:
    """``content_hash`` of an encoded shingle set (an SQL function for the migration)."""
    if not isinstance(data, bytes):
        raise ValueError("not an encoded shingle set")
    return content_hash(decode_shingles(data))


def _storable(text: str) -> str:
    """Text SQLite can store: UTF-8 has no lone surrogates, which a ``\\udc80`` escape in
    JSON or an undecodable byte of a file name leaves in a ``str``; they are kept as
    their backslash escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


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
    flags += f"; --seed {stored.get('seed')}"
    if "containment_keys" not in stored:  # built before containment, or without it
        flags += "; --containment 0"
    return f"re-run with the index's settings ({flags})"


class _Lock:
    """An exclusive (or, for read-only use, shared) ``flock`` on the index file itself."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        _HELD_LOCKS.add(fd)

    @classmethod
    def acquire(
        cls, index: Path, wait_seconds: float, *, shared: bool, create: bool, optional: bool
    ) -> _Lock | None:
        """Lock ``index``, waiting up to ``wait_seconds``; if it is still busy, None when
        the lock is ``optional`` (a reader that need not take its turn), else fail."""
        deadline = time.monotonic() + wait_seconds
        while True:
            fd = cls._open(index, shared=shared, create=create)
            try:
                locked = cls._wait(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, deadline)
            except BaseException:
                os.close(fd)
                raise
            if not locked:
                holder = _flock_holder(os.fstat(fd))
                os.close(fd)
                if optional:
                    return None
                by = f" (process {holder})" if holder else ""
                raise IndexStoreError(
                    f"{index} is in use by another corpus-clean run{by}; waited "
                    f"{wait_seconds:g} s for it. Runs on one index must take turns: "
                    "re-run when that one has finished"
                )
            if _same_file(fd, index):
                return cls(fd)
            # A failed first run removed the empty file while we waited for it: the
            # lock is on a file nobody else will open. Open the path afresh.
            os.close(fd)

    @staticmethod
    def _open(index: Path, *, shared: bool, create: bool) -> int:
        # Read-only suffices for flock, and works in a read-only folder; a writer opens
        # for writing, to learn now that it could not commit.
        flags = (os.O_RDONLY if shared else os.O_RDWR) | (os.O_CREAT if create else 0)
        try:
            return os.open(index, flags, 0o644)
        except FileNotFoundError as err:
            if create:
                raise IndexStoreError(
                    f"cannot create the index {index}: its folder must exist"
                ) from err
            raise _no_index(index) from err
        except OSError as err:
            need = "be readable" if shared else "be writable, and its folder too"
            raise IndexStoreError(
                f"cannot open the index {index} ({err.strerror}): to "
                f"{'read' if shared else 'change'} it, it must {need}"
            ) from err

    @staticmethod
    def _wait(fd: int, mode: int, deadline: float) -> bool:
        """Take the flock by ``deadline``; False if it is still held by then. The same
        descriptor all along: closing one on the database would drop the POSIX locks
        an SQLite connection of this process holds on it."""
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(0.05, left))

    def release(self) -> None:
        _HELD_LOCKS.discard(self._fd)
        os.close(self._fd)  # closing the last descriptor drops the flock


#: Descriptors holding index locks in this process: a forked child (a pool worker) closes
#: its copies, else it would hold the lock as long as it lives, past its parent's death.
_HELD_LOCKS: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in _HELD_LOCKS:
        os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def _same_file(fd: int, path: Path) -> bool:
    try:
        there = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def _flock_holder(file: os.stat_result) -> int | None:
    """The process holding a flock on ``file``, for the message, from /proc/locks where
    there is one (its lines read ``1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF``)."""
    wanted = f"{os.major(file.st_dev):02x}:{os.minor(file.st_dev):02x}:{file.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == wanted:
            with contextlib.suppress(ValueError):
                return int(fields[4])
    return None


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
    """Articles accepted by earlier runs; satisfies ``dedup.AcceptedIndex``.

    Open it with ``IndexStore.open`` and use it as a context manager: the lock is held
    until ``close``.
    """

    def __init__(
        self,
        path: Path,
        db: sqlite3.Connection,
        lock: _Lock | None,
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
        self._db = db
        self._lock = lock
        self._closed = False
        self._created = created
        self._readonly = readonly
        bands, containment_keys = settings["bands"], settings.get("containment_keys", 0)
        assert isinstance(bands, int), "checked when the settings were read"
        assert isinstance(containment_keys, int), "a setting dedup writes"
        # Keys per article: its LSH band keys, then its containment keys (dedup.py).
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
        if not _has_index_file(path) and not writing:
            raise _no_index(path)
        if writing and not os.access(path.parent, os.W_OK | os.X_OK):  # for the journal
            raise IndexStoreError(
                f"cannot change the index {path}: its folder must exist and be writable"
            )
        optional = readonly and not take_turn
        wait = 0 if optional else wait_seconds
        lock = _Lock.acquire(path, wait, shared=readonly, create=writing, optional=optional)
        # Under the lock no run is writing, so a journal beside the index is one a killed
        # run left; reading the file rolls it back.
        journal = Path(f"{path}-journal")
        journal_left = lock is not None and _has_index_file(journal)
        created = False
        try:
            db = sqlite3.connect(path, timeout=wait_seconds, isolation_level=None)
            try:
                format_version, stored = cls._read_settings(path, db, journal_left=journal_left)
                if stored is None:  # an empty file, or one a killed first run left
                    if not writing:
                        raise _no_index(path)
                    assert settings is not None
                    stored, created, format_version = _normalized(settings), True, FORMAT_VERSION
                elif settings is not None:
                    cls._check_settings(path, stored, _normalized(settings))
                db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                db.execute("PRAGMA synchronous = FULL")
                if created:
                    cls._create(db, stored)
                elif not readonly:
                    cls._check_schema(path, db, format_version)
                    if format_version != FORMAT_VERSION:
                        cls._migrate(path, db, format_version)
                        format_version = FORMAT_VERSION
                db.execute("CREATE TEMP TABLE query (key INTEGER NOT NULL, row INTEGER NOT NULL)")
            except BaseException:
                db.close()
                if created and not _has_index_file(path):
                    path.unlink(missing_ok=True)
                raise
        except BaseException:
            if writing and lock is not None and not _has_index_file(path):
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

    @staticmethod
    def _read_settings(
        path: Path, db: sqlite3.Connection, *, journal_left: bool
    ) -> tuple[int, dict[str, object] | None]:
        """The index's format and settings (None for an empty database), after checking
        that the file is an index we can read. Reading first rolls back what a killed run
        left."""
        fix = "pass the path of a corpus-clean index, or a new path to start one"
        try:
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if application_id != APPLICATION_ID:
                if db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0:
                    return version, None
                raise IndexStoreError(
                    f"{path} is an SQLite file but not a corpus-clean index; {fix}"
                )
            if version != FORMAT_VERSION and version not in _MIGRATED_FORMATS:
                raise IndexStoreError(
                    f"{path} is an index of format {version}; this corpus-clean reads format "
                    f"{FORMAT_VERSION}. Use the corpus-clean that made it, or start a new index"
                )
            row = db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        except sqlite3.DatabaseError as err:
            if journal_left:
                raise IndexStoreError(
                    f"{path}-journal, left by a run killed while committing, must be rolled "
                    f"back before the index can be read, which needs a writable folder "
                    f"({err}): copy both files where they can be written and open the copy "
                    "once ('corpus-clean index info COPY')"
                ) from err
            raise IndexStoreError(f"{path} cannot be read as an index ({err}); {fix}") from err
        try:
            loaded = json.loads(row[0]) if row is not None else None
        except (json.JSONDecodeError, TypeError):
            loaded = None
        if (
            not isinstance(loaded, dict)
            or not isinstance(loaded.get("bands"), int)
            or loaded["bands"] < 1
        ):
            raise IndexStoreError(
                f"{path} is damaged: it records no usable settings. Start a new index"
            )
        return version, loaded

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
    def _schema_problems(db: sqlite3.Connection, format_version: int) -> list[str]:
        """Tables the index lacks, and schema objects that are not its own: a trigger
        would run inside our next commit, and a view or table is no part of an index."""
        present = {
            (kind, name)
            for kind, name in db.execute("SELECT type, name FROM main.sqlite_schema")
            if not name.startswith("sqlite_stat")  # statistics of ANALYZE
        }
        own = {("table", name) for name in _tables(format_version)}
        own |= {("index", name) for name in _INDEXES.get(format_version, ())}
        problems = []
        if missing := sorted(name for kind, name in own - present if kind == "table"):
            problems.append(f"it lacks the table(s) {', '.join(missing)}")
        if foreign := sorted(present - own):
            listed = ", ".join(f"{kind} {name}" for kind, name in foreign)
            problems.append(f"it holds schema objects that are not the index's: {listed}")
        return problems

    @classmethod
    def _check_schema(cls, path: Path, db: sqlite3.Connection, format_version: int) -> None:
        try:
            problems = cls._schema_problems(db, format_version)
        except sqlite3.DatabaseError as err:
            problems = [str(err)]
        if problems:
            raise IndexStoreError(
                f"{path} is not as corpus-clean made it ({'; '.join(problems)}), so this run "
                f"will not write to it. See 'corpus-clean index verify {path}'; start a new "
                "index, or restore a copy"
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

    @staticmethod
    def _migrate(path: Path, db: sqlite3.Connection, format_version: int) -> None:
        """To the current format, in place and in one transaction. 1 -> 2: ids stop being
        unique, every article gets its content hash, runs count reused ids. 2 -> 3: the
        table of learned boilerplate (empty)."""
        db.create_function("content_of", 1, _stored_content_hash, deterministic=True)
        try:
            db.execute("BEGIN IMMEDIATE")
            if format_version < 2:
                db.execute("ALTER TABLE runs ADD COLUMN id_reused INTEGER NOT NULL DEFAULT 0")
                db.execute(_ARTICLES.format(name="articles_2"))
                db.execute(
                    "INSERT INTO articles_2 (entry, id, content, title, source, run) "
                    "SELECT a.entry, a.id, content_of(s.data), a.title, a.source, a.run "
                    "FROM articles AS a LEFT JOIN shingles AS s ON s.entry = a.entry "
                    "ORDER BY a.entry"
                )
                db.execute("DROP TABLE articles")
                db.execute("ALTER TABLE articles_2 RENAME TO articles")
                for statement in _ARTICLE_INDEXES.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(_LEARNED)
            db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
            db.execute("COMMIT")
        except sqlite3.Error as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise IndexStoreError(
                f"{path} is an index of format {format_version} that could not be brought to "
                f"format {FORMAT_VERSION} ({err}); it is unchanged. See 'corpus-clean index "
                f"verify {path}'"
            ) from err
        finally:
            db.create_function("content_of", 1, None)

    def damaged(self, detail: str) -> IndexStoreError:
        """The error for an index whose file does not read as it should."""
        return IndexStoreError(
            f"{self.path} is damaged ({detail}); see 'corpus-clean index verify {self.path}', "
            "then start a new index or restore a copy"
        )

    # -- lookup (dedup.AcceptedIndex) ---------------------------------------------------

    @_reads
    def candidates(self, band_keys: U64) -> list[list[int]]:
        """For each row of ``(n, bands)`` band keys, the entries sharing at least one key,
        sorted and unique. One query per ``_LOOKUP_ROWS`` rows (bounding its memory,
        whatever the size of the run); keys go in sorted, so the join walks the band
        B-tree in order."""
        keys = np.ascontiguousarray(band_keys, dtype=np.uint64)
        if keys.ndim != 2 or keys.shape[1] != self._bands:
            raise ValueError(f"band keys must have shape (n, {self._bands}), not {keys.shape}")
        found: list[list[int]] = [[] for _ in range(len(keys))]
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

    # -- update ---------------------------------------------------------------------------

    def accept(
        self, kept: Iterable[Accepted], run_label: str, learned: Evidence | None = None
    ) -> int:
        """Add a run's kept articles (``driver.Result.kept``, or any iterable: it is read
        in chunks, so a generator keeps memory flat) in one transaction; return how many
        were added (``accepted`` tells the rest).

        An article whose id and content are both in the index already is skipped, not an
        error: re-running a scrape must not fail. One whose id is there with other
        content is added, and counted as an id reused. Both counts are kept in the run's
        row (see ``info``). ``learned``, what the run's learning saw merged with what the
        index held (``learned_evidence``), replaces the index's rows of the same patterns.
        Any failure rolls the whole run back; an SQLite one raises ``CommitError``.
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
            (first,) = self._db.execute(
                "SELECT coalesce(max(entry), 0) + 1 FROM articles"
            ).fetchone()
            articles = iter(kept)
            known: set[tuple[str, bytes]] = set()  # (id, content) added by this run
            while chunk := list(islice(articles, _ACCEPT_CHUNK)):
                seen += len(chunk)
                fresh, chunk_reused = self._fresh(chunk, known)
                reused += chunk_reused
                added += self._insert(fresh, first + added, run)
            self._db.execute(
                "UPDATE runs SET added = ?, skipped = ?, id_reused = ? WHERE run = ?",
                (added, seen - added, reused, run),
            )
            if learned is not None:
                self._db.executemany(
                    "INSERT OR REPLACE INTO learned (site, kind, hash, pages, keys, anchored, "
                    "anchored_keys, inside, length) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ((_storable(row[0]), *row[1:]) for row in learned.rows()),
                )
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
        return added

    def _fresh(
        self, chunk: list[Accepted], known: set[tuple[str, bytes]]
    ) -> tuple[list[tuple[Accepted, str, bytes, bytes]], int]:
        """The articles of a chunk the index does not hold yet (nor ``known``: earlier
        chunks of this run), checked, with their id as stored, content hash and encoded
        shingle set; and how many of them reuse an id the index holds."""
        ids = [_storable(article.id) for article in chunk]
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
                    None if article.title is None else _storable(article.title),
                    _storable(article.source),
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
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
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
    def learned_evidence(self) -> Evidence:
        """What learning saw in earlier runs (none in an index of an older format)."""
        if self.format < 3:
            return Evidence.empty()
        with self._snapshot():
            rows = self._db.execute(
                "SELECT site, kind, hash, pages, keys, anchored, anchored_keys, inside, length "
                "FROM learned ORDER BY site, kind, hash"
            ).fetchall()
        return Evidence.of_rows(rows)

    # -- inspection -----------------------------------------------------------------------

    @_reads
    def info(self) -> IndexInfo:
        """What the index holds: article count, runs, settings, file size, path. Read in
        one transaction, so the figures agree even while a run commits."""
        reused = "id_reused" if self.format >= 2 else "0"
        with self._snapshot():
            articles = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
            runs = [
                RunInfo(label=label, time=at, added=added, skipped=skipped, id_reused=ids)
                for label, at, added, skipped, ids in self._db.execute(
                    f"SELECT label, time, added, skipped, {reused} FROM runs ORDER BY run"
                )
            ]
        return {
            "path": str(self.path),
            "format": self.format,
            "articles": articles,
            "runs": runs,
            "settings": self.settings,
            "file_bytes": self.path.stat().st_size,
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

    def verify(self) -> list[str]:
        """Problems found (empty: healthy). Reads the whole file, streaming: SQLite's own
        integrity check, the schema, then that every article has its band rows and a
        shingle set that decodes to sorted unique hashes matching its content hash, and
        that nothing refers to a missing row. A check that SQLite cannot even run (a
        malformed page) is a problem listed like the others."""
        checks: list[tuple[str, Callable[[], list[str]]]] = [
            ("SQLite integrity check", self._integrity_problems),
            ("schema", lambda: self._schema_problems(self._db, self.format)),
            ("settings", self._settings_problems),
            ("articles", self._article_problems),
            ("references", self._reference_problems),
        ]
        problems = []
        for what, check in checks:
            try:
                problems += check()
            except sqlite3.DatabaseError as err:
                problems.append(f"{what}: could not be read ({err})")
        return problems

    def _integrity_problems(self) -> list[str]:
        """SQLite's integrity check of the whole file; where a page is too damaged for it
        to run at all, of each table (with its indexes) alone, to say which are hit."""
        try:
            return self._integrity_check("PRAGMA integrity_check")
        except sqlite3.DatabaseError as err:
            problems = [f"SQLite integrity check: {err}"]
        for table in _tables(self.format):
            try:
                problems += self._integrity_check(f"PRAGMA integrity_check({table})", table)
            except sqlite3.DatabaseError as err:
                problems.append(f"SQLite integrity check of {table}: {err}")
        return problems

    def _integrity_check(self, pragma: str, table: str | None = None) -> list[str]:
        of = f" of {table}" if table else ""
        return [
            f"SQLite integrity check{of}: {row[0]}"
            for row in self._db.execute(pragma)
            if row[0] != "ok"
        ]

    def _reference_problems(self) -> list[str]:
        problems = []
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
        content = "a.content" if self.format >= 2 else "NULL"
        for entry, data, stored_hash in self._db.execute(
            f"SELECT a.entry, s.data, {content} FROM articles AS a "
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
            if not isinstance(data, bytes):
                note("shingle sets that are not blobs", str(entry))
                continue
            try:
                values = decode_shingles(data)
            except ValueError as err:
                note("shingle sets that do not decode", f"{entry} ({err})")
                continue
            if len(values) > 1 and not bool(np.all(values[1:] > values[:-1])):
                note("shingle sets not sorted and unique", str(entry))
            elif self.format >= 2 and stored_hash != content_hash(values):
                note("articles whose content hash is not their shingle set's", str(entry))
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
        if self._closed:
            return
        self._closed = True
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.close()
            if self._created and not _has_index_file(self.path):
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
