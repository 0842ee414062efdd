"""The index's SQLite schema, by format: laying out a new index, checking an existing
one's header, settings and schema objects, and migrating an older format in place."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from ..options import lsh_bands
from . import IndexStoreError
from .codec import stored_content_hash

#: "ccix" in the SQLite header: tells our files from other SQLite databases.
APPLICATION_ID = 0x63636978
#: Bumped whenever the schema or the shingle encoding changes. Formats 1 (ids unique,
#: no content column), 2 (no learned boilerplate), 3 (learned lines not indexed by
#: hash) and 4 (learned rows without the run that last saw them) are read as they are
#: and migrated when opened for writing.
FORMAT_VERSION = 5
MIGRATED_FORMATS = (1, 2, 3, 4)

ARTICLES = """
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
ARTICLE_INDEXES = """
CREATE INDEX articles_by_id ON articles (id);
"""
SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE runs (
    run INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    time TEXT NOT NULL,
    added INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    id_reused INTEGER NOT NULL DEFAULT 0
);
{ARTICLES.format(name="articles")};
{ARTICLE_INDEXES}
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
#: What learning saw of each site's lines and closing sentences, of each site, and the
#: marks of its articles (``learn.Evidence``; kind 0 line, 1 closing sentence, 2 the
#: site, 3 a mark), so that a run counts what earlier runs saw. Hashes are uint64 stored
#: as int64 (same bits).
LEARNED = """
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
    -- The last run that saw the row, numbered among the runs that learned (meta's
    -- learning_runs): a line seen on one article is forgotten when none of them has
    -- seen it for a while (LearnOptions.forget_runs).
    run INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site, kind, hash)
) WITHOUT ROWID"""
#: A run looks up the learned lines of its input's lines by hash, on any site (a line on
#: many sites is learned across them), not by reading them all: an index holds dozens for
#: every page of real sites. A commit reads a slice of it for the lines to forget.
LEARNED_INDEXES = """
CREATE INDEX IF NOT EXISTS learned_lines ON learned (hash) WHERE kind = 0;
"""
SCHEMA += LEARNED + ";\n" + LEARNED_INDEXES
_TABLES = ("meta", "runs", "articles", "shingles", "bands")


def tables(format_version: int) -> tuple[str, ...]:
    return (*_TABLES, "learned") if format_version >= 3 else _TABLES


#: The schema objects of each format beyond its tables.
INDEXES = {
    1: ("sqlite_autoindex_articles_1",),
    2: ("articles_by_id",),
    3: ("articles_by_id",),
    4: ("articles_by_id", "learned_lines"),
    5: ("articles_by_id", "learned_lines"),
}


def normalized(settings: dict[str, object]) -> dict[str, object]:
    """Settings as they read back from the file, so that a tuple equals a list."""
    loaded: dict[str, object] = json.loads(json.dumps(settings, sort_keys=True))
    return loaded


def settings_hint(stored: dict[str, object]) -> str:
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


def read_settings(
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
            raise IndexStoreError(f"{path} is an SQLite file but not a corpus-clean index; {fix}")
        if version != FORMAT_VERSION and version not in MIGRATED_FORMATS:
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


def check_settings(path: Path, stored: dict[str, object], wanted: dict[str, object]) -> None:
    differences = [
        f"  {key}: {stored.get(key, '(none)')} in the index, {wanted.get(key, '(none)')} now"
        for key in sorted(stored.keys() | wanted.keys())
        if stored.get(key) != wanted.get(key)
    ]
    if differences:
        raise IndexStoreError(
            f"{path} was built with other fingerprint settings, so its articles cannot "
            "be compared with this run's:\n" + "\n".join(differences) + "\n"
            f"To proceed, {settings_hint(stored)}, or start a new index with another "
            "--index path. The index was not changed."
        )


def schema_problems(db: sqlite3.Connection, format_version: int) -> list[str]:
    """Tables the index lacks, and schema objects that are not its own: a trigger
    would run inside our next commit, and a view or table is no part of an index."""
    present = {
        (kind, name)
        for kind, name in db.execute("SELECT type, name FROM main.sqlite_schema")
        if not name.startswith("sqlite_stat")  # statistics of ANALYZE
    }
    own = {("table", name) for name in tables(format_version)}
    own |= {("index", name) for name in INDEXES.get(format_version, ())}
    problems = []
    if missing := sorted(name for kind, name in own - present if kind == "table"):
        problems.append(f"it lacks the table(s) {', '.join(missing)}")
    if foreign := sorted(present - own):
        listed = ", ".join(f"{kind} {name}" for kind, name in foreign)
        problems.append(f"it holds schema objects that are not the index's: {listed}")
    return problems


def check_schema(path: Path, db: sqlite3.Connection, format_version: int) -> None:
    try:
        problems = schema_problems(db, format_version)
    except sqlite3.DatabaseError as err:
        problems = [str(err)]
    if problems:
        raise IndexStoreError(
            f"{path} is not as corpus-clean made it ({'; '.join(problems)}), so this run "
            f"will not write to it. See 'corpus-clean index verify {path}'; start a new "
            "index, or restore a copy"
        )


def create(db: sqlite3.Connection, settings: dict[str, object]) -> None:
    """Lay out a new index in a transaction that the first ``accept`` commits (and
    ``close`` rolls back): until then the file stays empty."""
    db.execute("BEGIN IMMEDIATE")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("settings", json.dumps(settings, sort_keys=True)),
            ("created", datetime.now(UTC).isoformat(timespec="seconds")),
        ],
    )


def migrate(path: Path, db: sqlite3.Connection, format_version: int) -> None:
    """To the current format, in place and in one transaction. 1 -> 2: ids stop being
    unique, every article gets its content hash, runs count reused ids. 2 -> 3: the
    table of learned boilerplate (empty). 3 -> 4: its lines indexed by hash. 4 -> 5:
    each learned row the run that last saw it, the last run before the migration."""
    db.create_function("content_of", 1, stored_content_hash, deterministic=True)
    try:
        db.execute("BEGIN IMMEDIATE")
        if format_version < 2:
            db.execute("ALTER TABLE runs ADD COLUMN id_reused INTEGER NOT NULL DEFAULT 0")
            db.execute(ARTICLES.format(name="articles_2"))
            db.execute(
                "INSERT INTO articles_2 (entry, id, content, title, source, run) "
                "SELECT a.entry, a.id, content_of(s.data), a.title, a.source, a.run "
                "FROM articles AS a LEFT JOIN shingles AS s ON s.entry = a.entry "
                "ORDER BY a.entry"
            )
            db.execute("DROP TABLE articles")
            db.execute("ALTER TABLE articles_2 RENAME TO articles")
            for statement in ARTICLE_INDEXES.split(";"):
                if statement.strip():
                    db.execute(statement)
        if format_version < 3:
            db.execute(LEARNED)
        else:
            db.execute("ALTER TABLE learned ADD COLUMN run INTEGER NOT NULL DEFAULT 0")
            db.execute("UPDATE learned SET run = (SELECT coalesce(max(run), 0) FROM runs)")
        for statement in LEARNED_INDEXES.split(";"):
            if statement.strip():
                db.execute(statement)
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
