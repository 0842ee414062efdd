"""One run, as the command line, the Python API (``corpus_clean.run``) and the tests make
it: outputs opened before anything is read; the batches mapped over the executor (with
learning, a fit pass first); duplicates found over every fingerprint; the records
written and the outputs published together; then (only then) the index committed, and
the report built from everything the run counted and timed.

Deduplication must see every record before it decides, so the encoded records wait in a
spool meanwhile (in memory first, then on disk); a record whose output line is mostly
its input line waits as a place in the input file, read again at the end.
"""

from __future__ import annotations

import array
import contextlib
import os
import shutil
import stat
import sys
import time
import weakref
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from typing import IO, Any, Literal, cast

from . import pipeline, shards
from .dedup import DuplicateFinder, Fingerprinter, count_verdicts
from .executors import Executor, ExecutorError
from .executors.local import LocalPool
from .io.codec import add_fields, encode_object
from .io.inputs import STDIN, InputFile
from .io.readers import RawUnit
from .io.sinks import STDOUT, BlockWriter, Outputs, write_all
from .io.spill import MemoryBudget, SpillStore, temporary_errors, temporary_folder
from .pipeline import PHASES, ProgressCallback, Result
from .report import Report, build_report, settings_of
from .stages.learn import Evidence, Learned, Prior, Sketch, TextKey, texts_of
from .stats import Stats
from .storage import Accepted, IndexReader
from .storage.sqlite import IndexStore


@dataclass(frozen=True)
class Targets:
    """Where a run writes: ``records`` None writes no records (``--check``; the API's
    default), ``-`` is stdout; the others are written only when given."""

    records: str | None = None
    duplicates: str | None = None
    rejects: str | None = None
    explain: str | None = None


@dataclass
class Left:
    """What a run has left behind so far, for the message of an error or interrupt that
    ends it: which output files are out, and whether the index (if any) changed."""

    index: bool
    outputs: Outputs | None = None
    index_updated: bool = False

    @property
    def published(self) -> bool:
        return self.outputs is not None and bool(self.outputs.published)

    def __str__(self) -> str:
        index = ""
        if self.index:
            index = ", index updated" if self.index_updated else ", index unchanged"
        if self.outputs is None or not self.outputs.published:
            return f"no output file written{index}"
        if self.outputs.unpublished:
            out, rest = (
                ", ".join("stdout" if p == STDOUT else p for p in paths)
                for paths in (self.outputs.published, self.outputs.unpublished)
            )
            return f"only {out} written, not {rest}{index}"
        return f"output written{index}"


@dataclass
class Run:
    """A run to make: the plan, its inputs, where it writes, and the index it consults
    (committed to unless ``check``)."""

    command: str
    plan: pipeline.Plan
    inputs: list[InputFile]
    targets: Targets = field(default_factory=Targets)
    index: IndexStore | None = None
    check: bool = False
    #: Where the per-record work runs (None: this machine, ``plan.jobs`` processes).
    executor: Executor | None = None
    #: The run's label in the index (None: when it ran, see ``run_label``).
    label: str | None = None
    #: Run as stages of tasks over shards (``--engine processes`` or ``ray``), named so.
    shards: shards.ShardOptions | None = None
    engine: str = "local"


