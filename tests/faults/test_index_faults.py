"""Faults around processes, locks and the SQLite index (issue 8): real processes, real
signals, real SQLite files. Each test reproduces a failure of the fault campaign
(``reliability/campaign.md``: F1, F2, F5, F7, F10, F11, F15d/e/g/o)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result as CliResult
from support import SAMPLES, SCRIPT, child_processes, session_members, started

from corpus_clean import pipeline
from corpus_clean.cli import cli as command_line
from corpus_clean.dedup import Fingerprinter
from corpus_clean.options import DedupOptions
from corpus_clean.storage import IndexStoreError
from corpus_clean.storage.sqlite import IndexStore

SETTINGS = Fingerprinter(DedupOptions()).settings()
#: Articles kept from the seed pages.
SAMPLE_KEPT = 18

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="corpus-clean is not installed")


def cli(*args: str | Path) -> CliResult:
    return CliRunner().invoke(command_line, [str(arg) for arg in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def distinct_texts(count: int) -> list[str]:
    """Texts no two of which are near duplicates."""
    rng = random.Random(count)
    vocabulary = [f"word{n}" for n in range(5000)]
    return [" ".join(rng.sample(vocabulary, 30)) for _ in range(count)]


def stories(first: int, count: int) -> bytes:
    return "".join(
        json.dumps({"id": f"s{n}", "text": f"Story {n} about the river and its bridges."}) + "\n"
        for n in range(first, first + count)
    ).encode()


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    """An index after one night over the seed pages."""
    path = tmp_path / "accepted.db"
    night = cli("run", SAMPLES, "--index", path, "-o", tmp_path / "night-1.jsonl", "-q")
    assert night.exit_code == 0, night.stderr
    return path


def mid_run(running: subprocess.Popen[bytes]) -> None:
    """Feed a run reading stdin over two batches, so that its worker pool starts, and
    leave it waiting for more input."""
    assert running.stdin is not None
    running.stdin.write(stories(0, 3 * pipeline.BATCH_BYTES // 60))
    running.stdin.flush()
    wait_for(lambda: len(child_processes(running.pid)) == 2, "the worker processes")


# -- F1: processes ----------------------------------------------------------------------------


def test_kill_9_of_the_main_process_takes_its_workers_along(indexed: Path) -> None:
    before = digest(indexed)
    out = indexed.parent / "out.jsonl"
    with started("run", "-", "--index", indexed, "-o", out, "--jobs", "2") as running:
        mid_run(running)
        running.kill()
        assert running.wait(timeout=10) == -signal.SIGKILL
        # No worker outlives it: none holds the index, nor the caller's pipes.
        wait_for(lambda: not session_members(running.pid), "the workers to die", seconds=5)
        assert running.stdout is not None and running.stdout.read() == b""  # EOF, not a hang
    with IndexStore.open(indexed, SETTINGS, wait_seconds=0) as store:  # free at once
        assert store.info()["articles"] == SAMPLE_KEPT
    assert digest(indexed) == before


#: Opens the index, forks a child that outlives it (as a stuck pool worker would), and
#: exits; the child waits until it is killed.
FORKING_HOLDER = """
import os, sys, time
from corpus_clean.storage.sqlite import IndexStore
with IndexStore.open(sys.argv[1], None, create=False):
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        time.sleep(60)
        os._exit(0)
    time.sleep(0.2)
