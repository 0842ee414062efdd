"""The persistent dedup index: nights of runs against one real SQLite file.

Every test uses a real index file in ``tmp_path``; the fault tests kill real processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from click.testing import Result as CliResult
from hypothesis import given, settings
from hypothesis import strategies as st
from support import SCRIPT, child_processes, started

from corpus_clean import cli as cli_module
from corpus_clean import driver, pipeline
from corpus_clean.cli import cli as command_line
from corpus_clean.dedup import Fingerprinter
from corpus_clean.driver import Run, Targets, execute, run_plan
from corpus_clean.io.inputs import resolve_inputs
from corpus_clean.options import CleanOptions, DedupOptions, SplitOptions
from corpus_clean.pipeline import Plan
from corpus_clean.report import Report
from corpus_clean.stages.learn import fold, stable_hash
from corpus_clean.storage import Accepted, IndexStoreError
from corpus_clean.storage import sqlite as index_module
from corpus_clean.storage.codec import decode_shingles, encode_shingles
from corpus_clean.storage.sqlite import IndexStore

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
OPTIONS = DedupOptions()
SETTINGS = Fingerprinter(OPTIONS).settings()
#: Keys an article is indexed under: LSH band keys, then containment keys.
KEYS = OPTIONS.bands_rows[0] + OPTIONS.containment_keys
SCRAPE = Plan(split=SplitOptions(), clean=CleanOptions(), dedup=OPTIONS)
#: Articles the seed pages hold, and those left once exact copies among them are removed.
SAMPLE_ARTICLES, SAMPLE_KEPT = 23, 18


def night(
    path: Path, inputs: list[str], label: str, plan: Plan = SCRAPE
) -> tuple[Report, list[dict[str, Any]], int, list[str]]:
    """One CI run with ``--index``, as the command makes it (the driver): the outputs
    published, then the index accepts what was kept. Returns the report, the removed
    records with their verdicts, how many articles were added, and the ids of the kept
    articles (those the index was offered)."""
    folder = Path(tempfile.mkdtemp(dir=path.parent))
    kept, removed = folder / "kept.jsonl", folder / "removed.jsonl"
    targets = Targets(str(kept), str(removed))
    with IndexStore.open(path, SETTINGS) as store:
        report = execute(Run("run", plan, resolve_inputs(inputs), targets, store, label=label))
    offered = [json.loads(line)["id"] for line in kept.read_text("utf-8").splitlines()]
    removed_records = [json.loads(line) for line in removed.read_text("utf-8").splitlines()]
    shutil.rmtree(folder)
    added = report["index"]["articles_after"] - report["index"]["articles_before"]
    return report, removed_records, added, offered


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """An index after one night over the seed pages, and that night's removed records."""
    path = tmp_path / "accepted.db"
    _, removed, added, _ = night(path, [str(SAMPLES)], "night-1")
    assert added == SAMPLE_KEPT
    return path, removed


def test_first_night_adds_what_it_keeps(indexed: tuple[Path, list[dict[str, Any]]]) -> None:
    path, removed = indexed
    assert len(removed) == SAMPLE_ARTICLES - SAMPLE_KEPT
    with IndexStore.open(path, None, create=False) as store:
        info = store.info()
        assert info["articles"] == SAMPLE_KEPT
        assert [(r["label"], r["added"], r["skipped"]) for r in info["runs"]] == [
            ("night-1", SAMPLE_KEPT, 0)
        ]
        assert info["settings"] == SETTINGS == store.settings
        assert info["file_bytes"] == path.stat().st_size > 0
        assert info["path"] == str(path)
        first = store.article(1)
        assert first["id"] == store.article_id(1) == f"{SAMPLES}/000_27f52f622c7b214e.txt#1"
        assert first["run"] == "night-1"
        assert first["source"] == f"{SAMPLES}/000_27f52f622c7b214e.txt"
        assert str(first["title"]).startswith("On January 22, Liaoning")
        assert store.verify() == []


