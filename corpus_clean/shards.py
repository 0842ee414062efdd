"""A run as stages of tasks over shards of the input (``--engine processes`` and ``ray``).

Shards are input files, or byte ranges of a big JSONL file, in input order; a range
holds the lines that start in it, so a worker finds its own first line without anyone
reading the bytes before it. Every task reads its own bytes and leaves what it made in
the work folder, with a completion marker written last; only small summaries (counts,
the paths of what it wrote) come back to the driver. The stages:

1. count: the newlines of every range but a file's last, for the line numbers that name
   records (``FILE:LINE``) in the ranges after it;
2. (with learning) fit: each shard split and cleaned by the rules and sketched, then one
   task learns from every shard's sketch in shard order;
3. map: each shard parsed, split, cleaned and fingerprinted by the pipeline's per-batch
   worker (``pipeline.Worker``), its encoded records and fingerprints written out;
4. decide: one task feeds dedup's finder every shard's fingerprints in shard order and
   resolves them (the decision rule of the local run, by input position);
5. write: each shard's records annotated with their verdicts into its part (kept) and its
   removed part; the driver then concatenates the parts in order (``-o``, stdout) or
   publishes them as numbered files with a manifest (``--output-dir``).

The same functions run the same per-record code as the local run, so the output is the
same bytes. With ``--resume`` a task whose marker is there is not run again; a stage
whose input is gone (a lost node's files) runs again the tasks that made it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import re
import shutil
import socket
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal

from . import pipeline
from .dedup import DuplicateFinder, Fingerprinter, Fingerprints, Verdict, count_verdicts
from .errors import CorpusCleanError
from .executors import Executor, ExecutorError, Work
from .executors.local import tuned
from .formats import is_compressed
from .io.codec import add_fields
from .io.inputs import STDIN, FileStamp, InputFile, names_a_stream
from .io.readers import RawUnit, line_runs, read_units
from .io.sinks import Outputs, write_all
from .io.spill import InputChangedError, MemoryBudget, new_temporary_folder, temporary_errors
from .pipeline import Plan, ProgressCallback, Result
from .stages.learn import Evidence, Learned, Prior, Sketch
from .stats import Stats
from .storage import Accepted
from .storage.sqlite import IndexStore

#: Bytes of input a shard holds by default: eight batches, a task of a few seconds; a
#: hundred megabytes make a few shards, enough to keep two or three workers busy.
SHARD_BYTES = 16 << 20

#: The folder of a run's intermediates: its files are named here only.
_RUN_FILE = "run.json"


class WorkFolderError(CorpusCleanError):
    """A work folder that cannot serve the run (another run's, not shared by the nodes)."""


@dataclass(frozen=True)
class ShardOptions:
    """How a run is cut into tasks and where they keep what they make."""

    #: Intermediates and completion markers (None: a temporary folder, removed after).
    work_dir: str | None = None
    #: Skip the tasks whose completion marker a killed run of the same job left.
    resume: bool = False
    shard_bytes: int = SHARD_BYTES
    #: Write the kept records as numbered parts plus a manifest here (None: ``out``).
    output_dir: str | None = None


@dataclass(frozen=True)
class Piece:
    """Bytes of one input in a shard: a byte range of a plain JSONL file (the lines that
    start in it), or a whole file (a page, compressed JSONL, Parquet)."""

    kind: Literal["range", "whole"]
    path: str  # absolute: a task may run in another folder
    source: str  # the name its records carry
    input_kind: Literal["page", "jsonl", "parquet"]
    size: int  # of the file when the run was planned
    start: int = 0
    end: int = 0
    #: Newlines in the file before ``start`` (known after the count stage).
    newlines_before: int = 0

    @property
    def nbytes(self) -> int:
        return self.end - self.start if self.kind == "range" else self.size


@dataclass(frozen=True)
class Shard:
    number: int
    pieces: tuple[Piece, ...]


def plan_shards(inputs: Sequence[InputFile], shard_bytes: int) -> list[Shard]:
    """The inputs cut into shards of about ``shard_bytes``, in input order: small files
    share a shard, a big plain JSONL file is cut into ranges. Streams must have been
    copied to files first (see ``_streams_spooled``); special files are left out."""
    pieces: list[Piece] = []
    for item in inputs:
        if item.kind == "special":
            continue
        path = os.path.abspath(item.path)
        size = os.stat(path).st_size
        if item.kind == "page":
            pieces.append(Piece("whole", path, item.source, "page", size))
            continue
        source = item.name or item.source
        if item.kind == "parquet" or is_compressed(item.path):
            pieces.append(Piece("whole", path, source, item.kind, size))
            continue
        for start in range(0, max(size, 1), shard_bytes):
            end = min(start + shard_bytes, size)
            pieces.append(Piece("range", path, source, "jsonl", size, start, end))
    shards: list[Shard] = []
    current: list[Piece] = []
    held = 0
    for piece in pieces:
        if current and held + piece.nbytes > shard_bytes:
            shards.append(Shard(len(shards), tuple(current)))
            current, held = [], 0
        current.append(piece)
        held += piece.nbytes
    if current:
        shards.append(Shard(len(shards), tuple(current)))
    return shards


def count_newlines(path: str, start: int, end: int) -> int:
    """Newlines in bytes ``start..end`` of a file (a count-stage task)."""
    found = 0
    with open(path, "rb") as file:
        file.seek(start)
        left = end - start
        while left > 0 and (block := file.read(min(left, 1 << 22))):
            found += block.count(b"\n")
            left -= len(block)
    return found


def read_shard(shard: Shard, stats: Stats, chunk_bytes: int) -> Iterator[RawUnit]:
    """The raw units of a shard, as ``io.readers.read_units`` would give them of its files:
    pages whole, JSONL in runs of whole lines, each unit's first line numbered as in
    the whole file."""
    for piece in shard.pieces:
        if piece.kind == "range":
            yield from _range_units(piece, stats, chunk_bytes)
        else:
            whole = InputFile(piece.path, piece.input_kind, name=piece.source)
            yield from read_units([whole], stats, chunk_bytes)


def _range_units(piece: Piece, stats: Stats, chunk_bytes: int) -> Iterator[RawUnit]:
    with open(piece.path, "rb") as file:
        stamp = FileStamp.of(file.fileno())
        if stamp.size != piece.size:
            raise InputChangedError(
                f"{piece.source}: changed while this run read it; run again on a copy that "
                "stays put"
            )
        line_no, first = 1 + piece.newlines_before, piece.start
        if first > 0:
            # The first line that starts in the range: after the first newline from the
            # byte before it on (which may be that byte itself).
            file.seek(first - 1)
            at = first - 1
            while (block := file.read(1 << 16)) and (k := block.find(b"\n")) < 0:
                at += len(block)
            if not block:
                return
            newline = at + k
            first = newline + 1
            line_no += newline >= piece.start
        if first >= piece.end:
            return  # a line that began before the range covers all of it
        file.seek(first)
        window = _Window(file, piece.end - first)
        offset = first
        for lines in line_runs(window, chunk_bytes):  # type: ignore[arg-type]
            stats.add("bytes_read", len(lines))
            yield RawUnit("jsonl", piece.source, line_no, lines, offset, stamp, piece.path)
            line_no += lines.count(b"\n")
            offset += len(lines)


class _Window:
    """The bytes of a range's lines, as a stream for ``io.readers.line_runs``: up to the range's
    end, then on to the end of the line that holds its last byte."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self.file = file
        self.left = size
        self.last = b""
        self.done = False

    def read1(self, size: int) -> bytes:
        if self.done:
            return b""
        if self.left > 0:
            block = self.file.read(min(size, self.left))
            self.left -= len(block)
            if not block:
                self.done = True
            self.last = block[-1:] or self.last
            if self.left == 0 and self.last == b"\n":
                self.done = True
            return block
        block = self.file.read(size)
        k = block.find(b"\n")
        if k >= 0 or not block:
            self.done = True
            return block[: k + 1] if k >= 0 else block
        return block


# ---- the tasks -----------------------------------------------------------------------


@dataclass
class Mapped:
    """What the map task of a shard says it made (its files are in the shard's folder)."""

    records: int
    stats: Stats
    rejects: list[bytes]
    node: str


@dataclass
class Fitted:
    """What the fit task of a shard made: its batches as the rules left them (files)."""

    paths: list[str]
    node: str


@dataclass
class Decided:
    stats: Stats
    node: str


@dataclass
class Written:
    """A shard's output part: its records, bytes and SHA-256."""

    records: int
    bytes: int
    sha256: str
    node: str


def _node() -> str:
    """The node a task runs on: Ray's id of it, else the host's name."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return str(ray.get_runtime_context().get_node_id())
    return socket.gethostname()


def _shard_folder(folder: str, shard: int | Shard) -> Path:
    number = shard.number if isinstance(shard, Shard) else shard
    return Path(folder) / f"shard-{number:05d}"


def _marker(folder: str, stage: str, shard: int | Shard | None = None) -> Path:
    base = Path(folder) if shard is None else _shard_folder(folder, shard)
    return base / f"{stage}.done"


def _save(path: Path, value: Any) -> None:
    """Write a pickle whole or not at all (a marker is there only once its task is done)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary_errors(), open(tmp, "wb") as file:
        pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def _load(path: Path) -> Any:
    with temporary_errors(), open(path, "rb") as file:
        return pickle.load(file)


def _applied(plan: Plan, folder: str) -> Learned | None:
    """What the workers apply after the rules: learned (the fit stage's) and pinned."""
    if plan.clean is None:
        return None
    if plan.learn is not None:
        applied: Learned = _load(Path(folder) / "learned.pickle")[2]
        return applied or None
    return pipeline.pinned(plan.clean) or None


def fit_shard(plan: Plan, shard: Shard, folder: str) -> Fitted:
    """Stage fit, per shard: its records split and cleaned by the rules, kept in files
    for the map stage, and sketched for learning (the sketch stays in the folder)."""
    cache = _shard_folder(folder, shard) / "fit"
    with temporary_errors():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
    worker = pipeline.Worker(
        replace(plan, dedup=None, learned=None, fit_keeps="files", cache_dir=str(cache))
    )
    sketches, paths = [], []
    stats = Stats()
    for batch in pipeline.batched(read_shard(shard, stats, pipeline.BATCH_BYTES)):
        sketch, kept = worker.sketch(batch)
        assert isinstance(kept, str)  # in a file: the map stage may run on another node
        sketches.append(sketch)
        paths.append(kept)
    # What reading counted: the second pass counts the rest.
    _save(cache / "read.pickle", stats)
    _save(cache / "sketches.pickle", sketches)
    fitted = Fitted(paths, _node())
    _save(_marker(folder, "fit", shard), fitted)
    return fitted


def learn_shards(plan: Plan, shards: int, folder: str) -> None:
    """Stage learn (one task): every shard's sketches, in shard order, learned from as
    the local run learns (with what earlier runs saw, if the driver left it)."""
    assert plan.learn is not None and plan.clean is not None
    sketches: list[Sketch] = []
    for shard in range(shards):
        sketches.extend(_load(_shard_folder(folder, shard) / "fit" / "sketches.pickle"))
    prior_path = Path(folder) / "prior.pickle"
    prior: Prior | None = _load(prior_path) if prior_path.exists() else None
    hook = pipeline.fit_hook(plan, prior)
    assert hook is not None
    learned = hook.fit(sketches)
    evidence = hook.evidence
    applied = pipeline.pinned(plan.clean)
    applied.update(learned)
    _save(Path(folder) / "learned.pickle", (learned, evidence, applied))
    _save(_marker(folder, "learn"), _node())


def map_shard(plan: Plan, shard: Shard, folder: str) -> Mapped:
    """Stage map, per shard: its records through the per-record stages, written out as
    encoded lines (``records.jsonl``) and, with dedup, fingerprints (``prints.pickle``)."""
    here = _shard_folder(folder, shard)
    with temporary_errors():
        here.mkdir(parents=True, exist_ok=True)
    worker = pipeline.Worker(replace(plan, learned=_applied(plan, folder), cache_dir=None))
    stats = Stats()
    rejects: list[bytes] = []
    prints: list[tuple[list[str], Fingerprints]] = []
    heads: list[tuple[str | None, str]] = []
    records = 0
    tmp = here / f".records.jsonl.{os.getpid()}.tmp"
    with temporary_errors(), open(tmp, "wb", buffering=1 << 20) as out:
        for batch, units in _processed_batches(plan, worker, shard, folder, stats):
            stats.merge(batch.stats)
            rejects.extend(batch.rejects)
            out.write(b"".join(_materialized(batch, units)))
            records += len(batch.lines)
            if batch.prints is not None:
                prints.append(([head[0] for head in batch.heads], batch.prints))
                heads.extend((title, source) for _, title, source in batch.heads)
    os.replace(tmp, here / "records.jsonl")
    if plan.dedup is not None:
        _save(here / "prints.pickle", (prints, heads))
    else:
        stats.add("written", records)
    mapped = Mapped(records, stats, rejects, _node())
    _save(_marker(folder, "map", shard), mapped)
    return mapped


def _processed_batches(
    plan: Plan, worker: pipeline.Worker, shard: Shard, folder: str, stats: Stats
) -> Iterator[tuple[pipeline.Batch, list[RawUnit]]]:
    """The shard's batches through the worker, with the units each came from. With
    learning, the batches the fit stage kept; if they are gone (a map task that ran
    before, killed or lost), the fit is made again for this shard."""
    if plan.learn is None or plan.clean is None:
        for units in pipeline.batched(read_shard(shard, stats, pipeline.BATCH_BYTES)):
            yield worker(units), units
        return
    fitted: Fitted | None = None
    with contextlib.suppress(FileNotFoundError):
        fitted = _load(_marker(folder, "fit", shard))
    if fitted is None or not all(os.path.exists(path) for path in fitted.paths):
        fitted = fit_shard(plan, shard, folder)
    stats.merge(_load(_shard_folder(folder, shard) / "fit" / "read.pickle"))
    for path in fitted.paths:
        yield worker.finish(path), []


def _materialized(batch: pipeline.Batch, units: list[RawUnit]) -> list[bytes]:
    """The batch's encoded lines, those left to be read again from the input (``None``,
    see ``io.spill.FileSpans``) taken from the units the batch was made of."""
    if batch.reread is None:
        assert all(line is not None for line in batch.lines)
        return batch.lines  # type: ignore[return-value]
    unit = next(unit for unit in units if unit.offset is not None)
    assert unit.offset is not None
    again = zip(batch.reread.offsets, batch.reread.lengths, batch.reread.tails, strict=True)
    lines = []
    for line in batch.lines:
        if line is None:
            offset, length, tail = next(again)
            at = offset - unit.offset
            line = unit.data[at : at + length] + tail
        lines.append(line)
    return lines


def decide_shards(
    plan: Plan, shards: int, folder: str, index_path: str | None, settings: dict[str, object]
) -> Decided:
    """Stage decide (one task): dedup's finder fed every shard's fingerprints in shard
    order, resolved against the index (read-only: the driver holds its lock) as the
    local run resolves; each shard's verdicts written for its write task."""
    assert plan.dedup is not None
    stats = Stats()
    with contextlib.ExitStack() as stack:
        index = (
            stack.enter_context(
                IndexStore.open(index_path, settings, readonly=True, take_turn=False)
            )
            if index_path is not None
            else None
        )
        finder = DuplicateFinder(plan.dedup, index, MemoryBudget(plan.memory))
        stack.callback(finder.close)
        bounds = [0]
        for shard in range(shards):
            prints, _ = _load(_shard_folder(folder, shard) / "prints.pickle")
            for ids, batch in prints:
                finder.add(ids, batch)
            bounds.append(len(finder.ids))
        verdicts = {} if plan.keep_all else finder.resolve(stats)
        count_verdicts(verdicts, finder.ids, stats)
        stats.add("written", len(finder.ids) - len(verdicts))
        clustered = plan.dedup.cluster_fields
        for shard in range(shards):
            start, end = bounds[shard], bounds[shard + 1]
            own = {n - start: verdicts[n] for n in range(start, end) if n in verdicts}
            fields = (
                {n - start: finder.kept_fields(n) for n in range(start, end) if n not in verdicts}
                if clustered
                else {}
            )
            _save(_shard_folder(folder, shard) / "verdicts.pickle", (own, fields))
    decided = Decided(stats, _node())
    _save(_marker(folder, "decide"), decided)
    return decided


def write_shard(plan: Plan, shard: int, folder: str) -> Written:
    """Stage write, per shard: its kept records (``kept.jsonl``, the shard's part) and
    its removed ones with their verdicts (``removed.jsonl``)."""
    here = _shard_folder(folder, shard)
    verdicts: dict[int, Verdict]
    verdicts, fields = _load(here / "verdicts.pickle")
    meta = plan.read.metadata_field
    digest = hashlib.sha256()
    kept = written = 0
    pid = os.getpid()
    with (
        temporary_errors(),
        open(here / "records.jsonl", "rb", buffering=1 << 20) as lines,
        open(here / f".kept.{pid}.tmp", "wb", buffering=1 << 20) as kept_out,
        open(here / f".removed.{pid}.tmp", "wb", buffering=1 << 20) as removed_out,
    ):
        for n, line in enumerate(lines):
            verdict = verdicts.get(n)
            if verdict is not None:
                removed_out.write(add_fields(line, verdict.as_fields(), meta))
                continue
            if fields:
                line = add_fields(line, fields[n], meta)
            kept_out.write(line)
            digest.update(line)
            kept += 1
            written += len(line)
    os.replace(here / f".kept.{pid}.tmp", here / "kept.jsonl")
    os.replace(here / f".removed.{pid}.tmp", here / "removed.jsonl")
    done = Written(kept, written, digest.hexdigest(), _node())
    _save(_marker(folder, "write", shard), done)
    return done


def part_of(plan: Plan, shard: int, folder: str) -> Written:
    """Stage write without dedup: a shard's records are its part as they are."""
    path = _shard_folder(folder, shard) / "records.jsonl"
    digest = hashlib.sha256()
    records = 0
    with temporary_errors(), open(path, "rb", buffering=1 << 20) as lines:
        for line in lines:
            digest.update(line)
            records += 1
    done = Written(records, path.stat().st_size, digest.hexdigest(), _node())
    _save(_marker(folder, "write", shard), done)
    return done


# ---- how tasks run -------------------------------------------------------------------

#: A task: a function of this module and its arguments.
Task = tuple[Callable[..., Any], tuple[Any, ...]]


def _call(task: Task) -> Any:
    """A task, with its process tuned as the local pool's are (``executors.local.tuned``)
    wherever it runs: a Ray worker is no child of the driver, and inherits nothing of it."""
    function, args = task
    with tuned():
        return function(*args)


def _build() -> Callable[[Task], Any]:
    return _call


#: Stages in the order they run, as the engine block names them.
STAGES = ("count", "fit", "learn", "map", "decide", "write")


class Engine:
    """Runs the stages over an executor (a local pool, or Ray) and joins their results.

    ``name`` is what the report's engine block calls it (``processes``, ``ray``).
    """

    def __init__(self, executor: Executor, options: ShardOptions, name: str) -> None:
        self.executor = executor
        self.options = options
        self.name = name
        self.tasks = 0
        self.skipped = 0
        self.recomputed = 0
        self.shards = 0
        self.nodes: set[str] = set()
        self.stage_seconds: dict[str, float] = {}
        self.seconds = 0.0
        #: With ``--output-dir``, once published: its path, parts and their bytes.
        self.output_dir: dict[str, Any] | None = None

    # ---- stages

    def _stage(
        self, stage: str, tasks: Sequence[tuple[Path | None, Task]], resume: bool
    ) -> Iterator[Any]:
        """Each task's result in order; one whose marker is there (``resume``) is not run
        again: its marker is its result. A task of no marker always runs."""
        started = time.perf_counter()
        results: dict[int, Any] = {}
        todo: list[int] = []
        for i, (marker, _) in enumerate(tasks):
            if resume and marker is not None and marker.exists():
                results[i] = _load(marker)
                self.skipped += 1
            else:
                todo.append(i)
        work = Work(_build)
        ran = iter(self.executor.map(work, [tasks[i][1] for i in todo])) if todo else iter(())
        try:
            for i in range(len(tasks)):
                if i not in results:
                    results[i] = next(ran)
                    self.tasks += 1
                node = getattr(results[i], "node", None)
                if isinstance(node, str):
                    self.nodes.add(node)
                yield results.pop(i)
        finally:
            close = getattr(ran, "close", None)
            if close is not None:
                close()
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + (
                time.perf_counter() - started
            )

    def _ensure(self, stage: str, tasks: Sequence[tuple[Path, Task]]) -> None:
        """Run again the tasks of an earlier stage whose output is gone (a lost node's
        files): the next stage reads it."""
        lost = [(marker, task) for marker, task in tasks if not marker.exists()]
        if lost:
            self.recomputed += len(lost)
            for _ in self._stage(stage, lost, resume=False):
                pass

    # ---- the run

    def run(
        self,
        plan: Plan,
        inputs: list[InputFile],
        out: IO[bytes] | None,
        duplicates: IO[bytes] | None = None,
        *,
        outputs: Outputs | None = None,
        index: IndexStore | None = None,
        collect_kept: bool = False,
        rejects: list[bytes] | None = None,
        progress: ProgressCallback | None = None,
        prior: Prior | None = None,
        command: str = "",
    ) -> Result:
        """The run of ``driver.run_plan``, as stages of tasks; ``outputs`` (an ``Outputs``)
        opens the parts of ``--output-dir``."""
        started = time.perf_counter()
        plan = _with_absolute_paths(plan)
        stats = Stats()
        stats.add("special_files_skipped", sum(1 for item in inputs if item.kind == "special"))
        folder, temporary = self._work_folder()
        try:
            if self.options.output_dir is not None:
                _output_folder(self.options.output_dir)  # before anything is read
            if not self.options.resume:
                _empty(folder)
            inputs = _streams_spooled(inputs, folder, self.options.resume)
            shards = plan_shards(inputs, self.options.shard_bytes)
            shards = self._counted(shards, folder)
            self.shards = len(shards)
            resume = self._prepare(folder, command, plan, shards)
            if prior is not None:
                _save(Path(folder) / "prior.pickle", prior)
            result = self._stages(
                plan, shards, folder, resume, stats, out, duplicates, outputs, index,
                collect_kept, rejects, progress,
            )  # fmt: skip
        except BaseException:
            if temporary:  # a given folder keeps what the tasks made, for --resume
                shutil.rmtree(folder, ignore_errors=True)
            raise
        result.seconds = time.perf_counter() - started
        self.seconds = result.seconds
        done = functools.partial(_done_with, folder, temporary)
        if not collect_kept:
            done()
            return result
        result.kept = _then(result.kept, done)
        return result

    def _stages(
        self,
        plan: Plan,
        shards: list[Shard],
        folder: str,
        resume: bool,
        stats: Stats,
        out: IO[bytes] | None,
        duplicates: IO[bytes] | None,
        outputs: Outputs | None,
        index: IndexStore | None,
        collect_kept: bool,
        rejects: list[bytes] | None,
        progress: ProgressCallback | None,
    ) -> Result:
        phases: dict[str, float] = {}
        clock = time.perf_counter()

        def phase_done(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            phases[name] = phases.get(name, 0.0) + now - clock
            clock = now

        learned: Learned | None = None
        evidence: Evidence | None = None
        learning = plan.learn is not None and plan.clean is not None
        fit_tasks = [
            (_marker(folder, "fit", shard), (fit_shard, (plan, shard, folder))) for shard in shards
        ]
        if learning:
            for _ in self._stage("fit", fit_tasks, resume):
                if progress is not None:
                    progress("reading", stats)
            phase_done("reading")
            if progress is not None:
                progress("learning", stats)
            self._ensure("fit", fit_tasks)
            learn_task = (_marker(folder, "learn"), (learn_shards, (plan, len(shards), folder)))
            for _ in self._stage("learn", [learn_task], resume):
                pass
            learned, evidence, _ = _load(Path(folder) / "learned.pickle")
            phase_done("learning")
        mapping = "fingerprinting" if learning and plan.dedup is not None else "reading"
        if learning and plan.dedup is None:
            mapping = "writing"
        map_tasks = [
            (_marker(folder, "map", shard), (map_shard, (plan, shard, folder))) for shard in shards
        ]
        for mapped in self._stage("map", map_tasks, resume):
            stats.merge(mapped.stats)
            if rejects is not None:
                rejects.extend(mapped.rejects)
            if progress is not None:
                progress(mapping, stats)
        phase_done(mapping)
        if plan.dedup is not None:
            if progress is not None:
                progress("resolving", stats)
            self._ensure("map", map_tasks)
            settings = _settings(plan)
            index_path = (
                str(Path(index.path).resolve())
                if index is not None and index.articles() > 0
                else None
            )
            decide = (decide_shards, (plan, len(shards), folder, index_path, settings))
            for decided in self._stage("decide", [(_marker(folder, "decide"), decide)], resume):
                stats.merge(decided.stats)
            phase_done("resolving")
            if progress is not None:
                progress("writing", stats)
            writer: Callable[..., Written] = write_shard
        else:
            writer = part_of
        write_tasks = [
            (_marker(folder, "write", shard), (writer, (plan, shard.number, folder)))
            for shard in shards
        ]
        parts = list(self._stage("write", write_tasks, resume))
        self._publish(shards, parts, folder, out, duplicates, outputs)
        phase_done("writing")
        kept: Iterator[Accepted] = iter(())
        if collect_kept:
            kept = _kept_articles(len(shards), folder)
        result = Result(stats, 0.0, kept, learned=learned, phases=phases, evidence=evidence)
        return result

    def _publish(
        self,
        shards: list[Shard],
        parts: list[Written],
        folder: str,
        out: IO[bytes] | None,
        duplicates: IO[bytes] | None,
        outputs: Outputs | None,
    ) -> None:
        """The parts, in order, into ``out`` and ``duplicates``; with ``--output-dir``,
        each part into a file of its own, and the manifest."""
        target = self.options.output_dir
        assert target is None or outputs is not None, "--output-dir publishes with Outputs"
        parts_out = outputs if target is not None else None
        manifest: list[dict[str, Any]] = []
        for shard, part in zip(shards, parts, strict=True):
            here = _shard_folder(folder, shard)
            name = "kept.jsonl" if (here / "kept.jsonl").exists() else "records.jsonl"
            if parts_out is not None and target is not None:
                file_name = f"part-{shard.number:05d}.jsonl"
                stream = parts_out.open(os.path.join(target, file_name), by_name=False)
                _copy(here / name, stream)
                manifest.append(
                    {
                        "path": file_name,
                        "records": part.records,
                        "bytes": part.bytes,
                        "sha256": part.sha256,
                    }
                )
            elif out is not None:
                _copy(here / name, out)
            if duplicates is not None and (here / "removed.jsonl").exists():
                _copy(here / "removed.jsonl", duplicates)
        if parts_out is not None and target is not None:
            self.output_dir = {
                "path": target,
                "parts": len(manifest),
                "bytes": sum(part["bytes"] for part in manifest),
            }
            stream = parts_out.open(os.path.join(target, MANIFEST), by_name=False)
            stream.write(
                json.dumps(
                    {
                        "parts": manifest,
                        "records": sum(part["records"] for part in manifest),
                        "bytes": sum(part["bytes"] for part in manifest),
                    },
                    indent=2,
                ).encode()
                + b"\n"
            )

    def published(self) -> None:
        """Once the parts are out: parts of an earlier run that this one's manifest does
        not name are removed from ``--output-dir``."""
        target = self.options.output_dir
        if target is None:
            return
        named = {f"part-{n:05d}.jsonl" for n in range(self.shards)}
        for name in os.listdir(target):
            if _PART.fullmatch(name) and name not in named:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(target, name))

    def _counted(self, shards: list[Shard], folder: str) -> list[Shard]:
        """The shards with the line numbers their ranges start at (the count stage)."""
        ranges = [
            piece
            for shard in shards
            for piece in shard.pieces
            if piece.kind == "range" and piece.end < piece.size
        ]
        counts: dict[tuple[str, int], int] = {}
        tasks = [(None, (count_newlines, (piece.path, piece.start, piece.end))) for piece in ranges]
        for piece, count in zip(ranges, self._stage("count", tasks, resume=False), strict=True):
            counts[piece.path, piece.end] = count
        before: dict[str, int] = {}
        counted = []
        for shard in shards:
            pieces = []
            for piece in shard.pieces:
                if piece.kind == "range":
                    seen = before.get(piece.path, 0)
                    piece = replace(piece, newlines_before=seen)
                    before[piece.path] = seen + counts.get((piece.path, piece.end), 0)
                pieces.append(piece)
            counted.append(replace(shard, pieces=tuple(pieces)))
        return counted

    def _work_folder(self) -> tuple[str, bool]:
        """The work folder, and whether it is a temporary one (else the one given, which
        is emptied once the run has succeeded: see ``_done_with``)."""
        given = self.options.work_dir
        shared = self.executor.shares_files
        if given is None:
            if not shared:
                raise WorkFolderError(
                    "the Ray cluster's nodes are on several machines: pass --work-dir on "
                    "storage every node reads and writes (a shared file system)"
                )
            return new_temporary_folder("work"), True
        folder = os.path.abspath(given)
        if not shared and _is_local_temporary(folder):
            raise WorkFolderError(
                f"--work-dir {given}: a temporary folder of this machine, which the other "
                "nodes of the Ray cluster cannot see; pass a folder on shared storage"
            )
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise WorkFolderError(
                f"--work-dir {given}: {err.strerror}; pass a folder this run can write"
            ) from err
        foreign = [name for name in os.listdir(folder) if not _is_ours(name)]
        if foreign:
            raise WorkFolderError(
                f"--work-dir {given} holds files of something else ({foreign[0]}, ...): "
                "name an empty or new folder"
            )
        return folder, False

    def _prepare(self, folder: str, command: str, plan: Plan, shards: list[Shard]) -> bool:
        """Check that a folder to resume from holds this very run's intermediates, or
        empty it for a new run; returns whether tasks may be skipped."""
        key = _run_key(command, plan, shards)
        path = Path(folder) / _RUN_FILE
        if self.options.resume and path.exists():
            try:
                held = json.loads(path.read_text("utf-8")).get("key")
            except (OSError, ValueError, AttributeError):
                held = None
            if held == key:
                return True
            raise WorkFolderError(
                f"--work-dir {self.options.work_dir} holds the intermediates of another run "
                "(other inputs or options, or another corpus-clean): run without --resume "
                "to start over"
            )
        if self.options.resume:
            _empty(folder)  # nothing to resume from (stdin is not spooled then)
        with temporary_errors():
            path.write_text(json.dumps({"key": key}) + "\n", "utf-8")
        return False

    def figures(self) -> dict[str, Any]:
        """The report's engine block."""
        figures: dict[str, Any] = {"name": self.name, "nodes": len(self.nodes) or 1}
        own = getattr(self.executor, "figures", None)
        given = own() if own is not None else None
        if self.name == "ray" and given:
            figures["nodes"] = given.get("nodes", figures["nodes"])
            figures["retries"] = given.get("retries", 0)
            figures["connect_seconds"] = given.get("connect_seconds", 0.0)
        else:
            figures["retries"] = 0
        figures |= {
            "tasks": self.tasks,
            "skipped": self.skipped,
            "recomputed": self.recomputed,
            "shards": self.shards,
            "seconds": round(self.seconds, 3),
            "stages": {
                stage: round(self.stage_seconds[stage], 3)
                for stage in STAGES
                if stage in self.stage_seconds
            },
        }
        return figures


#: Names the run writes in a work folder (besides ``run.json``).
_OURS = re.compile(
    r"run\.json|shard-\d+|stdin-\d+.*|(learned|prior)\.pickle|(learn|decide)\.done"
    r"|\..+\.\d+\.tmp"  # what _save writes, before it is renamed
)


def _is_ours(name: str) -> bool:
    return _OURS.fullmatch(name) is not None


#: The manifest of ``--output-dir``.
MANIFEST = "manifest.json"


#: A part of ``--output-dir``.
_PART = re.compile(r"part-\d{5,}\.jsonl")


def _output_folder(target: str) -> None:
    """Make ``--output-dir`` if need be; refuse one that holds anything but parts and a
    manifest (and the temporary files of runs killed while publishing)."""
    try:
        os.makedirs(target, exist_ok=True)
        names = os.listdir(target)
    except OSError as err:
        raise WorkFolderError(
            f"--output-dir {target}: {err.strerror}; pass a folder this run can write"
        ) from err
    foreign = [
        name
        for name in names
        if not (_PART.fullmatch(name) or name == MANIFEST or name.endswith(".tmp"))
    ]
    if foreign:
        raise WorkFolderError(
            f"--output-dir {target} holds other files ({foreign[0]}, ...): name an empty or "
            "new folder, or one an earlier run wrote"
        )


def _done_with(folder: str, temporary: bool) -> None:
    """What the run left in its work folder, gone once the run has succeeded (and the
    index, if any, has taken the kept articles)."""
    if temporary:
        shutil.rmtree(folder, ignore_errors=True)
    elif os.path.isdir(folder):
        _empty(folder)


def _empty(folder: str) -> None:
    for name in os.listdir(folder):
        if _is_ours(name):
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def _is_local_temporary(folder: str) -> bool:
    temporary = os.path.realpath(tempfile.gettempdir())
    real = os.path.realpath(folder)
    return real == temporary or real.startswith(temporary + os.sep)


def _with_absolute_paths(plan: Plan) -> Plan:
    """The plan with its rules files named from the root: a task on a node of a cluster
    runs in another folder than the driver."""
    if plan.clean is None or not plan.clean.rule_files:
        return plan
    files = tuple(Path(path).resolve() for path in plan.clean.rule_files)
    return replace(plan, clean=replace(plan.clean, rule_files=files))


def _settings(plan: Plan) -> dict[str, object]:
    assert plan.dedup is not None
    return Fingerprinter(plan.dedup).settings()


def _run_key(command: str, plan: Plan, shards: list[Shard]) -> str:
    """What a run to resume must match: the command, the options that shape the output,
    the shards with the size and modification time of each file, and the code that made
    the intermediates (another version may write them otherwise)."""
    stamps = sorted(
        {(piece.path, os.stat(piece.path).st_mtime_ns) for s in shards for piece in s.pieces}
    )
    what = repr((command, replace(plan, jobs=1, memory=0), shards, stamps, _this_code()))
    return hashlib.sha256(what.encode("utf-8", "surrogateescape")).hexdigest()


def code_digest(package: Path) -> str:
    """SHA-256 of a package's code and data files (sources, compiled extensions, rules),
    by name and content."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".so", ".pyd", ".toml") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _this_code() -> str:
    """This installation's ``code_digest``."""
    return code_digest(Path(__file__).resolve().parent)


def _streams_spooled(inputs: list[InputFile], folder: str, resume: bool) -> list[InputFile]:
    """Stdin, and a FIFO or device named on its own, copied to the work folder: tasks
    elsewhere can read a file, not this process's stream. Their records keep the name."""
    spooled = []
    for n, item in enumerate(inputs):
        if item.kind == "special" or (not names_a_stream(item.path) and os.path.isfile(item.path)):
            spooled.append(item)
            continue
        if resume:
            raise WorkFolderError(
                f"--resume cannot tell that {'stdin' if item.path == STDIN else item.path} "
                "holds what the killed run read: give the input as a file"
            )
        # The name keeps the stream's suffixes, which say how it is compressed.
        suffixes = "".join(Path(item.path).suffixes) if item.path != STDIN else ".jsonl"
        path = os.path.join(folder, f"stdin-{n}{suffixes}")
        name = item.name or ("<stdin>" if item.path == STDIN else item.source)
        with temporary_errors(), open(path, "wb") as copy:
            if item.path == STDIN:
                shutil.copyfileobj(sys.stdin.buffer, copy, 1 << 20)
            else:
                with open(item.path, "rb") as stream:
                    shutil.copyfileobj(stream, copy, 1 << 20)
        spooled.append(InputFile(path, item.kind, name=name))
    return spooled


def _copy(path: Path, stream: IO[bytes]) -> None:
    with open(path, "rb") as part:
        while block := part.read(1 << 20):
            write_all(stream, block)


def _kept_articles(shards: int, folder: str) -> Iterator[Accepted]:
    """The kept records as an index stores them, a shard at a time (for the commit)."""
    for shard in range(shards):
        here = _shard_folder(folder, shard)
        prints, heads = _load(here / "prints.pickle")
        verdicts, _ = _load(here / "verdicts.pickle")
        n = 0
        for ids, batch in prints:
            for i, record_id in enumerate(ids):
                if n not in verdicts:
                    title, source = heads[n]
                    yield Accepted(
                        record_id, title, source, batch.band_keys[i], batch.shingles_of(i)
                    )
                n += 1


def _then(stream: Iterator[Accepted], done: Callable[[], None]) -> Iterator[Accepted]:
    """``stream``, calling ``done`` once it ends, is closed, or is dropped unread."""
    once: list[Callable[[], Any]] = []

    def articles() -> Iterator[Accepted]:
        try:
            yield from stream
        finally:
            once[0]()

    wrapped = articles()
    once.append(weakref.finalize(wrapped, done))  # a generator never started runs no finally
    return wrapped


__all__ = [
    "SHARD_BYTES",
    "Engine",
    "ExecutorError",
    "ShardOptions",
    "WorkFolderError",
    "count_newlines",
    "plan_shards",
    "read_shard",
]