"""


def test_a_forked_child_does_not_hold_the_index_lock(indexed: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", FORKING_HOLDER, str(indexed)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    try:
        assert holder.wait(timeout=30) == 0
        os.kill(child, 0)  # the child still runs ...
        with IndexStore.open(indexed, SETTINGS, wait_seconds=0) as store:  # ... yet it is free
            assert store.info()["articles"] == SAMPLE_KEPT
    finally:
        os.kill(child, signal.SIGKILL)
        holder.stdout.close()


def test_workers_whose_parent_is_gone_do_not_start(tmp_path: Path) -> None:
    # A worker forked just as its parent dies finds another parent (here: it is told of
    # one that is not its own) and ends at once, before it does anything.
    script = (
        "from corpus_clean.executors import local\n"
        "local._start_worker(dict, -1)\n"
        "print('started', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"started" not in done.stdout


@pytest.mark.parametrize("to", ["main", "group"])
def test_sighup_ends_a_run_like_sigterm(indexed: Path, to: str) -> None:
    before = digest(indexed)
    folder = indexed.parent
    files = sorted(p.name for p in folder.iterdir())
    out = folder / "out.jsonl"
    with started("run", "-", "--index", indexed, "-o", out, "--jobs", "2") as running:
        mid_run(running)
        if to == "main":  # the tool in the background of an ssh session that dropped
            running.send_signal(signal.SIGHUP)
        else:  # a terminal closed
            os.killpg(running.pid, signal.SIGHUP)
        assert running.wait(timeout=30) == 130
        assert running.stderr is not None
        stderr = running.stderr.read().decode()
    assert stderr.strip() == "interrupted: no output file written, index unchanged"
    assert sorted(p.name for p in folder.iterdir()) == files
    assert digest(indexed) == before


# -- F2: identity ---------------------------------------------------------------------------


MONDAY = (
    "Monday night: the city council approved a new budget for public libraries and parks "
    "after a long debate among members."
)
TUESDAY = (
    "Tuesday night: a wildfire burned through forty acres of dry brush north of the river "
    "before firefighters contained it."
)


def test_a_scrape_written_to_one_path_every_night_is_indexed_whole(tmp_path: Path) -> None:
    scrape, path = tmp_path / "scrape", tmp_path / "acc.db"
    scrape.mkdir()
    docs = scrape / "docs.jsonl"

    def tonight(text: str, *extra: str | Path) -> CliResult:
        docs.write_text(json.dumps({"text": text}) + "\n")
        return cli("run", scrape, "--index", path, *extra)

    assert tonight(MONDAY, "-o", tmp_path / "night1.jsonl", "-q").exit_code == 0
    second = tonight(TUESDAY, "-o", tmp_path / "night2.jsonl", "--report", tmp_path / "r.json")
    assert second.exit_code == 0, second.stderr
    assert len((tmp_path / "night2.jsonl").read_text().splitlines()) == 1
    assert "index ids reused" in second.stderr  # loud, not silent
    figures = json.loads((tmp_path / "r.json").read_text())["index"]
    assert (figures["articles_before"], figures["articles_after"]) == (1, 2)
    assert figures["ids_reused"] == 1
    info = json.loads(cli("index", "info", path).stdout)
    assert info["articles"] == 2
    assert info["runs"][-1] | {"time": ""} == {
        "label": info["runs"][-1]["label"],
        "time": "",
        "added": 1,
        "skipped": 0,
        "id_reused": 1,
    }
    # The repost of Tuesday's article is caught, by --check and by a run.
    assert tonight("REPOST " + TUESDAY, "--check", "-q").exit_code == 1
    third = tonight("REPOST " + TUESDAY, "-o", tmp_path / "night3.jsonl", "-q")
    assert third.exit_code == 0
    assert (tmp_path / "night3.jsonl").read_text() == ""
    assert cli("index", "verify", path).exit_code == 0


def test_the_same_articles_twice_are_indexed_once_and_counted(indexed: Path) -> None:
    # Exact copies of indexed articles are removed before they reach the index; one that
    # dedup does not look up (no shingles) reaches it again, and is skipped there.
    corpus = indexed.parent / "titles.jsonl"
    corpus.write_text(json.dumps({"id": "t", "title": "Only a title", "text": ""}) + "\n")
    for _ in range(2):
        assert cli("dedup", corpus, "--index", indexed, "-q").exit_code == 0
    info = json.loads(cli("index", "info", indexed).stdout)
    assert [(r["added"], r["skipped"], r["id_reused"]) for r in info["runs"][1:]] == [
        (1, 0, 0),
        (0, 1, 0),
    ]


def test_ids_one_and_string_one_are_two_articles(tmp_path: Path) -> None:
    corpus, path = tmp_path / "ids.jsonl", tmp_path / "acc.db"
    records = [{"id": 1, "text": MONDAY}, {"id": "1", "text": TUESDAY}]
    corpus.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert cli("dedup", corpus, "--index", path, "-q").exit_code == 0
    info = json.loads(cli("index", "info", path).stdout)
    assert info["articles"] == 2
    assert info["runs"][0]["id_reused"] == 1


FORMAT_1 = """
CREATE TABLE old.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE old.runs (run INTEGER PRIMARY KEY, label TEXT NOT NULL, time TEXT NOT NULL,
    added INTEGER NOT NULL, skipped INTEGER NOT NULL);