def execute(
    run: Run,
    left: Left | None = None,
    progress: ProgressCallback | None = None,
) -> Report:
    """Make the run and return its report. ``left`` is kept up to date for the message
    of an error that stops it."""
    left = left if left is not None else Left(index=run.index is not None)
    targets, index = run.targets, run.index
    rejects: list[bytes] | None = [] if targets.rejects else None
    before = index.articles() if index is not None else 0
    local = LocalPool(run.plan.jobs) if run.executor is None else None
    with Outputs() as outputs, local if local is not None else contextlib.nullcontext():
        left.outputs = outputs
        out = outputs.open(targets.records) if targets.records is not None else None
        dups = outputs.open(targets.duplicates) if targets.duplicates else None
        rejects_out = outputs.open(targets.rejects) if targets.rejects else None
        explain = outputs.open(targets.explain) if targets.explain else None
        # Read where learning runs: in this process, or in the sharded run's learn task.
        prior: Prior | None = None
        if index is not None and run.plan.learn:
            prior = index if run.shards is None else index.elsewhere()
        collect_kept = index is not None and not run.check
        executor = run.executor or local
        assert executor is not None  # one of them is
        engine: shards.Engine | None = None
        if run.shards is not None:
            engine = shards.Engine(executor, run.shards, run.engine)
            result = engine.run(
                run.plan,
                run.inputs,
                out,
                dups,
                outputs=outputs,
                index=index,
                collect_kept=collect_kept,
                rejects=rejects,
                progress=progress,
                prior=prior,
                command=run.command,
            )
        else:
            result = run_plan(
                run.plan,
                run.inputs,
                out,
                dups,
                index=index,
                collect_kept=collect_kept,
                rejects=rejects,
                progress=progress,
                executor=executor,
                prior=prior,
            )
        if rejects_out is not None:
            rejects_out.writelines(rejects or [])
        if explain is not None:
            explain.writelines(map(encode_object, result.stats.explained))
        outputs.publish()
    if engine is not None:
        engine.published()
    added = reused = forgotten = 0
    phases = dict.fromkeys(PHASES, 0.0) | result.phases
    if index is not None and not run.check:
        if progress is not None:
            progress("committing", result.stats)
        committing = time.perf_counter()
        learn = run.plan.learn
        added = index.accept(
            result.kept,
            run_label=run.label or run_label(),
            learned=result.evidence,
            forget_runs=learn.forget_runs if learn is not None else 0,
        )
        phases["committing"] = time.perf_counter() - committing
        left.index_updated = True
        reused = index.accepted["id_reused"] if index.accepted is not None else 0
        forgotten = index.forgotten
    if index is not None:
        for finding in result.stats.recurring:
            entry = finding.pop("indexed_entry")
            finding["indexed_source"] = index.article(entry)["source"]
    return build_report(
        result.stats,
        command=run.command,
        seconds=result.seconds + phases["committing"],
        settings=settings_of(run.plan),
        fingerprint=(
            Fingerprinter(run.plan.dedup).settings() if run.plan.dedup is not None else None
        ),
        index=(
            {
                "path": str(index.path),
                "articles_before": before,
                "articles_after": before + added,
                "ids_reused": reused,
                "learned_lines_forgotten": forgotten,
            }
            if index is not None
            else None
        ),
        check=run.check,
        version=version("corpus-clean"),
        input_files=sum(1 for item in run.inputs if item.kind != "special"),
        outputs={
            name: {"path": path, "bytes": _size(path)}
            for name, path in vars(targets).items()
            if path is not None
        }
        | ({"output_dir": engine.output_dir} if engine and engine.output_dir else {}),
        phases=phases,
        engine=(
            engine.figures()
            if engine is not None
            else run.executor.figures()
            if run.executor is not None
            else None
        ),
    )


def _size(path: str) -> int | None:
    """The bytes of a published output file; None for stdout, a device or a FIFO."""
    if path in (STDOUT, STDIN):
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def run_label() -> str:
    """The label of a run in the index: when it ran, in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_plan(
    plan: pipeline.Plan,
    inputs: list[InputFile],
    out: IO[bytes] | None,
    duplicates: IO[bytes] | None = None,
    *,
    index: IndexReader | None = None,
    collect_kept: bool = False,
    rejects: list[bytes] | None = None,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
    prior: Prior | None = None,
) -> Result:
    """Run the plan over the inputs, writing kept records to ``out`` (None: write nothing)
    and removed ones, with their verdict, to ``duplicates``. The per-record work runs in
    ``executor`` (default: this machine, ``plan.jobs`` processes). Learning counts what
    earlier runs saw (``prior``, from an index) with the input's own recurrence."""
    started = time.perf_counter()
    stats = Stats()
    applied = pipeline.pinned(plan.clean) if plan.clean is not None else Learned()
    learned: Learned | None = None
    evidence: Evidence | None = None
    hook = pipeline.fit_hook(plan, prior)
    with contextlib.ExitStack() as cleanup:
        if executor is None:
            executor = cleanup.enter_context(LocalPool(plan.jobs))
        units = pipeline.input_units(inputs, stats, shared=executor.shares_files)
        if hook is None:
            to_process: Iterator[Any] = pipeline.batched(units)
            first_phase = "reading"
        else:
            # Learning must see every record first. The fit pass keeps the batches it has
            # read, split and cleaned in temporary files, and the second pass goes on from
            # there: the input is read once (stdin too), and cleaned once.
            if not executor.shares_files:
                raise ExecutorError(
                    "learning keeps batches in temporary files of this machine, which not "
                    "every node of the cluster can read: pass --no-learn (with --rules from "
                    "'corpus-clean learn' if you want what it learns)"
                )
            cache = cleanup.enter_context(temporary_folder("learn"))
            cleanup.callback(pipeline.forget_kept)
            read = progress
            sketches, kept_batches = _fit_pass(
                plan,
                pipeline.batched(units),
                executor,
                cache,
                None if read is None else lambda: read("reading", stats),  # input read here
            )
            fitted_at = time.perf_counter()
            if progress is not None:
                progress("learning", stats)
            if plan.dedup is not None and _kept_in_workers(kept_batches):
                # The workers would wait for the fit: they fingerprint what they keep,
                # and the second pass reuses that for each record learning leaves alone.
                guessing = [pipeline.Guessing()] * plan.jobs  # one for each worker
                guess_plan = replace(plan, learned=applied or None)
                for _ in pipeline.processed(guess_plan, iter(guessing), executor):
                    pass  # each starts its worker's guesses, and returns
            learned = hook.fit(sketches)
            evidence = hook.evidence
            del sketches
            learned_at = time.perf_counter()
            applied.update(learned)
            to_process = _handed_over(kept_batches)
            first_phase = "fingerprinting" if plan.dedup is not None else "writing"
        plan = replace(plan, learned=applied or None)
        result = _run(
            plan,
            pipeline.processed(plan, to_process, executor),
            stats,
            out,
            duplicates,
            index,
            collect_kept,
            rejects,
            progress,
            first_phase,
        )
    if learned is not None:
        result.learned, result.evidence = learned, evidence
        result.phases = {
            "reading": fitted_at - started,
            "learning": learned_at - fitted_at,
            **result.phases,
        }
    result.seconds = time.perf_counter() - started
    return result


