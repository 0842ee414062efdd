"""Helpers of the engine tests (test_shards, test_ray, test_local): a run's outputs side
by side, the index workflow run by each engine, and an executor's map left on an error."""

from __future__ import annotations

import errno
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from support import SAMPLES

from corpus_clean.cli import cli
from corpus_clean.executors import Executor, Work


def terminated_with_nothing_written(
    driver: subprocess.Popen[bytes], folder: Path, started: Callable[[], bool]
) -> None:
    """SIGTERM a run once ``started`` holds: it exits 130 saying so, with nothing on stdout
    and no ``out.jsonl`` (nor a temporary of it) in ``folder``."""
    try:
        assert started(), "the run did not get going"
        driver.send_signal(signal.SIGTERM)
        stdout, stderr = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode == 130, stderr
    assert b"interrupted: no output file written" in stderr
    assert stdout == b""
    assert list(folder.glob("out.jsonl*")) == []


def invoke(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def files(folder: Path, dedup: bool = True) -> list[str]:
    """-o, --report (and --duplicates) in a new folder of their own."""
    folder.mkdir()
    named = ["-o", str(folder / "out.jsonl"), "--report", str(folder / "report.json"), "-q"]
    return [*named, "--duplicates", str(folder / "dups.jsonl")] if dedup else named


def outputs(result: Result, folder: Path) -> tuple[bytes, bytes, dict[str, Any]]:
    assert result.exit_code == 0, result.stderr
    return written(folder)


def written(folder: Path) -> tuple[bytes, bytes, dict[str, Any]]:
    """-o, --duplicates and the report in ``folder`` (see ``files``), without what differs
    by nature: the engine block, the timings and the paths of the outputs."""
    report = json.loads((folder / "report.json").read_text("utf-8"))
    for varying in ("engine", "seconds", "mb_per_s", "phases", "outputs"):
        report.pop(varying, None)
    dups = folder / "dups.jsonl"
    return (folder / "out.jsonl").read_bytes(), dups.read_bytes() if dups.exists() else b"", report


def engine(folder: Path) -> dict[str, Any]:
    """The report's engine block."""
    figures: dict[str, Any] = json.loads((folder / "report.json").read_text("utf-8"))["engine"]
    return figures


def index_runs(
    pages: Path, tmp_path: Path, engines: dict[str, Callable[..., Result]]
) -> dict[str, tuple[bytes, bytes, dict[str, Any], int]]:
    """``run --index`` of ``pages`` by each engine (a name, and how it invokes the
    command), each on its own copy of an index seeded with the samples: what each wrote,
    reported, and left in the index."""
    seeded = tmp_path / "seeded.db"
    assert invoke("run", str(SAMPLES), "--index", str(seeded), "-q").exit_code == 0
    figures = {}
    for name, run in engines.items():
        index = tmp_path / f"{name}.db"
        shutil.copyfile(seeded, index)
        result = run("run", str(pages), "--index", str(index), *files(tmp_path / name))
        kept, removed, report = outputs(result, tmp_path / name)
        report["index"].pop("path")
        info = json.loads(invoke("index", "info", str(index)).stdout)
        figures[name] = (kept, removed, report, info["articles"])
    return figures


def written_after_an_error(executor: Executor, folder: Path) -> list[str]:
    """Map 20 items that write a file each into ``folder`` a moment after they start, the
    first of which fails (as a full disk would) once the second has started, and check
    that nothing writes once the map has raised (the caller removes its temporary folder
    as the error unwinds: an item still running would write into it after that, leaving
    it behind). Returns the names the items wrote, the second's among them."""
    items = ((str(folder), number) for number in range(20))
    try:
        for _ in executor.map(Work(_writer), items):
            pass
    except OSError as err:
        assert err.errno == errno.ENOSPC
    else:
        raise AssertionError("the map did not raise the first item's error")
    written = sorted(path.name for path in folder.iterdir())
    time.sleep(1)
    assert sorted(path.name for path in folder.iterdir()) == written
    assert "1" in written  # it was running when the first failed: it ran to its end
    return written


def _writer() -> Callable[[tuple[str, int]], None]:
    return _write_after_a_while


def _write_after_a_while(item: tuple[str, int]) -> None:
    folder, number = item
    started = Path(folder) / "1.started"
    if number == 0:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise OSError(errno.ENOSPC, "No space left on device")
    if number == 1:
        started.write_bytes(b"")
    time.sleep(0.3)
    (Path(folder) / str(number)).write_bytes(b"")
