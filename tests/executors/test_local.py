"""Executors without a cluster: the local pool's ordered map, Ray imported only when
chosen, and what the command says when Ray is missing."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from engines import written_after_an_error
from support import SAMPLES

from corpus_clean import driver, pipeline
from corpus_clean.cli import cli
from corpus_clean.executors import ExecutorError, Work
from corpus_clean.executors.local import LocalPool, tuned
from corpus_clean.io.inputs import resolve_inputs
from corpus_clean.options import CleanOptions, LearnOptions, SplitOptions


def _square(n: int) -> int:
    return n * n


def _squarer() -> Callable[[int], int]:
    return _square


WORK = Work(_squarer)


def _collector_enabled(_: int) -> bool:
    return gc.isenabled()


def _collector_checker() -> Callable[[int], bool]:
    return _collector_enabled


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("items", [0, 1, 2, 50])
def test_the_local_pool_maps_in_input_order(jobs: int, items: int) -> None:
    with LocalPool(jobs) as pool:
        assert list(pool.map(WORK, iter(range(items)))) == [n * n for n in range(items)]


def _where(n: int) -> tuple[int, int]:
    return n, os.getpid()


def _locator() -> Callable[[int], tuple[int, int]]:
    return _where


def test_item_i_of_every_map_runs_in_the_same_worker_until_the_pool_is_left() -> None:
    """What the fit pass keeps in a worker's memory is where the second pass's item at
    the same position runs; each map runs its own work."""
    with LocalPool(2) as pool:
        assert list(pool.map(WORK, range(3))) == [0, 1, 4]
        first = list(pool.map(Work(_locator), range(7)))
        assert list(pool.map(Work(_locator), range(7))) == first
        # One item, which alone would run inline: where the first item ran before.
        assert list(pool.map(Work(_locator), range(1))) == first[:1]
    workers = [pid for _, pid in first]
    assert workers[0::2] == [workers[0]] * 4 and workers[1::2] == [workers[1]] * 3
    assert len(set(workers)) == 2 and os.getpid() not in workers
    for pid in set(workers):  # ended (and reaped) with the pool
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_map_left_on_an_error_leaves_none_of_its_items_running(tmp_path: Path) -> None:
    with LocalPool(2) as pool:
        written = written_after_an_error(pool, tmp_path)
    assert "19" not in written  # the items not started did not run


def test_the_local_pool_pauses_the_cycle_collector_for_a_run_only() -> None:
    assert gc.isenabled()
    with LocalPool(2) as pool:
        assert not gc.isenabled()
        assert list(pool.map(Work(_collector_checker), range(4))) == [False] * 4  # in workers
    assert gc.isenabled()


def test_tuning_pauses_the_collector_inside_only_and_keeps_a_pause_it_found() -> None:
    # What a shard task enters wherever it runs (a Ray worker is set up by nobody else).
    assert gc.isenabled()
    with pytest.raises(ValueError, match="task failed"), tuned():
        assert not gc.isenabled()
        with tuned():
            pass
        assert not gc.isenabled()  # the inner one found it paused, and left it so
        raise ValueError("task failed")
    assert gc.isenabled()


def test_ray_is_imported_only_when_chosen(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from corpus_clean.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['run', {str(SAMPLES)!r}, '-q', '--jobs', '1'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print('ray' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False"


def test_without_ray_the_ray_engine_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    report = tmp_path / "report.json"
    args = ["run", str(SAMPLES), "--engine", "ray", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, [*args, "--report", str(report)])
    assert result.exit_code == 2
    assert "--engine ray needs Ray: pip install 'corpus-clean[ray]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_local_engine_adds_no_engine_block(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["run", str(SAMPLES), "--engine", "local", "-q", "--report", str(report)]
    )
    assert result.exit_code == 0, result.stderr
    assert "engine" not in json.loads(report.read_text("utf-8"))


class _OnOtherHosts(LocalPool):
    """A pool whose workers, like a cluster's nodes on other hosts, cannot read this
    process's temporary files."""

    shares_files = False


def test_learning_refuses_workers_that_cannot_read_its_temporary_files() -> None:
    plan = pipeline.Plan(split=SplitOptions(), clean=CleanOptions(), learn=LearnOptions(), jobs=1)
    with pytest.raises(ExecutorError, match="pass --no-learn"):
        driver.run_plan(
            plan, resolve_inputs([str(SAMPLES)]), io.BytesIO(), executor=_OnOtherHosts(1)
        )
    # Without learning, the same executor runs.
    plan = pipeline.Plan(split=SplitOptions(), clean=CleanOptions(), jobs=1)
    out = io.BytesIO()
    driver.run_plan(plan, resolve_inputs([str(SAMPLES)]), out, executor=_OnOtherHosts(1))
    assert out.getvalue().count(b"\n") == 23
