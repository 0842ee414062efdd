"""The sharded run (``corpus_clean.shards``) on a local process pool, ``--engine
processes``: the bytes of the local run whatever the shards, its ranges read as the
whole file is, the same exit 2 for a malformed line, ``--output-dir`` published whole,
``--work-dir`` and ``--resume`` after a driver killed with SIGKILL, and the index."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from engines import (
    engine,
    files,
    index_runs,
    invoke,
    outputs,
    terminated_with_nothing_written,
    written,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from support import SAMPLES, SCRIPT, replicated_samples, session_members

from corpus_clean.executors.local import LocalPool
from corpus_clean.io.inputs import InputFile, resolve_inputs
from corpus_clean.io.readers import RawUnit, read_units
from corpus_clean.options import DedupOptions
from corpus_clean.pipeline import Plan
from corpus_clean.shards import (
    Engine,
    ShardOptions,
    WorkFolderError,
    code_digest,
    count_newlines,
    plan_shards,
    read_shard,
)
from corpus_clean.stats import Stats


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pages")
    replicated_samples(folder, copies=3)
    return folder


@pytest.fixture(scope="module")
def articles(pages: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pages split into JSONL articles, half of them without an id (named by their
    FILE:LINE, which a range must count from the start of the file), blank lines too."""
    split = tmp_path_factory.mktemp("split") / "split.jsonl"
    assert invoke("split", str(pages), "-o", str(split), "-q").exit_code == 0
    lines = []
    for n, line in enumerate(split.read_bytes().splitlines(keepends=True)):
        record = json.loads(line)
        if n % 2:
            del record["id"]
        lines.append(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        if n % 7 == 0:
            lines.append(b"\n")
    target = split.parent / "articles.jsonl"
    target.write_bytes(b"".join(lines))
    return target


# ---- the same bytes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "shard_size", "extra"),
    [
        ("run", "64k", []),
        ("run", "1G", ["--no-learn"]),
        ("dedup", "32k", ["--cluster-fields"]),
        ("dedup", "5000", ["--keep", "longest"]),
        ("split", "16k", []),
        ("clean", "100k", []),
    ],
)
def test_processes_give_the_bytes_of_the_local_run(
    command: str, shard_size: str, extra: list[str], pages: Path, articles: Path, tmp_path: Path
) -> None:
    source = str(articles if command in ("dedup", "clean") else pages)
    dedup = command in ("run", "dedup")
    local = invoke(command, source, *extra, *files(tmp_path / "local", dedup))
    sharded = invoke(
        command,
        source,
        *extra,
        "--engine",
        "processes",
        "--jobs",
        "2",
        "--shard-size",
        shard_size,
        *files(tmp_path / "processes", dedup),
    )
    assert outputs(sharded, tmp_path / "processes") == outputs(local, tmp_path / "local")
    figures = engine(tmp_path / "processes")
    assert figures["name"] == "processes"
    assert figures["shards"] >= (1 if shard_size == "1G" else 4)
    assert figures["tasks"] >= figures["shards"]
    assert figures["skipped"] == figures["recomputed"] == 0
    assert "engine" not in json.loads((tmp_path / "local" / "report.json").read_text("utf-8"))