def test_second_run_of_the_same_scrape_keeps_and_adds_nothing(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, first_removed = indexed
    keeper = {r["id"]: r["duplicate_of"] for r in first_removed}
    result, removed, added, offered = night(path, [str(SAMPLES)], "night-2")
    assert result["counts"]["written"] == 0
    assert result["counts"]["duplicates_index"] == SAMPLE_ARTICLES
    assert offered == []
    assert added == 0
    assert len(removed) == SAMPLE_ARTICLES
    for record in removed:
        assert record["duplicate_kind"] == "index"
        # Named after the article the first night kept for it: itself, or its keeper.
        assert record["duplicate_of"] == keeper.get(record["id"], record["id"])
        assert record["similarity"] == 1.0
    with IndexStore.open(path, None, create=False) as store:
        assert store.info()["articles"] == SAMPLE_KEPT
        assert store.verify() == []


def test_a_near_copy_on_a_later_night_is_caught_and_named(
    indexed: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    path, _ = indexed
    original_id = f"{SAMPLES}/000_27f52f622c7b214e.txt#3"
    with IndexStore.open(path, None, create=False) as store:
        entry = next(e for e in range(1, SAMPLE_KEPT + 1) if store.article_id(e) == original_id)
        original = store.shingles(entry)
    assert len(original) > 700  # long enough that three edited words keep it a near-copy
    articles = io.BytesIO()
    run_plan(SCRAPE, resolve_inputs([str(SAMPLES)]), articles)
    text = next(
        article["text"]
        for article in map(json.loads, articles.getvalue().splitlines())
        if article["id"] == original_id
    )
    words = text.split(" ")
    for i in (40, 200, 400):  # a few words edited
        words[i] = "CHANGED"
    fresh = " ".join(f"novel{i} phrase{i * 7} item{i * 13}" for i in range(200))
    tonight = tmp_path / "tonight.jsonl"
    tonight.write_text(
        json.dumps({"id": "tonight#1", "title": "edited", "text": " ".join(words)})
        + "\n"
        + json.dumps({"id": "tonight#2", "title": "new", "text": fresh})
        + "\n",
        encoding="utf-8",
    )
    _, removed, added, offered = night(path, [str(tonight)], "night-2", Plan(dedup=OPTIONS))
    assert [r["id"] for r in removed] == ["tonight#1"]
    assert removed[0]["duplicate_of"] == removed[0]["matched_id"] == original_id
    assert removed[0]["duplicate_kind"] == "index"
    assert OPTIONS.threshold <= removed[0]["similarity"] < 1.0
    assert offered == ["tonight#2"]
    assert added == 1
    with IndexStore.open(path, None, create=False) as store:
        assert store.info()["articles"] == SAMPLE_KEPT + 1
        assert store.article(SAMPLE_KEPT + 1) == {
            "id": "tonight#2",
            "title": "new",
            "source": str(tonight),
            "run": "night-2",
        }
        assert store.verify() == []


def test_other_settings_are_refused_and_the_file_is_left_alone(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    before, stat, listing = digest(path), path.stat(), sorted(os.listdir(path.parent))
    other = Fingerprinter(DedupOptions(num_perm=64)).settings()
    with pytest.raises(IndexStoreError) as refused:
        IndexStore.open(path, other)
    message = str(refused.value)
    assert "num_perm: 128 in the index, 64 now" in message
    assert "bands: 18 in the index, 10 now" in message
    assert "rows: 7 in the index, 6 now" in message
    assert "seed" not in message.split("To proceed")[0]  # only what differs is listed
    assert "--num-perm 128 and a --threshold from" in message
    assert "e.g. 0.8" in message
    assert "start a new index" in message
    assert digest(path) == before
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(os.listdir(path.parent)) == listing  # no journal left behind
    with IndexStore.open(path, SETTINGS, wait_seconds=0):  # and the lock was released
        pass


def test_an_article_already_indexed_is_skipped_and_counted(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    kept = list(run_plan(SCRAPE, resolve_inputs([str(SAMPLES)]), None, collect_kept=True).kept)
    with IndexStore.open(path, SETTINGS) as store:
        assert store.accept(kept + kept[:2], run_label="again") == 0
        info = store.info()
        assert [(r["label"], r["added"], r["skipped"]) for r in info["runs"]] == [
            ("night-1", SAMPLE_KEPT, 0),
            ("again", 0, SAMPLE_KEPT + 2),
        ]
        assert info["articles"] == SAMPLE_KEPT
        assert store.verify() == []


def test_kept_articles_whose_shingle_sets_wait_on_disk_reach_the_index(
    tmp_path: Path,
) -> None:
    # The index reads the kept articles from the run's stores after the output is out:
    # shingle sets beyond the memory budget wait in a temporary file, which must stay
    # open until then.
    held, spilled = tmp_path / "held.db", tmp_path / "spilled.db"
    night(held, [str(SAMPLES)], "night-1")
    _, _, added, _ = night(spilled, [str(SAMPLES)], "night-1", replace(SCRAPE, memory=0))
    assert added == SAMPLE_KEPT
    with IndexStore.open(held, None, readonly=True) as a, IndexStore.open(spilled, None) as b:
        for entry in range(1, SAMPLE_KEPT + 1):
            assert a.article_id(entry) == b.article_id(entry)
            assert np.array_equal(a.shingles(entry), b.shingles(entry))
        assert b.verify() == []


def test_a_failed_accept_leaves_the_index_exactly_as_before(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    before = digest(path)
    rng = np.random.default_rng(1)
    good = [synthetic(rng, f"good-{i}") for i in range(500)]
    bad = synthetic(rng, "bad")
    bad.band_keys[5] = bad.band_keys[4]  # twice: the band table refuses it halfway through
    with IndexStore.open(path, SETTINGS) as store:
        with pytest.raises(IndexStoreError, match="the index is unchanged"):
            store.accept([*good, bad], run_label="doomed")
        assert store.info()["articles"] == SAMPLE_KEPT
    assert digest(path) == before


def test_accept_reads_a_stream_in_chunks_and_commits_it_whole(
    indexed: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = indexed
    before = digest(path)
    monkeypatch.setattr(index_module, "_ACCEPT_CHUNK", 4)
    rng = np.random.default_rng(3)
    written_when_taken: list[int] = []
    with IndexStore.open(path, SETTINGS) as store:

        def articles() -> Iterator[Accepted]:
            for n in range(10):
                written_when_taken.append(store.info()["articles"] - SAMPLE_KEPT)
                yield synthetic(rng, f"streamed-{n}")
            raise KeyboardInterrupt  # Ctrl-C once two chunks are in the database

        with pytest.raises(KeyboardInterrupt):
            store.accept(articles(), run_label="interrupted")
        assert store.info()["articles"] == SAMPLE_KEPT
    # Taken a chunk at a time, never all at once ...
    assert written_when_taken == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]
    # ... and still all or nothing.
    assert digest(path) == before


def test_index_add_keeps_every_record_and_compares_none(tmp_path: Path) -> None:
    """``index add`` seeds an index with a clean corpus as it is: copies of one text and
    records that recur in the index are all added, under their own ids."""
    path = tmp_path / "accepted.db"
    copies = "".join(
        json.dumps({"id": f"r{n}", "text": "the same story of the river and the old bridges"})
        + "\n"
        for n in range(5)
    )
    for name in ("first.jsonl", "second.jsonl"):
        (tmp_path / name).write_text(copies.replace('"r', f'"{name[0]}'), encoding="utf-8")
    for name in ("first.jsonl", "second.jsonl"):
        added = cli("index", "add", path, tmp_path / name, "-j", "2")
        assert added.exit_code == 0, added.stderr
    assert "added 5 articles" in added.stderr
    with IndexStore.open(path, None, create=False) as store:
        assert store.info()["articles"] == 10


def test_a_first_run_that_fails_leaves_no_index(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with pytest.raises(KeyboardInterrupt), IndexStore.open(path, SETTINGS) as store:
        assert store.candidates(np.zeros((2, KEYS), dtype=np.uint64)) == [[], []]
        assert store.info()["articles"] == 0
        raise KeyboardInterrupt
    assert not path.exists()
    with pytest.raises(IndexStoreError, match="no index at"):
        IndexStore.open(path, SETTINGS, create=False)
    with pytest.raises(IndexStoreError, match="no index at"):
        IndexStore.open(path, None)


def test_a_file_that_is_not_an_index_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database, just some notes\n" * 200)
    with pytest.raises(IndexStoreError, match="cannot be read as an index"):
        IndexStore.open(text, SETTINGS)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(IndexStoreError, match="not a corpus-clean index"):
        IndexStore.open(other, SETTINGS)


def test_an_index_in_a_missing_folder_is_explained(tmp_path: Path) -> None:
    with pytest.raises(IndexStoreError, match="its folder must exist and be writable"):
        IndexStore.open(tmp_path / "no-such-folder" / "accepted.db", SETTINGS)


def test_verify_names_the_damage(indexed: tuple[Path, list[dict[str, Any]]]) -> None:
    path, _ = indexed
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "DELETE FROM bands WHERE entry = 2 "
            "AND key = (SELECT min(key) FROM bands WHERE entry = 2)"
        )
        db.execute("UPDATE shingles SET data = x'03010203' WHERE entry = 3")
        db.execute("DELETE FROM articles WHERE entry = 4")
    db.close()
    with IndexStore.open(path, None, create=False) as store:
        problems = store.verify()
    assert f"1 articles without {KEYS} band rows: entry 2 has {KEYS - 1}" in problems
    assert any(p.startswith("1 shingle sets that do not decode: entry 3") for p in problems)
    assert "1 band rows of no article: entry 4" in problems
    assert "1 shingle sets without their row" in problems
    assert f"{SAMPLE_KEPT - 1} articles, but the runs record {SAMPLE_KEPT} added" in problems


# -- faults and concurrency: real processes ------------------------------------------------

#: A run that is killed (kill -9) in the middle of adding a large batch: ``bands`` stops
#: it partway through the band rows, and the test kills it there; ``commit`` has a thread
#: kill it while SQLite is writing the commit.
KILLED_RUN = """
import os, signal, sys, threading, time
import numpy as np
from corpus_clean.dedup import Fingerprinter
from corpus_clean.storage import Accepted
from corpus_clean.stages.learn import fold, stable_hash
from corpus_clean.storage.sqlite import IndexStore
from corpus_clean.options import DedupOptions

path, moment, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
n = 20000
rng = np.random.default_rng(0)
keys = rng.integers(0, 1 << 64, (n, int(sys.argv[4])), dtype=np.uint64)
shingles = np.sort(rng.integers(0, 1 << 32, (n, 200), dtype=np.uint32), axis=1)
kept = [Accepted(f"big-{i}", None, "big", keys[i], shingles[i]) for i in range(n)]
store = IndexStore.open(path, Fingerprinter(DedupOptions()).settings())
band_rows = 0

def traced(sql):
    global band_rows
    if moment == "bands" and sql.startswith("INSERT INTO bands"):
        band_rows += 1
        if band_rows == 1000:
            print("inside", flush=True)
            time.sleep(60)
    if moment == "commit" and sql == "COMMIT":
        print("inside", flush=True)
        threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()

store._db.set_trace_callback(traced)
store.accept(kept, run_label="killed")
time.sleep(60)  # a kill that comes late still finds the process, and the test fails
"""


def synthetic(rng: np.random.Generator, article_id: str) -> Accepted:
    keys = rng.integers(0, 1 << 64, KEYS, dtype=np.uint64)
    shingles = np.unique(rng.integers(0, 1 << 32, 150, dtype=np.uint32))
    return Accepted(article_id, None, "synthetic", keys, shingles)


def child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize(("moment", "delay"), [("bands", 0.0), ("commit", 0.0), ("commit", 0.002)])
def test_kill_9_during_accept_leaves_the_index_exactly_as_before(
    indexed: tuple[Path, list[dict[str, Any]]], moment: str, delay: float
) -> None:
    path, _ = indexed
    before = digest(path)
    with child(KILLED_RUN, str(path), moment, str(delay), str(KEYS)) as killed:
        assert killed.stdout is not None
        assert killed.stdout.readline() == "inside\n"
        if moment == "bands":
            killed.send_signal(signal.SIGKILL)
        # Committing 20,000 articles takes tens of milliseconds: the kill lands inside.
        assert killed.wait(timeout=30) == -signal.SIGKILL
    with IndexStore.open(path, SETTINGS, wait_seconds=5) as store:  # rolls a journal back
        assert store.info()["articles"] == SAMPLE_KEPT
        assert store.verify() == []
    assert digest(path) == before


def test_a_first_run_killed_while_committing_leaves_no_index(tmp_path: Path) -> None:
    path = tmp_path / "accepted.db"
    with child(KILLED_RUN, str(path), "commit", "0.002", str(KEYS)) as killed:
        assert killed.stdout is not None and killed.stdout.readline() == "inside\n"
        assert killed.wait(timeout=30) == -signal.SIGKILL
    assert path.with_name("accepted.db-journal").exists()  # it died mid-commit
    with pytest.raises(IndexStoreError, match="no index at"):
        IndexStore.open(path, None, create=False)  # rolls the journal back
    with IndexStore.open(path, SETTINGS) as store:
        assert store.info()["articles"] == 0
        assert store.accept([synthetic(np.random.default_rng(2), "first")], "night-1") == 1
        assert store.verify() == []


#: Opens the index and holds it (the lock) for argv[2] seconds.
HOLDER = """
import sys, time
from corpus_clean.stages.learn import fold, stable_hash
from corpus_clean.storage.sqlite import IndexStore
with IndexStore.open(sys.argv[1], None, create=False):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_run_waits_then_fails_clearly(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    with child(HOLDER, str(path), "60") as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
            started = time.monotonic()
            with pytest.raises(IndexStoreError) as busy:
                IndexStore.open(path, SETTINGS, wait_seconds=0.3)
            assert 0.3 <= time.monotonic() - started < 5
            assert str(busy.value) == (
                f"{path} is in use by another corpus-clean run (process {holder.pid}); waited "
                "0.3 s for it. Runs on one index must take turns: re-run when that one has "
                "finished"
            )
        finally:
            holder.kill()
    with IndexStore.open(path, SETTINGS, wait_seconds=5) as store:  # a killed holder frees it
        assert store.verify() == []


def test_a_second_run_gets_the_index_when_the_first_finishes(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    with child(HOLDER, str(path), "0.5") as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        started = time.monotonic()
        with IndexStore.open(path, SETTINGS, wait_seconds=10) as store:
            assert time.monotonic() - started >= 0.2
            assert store.info()["articles"] == SAMPLE_KEPT
        assert holder.wait(timeout=10) == 0


def test_readers_share_the_index_but_not_with_a_writer(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    with (
        IndexStore.open(path, None, readonly=True) as one,
        IndexStore.open(path, None, readonly=True, wait_seconds=0) as two,
    ):
        assert one.info()["articles"] == two.info()["articles"] == SAMPLE_KEPT
        holder = rf"in use by another corpus-clean run \(process {os.getpid()}\);"
        with pytest.raises(IndexStoreError, match=holder):
            IndexStore.open(path, SETTINGS, wait_seconds=0.1)
        with pytest.raises(IndexStoreError, match="read-only"):
            one.accept([], run_label="nope")
        # The index commands only read, so they do not queue behind a reader either.
        started = time.monotonic()
        assert cli("index", "info", path).exit_code == 0
        assert cli("index", "verify", path).exit_code == 0
        assert time.monotonic() - started < 10  # a writer's open would wait 30 s, then fail


needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason="corpus-clean is not installed")


def stories(first: int, count: int) -> bytes:
    return "".join(
        json.dumps({"id": f"s{n}", "text": f"Story {n} about the river and its bridges."}) + "\n"
        for n in range(first, first + count)
    ).encode()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def folder_state(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file in a folder, with its content digest and modification time."""
    return {p.name: (digest(p), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def index_state(path: Path) -> tuple[list[str], str, int]:
    """The files beside an index (no journal or temporary file left), and the index's
    content and modification time."""
    return sorted(p.name for p in path.parent.iterdir()), digest(path), path.stat().st_mtime_ns


@needs_script
def test_sigterm_during_a_run_leaves_no_output_and_the_index_unchanged(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    folder = path.parent
    before = index_state(path)
    with started("run", "-", "--index", path, "-o", folder / "out.jsonl", "--jobs", "1") as running:
        assert running.stdin is not None and running.stderr is not None
        # Some input, and more to come: the run waits for it, with its output file open.
        running.stdin.write(stories(0, 100))
        running.stdin.flush()
        wait_for(
            lambda: any(p.name.startswith(".out.jsonl.") for p in folder.iterdir()),
            "the temporary output file",
        )
        running.send_signal(signal.SIGTERM)  # a CI runner cancelling the step
        assert running.wait(timeout=30) == 130
        stderr = running.stderr.read().decode()
    assert "interrupted: no output file written, index unchanged" in stderr
    assert "Traceback" not in stderr
    assert index_state(path) == before  # no output, no temporary file, index as it was


@needs_script
def test_a_run_whose_reader_goes_away_adds_nothing(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    source = path.parent / "tonight.jsonl"
    source.write_bytes(stories(0, 5000))  # its output is far more than a pipe holds
    before = index_state(path)
    reading = subprocess.Popen(
        [SCRIPT, "run", source, "--index", path, "--jobs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reading.stdout is not None and reading.stderr is not None
    assert reading.stdout.readline().startswith(b'{"id":"s0"')
    reading.stdout.close()  # as `| head -n 1` does
    assert reading.wait(timeout=60) == 0
    assert b"Traceback" not in reading.stderr.read()
    reading.stderr.close()
    assert index_state(path) == before


@needs_script
@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
    reason="needs /proc/PID/task/PID/children to see the worker processes",
)
def test_ctrl_c_during_a_run_with_worker_processes_ends_it_cleanly(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    folder = path.parent
    before = index_state(path)
    with started("run", "-", "--index", path, "-o", folder / "out.jsonl", "--jobs", "2") as running:
        assert running.stdin is not None and running.stderr is not None
        # Over two batches, so the pool of worker processes starts; more input to come.
        batches = stories(0, 3 * pipeline.BATCH_BYTES // 60)
        assert len(batches) > 2 * pipeline.BATCH_BYTES
        running.stdin.write(batches)
        running.stdin.flush()
        wait_for(lambda: len(child_processes(running.pid)) == 2, "the worker processes")
        time.sleep(0.3)  # for them to finish starting up
        os.killpg(running.pid, signal.SIGINT)  # Ctrl-C reaches every process of the group ...
        time.sleep(0.3)
        running.stdin.close()  # ... the one writing the input as well
        assert running.wait(timeout=30) == 130
        stderr = running.stderr.read().decode()
    # One message, from the main process: the workers leave interrupts to it.
    assert stderr.strip() == "interrupted: no output file written, index unchanged"
    assert index_state(path) == before


# -- the parts ------------------------------------------------------------------------------


def test_candidates_are_the_entries_sharing_a_band_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    articles = [synthetic(rng, f"a{i}") for i in range(300)]
    # Shared keys, and keys with the top bit set (negative once stored as int64).
    for i in range(0, 300, 3):
        articles[i].band_keys[i % 18] = articles[(i * 7) % 300].band_keys[i % 18]
        articles[i].band_keys[0] = np.uint64(0xFFFF_FFFF_FFFF_FF00 + i % 4)
    with IndexStore.open(tmp_path / "i.db", SETTINGS) as store:
        assert store.accept(articles, run_label="seed") == 300
        queries = np.stack(
            [articles[(i * 11) % 300].band_keys for i in range(40)]
            + [rng.integers(0, 1 << 64, KEYS, dtype=np.uint64) for _ in range(10)]
        )
        expected = [
            sorted(e + 1 for e, a in enumerate(articles) if set(a.band_keys) & set(row))
            for row in queries
        ]
        assert store.candidates(queries) == expected
        assert store.candidates(queries[:0]) == []
        for entry in (1, 150, 300):
            assert np.array_equal(store.shingles(entry), articles[entry - 1].shingles)


def test_an_index_without_band_keys_finds_no_candidates_and_still_checks_their_shape(
    tmp_path: Path,
) -> None:
    # An index of articles without shingles holds no band key: it is not asked (a first
    # night's lookups were a sixth of its time), yet answers as the query would.
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 1 << 64, (3, KEYS), dtype=np.uint64)
    empty = np.zeros(0, dtype=np.uint32)
    with IndexStore.open(tmp_path / "i.db", SETTINGS) as store:
        assert store.candidates(keys) == [[], [], []]
        assert store.accept([Accepted("a", None, "test", keys[0], empty)], "empty") == 1
        assert store.candidates(keys) == [[], [], []]
        with pytest.raises(ValueError, match="band keys must have shape"):
            store.candidates(keys[:, :3])
        article = synthetic(rng, "b")
        assert store.accept([article], "one") == 1
        assert store.candidates(np.stack([keys[0], article.band_keys])) == [[], [2]]


#: (id, content) pairs of an article, from small alphabets so that both recur.
_ARTICLE_PAIRS = st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 3)), max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.lists(_ARTICLE_PAIRS, min_size=1, max_size=3))
def test_an_article_is_its_id_and_its_content(runs: list[list[tuple[str, int]]]) -> None:
    # Whatever the runs and however accept chunks them: one entry per distinct (id,
    # content), and every entry beyond the first of its id counted as an id reused.
    def article(article_id: str, content: int) -> Accepted:
        rng = np.random.default_rng(content)
        keys = rng.integers(0, 1 << 64, KEYS, dtype=np.uint64)
        shingles = np.unique(rng.integers(0, 1 << 32, 50, dtype=np.uint32))
        return Accepted(article_id, None, "test", keys, shingles)

    with (
        tempfile.TemporaryDirectory() as folder,
        patched(index_module, "_ACCEPT_CHUNK", 3),
        IndexStore.open(Path(folder) / "i.db", SETTINGS) as store,
    ):
        for pairs in runs:
            store.accept([article(*pair) for pair in pairs], run_label="run")
        info = store.info()
        assert store.verify() == []
    distinct = {pair for pairs in runs for pair in pairs}
    assert info["articles"] == sum(r["added"] for r in info["runs"]) == len(distinct)
    assert sum(r["added"] + r["skipped"] for r in info["runs"]) == sum(map(len, runs))
    reused = len(distinct) - len({article_id for article_id, _ in distinct})
    assert sum(r["id_reused"] for r in info["runs"]) == reused


@contextlib.contextmanager
def patched(module: Any, name: str, value: object) -> Iterator[None]:
    """A module constant changed for a block (hypothesis examples cannot take pytest's
    function-scoped monkeypatch)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


@given(st.lists(st.integers(0, (1 << 32) - 1), unique=True, max_size=300))
def test_shingle_sets_round_trip(values: list[int]) -> None:
    shingles = np.array(sorted(values), dtype=np.uint32)
    data = encode_shingles(shingles)
    assert np.array_equal(decode_shingles(data), shingles)
    assert len(data) <= 5 + 4 * len(values)


def test_typical_shingle_sets_take_about_three_bytes_a_shingle() -> None:
    kept = list(run_plan(SCRAPE, resolve_inputs([str(SAMPLES)]), None, collect_kept=True).kept)
    total = sum(len(encode_shingles(article.shingles)) for article in kept)
    count = sum(len(article.shingles) for article in kept)
    assert total / count < 3.2


# -- the command line ------------------------------------------------------------------------


def cli(*args: str | Path) -> CliResult:
    return CliRunner().invoke(command_line, [str(arg) for arg in args])


def test_cli_nights_with_an_index(tmp_path: Path) -> None:
    path, report = tmp_path / "accepted.db", tmp_path / "report.json"
    first = cli("run", SAMPLES, "--index", path, "-o", tmp_path / "night-1.jsonl", "-q")
    assert (first.exit_code, first.stdout, first.stderr) == (0, "", "")
    assert len((tmp_path / "night-1.jsonl").read_bytes().splitlines()) == SAMPLE_KEPT

    second = cli(
        "run", SAMPLES, "--index", path, "--report", report, "--duplicates", tmp_path / "d"
    )
    assert second.exit_code == 0, second.stderr
    assert second.stdout == ""  # nothing new tonight
    assert "corpus-clean run" in second.stderr
    figures = json.loads(report.read_text())
    assert figures["duplicates"]["index"] == SAMPLE_ARTICLES
    assert figures["index"] == {
        "path": str(path),
        "articles_before": SAMPLE_KEPT,
        "articles_after": SAMPLE_KEPT,
        "ids_reused": 0,
        "learned_lines_forgotten": 0,
    }
    removed = [json.loads(line) for line in (tmp_path / "d").read_text().splitlines()]
    assert {r["duplicate_kind"] for r in removed} == {"index"}

    info = cli("index", "info", path)
    assert info.exit_code == 0, info.stderr
    assert info.stderr == ""
    shown = json.loads(info.stdout)
    assert shown["articles"] == SAMPLE_KEPT
    assert [r["added"] for r in shown["runs"]] == [SAMPLE_KEPT, 0]
    assert shown["settings"] == SETTINGS

    verify = cli("index", "verify", path)
    assert (verify.exit_code, verify.stdout) == (0, "")
    assert f"{path}: ok" in verify.stderr


def _night_of(n: int, again: int | None = None) -> list[dict[str, str]]:
    """Night ``n`` of a site: one article under the site's menu, with a line of its own
    (a comment's timestamp) that no other article holds; ``again``, an earlier night's
    article scraped again."""
    menu = "Home\nWorld\nSports\nContact us"
    records = [
        {
            "id": f"night-{n}",
            "url": f"https://news.example/2026/story-{n}",
            "text": f"{menu}\nStory {n}\n{f'Article {n} says something new. ' * 8}\n"
            f"Comment posted at {n}:00",
        }
    ]
    return records if again is None else records + _night_of(again)


def _line_rows(path: Path, line: str) -> int:
    """How many rows of learned lines the index holds for this line (of any site)."""
    key = np.array([stable_hash(fold(line))], dtype=np.uint64).view(np.int64)[0]
    with contextlib.closing(sqlite3.connect(path)) as db:
        found: int = db.execute(
            "SELECT count(*) FROM learned WHERE kind = 0 AND hash = ?", (int(key),)
        ).fetchone()[0]
    return found


@pytest.mark.parametrize("forget", [2, 0])
def test_a_line_seen_once_is_forgotten_when_no_run_saw_it_for_a_while(
    tmp_path: Path, forget: int
) -> None:
    path = tmp_path / "accepted.db"
    nights = [_night_of(1), _night_of(2), _night_of(3, again=2), _night_of(4)]
    held, forgotten = [], 0
    for n, records in enumerate(nights, 1):
        given = tmp_path / f"night-{n}.jsonl"
        given.write_text("".join(json.dumps(r) + "\n" for r in records))
        out, report = tmp_path / f"out-{n}.jsonl", tmp_path / f"report-{n}.json"
        forgetting: list[str | Path] = ["--learn-forget-after", str(forget), "--report", report]
        done = cli("run", given, "--index", path, "-o", out, *forgetting)
        assert done.exit_code == 0, done.stderr
        held.append([_line_rows(path, f"Comment posted at {k}:00") for k in range(1, n + 1)])
        now = json.loads(report.read_text())["index"]["learned_lines_forgotten"]
        assert ("index lines forgotten" in done.stderr) == (now > 0)  # the summary says so
        forgotten += now
        assert _line_rows(path, "Contact us") == 1  # the menu recurs, and stays
    if forget:
        # Night 1's line, last seen by run 1, is still there at run 2 and gone by run 4
        # (each commit reads half of the lines: at 3 or 4). Night 2's article came back on
        # night 3, and its line with it.
        assert held[:2] == [[1], [1, 1]]
        assert held[3] == [0, 1, 1, 1]
        assert forgotten == 2  # night 1's two lines of its own: its headline and comment
    else:
        assert held[3] == [1, 1, 1, 1]
        assert forgotten == 0
    assert cli("index", "verify", path).exit_code == 0


def test_runs_that_do_not_learn_age_no_learned_line(tmp_path: Path) -> None:
    # A line goes when no run that learned saw it for a while: runs with --no-learn and
    # index add see no line. Night 1's two lines of its own fall in the slice of hashes
    # that the fourth commit reads, which forgot them when every run counted.
    path = tmp_path / "accepted.db"

    def night(n: int, records: list[dict[str, str]], *options: str) -> None:
        given = tmp_path / f"night-{n}.jsonl"
        given.write_text("".join(json.dumps(r) + "\n" for r in records))
        out = tmp_path / f"out-{n}.jsonl"
        forgetting = ("--learn-forget-after", "2")
        done = cli("run", given, "--index", path, "-o", out, *forgetting, *options)
        assert done.exit_code == 0, done.stderr

    night(1, _night_of(1))
    night(10, _night_of(10), "--no-learn")
    added = tmp_path / "added.jsonl"
    added.write_text(json.dumps({"id": "added", "text": "An article added as it is. " * 9}))
    assert cli("index", "add", path, added).exit_code == 0
    night(2, _night_of(2))
    own = ("Story 1", "Comment posted at 1:00")
    assert [_line_rows(path, line) for line in own] == [1, 1]
    # index info says so: two runs learned; night 1's two lines are one run old.
    learned = json.loads(cli("index", "info", path).stdout)["learned"]
    assert learned["learning_runs"] == 2
    assert learned["lines_seen_once_by_age"] == {"0": 2, "1": 2}
    night(3, _night_of(3))
    night(4, _night_of(4))  # the second learning run since night 1 that reads their slice
    assert [_line_rows(path, line) for line in own] == [0, 0]


def test_cli_check_reports_recurrences_and_changes_nothing(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    before = digest(path)
    report = path.parent / "check.json"
    check = cli("run", SAMPLES, "--index", path, "--check", "-q", "--report", report)
    assert (check.exit_code, check.stdout) == (1, "")
    assert digest(path) == before
    figures = json.loads(report.read_text())  # the one file a check writes
    assert figures["duplicates"]["index"] >= SAMPLE_KEPT
    assert figures["index"]["articles_before"] == figures["index"]["articles_after"]
    fresh = path.parent / "fresh.jsonl"
    fresh.write_text(json.dumps({"id": "n1", "text": "an article nobody has seen " * 20}) + "\n")
    clean = cli("dedup", fresh, "--index", path, "--check", "-q")
    assert (clean.exit_code, clean.stdout) == (0, "")
    assert digest(path) == before


def test_cli_refuses_other_settings_before_writing_anything(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    before, out = digest(path), path.parent / "out.jsonl"
    refused = cli("run", SAMPLES, "--index", path, "--num-perm", "64", "-o", out)
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert "num_perm: 128 in the index, 64 now" in refused.stderr
    assert "--num-perm 128" in refused.stderr
    assert not out.exists()
    assert digest(path) == before


def test_an_index_without_containment_keys_says_to_run_without_containment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "plain.db"
    assert cli("run", SAMPLES, "--index", path, "--containment", "0", "-q").exit_code == 0
    refused = cli("run", SAMPLES, "--index", path, "-q")
    assert refused.exit_code == 2
    assert "containment_keys: (none) in the index" in refused.stderr
    assert "--containment 0" in refused.stderr
    assert cli("run", SAMPLES, "--index", path, "--containment", "0", "-q").exit_code == 0


def test_cli_index_commands_explain_a_missing_or_damaged_index(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    missing = cli("index", "info", path.parent / "nope.db")
    assert (missing.exit_code, missing.stdout) == (2, "")
    assert "no index at" in missing.stderr
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE shingles SET data = x'00' WHERE entry = 1")
    db.close()
    damaged = cli("index", "verify", path)
    assert (damaged.exit_code, damaged.stdout) == (2, "")
    assert "1 shingle sets that do not decode: entry 1" in damaged.stderr
    assert "1 problem(s)" in damaged.stderr


def test_cli_index_add_seeds_an_index_from_a_corpus(tmp_path: Path) -> None:
    corpus, path = tmp_path / "corpus.jsonl", tmp_path / "accepted.db"
    assert cli("run", SAMPLES, "-o", corpus, "-q").exit_code == 0
    added = cli("index", "add", path, corpus)
    assert added.exit_code == 0, added.stderr
    assert added.stdout == ""
    assert f"added {SAMPLE_KEPT} articles" in added.stderr
    again = cli("run", SAMPLES, "--index", path, "-q")
    assert (again.exit_code, again.stdout) == (0, "")


def test_cli_check_opens_the_index_read_only(
    indexed: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = indexed
    before = folder_state(path.parent)
    # Another check holds the index meanwhile: checks share it.
    with IndexStore.open(path, None, readonly=True, wait_seconds=0):
        check = cli("run", SAMPLES, "--index", path, "--check", "-q")
    assert (check.exit_code, check.stdout, check.stderr) == (1, "", "")
    assert folder_state(path.parent) == before  # the index's bytes and mtime, no new file


def test_cli_check_against_a_missing_index_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "accepted.db"
    check = cli("run", SAMPLES, "--index", path, "--check")
    assert (check.exit_code, check.stdout) == (2, "")
    assert f"no index at {path}" in check.stderr
    assert list(tmp_path.iterdir()) == []


def interrupt(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize("with_index", [False, True])
def test_cli_interrupted_run_says_nothing_was_written(
    indexed: tuple[Path, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    with_index: bool,
) -> None:
    path, _ = indexed
    before = index_state(path)
    monkeypatch.setattr(driver, "run_plan", interrupt)
    out = path.parent / "out.jsonl"
    indexing: list[str | Path] = ["--index", path] if with_index else []
    args: list[str | Path] = ["run", SAMPLES, "-o", out, *indexing]
    interrupted = cli(*args)
    assert (interrupted.exit_code, interrupted.stdout) == (130, "")
    expected = "interrupted: no output file written" + (", index unchanged" if with_index else "")
    assert interrupted.stderr.strip() == expected
    assert index_state(path) == before


def test_cli_interrupted_while_the_index_commits_says_the_output_is_written(
    indexed: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = indexed
    before = digest(path)
    fresh = path.parent / "fresh.jsonl"
    fresh.write_text(
        "".join(
            json.dumps({"id": f"n{n}", "text": f"an article nobody has seen, number {n} " * 20})
            + "\n"
            for n in range(3)
        )
    )
    accept = IndexStore.accept

    def interrupted_accept(
        store: IndexStore,
        kept: Iterable[Accepted],
        run_label: str,
        learned: Any = None,
        forget_runs: int = 0,
    ) -> int:
        def first_then_ctrl_c() -> Iterator[Accepted]:
            yield next(iter(kept))
            raise KeyboardInterrupt

        return accept(store, first_then_ctrl_c(), run_label, learned, forget_runs)

    monkeypatch.setattr(IndexStore, "accept", interrupted_accept)
    out = path.parent / "out.jsonl"
    interrupted = cli("dedup", fresh, "--index", path, "-o", out)
    assert (interrupted.exit_code, interrupted.stdout) == (130, "")
    assert interrupted.stderr.strip() == "interrupted: output written, index unchanged"
    assert len(out.read_bytes().splitlines()) == 3
    assert digest(path) == before


def test_cli_interrupted_after_the_index_commits_says_it_was_updated(
    indexed: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = indexed
    fresh = path.parent / "fresh.jsonl"
    fresh.write_bytes(stories(0, 3))

    def ctrl_c(report: dict[str, Any], kw: dict[str, Any]) -> None:
        raise KeyboardInterrupt  # while the report or the summary is being written

    monkeypatch.setattr(cli_module, "_finish", ctrl_c)
    out = path.parent / "out.jsonl"
    interrupted = cli("dedup", fresh, "--index", path, "-o", out)
    assert (interrupted.exit_code, interrupted.stdout) == (130, "")
    assert interrupted.stderr.strip() == "interrupted: output written, index updated"
    assert len(out.read_bytes().splitlines()) == 3
    with IndexStore.open(path, None, readonly=True) as store:
        assert store.info()["articles"] == SAMPLE_KEPT + 3


def test_cli_check_writes_no_rejects(indexed: tuple[Path, list[dict[str, Any]]]) -> None:
    path, _ = indexed
    scrape = path.parent / "scrape.jsonl"
    scrape.write_bytes(stories(0, 3) + b"{broken\n")
    rejects = path.parent / "rejects.jsonl"
    checked = cli(
        "dedup", scrape, "--index", path, "--check", "--skip-invalid", "--rejects", rejects, "-q"
    )
    assert (checked.exit_code, checked.stdout) == (0, "")
    assert not rejects.exists()
    ran = cli("dedup", scrape, "--skip-invalid", "--rejects", rejects, "-q", "-o", "-")
    assert ran.exit_code == 0
    assert rejects.read_bytes() == b"{broken\n"