def learn_from(plan: pipeline.Plan, inputs: list[InputFile]) -> Learned:
    """The fit pass: every record split and cleaned by the rules, sketched, and learned
    from. Stdin must have been spooled (see ``_stdin_spooled``): it is read twice."""
    hook = pipeline.fit_hook(plan, None)
    assert hook is not None
    units = pipeline.batched(pipeline.input_units(inputs, Stats(), shared=True))
    fit_plan = replace(plan, dedup=None, learned=None, fit_keeps="nothing")
    with (
        LocalPool(plan.jobs) as pool,
        contextlib.closing(pipeline.processed(fit_plan, units, pool)) as fitted,
    ):
        return hook.fit([sketch for sketch, _ in fitted])


def _fit_pass(
    plan: pipeline.Plan,
    batches: Iterator[list[RawUnit]],
    executor: Executor,
    cache: str,
    each: Callable[[], None] | None,
) -> tuple[list[Sketch], list[pipeline.KeptBatch | pipeline.KeptHere | str]]:
    """The batches split and cleaned by the rules, as ``fit`` sketches them and as kept
    for the second pass: as they are where the work runs in this process, in the memory
    of the workers where they stay for the second pass, or in files of ``cache``;
    ``each`` is called after every batch."""
    keeps: Literal["memory", "process", "files"] = (
        "memory" if executor.inline else "process" if executor.keeps_processes else "files"
    )
    fit_plan = replace(plan, dedup=None, learned=None, fit_keeps=keeps, cache_dir=cache)
    sketches: list[Sketch] = []
    kept_batches: list[pipeline.KeptBatch | pipeline.KeptHere | str] = []
    with contextlib.closing(pipeline.processed(fit_plan, batches, executor)) as fitted:
        for sketch, kept in fitted:
            assert kept is not None  # in memory or in a file
            sketches.append(sketch)
            kept_batches.append(kept)
            if each is not None:
                each()
    return sketches, kept_batches


def _kept_in_workers(kept_batches: list[pipeline.KeptBatch | pipeline.KeptHere | str]) -> bool:
    return any(
        isinstance(kept, pipeline.KeptHere) and kept.pid != os.getpid() for kept in kept_batches
    )


def _handed_over(
    kept_batches: list[pipeline.KeptBatch | pipeline.KeptHere | str],
) -> Iterator[pipeline.KeptBatch | pipeline.KeptHere | str]:
    """The kept batches in order, each let go of as it is handed to the second pass (so
    that the memory of those kept as they are frees as the run goes on)."""
    kept_batches.reverse()
    while kept_batches:
        yield kept_batches.pop()


def learn_rules(
    plan: pipeline.Plan, inputs: list[InputFile]
) -> tuple[Learned, dict[TextKey, str], Stats]:
    """For ``corpus-clean learn``: what the fit pass learns, the text of each pattern, and
    what applying them removes (``removed_by_pattern``). The second pass runs in this
    process: it only looks up hashes."""
    assert plan.learn is not None
    stats = Stats()
    texts: dict[TextKey, str] = {}
    with _stdin_spooled(inputs) as spooled:
        inputs = [spooled.get(item.path, item) for item in inputs]
        learned = learn_from(plan, inputs)
        worker = pipeline.Worker(replace(plan, dedup=None, learned=None))
        for batch in pipeline.batched(pipeline.input_units(inputs, stats, shared=True)):
            records = list(worker._cleaned(batch, stats, [], None))
            texts_of(learned, records, texts)
            for record in records:
                learned.apply(record, stats)
    return learned, texts, stats


@contextlib.contextmanager
def _stdin_spooled(inputs: list[InputFile]) -> Iterator[dict[str, InputFile]]:
    """Stdin copied to a temporary file, to be read twice (its records keep the name
    ``<stdin>``); yields the input to read in its place."""
    if not any(item.path == STDIN for item in inputs):
        yield {}
        return
    with temporary_folder("stdin") as folder:
        path = os.path.join(folder, "stdin.jsonl")
        with temporary_errors(), open(path, "wb") as copy:
            shutil.copyfileobj(sys.stdin.buffer, copy, 1 << 20)
        yield {STDIN: InputFile(path, "jsonl", name="<stdin>")}