CREATE TABLE old.articles (entry INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT,
    source TEXT NOT NULL, run INTEGER NOT NULL REFERENCES runs (run));
CREATE TABLE old.shingles (entry INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE old.bands (key INTEGER NOT NULL, entry INTEGER NOT NULL,
    PRIMARY KEY (key, entry)) WITHOUT ROWID;
INSERT INTO old.meta SELECT * FROM meta;
INSERT INTO old.runs SELECT run, label, time, added, skipped FROM runs;
INSERT INTO old.articles SELECT entry, id, title, source, run FROM articles;
INSERT INTO old.shingles SELECT * FROM shingles;
INSERT INTO old.bands SELECT * FROM bands;
"""


def format_1_copy(index: Path, old: Path) -> None:
    """The index as corpus-clean 0.1 (format 1) wrote it."""
    db = sqlite3.connect(index, isolation_level=None)
    db.execute("ATTACH ? AS old", (str(old),))
    db.execute("PRAGMA old.application_id = 1667459448")
    db.execute("PRAGMA old.user_version = 1")
    db.executescript(FORMAT_1)
    db.close()


def test_a_format_1_index_reads_as_it_is_and_is_migrated_when_written(
    indexed: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old.db"
    format_1_copy(indexed, old)
    before = digest(old)
    info = cli("index", "info", old)
    assert info.exit_code == 0, info.stderr
    assert (json.loads(info.stdout)["format"], json.loads(info.stdout)["articles"]) == (1, 18)
    assert cli("run", SAMPLES, "--index", old, "--check", "-q").exit_code == 1
    assert cli("index", "verify", old).exit_code == 0
    assert digest(old) == before  # reading changes nothing
    rerun = cli("run", SAMPLES, "--index", old, "-o", tmp_path / "o.jsonl", "-q")
    assert rerun.exit_code == 0, rerun.stderr
    assert (tmp_path / "o.jsonl").read_text() == ""  # the indexed articles are still found
    migrated = json.loads(cli("index", "info", old).stdout)
    assert (migrated["format"], migrated["articles"]) == (5, 18)
    verify = cli("index", "verify", old)
    assert verify.exit_code == 0, verify.stderr


#: What the current format has that an older one lacked.
NOT_BEFORE_5 = "ALTER TABLE learned DROP COLUMN run"


@pytest.mark.parametrize(
    ("version", "lacked"),
    [
        (2, "DROP TABLE learned"),
        (3, f"DROP INDEX learned_lines; {NOT_BEFORE_5}"),
        (4, NOT_BEFORE_5),
    ],
)
def test_an_older_index_reads_as_it_is_and_is_brought_to_the_current_format_when_written(
    indexed: Path, tmp_path: Path, version: int, lacked: str
) -> None:
    # Format 2 had no learned boilerplate; format 3 had it, its lines not indexed by hash;
    # format 4 did not know which run last saw a learned row.
    old = tmp_path / "old.db"
    shutil.copy(indexed, old)
    db = sqlite3.connect(old, isolation_level=None)
    db.executescript(lacked)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()
    before = digest(old)
    assert json.loads(cli("index", "info", old).stdout)["format"] == version
    reports = []
    for path, name in ((old, "old.json"), (indexed, "new.json")):
        check = cli("run", SAMPLES, "--index", path, "--check", "-q", "--report", tmp_path / name)
        assert check.exit_code == 1
        reports.append(json.loads((tmp_path / name).read_text())["learned_patterns"])
    if version >= 3:  # learning reads what the index holds, its lines without their index
        assert reports[0] == reports[1]
    assert cli("index", "verify", old).exit_code == 0
    assert digest(old) == before  # reading changes nothing
    if version >= 3:
        # Migrated by a run that writes no learned rows: each row as seen by the last run
        # before, not by none (the column's default), which the next commit would forget.
        with sqlite3.connect(old) as db:
            (last,) = db.execute("SELECT max(run) FROM runs").fetchone()
        no_learn = cli("run", SAMPLES, "--index", old, "-o", tmp_path / "n.jsonl", "--no-learn")
        assert no_learn.exit_code == 0, no_learn.stderr
        with sqlite3.connect(old) as db:
            assert db.execute("SELECT min(run), max(run) FROM learned").fetchone() == (last, last)
    rerun = cli("run", SAMPLES, "--index", old, "-o", tmp_path / "o.jsonl", "-q")
    assert rerun.exit_code == 0, rerun.stderr
    assert json.loads(cli("index", "info", old).stdout)["format"] == 5
    if version >= 3:
        # The rows it learned are stamped as the next run that learned, counted on from
        # the rows' last: the --no-learn run between does not count.
        with sqlite3.connect(old) as db:
            assert db.execute("SELECT max(run) FROM learned").fetchone() == (last + 1,)
    with sqlite3.connect(old) as db:
        assert db.execute("SELECT count(*) FROM learned WHERE kind = 2").fetchone()[0] > 0
        names = {name for (name,) in db.execute("SELECT name FROM sqlite_schema")}
        assert "learned_lines" in names
    verify = cli("index", "verify", old)
    assert verify.exit_code == 0, verify.stderr


# -- F5: damaged indexes and strings SQLite cannot store ---------------------------------


def rot(db: sqlite3.Connection, path: Path, *objects: str) -> None:
    """Overwrite the head of the root page of each table or index named."""
    roots = [
        db.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?", (name,)).fetchone()[0]
        for name in objects
    ]
    (size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    with open(path, "r+b") as handle:
        for root in roots:
            handle.seek((root - 1) * size)
            handle.write(b"\xff" * 64)


DAMAGE: dict[str, Callable[[sqlite3.Connection, Path], object]] = {
    "bit rot": lambda db, path: rot(db, path, "articles", "articles_by_id", "bands"),
    "tampered settings": lambda db, _: db.execute(
        "UPDATE meta SET value = '{x' WHERE key = 'settings'"
    ),
    "no articles table": lambda db, _: db.execute("DROP TABLE articles"),
    "no bands table": lambda db, _: db.execute("DROP TABLE bands"),
    "text shingle sets": lambda db, _: db.execute("UPDATE shingles SET data = 'abc'"),
}
#: Exit code of (run, --check, index info, index verify) on each damage: 2 where the
#: damage is met, 0 where the command does not read the damaged part.
EXPECTED = {
    "bit rot": (2, 2, 2, 2),
    "tampered settings": (2, 2, 2, 2),
    "no articles table": (2, 2, 2, 2),
    "no bands table": (2, 2, 0, 2),
    "text shingle sets": (2, 2, 0, 2),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_index_gets_a_one_line_message_never_a_traceback(
    indexed: Path, damage: str
) -> None:
    db = sqlite3.connect(indexed, isolation_level=None)
    DAMAGE[damage](db, indexed)
    db.close()
    out = indexed.parent / "out.jsonl"
    commands = [
        ("run", SAMPLES, "--index", indexed, "-o", out, "-q"),
        ("run", SAMPLES, "--index", indexed, "--check", "-q"),
        ("index", "info", indexed),
        ("index", "verify", indexed),
    ]
    codes = []
    for command in commands:
        done = cli(*command)
        assert done.exception is None or isinstance(done.exception, SystemExit), command
        codes.append(done.exit_code)
        if done.exit_code == 2:
            errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1, done.stderr
    assert tuple(codes) == EXPECTED[damage]
    assert not out.exists()


def test_verify_lists_every_problem_of_a_rotten_file(indexed: Path) -> None:
    rot(sqlite3.connect(indexed), indexed, "bands")
    verify = cli("index", "verify", indexed)
    assert verify.exit_code == 2
    assert "SQLite integrity check of bands: database disk image is malformed" in verify.stderr
    assert "integrity check of articles" not in verify.stderr  # it names the damaged table
    assert "Traceback" not in verify.stderr


def test_lone_surrogates_in_ids_and_file_names_are_indexed(tmp_path: Path) -> None:
    path = tmp_path / "acc.db"
    surrogate = tmp_path / "sid.jsonl"
    surrogate.write_text('{"id":"x\\udc80y","title":"t\\ud800","text":"' + MONDAY + '"}\n')
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    page = next(SAMPLES.glob("*.txt"))
    shutil.copy(os.fsencode(page), os.path.join(os.fsencode(legacy), b"caf\xe9.txt"))
    for source in (surrogate, legacy):
        out = tmp_path / "o.jsonl"
        done = cli("run", source, "--index", path, "-o", out, "-q")
        assert (done.exit_code, done.stderr) == (0, ""), done.stderr
        again = cli("run", source, "--index", path, "-o", out, "-q")
        assert again.exit_code == 0
        assert out.read_text() == ""  # indexed: found again
    assert cli("index", "verify", path).exit_code == 0


# -- F7: one index, two paths -----------------------------------------------------------------


def test_runs_through_a_symlink_or_a_hard_link_take_turns(indexed: Path) -> None:
    symlink, hard = indexed.with_name("link.db"), indexed.with_name("hard.db")
    symlink.symlink_to(indexed.name)
    os.link(indexed, hard)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(indexed), "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        busy = f"in use by another corpus-clean run \\(process {holder.pid}\\)"
        for other in (symlink, hard):
            with pytest.raises(IndexStoreError, match=busy):
                IndexStore.open(other, SETTINGS, wait_seconds=0.2)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]


#: Opens the index and holds it for argv[2] seconds.
HOLDER = """
import sys, time
from corpus_clean.storage.sqlite import IndexStore
with IndexStore.open(sys.argv[1], None, create=False):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.mark.parametrize("existing", [True, False], ids=["existing", "new"])
def test_two_runs_through_two_paths_emit_each_article_once(tmp_path: Path, existing: bool) -> None:
    path, link = tmp_path / "acc.db", tmp_path / "link.db"
    if existing:
        seed = cli("run", SAMPLES, "--index", path, "-q", "-o", tmp_path / "seed.jsonl")
        assert seed.exit_code == 0
    link.symlink_to(path.name)
    texts = distinct_texts(300)
    for name in ("a", "b"):  # the same texts under other ids
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps({"id": f"{name}{n}", "text": t}) + "\n" for n, t in enumerate(texts))
        )
    runs = [
        subprocess.Popen(
            [
                SCRIPT,
                "dedup",
                tmp_path / f"{name}.jsonl",
                "--index",
                index,
                "-q",
                "-o",
                tmp_path / f"o{name}.jsonl",
            ],
            stderr=subprocess.PIPE,
        )
        for name, index in (("a", path), ("b", link))
    ]
    for running in runs:
        assert running.wait(timeout=60) == 0
        assert running.stderr is not None and running.stderr.read() == b""
        running.stderr.close()
    written = sum(len((tmp_path / f"o{n}.jsonl").read_text().splitlines()) for n in "ab")
    assert written == len(texts)
    info = json.loads(cli("index", "info", path).stdout)
    assert info["articles"] == len(texts) + (SAMPLE_KEPT if existing else 0)