def test_stdin_on_processes_is_read_as_the_local_run_reads_it(articles: Path) -> None:
    data = articles.read_bytes()
    local = invoke("dedup", "-", "-q", input=data)
    sharded = invoke("dedup", "-", "-q", "--engine", "processes", "--shard-size", "20k", input=data)
    assert (sharded.exit_code, sharded.stderr) == (0, "")
    assert sharded.stdout_bytes == local.stdout_bytes
    assert b'"id":"<stdin>:' in local.stdout_bytes


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), min_size=0, max_size=40
    ),
    final_newline=st.booleans(),
    shard_bytes=st.integers(1, 120),
)
def test_ranges_read_the_units_of_the_whole_file(
    lines: list[bytes], final_newline: bool, shard_bytes: int, tmp_path_factory: Any
) -> None:
    """Whatever the cut, the ranges' units hold the file's bytes once each, in order,
    every unit starting at a line start, numbered as in the whole file."""
    path = tmp_path_factory.mktemp("ranges") / "lines.jsonl"
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    path.write_bytes(data)
    shards = plan_shards([InputFile(str(path), "jsonl")], shard_bytes)
    before = 0
    units: list[RawUnit] = []
    for shard in shards:
        (piece,) = shard.pieces
        # What the count stage gives: the newlines before the range.
        assert count_newlines(str(path), 0, piece.start) == before
        counted = replace(shard, pieces=(replace(piece, newlines_before=before),))
        units.extend(read_shard(counted, Stats(), 16))
        before += count_newlines(str(path), piece.start, piece.end)
    assert b"".join(unit.data for unit in units) == data
    for unit in units:
        assert unit.offset is not None
        assert unit.offset == 0 or data[unit.offset - 1 : unit.offset] == b"\n"
        assert unit.line_no == 1 + data[: unit.offset].count(b"\n")
    whole = b"".join(unit.data for unit in read_units([InputFile(str(path), "jsonl")], Stats()))
    assert whole == data


# ---- failures ------------------------------------------------------------------------