def _run(
    plan: pipeline.Plan,
    batches: Generator[pipeline.Batch, None, None],
    stats: Stats,
    out: IO[bytes] | None,
    duplicates: IO[bytes] | None,
    index: IndexReader | None,
    collect_kept: bool,
    rejects: list[bytes] | None,
    progress: ProgressCallback | None,
    phase: str,
) -> Result:
    """Merge the processed batches into ``stats``, deduplicate, write. ``phase`` names
    what the batches' processing is (see ``PHASES``)."""
    started = time.perf_counter()
    if plan.dedup is None:
        try:
            for batch in batches:
                _merge(batch, stats, rejects, progress, phase)
                stats.add("written", len(batch.lines))
                if out is not None:
                    write_all(out, b"".join(cast(list[bytes], batch.lines)))  # None: dedup only
        finally:
            # On an error, stop the workers now: left to the garbage collector, the pool
            # would be torn down at exit, with an "Exception ignored" traceback.
            batches.close()
        seconds = time.perf_counter() - started
        return Result(stats, seconds, iter(()), phases={phase: seconds})

    memory = MemoryBudget(plan.memory)
    finder = DuplicateFinder(plan.dedup, index, memory)
    meta = plan.read.metadata_field
    spool = SpillStore(memory)
    # Records wait for the verdicts only when they are to be written (not with --check).
    writes = out is not None or duplicates is not None
    heads: list[tuple[str | None, str]] = []
    kept_at = array.array("q")  # positions of the kept records, for collect_kept
    try:
        for batch in batches:
            _merge(batch, stats, rejects, progress, phase)
            assert batch.prints is not None
            finder.add([head[0] for head in batch.heads], batch.prints)
            if collect_kept:
                heads.extend((title, source) for _, title, source in batch.heads)
            if writes:
                spool.extend(batch.lines, batch.reread)
        processed_at = time.perf_counter()
        if progress is not None:
            progress("resolving", stats)
        verdicts = {} if plan.keep_all else finder.resolve(stats)
        count_verdicts(verdicts, finder.ids, stats)
        resolved_at = time.perf_counter()
        if progress is not None:
            progress("writing", stats)
        if not writes and collect_kept:
            kept_at.extend(n for n in range(len(finder.ids)) if n not in verdicts)
        with contextlib.ExitStack() as writers:
            kept_out = writers.enter_context(BlockWriter(out)) if out is not None else None
            removed_out = (
                writers.enter_context(BlockWriter(duplicates)) if duplicates is not None else None
            )
            for n, line in enumerate(spool.read() if writes else ()):
                verdict = verdicts.get(n)
                if verdict is not None:
                    if removed_out is not None:
                        removed_out.write(add_fields(line, verdict.as_fields(), meta))
                    continue
                if kept_out is not None:
                    clustered = plan.dedup.cluster_fields
                    kept_out.write(
                        add_fields(line, finder.kept_fields(n), meta) if clustered else line
                    )
                if collect_kept:
                    kept_at.append(n)
        stats.add("written", len(finder.ids) - len(verdicts))
    except BaseException:
        finder.close()
        raise
    finally:
        batches.close()  # as above
        spool.close()
    written_at = time.perf_counter()
    phases = {
        phase: processed_at - started,
        "resolving": resolved_at - processed_at,
        "writing": written_at - resolved_at,
    }
    seconds = written_at - started
    if not collect_kept:
        finder.close()
        return Result(stats, seconds, iter(()), phases=phases)
    return Result(stats, seconds, _kept_articles(finder, heads, kept_at), phases=phases)


def _kept_articles(
    finder: DuplicateFinder, heads: list[tuple[str | None, str]], positions: array.array[int]
) -> Iterator[Accepted]:
    """The kept records as an index stores them, from the finder's stores; the finder is
    closed when the stream ends, is closed, or is dropped unread."""

    def articles() -> Iterator[Accepted]:
        try:
            for n in positions:
                title, source = heads[n]
                yield Accepted(
                    finder.ids[n], title, source, finder.band_keys(n), finder.shingles(n)
                )
        finally:
            finder.close()

    stream = articles()
    weakref.finalize(stream, finder.close)  # a generator never started runs no finally
    return stream


def _merge(
    batch: pipeline.Batch,
    stats: Stats,
    rejects: list[bytes] | None,
    progress: ProgressCallback | None,
    phase: str,
) -> None:
    stats.merge(batch.stats)
    if rejects is not None:
        rejects.extend(batch.rejects)
    if progress is not None:
        progress(phase, stats)