# -- F10, F11, F15: read-only places, journals, full disks, foreign objects -------------------


@contextlib.contextmanager
def mounted(folder: Path, options: str) -> Iterator[Path]:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", folder], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], check=True)


def test_an_index_in_a_read_only_folder_can_be_read(indexed: Path, tmp_path: Path) -> None:
    with mounted(tmp_path / "ro", "size=8m") as ro:
        shutil.copy(indexed, ro / "acc.db")
        subprocess.run(["mount", "-o", "remount,ro", ro], check=True)
        check = cli("run", SAMPLES, "--index", ro / "acc.db", "--check", "-q")
        assert (check.exit_code, check.stderr) == (1, "")
        info = cli("index", "info", ro / "acc.db")
        assert info.exit_code == 0, info.stderr
        assert json.loads(info.stdout)["articles"] == SAMPLE_KEPT
        verify = cli("index", "verify", ro / "acc.db")
        assert verify.exit_code == 0, verify.stderr
        written = cli("run", SAMPLES, "--index", ro / "acc.db", "-q")
        assert written.exit_code == 2
        assert "its folder must exist and be writable" in written.stderr


#: Accepts 2,000 articles into argv[1] and is killed by SIGKILL as it commits. A page
#: cache of 10 pages makes SQLite write changed pages into the file long before (after
#: saving their old content in the journal), so the journal is hot when it dies.
KILLED_IN_COMMIT = """
import os, signal, sys
import numpy as np
from corpus_clean.dedup import Fingerprinter
from corpus_clean.storage import Accepted
from corpus_clean.storage.sqlite import IndexStore
from corpus_clean.options import DedupOptions
rng = np.random.default_rng(5)
settings = Fingerprinter(DedupOptions()).settings()
width = settings["bands"] + settings.get("containment_keys", 0)
kept = [
    Accepted(f"k{i}", None, "synthetic", rng.integers(0, 1 << 64, width, dtype=np.uint64),
             np.unique(rng.integers(0, 1 << 32, 150, dtype=np.uint32)))
    for i in range(2_000)
]
store = IndexStore.open(sys.argv[1], settings)
def traced(sql):
    if sql == "COMMIT":
        os.kill(os.getpid(), signal.SIGKILL)
store._db.execute("PRAGMA cache_size = 10")
store._db.set_trace_callback(traced)
store.accept(kept, run_label="killed")
"""