def test_a_malformed_line_stops_the_run_as_the_local_run_does(
    articles: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    lines = articles.read_bytes().splitlines(keepends=True)
    at = len(lines) * 3 // 4  # in a late shard, not the first
    broken.write_bytes(b"".join([*lines[:at], b'{"text": "cut off\n', *lines[at:]]))
    out = tmp_path / "out.jsonl"
    parts = tmp_path / "parts"
    local = invoke("dedup", str(broken), "-o", str(out))
    sharded = invoke(
        "dedup", str(broken), "--engine", "processes", "--shard-size", "16k", "-o", str(out)
    )
    to_dir = invoke("dedup", str(broken), "--engine", "processes", "--output-dir", str(parts), "-q")
    assert local.exit_code == sharded.exit_code == to_dir.exit_code == 2
    assert f"{broken}:{at + 1}: invalid JSON" in sharded.stderr
    assert sharded.stderr == local.stderr
    assert "Traceback" not in sharded.stderr
    assert not out.exists()
    assert list(parts.iterdir()) == []  # nothing half-written


def test_skipped_lines_and_rejects_are_those_of_the_local_run(
    articles: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    lines = articles.read_bytes().splitlines(keepends=True)
    for at in (len(lines) // 3, len(lines) * 2 // 3):
        lines.insert(at, b'{"text": "cut off at %d\n' % at)
    broken.write_bytes(b"".join(lines))
    found = []
    for name, engine_args in (("local", []), ("processes", ["--engine", "processes"])):
        rejects = tmp_path / f"{name}-rejects.jsonl"
        args = ["dedup", str(broken), "--skip-invalid", "--rejects", str(rejects)]
        result = invoke(*args, *engine_args, "--shard-size", "20k", *files(tmp_path / name))
        found.append((outputs(result, tmp_path / name), rejects.read_bytes()))
    assert found[1] == found[0]
    assert found[0][1].count(b"\n") == 2


def test_a_temporary_work_dir_is_refused_when_the_nodes_do_not_share_files(
    articles: Path, tmp_path: Path
) -> None:
    """As on a Ray cluster of several machines (``RayExecutor.shares_files``): a folder
    of this machine's temporary files, or none, is no place the other nodes can see."""
    pool = LocalPool(1)
    pool.shares_files = False
    plan = Plan(dedup=DedupOptions())
    inputs = resolve_inputs([str(articles)])
    for work_dir, message in (
        (str(tmp_path / "work"), "a temporary folder of this machine"),
        (None, "pass --work-dir on storage every node reads and writes"),
    ):
        engine = Engine(pool, ShardOptions(work_dir), "ray")
        with pytest.raises(WorkFolderError, match=message):
            engine.run(plan, inputs, None)
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--work-dir", "W"], "--work-dir only makes sense with --engine processes or ray"),
        (["--output-dir", "D"], "--output-dir only makes sense with --engine processes or ray"),
        (["--engine", "processes", "--resume"], "--resume resumes from a --work-dir"),
        (["--engine", "processes", "--output-dir", "D", "-o", "x.jsonl"], "give one"),
        (["--engine", "processes", "--shard-size", "lots"], "is not a size"),
    ],
)
def test_sharded_options_used_wrongly_say_how_to_fix_it(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = invoke("dedup", str(SAMPLES), *[str(tmp_path / a) if a in "WD" else a for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_work_dir_of_something_else_is_refused(articles: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("mine")
    result = invoke("dedup", str(articles), "--engine", "processes", "--work-dir", str(work))
    assert result.exit_code == 2
    assert f"--work-dir {work} holds files of something else (thesis.tex" in result.stderr
    assert (work / "thesis.tex").read_text() == "mine"


def test_resume_refuses_the_work_dir_of_another_run(articles: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "run.json").write_text('{"key": "another run"}\n')
    result = invoke(
        "dedup", str(articles), "--engine", "processes", "--work-dir", str(work), "--resume"
    )
    assert result.exit_code == 2
    assert "holds the intermediates of another run" in result.stderr
    assert "run without --resume" in result.stderr


def test_intermediates_of_other_code_are_not_resumed_from(tmp_path: Path) -> None:
    """The run key holds a digest of the code: what another version wrote (its sketches
    may lack a field this one needs) is never taken for this run's."""
    package = tmp_path / "package"
    (package / "stages").mkdir(parents=True)
    (package / "__pycache__").mkdir()
    (package / "stages" / "learn.py").write_text("FIELDS = 1\n")
    (package / "rules.toml").write_text("[[rule]]\n")
    before = code_digest(package)
    (package / "__pycache__" / "learn.cpython-311.pyc").write_bytes(b"compiled")
    (package / "notes.txt").write_text("not code")
    assert code_digest(package) == before
    (package / "stages" / "learn.py").write_text("FIELDS = 2\n")
    assert code_digest(package) != before


# ---- --output-dir --------------------------------------------------------------------


def test_output_dir_holds_the_records_as_parts_and_a_manifest(
    articles: Path, tmp_path: Path
) -> None:
    local = invoke("dedup", str(articles), "-q")
    parts = tmp_path / "parts"
    args = ["dedup", str(articles), "--engine", "processes", "--output-dir", str(parts), "-q"]
    report = tmp_path / "report.json"
    result = invoke(*args, "--shard-size", "32k", "--report", str(report))
    assert (result.exit_code, result.stdout_bytes) == (0, b"")
    manifest = json.loads((parts / "manifest.json").read_text("utf-8"))
    names = [part["path"] for part in manifest["parts"]]
    assert len(names) >= 4
    assert sorted(p.name for p in parts.iterdir()) == sorted([*names, "manifest.json"])
    joined = b""
    for part in manifest["parts"]:
        data = (parts / part["path"]).read_bytes()
        assert part["bytes"] == len(data)
        assert part["records"] == data.count(b"\n")
        assert part["sha256"] == hashlib.sha256(data).hexdigest()
        joined += data
    assert joined == local.stdout_bytes
    assert manifest["records"] == local.stdout_bytes.count(b"\n")
    assert manifest["bytes"] == len(joined)
    published = json.loads(report.read_text("utf-8"))["outputs"]
    assert published == {
        "output_dir": {"path": str(parts), "parts": len(names), "bytes": len(joined)}
    }
    # A second run in fewer shards leaves none of the first run's extra parts.
    assert invoke(*args, "--shard-size", "1G").exit_code == 0
    assert sorted(p.name for p in parts.iterdir()) == ["manifest.json", "part-00000.jsonl"]
    assert (parts / "part-00000.jsonl").read_bytes() == local.stdout_bytes


def test_output_dir_with_other_files_is_refused_before_anything_is_read(
    articles: Path, tmp_path: Path
) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "notes.txt").write_text("mine")
    result = invoke("dedup", str(articles), "--engine", "processes", "--output-dir", str(parts))
    assert result.exit_code == 2
    assert "holds other files (notes.txt" in result.stderr
    assert sorted(p.name for p in parts.iterdir()) == ["notes.txt"]


# ---- --work-dir and --resume ---------------------------------------------------------


def test_resume_after_the_driver_is_killed_skips_the_finished_tasks(
    tmp_path: Path,
) -> None:
    pages = tmp_path / "pages"
    replicated_samples(pages, copies=6)
    work = tmp_path / "work"
    local = invoke("run", str(pages), *files(tmp_path / "local"))
    (tmp_path / "sharded").mkdir()
    named = ["-o", "out.jsonl", "--duplicates", "dups.jsonl", "--report", "report.json", "-q"]
    command = [str(SCRIPT), "run", str(pages), *named, "--engine", "processes", "--jobs", "2"]
    command += ["--shard-size", "48k", "--work-dir", str(work)]
    driver = subprocess.Popen(
        command, cwd=tmp_path / "sharded", stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not list(work.glob("shard-*/fit.done")) and time.monotonic() < deadline:
            assert driver.poll() is None, "the run ended before it could be killed"
            time.sleep(0.005)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        driver.kill()
        assert driver.stderr is not None
        driver.stderr.close()
    assert driver.returncode == -signal.SIGKILL
    assert _none_left(driver.pid), "the pool's workers outlived the killed driver"
    finished = len(list(work.glob("shard-*/fit.done")))
    assert finished >= 1
    assert not (tmp_path / "sharded" / "out.jsonl").exists()
    resumed = subprocess.run(
        [*command, "--resume"], cwd=tmp_path / "sharded", capture_output=True, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert written(tmp_path / "sharded") == outputs(local, tmp_path / "local")
    figures = engine(tmp_path / "sharded")
    assert figures["skipped"] >= finished
    # Fit, map and write per shard, then learn and decide: those done are not run again.
    assert figures["tasks"] + figures["skipped"] == 3 * figures["shards"] + 2
    assert os.listdir(work) == []  # emptied once the run succeeded


def test_a_finished_run_resumed_runs_no_task_but_the_counts(articles: Path, tmp_path: Path) -> None:
    """A work dir kept from a run killed after its last task: resuming publishes the
    same bytes again without running a stage task."""
    work = tmp_path / "work"
    args = ["dedup", str(articles), "--engine", "processes", "--shard-size", "1G"]
    args += ["--work-dir", str(work), "-q"]
    first = invoke(*args)
    assert first.exit_code == 0
    assert os.listdir(work) == []
    again = invoke(*args, "--resume")  # nothing to resume from: a fresh run
    assert again.stdout_bytes == first.stdout_bytes


# ---- the index -----------------------------------------------------------------------


def test_an_index_run_on_processes_equals_the_local_one(pages: Path, tmp_path: Path) -> None:
    sharded = ["--engine", "processes", "--shard-size", "64k"]
    figures = index_runs(
        pages,
        tmp_path,
        {"local": invoke, "processes": lambda *args: invoke(*args, *sharded)},
    )
    assert figures["processes"] == figures["local"]
    assert figures["processes"][2]["duplicates"]["index"] > 0
    # Into a new index as well: the first run makes it.
    fresh = tmp_path / "fresh.db"
    args = ["run", str(pages), "--index", str(fresh), "-q", "--engine", "processes"]
    assert invoke(*args).exit_code == 0
    assert json.loads(invoke("index", "info", str(fresh)).stdout)["articles"] > 0


def test_sigterm_stops_the_tasks_and_leaves_no_output(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    replicated_samples(pages, copies=6)
    out, work = tmp_path / "out.jsonl", tmp_path / "work"
    command = [str(SCRIPT), "run", str(pages), "-o", str(out), "--engine", "processes"]
    command += ["--jobs", "2", "--shard-size", "48k", "--work-dir", str(work)]
    driver = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )

    def fitted() -> bool:
        deadline = time.monotonic() + 60
        while not list(work.glob("shard-*/fit.done")) and time.monotonic() < deadline:
            time.sleep(0.005)
        return True  # as before: a run not that far yet is stopped all the same

    terminated_with_nothing_written(driver, tmp_path, fitted)
    assert _none_left(driver.pid)
    assert list(work.glob("shard-*/fit.done"))  # kept for --resume


def _none_left(session: int, within: float = 20) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not session_members(session):
            return True
        time.sleep(0.05)
    return False
