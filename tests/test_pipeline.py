"""The pipeline's worker processes: same output as one job, and a worker that dies
ends the run with an error instead of leaving it waiting for the batch forever."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from click.testing import CliRunner
from support import SAMPLES

from corpus_clean import driver, pipeline
from corpus_clean.cli import cli
from corpus_clean.dedup import Fingerprinter, Fingerprints
from corpus_clean.io.inputs import resolve_inputs
from corpus_clean.io.readers import RawUnit
from corpus_clean.options import CleanOptions, DedupOptions, LearnOptions, SplitOptions
from corpus_clean.record import Record
from corpus_clean.stats import Stats


def corpus(tmp_path: Path, lines: int) -> Path:
    source = tmp_path / "in.jsonl"
    texts = [f"Story {n} about the river and the bridge near town {n % 7}." for n in range(lines)]
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    return source


def run(source: Path, jobs: int) -> bytes:
    out = io.BytesIO()
    plan = pipeline.Plan(dedup=DedupOptions(), jobs=jobs)
    driver.run_plan(plan, resolve_inputs([str(source)]), out)
    return out.getvalue()


def test_worker_processes_give_the_bytes_of_one_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 500)  # many batches, many in flight
    source = corpus(tmp_path, 200)
    assert run(source, jobs=2) == run(source, jobs=1)


@pytest.fixture
def dying_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few lines; the worker process given line 55 dies on the spot."""
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 500)
    work = pipeline.Worker.__call__

    def dies_on_line_55(self: pipeline.Worker, units: list[RawUnit]) -> object:
        if any(unit.line_no <= 55 < unit.line_no + unit.data.count(b"\n") for unit in units):
            os._exit(9)  # as the OOM killer would end it: no exception, no goodbye
        return work(self, units)

    # Worker processes are forked, so they inherit the patched method.
    monkeypatch.setattr(pipeline.Worker, "__call__", dies_on_line_55)


@pytest.mark.usefixtures("dying_worker")
def test_a_worker_that_dies_ends_the_run(tmp_path: Path) -> None:
    with pytest.raises(BrokenProcessPool):
        run(corpus(tmp_path, 100), jobs=2)