def test_info_says_a_hot_journal_was_rolled_back(indexed: Path) -> None:
    before = digest(indexed)
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_COMMIT, indexed], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert indexed.with_name("accepted.db-journal").exists()
    assert digest(indexed) != before  # torn: copied alone, it would read back wrong
    info = cli("index", "info", indexed)
    assert info.exit_code == 0, info.stderr
    assert json.loads(info.stdout)["articles"] == SAMPLE_KEPT
    assert "rolled back" in info.stderr
    assert digest(indexed) == before
    assert "rolled back" not in cli("index", "info", indexed).stderr  # once only


def test_a_hot_journal_in_a_read_only_folder_is_explained(indexed: Path, tmp_path: Path) -> None:
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_COMMIT, indexed], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    with mounted(tmp_path / "ro", "size=8m") as ro:
        for name in ("accepted.db", "accepted.db-journal"):
            shutil.copy(indexed.with_name(name), ro / name)
        subprocess.run(["mount", "-o", "remount,ro", ro], check=True)
        for command in (("index", "info"), ("index", "verify")):
            done = cli(*command, ro / "accepted.db")
            assert done.exit_code == 2
            assert "accepted.db-journal, left by a run killed while committing" in done.stderr
            assert "copy both files" in done.stderr


def test_a_full_disk_at_commit_says_the_output_was_written(tmp_path: Path) -> None:
    corpus = tmp_path / "tonight.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in distinct_texts(5000)))
    out = tmp_path / "out.jsonl"
    with mounted(tmp_path / "full", "size=256k") as full:
        done = cli("dedup", corpus, "--index", full / "acc.db", "-o", out, "-q")
        assert done.exit_code == 2
        assert "output written, index unchanged" in done.stderr, done.stderr
        assert len(out.read_text().splitlines()) == 5000
        assert not (full / "acc.db").exists()


def test_index_add_refuses_page_files(tmp_path: Path) -> None:
    path = tmp_path / "acc.db"
    for pages in (SAMPLES, next(SAMPLES.glob("*.txt"))):
        refused = cli("index", "add", path, pages)
        assert refused.exit_code == 2
        assert "index add takes clean JSONL records" in refused.stderr
        assert "--index" in refused.stderr
    assert not path.exists()


def test_objects_that_are_not_the_index_s_are_flagged_and_refused(indexed: Path) -> None:
    db = sqlite3.connect(indexed, isolation_level=None)
    db.execute(
        "CREATE TRIGGER t AFTER INSERT ON runs BEGIN DELETE FROM bands WHERE entry % 2 = 0; END"
    )
    db.execute("CREATE VIEW v AS SELECT id FROM articles")
    db.close()
    before = digest(indexed)
    verify = cli("index", "verify", indexed)
    assert verify.exit_code == 2
    assert "trigger t" in verify.stderr and "view v" in verify.stderr
    corpus = indexed.parent / "new.jsonl"
    corpus.write_text(json.dumps({"id": "n", "text": MONDAY}) + "\n")
    written = cli("dedup", corpus, "--index", indexed, "-q", "-o", indexed.parent / "o.jsonl")
    assert written.exit_code == 2
    assert "trigger t" in written.stderr
    assert digest(indexed) == before


def test_info_reads_an_index_a_run_is_holding(indexed: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(indexed), "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        info = cli("index", "info", indexed)  # waited 30 s, then failed
        assert info.exit_code == 0, info.stderr
        assert json.loads(info.stdout)["articles"] == SAMPLE_KEPT
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