@pytest.mark.usefixtures("dying_worker")
def test_the_command_says_a_worker_died_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    source = corpus(tmp_path, 100)
    result = CliRunner().invoke(cli, ["run", str(source), "-o", str(out), "--jobs", "2", "-q"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "a worker process died" in result.stderr
    assert "--jobs 1" in result.stderr
    assert not out.exists()


def test_learning_on_a_pool_keeps_the_batches_in_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two jobs each worker keeps the batches it made for the second pass, which
    runs each where it is kept: no temporary file while the workers' share of the memory
    budget has room, files beyond; the same bytes as one job either way."""
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 500)  # many batches, on both workers
    dumped = tmp_path / "dumped"
    dump = pipeline.KeptBatch.dump

    def noted(self: pipeline.KeptBatch, file: IO[bytes]) -> None:
        with open(dumped, "a") as note:  # the workers are forked: they note it here
            note.write("x")
        dump(self, file)

    monkeypatch.setattr(pipeline.KeptBatch, "dump", noted)
    source = corpus(tmp_path, 200)

    def output(jobs: int, memory: int) -> bytes:
        out = io.BytesIO()
        plan = pipeline.Plan(clean=CleanOptions(), learn=LearnOptions(), jobs=jobs, memory=memory)
        driver.run_plan(plan, resolve_inputs([str(source)]), out)
        return out.getvalue()

    one_job = output(1, 1 << 30)
    assert output(2, 1 << 30) == one_job
    assert not dumped.exists()
    assert output(2, 8000) == one_job  # room for a few batches per worker
    assert 0 < len(dumped.read_text()) < one_job.count(b"\n")


def test_a_batch_kept_in_a_worker_is_finished_there_once() -> None:
    units = list(pipeline.input_units(resolve_inputs([str(SAMPLES)]), Stats(), shared=True))
    plan = pipeline.Plan(split=SplitOptions(), clean=CleanOptions(), learn=LearnOptions(), jobs=2)
    kept = pipeline.Worker(replace(plan, fit_keeps="process")).sketch(units)[1]
    assert isinstance(kept, pipeline.KeptHere) and kept.pid == os.getpid()
    in_memory = pipeline.Worker(replace(plan, fit_keeps="memory")).sketch(units)[1]
    assert isinstance(in_memory, pipeline.KeptBatch)
    second_pass = pipeline.Worker(plan)
    assert second_pass(kept).lines == second_pass(in_memory).lines
    with pytest.raises(RuntimeError, match="is not kept in process"):
        second_pass(kept)


KEEPER_RSS = """
from corpus_clean import heap, pipeline
from corpus_clean.io.spill import MemoryBudget
from corpus_clean.record import Record
from corpus_clean.stages.learn import Sketch
from corpus_clean.stats import Stats


def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


heap.reuse_freed_memory()  # as in a worker of the local pool
keeper = pipeline._Keeper()
keeper.begin(MemoryBudget(1 << 40))
text = "x" * 2000
handles = [
    keeper.keep(
        pipeline.KeptBatch(
            [Record(f"{b}:{i}", f"{b}:{i} {text}", "s") for i in range(2000)], Stats(), [], Sketch()
        )
    )
    for b in range(50)
]
pinned = bytearray(4000)  # the process holds something above them
full = rss_mb()
for handle in handles:
    keeper.take(handle)
print(round(full), round(rss_mb()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc's heap")
def test_a_worker_hands_back_the_memory_of_the_batches_it_kept() -> None:
    """Kept freed memory serves only the process that freed it: a worker whose kept
    batches (about 200 MB here) have all been taken holds their pages no longer."""
    done = subprocess.run(
        [sys.executable, "-c", KEEPER_RSS], capture_output=True, text=True, check=True
    )
    full, after = map(int, done.stdout.split())
    assert full > 200 and full - after > 150, done.stdout


def test_a_guess_is_reused_for_each_record_learning_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the fit runs, the workers fingerprint what they keep as if nothing were
    learned; the second pass takes those fingerprints for each record it leaves as it
    was, and fingerprints the others: the same fingerprints as without a guess."""
    units = list(pipeline.input_units(resolve_inputs([str(SAMPLES)]), Stats(), shared=True))
    plan = pipeline.Plan(
        split=SplitOptions(), clean=CleanOptions(), learn=LearnOptions(), dedup=DedupOptions()
    )
    kept = pipeline.Worker(replace(plan, fit_keeps="process", jobs=2)).sketch(units)[1]
    assert isinstance(kept, pipeline.KeptHere)
    pipeline.Worker(plan)(pipeline.Guessing())  # starts this process's guesses
    guessing = pipeline._kept_here.guessing
    assert guessing is not None
    guessing[0].join()  # done, not stopped
    batch = pipeline._kept_here.batches[kept.number]
    assert batch.guess is not None and len(batch.guess.ids) == len(batch.records) == 23
    plain = replace(batch, guess=None)
    # As if learning had cut a line of the third record.
    third = batch.records[2]
    batch.records[2] = plain.records[2] = third.evolve(text=third.text.split("\n")[-1])

    fingerprinted: list[int] = []
    fingerprint = Fingerprinter.fingerprint

    def counted(self: Fingerprinter, texts: list[str], dates: list[str | None]) -> Fingerprints:
        fingerprinted.append(len(texts))
        return fingerprint(self, texts, dates)

    monkeypatch.setattr(Fingerprinter, "fingerprint", counted)
    second_pass = pipeline.Worker(plan)
    with_guess, without = second_pass(kept), second_pass(plain)
    assert fingerprinted == [1, 23]
    assert with_guess.lines == without.lines
    assert with_guess.prints is not None and without.prints is not None
    assert with_guess.prints.exact == without.prints.exact
    assert np.array_equal(with_guess.prints.shingles, without.prints.shingles)
    assert np.array_equal(with_guess.prints.band_keys, without.prints.band_keys)


def _shouted(records: Iterable[Record], stats: Stats) -> Iterator[Record]:
    """A stage for the test: every text in capitals, counted."""
    for record in records:
        stats.add("records_shouted")
        yield record.evolve(text=record.text.upper())


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_stage_registered_in_one_place_runs_in_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    shout = pipeline.Registered("shout", lambda plan: _shouted)
    monkeypatch.setattr(pipeline, "STAGES", (*pipeline.STAGES, shout))  # forked workers too
    source = corpus(tmp_path, 20)
    out = io.BytesIO()
    plan = pipeline.Plan(clean=CleanOptions(), jobs=jobs)
    result = driver.run_plan(plan, resolve_inputs([str(source)]), out)
    texts = [json.loads(line)["text"] for line in out.getvalue().splitlines()]
    assert texts[3] == "STORY 3 ABOUT THE RIVER AND THE BRIDGE NEAR TOWN 3."
    assert result.stats["records_shouted"] == 20


def test_the_stages_run_in_their_registered_order() -> None:
    assert [entry.name for entry in pipeline.STAGES] == ["split", "clean", "learned", "settle"]
    assert [entry.after_fit for entry in pipeline.STAGES] == [False, False, True, True]


def test_the_fit_pass_keeps_batches_in_memory_while_it_has_room(tmp_path: Path) -> None:
    """At one job the second pass takes the fit pass's batches as they are, up to the
    memory budget; the rest wait in files. Either way, the same bytes as two jobs."""
    units = list(pipeline.input_units(resolve_inputs([str(SAMPLES)]), Stats(), shared=True))
    plan = pipeline.Plan(
        split=SplitOptions(), clean=CleanOptions(), learn=LearnOptions(), cache_dir=str(tmp_path)
    )
    first, second = units[:2], units[2:]
    kept = pipeline.Worker(replace(plan, fit_keeps="memory")).sketch(first)[1]
    assert isinstance(kept, pipeline.KeptBatch)
    budget = kept.size() + 1  # room for the first batch only
    worker = pipeline.Worker(replace(plan, fit_keeps="memory", memory=budget))
    assert isinstance(worker.sketch(first)[1], pipeline.KeptBatch)
    in_file = worker.sketch(second)[1]
    assert isinstance(in_file, str) and os.path.exists(in_file)
    assert isinstance(pipeline.Worker(replace(plan, fit_keeps="files")).sketch(first)[1], str)
    files = sorted(tmp_path.iterdir())
    # corpus-clean learn needs only the sketches: nothing is kept, nothing written.
    assert pipeline.Worker(replace(plan, fit_keeps="nothing")).sketch(first)[1] is None
    assert sorted(tmp_path.iterdir()) == files

    def output(jobs: int, memory: int) -> bytes:
        out = io.BytesIO()
        plan = pipeline.Plan(
            split=SplitOptions(),
            clean=CleanOptions(),
            learn=LearnOptions(),
            dedup=DedupOptions(),
            jobs=jobs,
            memory=memory,
        )
        driver.run_plan(plan, resolve_inputs([str(SAMPLES)]), out)
        return out.getvalue()

    assert output(1, 1 << 30) == output(1, budget) == output(2, 1 << 30)
