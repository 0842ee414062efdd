"""Folds the stages into one run: read -> split -> clean -> dedup -> write.

The main process only moves bytes: it reads raw units (page files, runs of JSONL lines),
hands them out in order-preserving batches, and writes what comes back. Parsing,
splitting, cleaning, fingerprinting and JSON encoding are pure per-record work done by
worker processes, so the output is byte-identical whatever the number of jobs.
Deduplication must see every record before it decides, so the encoded records wait in a
spool meanwhile (in memory first, then on disk); a record whose output line is mostly
its input line waits as a place in the input file, read again at the end.
"""

from __future__ import annotations

import array
import collections
import contextlib
import functools
import os
import pickle
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import IO, Any, cast

from . import _fast
from .dedup import DuplicateFinder, Fingerprinter, Fingerprints, Verdict
from .executors import Executor, ExecutorError, Work
from .executors.local import LocalPool
from .io import (
    STDIN,
    BlockWriter,
    InputFile,
    InputLines,
    MemoryBudget,
    RawUnit,
    Spool,
    add_fields,
    encode,
    parse_unit,
    read_units,
    temporary_errors,
    write_all,
)
from .options import (
    MEMORY_BUDGET,
    CleanOptions,
    DedupOptions,
    LearnOptions,
    ReadOptions,
    SplitOptions,
)
from .record import Record
from .stages.clean import Cleaner, RuleSet, load_rules
from .stages.learn import Evidence, Learned, Learning, Sketch, TextKey, texts_of
from .stages.split import PageSplitter
from .stats import Stats, similarity_bin
from .storage import Accepted, IndexReader

#: A batch of page files closes at this many pages or this many bytes, whichever comes
#: first. JSONL is read in runs of lines of about this many bytes, and each closes a batch.
BATCH_UNITS = 2000
BATCH_BYTES = 2 << 20

#: The phases of a run, in order. Reading includes splitting, cleaning and (without
#: learning) fingerprinting, done as batches are read; with learning, the input is read
#: and cleaned first, then learned from, then fingerprinted. Committing is the index's.
PHASES = ("reading", "learning", "fingerprinting", "resolving", "writing", "committing")

#: Told of the phase a run is in and of its counts so far, after every batch.
ProgressCallback = Callable[[str, Stats], None]


@dataclass(frozen=True)
class Plan:
    """Which stages run, with their options. ``None`` leaves a stage out."""

    read: ReadOptions = field(default_factory=ReadOptions)
    split: SplitOptions | None = None
    clean: CleanOptions | None = None
    dedup: DedupOptions | None = None
    #: With ``clean``: learn each site's boilerplate from the input first (a fit pass).
    learn: LearnOptions | None = None
    #: What the workers apply after the rules: learned, and pinned in rules files.
    learned: Learned | None = None
    #: Where the fit pass keeps the batches it processed, for the second pass.
    cache_dir: str | None = None
    jobs: int = 1
    #: Bytes of records and shingle sets waiting for dedup kept in memory; the rest
    #: wait in temporary files.
    memory: int = MEMORY_BUDGET
    #: With ``dedup``: keep every record, fingerprinted but not compared (``index add``
    #: seeds an index with a clean corpus as it is).
    keep_all: bool = False


@dataclass
class Result:
    stats: Stats
    seconds: float
    #: Articles kept, when an index is to accept them (``collect_kept``): read from the
    #: run's fingerprint stores as the index takes them, so that every kept article's
    #: band keys and shingle set are never held at once. The stores stay open until the
    #: stream is exhausted, closed, or dropped.
    kept: Iterator[Accepted]
    #: What the fit pass learned (None when learning was off).
    learned: Learned | None = None
    #: Seconds by phase (see ``PHASES``); a phase that did not run is absent.
    phases: dict[str, float] = field(default_factory=dict)
    #: With a ``prior``: what learning saw, merged with the prior, for the index to keep.
    evidence: Evidence | None = None


@dataclass
class _Batch:
    """What a worker sends back for a batch of units: encoded records, and what dedup
    and an index need of them."""

    #: None for an output line that is mostly its input line (see ``reread``).
    lines: list[bytes | None]
    reread: InputLines | None
    heads: list[tuple[str, str | None, str]]  # id, title, source
    prints: Fingerprints | None
    stats: Stats
    rejects: list[bytes]


@dataclass
class _Kept:
    """A batch the fit pass processed, as it waits for the second pass (see
    ``_Worker.sketch``): its records as the rules left them."""

    records: list[Record]
    stats: Stats
    rejects: list[bytes]
    #: The records' sketch: the second pass needs not fold their lines again.
    sketch: Sketch


#: A stage as the pipeline runs it (see ``stages.Stage``): records in, records out.
StageRun = Callable[[Iterable[Record], Stats], Iterable[Record]]
#: One that also takes the fit pass's sketch of the batch (see ``Registered.sketched``).
SketchedRun = Callable[[Iterable[Record], Stats, Sketch | None], Iterable[Record]]


@dataclass(frozen=True)
class Registered:
    """A stage in the pipeline: ``build`` makes what runs it from a plan (None: the plan
    leaves it out); one ``after_fit`` runs after the fit pass, on what the stages
    before it made (see ``stages.Fit``)."""

    name: str
    build: Callable[[Plan], StageRun | None]
    after_fit: bool = False
    #: Its run also takes the fit pass's sketch of the batch (None without one): the
    #: learned stage passes over an article none of whose lines was learned unread.
    sketched: bool = False


#: Every per-record stage, in the order records go through them: the one place where a
#: stage is registered. Cleaning's last step ("settle": an article that cleaning emptied
#: is dropped, and --explain says what each record lost) comes after learned boilerplate
#: is removed, so that both count.
STAGES = (
    Registered("split", lambda plan: PageSplitter(plan.split).run if plan.split else None),
    Registered(
        "clean",
        lambda plan: Cleaner(load_rules(plan.clean), plan.clean).clean if plan.clean else None,
    ),
    Registered(
        "learned", lambda plan: plan.learned.run if plan.learned else None, True, sketched=True
    ),
    Registered(
        "settle",
        lambda plan: Cleaner(RuleSet(()), plan.clean).finish if plan.clean else None,
        True,
    ),
)


def _fit_hook(plan: Plan, prior: Evidence | None) -> Learning | None:
    """The fit hook of the plan's stage that must see the whole input first: learning,
    over what the rules leave (``prior``: what earlier runs saw, from an index)."""
    if plan.learn is None or plan.clean is None:
        return None
    return Learning(plan.learn, prior)


class _Worker:
    """The per-record stages, built once per process from a Plan."""

    def __init__(self, plan: Plan) -> None:
        self.read = plan.read
        built = [(entry, entry.build(plan)) for entry in STAGES]
        #: The stages a fit pass sees the output of, and those that run after it.
        self.before = [run for entry, run in built if run is not None and not entry.after_fit]
        self.after = [
            (run, entry.sketched) for entry, run in built if run is not None and entry.after_fit
        ]
        self.fit = _fit_hook(plan, None)
        self.cache_dir = plan.cache_dir
        self.fingerprinter = Fingerprinter(plan.dedup) if plan.dedup is not None else None

    def sketch(self, units: list[RawUnit]) -> tuple[Sketch, str]:
        """The fit pass over a batch: its records as the rules leave them, sketched for
        ``fit``, and kept in a file of ``cache_dir`` (returned) for ``finish``."""
        assert self.cache_dir is not None
        stats = Stats()
        rejects: list[bytes] = []
        assert self.fit is not None
        records = list(self._cleaned(units, stats, rejects, None))
        sketch = self.fit.sketch(records)
        with temporary_errors():
            fd, path = tempfile.mkstemp(dir=self.cache_dir, suffix=".pickle")
            with os.fdopen(fd, "wb") as cache:
                pickle.dump(_Kept(records, stats, rejects, sketch), cache, protocol=5)
        return sketch, path

    def finish(self, path: str) -> _Batch:
        """The second pass over a batch the fit pass kept: learned boilerplate removed,
        then the rest of the stages."""
        with temporary_errors(), open(path, "rb") as cache:
            kept: _Kept = pickle.load(cache)
        os.unlink(path)
        records = list(self._finished(kept.records, kept.stats, kept.sketch))
        return self._encoded(records, kept.stats, kept.rejects, None, [])

    def _cleaned(
        self,
        units: list[RawUnit],
        stats: Stats,
        rejects: list[bytes],
        origins: list[tuple[bytes, int | None]] | None,
    ) -> Iterable[Record]:
        """Records parsed, then through the stages a fit pass sees the output of;
        ``_finished`` does the rest."""
        stream: Iterable[Record] = chain.from_iterable(
            parse_unit(_loaded(unit, stats), self.read, stats, rejects, origins) for unit in units
        )
        for run in self.before:
            stream = run(stream, stats)
        return stream

    def _finished(
        self, records: Iterable[Record], stats: Stats, sketch: Sketch | None = None
    ) -> Iterable[Record]:
        """Records through the stages that run after a fit pass (``sketch``: the fit
        pass's of these records, for a stage that reads it)."""
        for run, sketched in self.after:
            if sketched:
                records = cast(SketchedRun, run)(records, stats, sketch)
            else:
                records = run(records, stats)
        return records

    def __call__(self, batch: list[RawUnit] | str) -> Any:
        """A batch of units through every stage (a ``_Batch``); with a ``cache_dir``, the
        fit pass over it (``sketch``); a batch the fit pass kept (its file), the rest."""
        if isinstance(batch, str):
            return self.finish(batch)
        if self.cache_dir is not None:
            return self.sketch(batch)
        return self._all(batch)

    def _all(self, units: list[RawUnit]) -> _Batch:
        stats = Stats()
        rejects: list[bytes] = []
        # Records that reach dedup's spool as they were read: an output line that is
        # mostly the input line can be read again at the end instead of travelling there.
        as_read = self.fingerprinter is not None and not (self.before or self.after)
        origins: list[tuple[bytes, int | None]] | None = [] if as_read else None
        stream = self._finished(self._cleaned(units, stats, rejects, origins), stats)
        return self._encoded(list(stream), stats, rejects, origins, units)

    def _encoded(
        self,
        records: list[Record],
        stats: Stats,
        rejects: list[bytes],
        origins: list[tuple[bytes, int | None]] | None,
        units: list[RawUnit],
    ) -> _Batch:
        prints = None
        if self.fingerprinter is not None:
            prints = self.fingerprinter.fingerprint(
                [record.text for record in records], [record.date for record in records]
            )
        meta = self.read.metadata_field
        lines: list[bytes | None] = [encode(record, None, meta) for record in records]
        return _Batch(
            lines=lines,
            reread=_reread(units, lines, origins) if origins is not None else None,
            heads=[(record.id, record.title, record.source) for record in records],
            prints=prints,
            stats=stats,
            rejects=rejects,
        )


def _reread(
    units: list[RawUnit], lines: list[bytes | None], origins: list[tuple[bytes, int | None]]
) -> InputLines | None:
    """The output lines that are mostly their input line (see ``InputLines``), each of
    them replaced by None in ``lines``."""
    from_file = [unit for unit in units if unit.offset is not None]
    if len(from_file) != 1:  # a batch holds at most one run of JSONL lines
        return None
    unit = from_file[0]
    assert unit.stamp is not None
    reread = InputLines(unit.path, unit.stamp, array.array("q"), array.array("q"), [])
    tails: dict[bytes, bytes] = {}  # one object per distinct tail: pickled once
    for i, (line, offset) in enumerate(origins):
        encoded = lines[i]
        if offset is None or encoded is None:
            continue
        same = _fast.common_prefix(encoded, line)
        if 2 * same >= len(encoded):
            lines[i] = None
            reread.offsets.append(offset)
            reread.lengths.append(same)
            tail = encoded[same:]
            reread.tails.append(tails.setdefault(tail, tail))
    return reread


def _units(inputs: list[InputFile], stats: Stats, *, shared: bool) -> Iterator[RawUnit]:
    """The raw units of the inputs, in order. With ``shared`` (the workers read this
    machine's files), a page file is a unit that only names it: the worker reads it
    (``_loaded``), so that the main process neither reads nor ships its bytes."""
    for item in inputs:
        if shared and item.kind == "page":
            yield RawUnit("page", item.source, 0, b"", path=item.path)
        else:
            yield from read_units([item], stats, BATCH_BYTES)


def _loaded(unit: RawUnit, stats: Stats) -> RawUnit:
    """A page unit that only names its file (see ``_units``) with the file's bytes."""
    if unit.kind != "page" or not unit.path:
        return unit
    with open(unit.path, "rb") as handle:
        data = handle.read()
    stats.add("pages_read")
    stats.add("bytes_read", len(data))
    return replace(unit, data=data, path="")


def _batches(units: Iterable[RawUnit]) -> Iterator[list[RawUnit]]:
    batch: list[RawUnit] = []
    size = 0
    for unit in units:
        batch.append(unit)
        size += len(unit.data) if unit.data or not unit.path else os.stat(unit.path).st_size
        if unit.kind == "jsonl" or len(batch) >= BATCH_UNITS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _processed(
    plan: Plan, batches: Iterator[Any], executor: Executor
) -> Generator[Any, None, None]:
    """Each batch through the per-record stages (``_Worker.__call__``), wherever the
    executor runs them (results in input order)."""
    yield from executor.map(Work(functools.partial(_Worker, plan)), batches)


def run(
    plan: Plan,
    inputs: list[InputFile],
    out: IO[bytes] | None,
    duplicates: IO[bytes] | None = None,
    *,
    index: IndexReader | None = None,
    collect_kept: bool = False,
    rejects: list[bytes] | None = None,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
    prior: Evidence | None = None,
) -> Result:
    """Run the plan over the inputs, writing kept records to ``out`` (None: write nothing)
    and removed ones, with their verdict, to ``duplicates``. The per-record work runs in
    ``executor`` (default: this machine, ``plan.jobs`` processes). Learning counts what
    earlier runs saw (``prior``, from an index) with the input's own recurrence."""
    started = time.perf_counter()
    executor = executor if executor is not None else LocalPool(plan.jobs)
    stats = Stats()
    units = _units(inputs, stats, shared=executor.shares_files)
    applied = _pinned(plan.clean) if plan.clean is not None else Learned()
    learned: Learned | None = None
    evidence: Evidence | None = None
    hook = _fit_hook(plan, prior)
    with contextlib.ExitStack() as cleanup:
        if hook is None:
            to_process: Iterator[Any] = _batches(units)
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
            cache = cleanup.enter_context(tempfile.TemporaryDirectory(prefix=_LEARN_CACHE))
            read = progress
            sketches, kept_batches = _fit_pass(
                plan,
                _batches(units),
                executor,
                cache,
                None if read is None else lambda: read("reading", stats),  # input read here
            )
            fitted_at = time.perf_counter()
            if progress is not None:
                progress("learning", stats)
            learned = hook.fit(sketches)
            evidence = hook.evidence
            del sketches
            learned_at = time.perf_counter()
            applied.update(learned)
            to_process = iter(kept_batches)
            first_phase = "fingerprinting" if plan.dedup is not None else "writing"
        plan = replace(plan, learned=applied or None)
        result = _run(
            plan,
            _processed(plan, to_process, executor),
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


def learn_from(plan: Plan, inputs: list[InputFile]) -> Learned:
    """The fit pass: every record split and cleaned by the rules, sketched, and learned
    from. Stdin must have been spooled (see ``_stdin_spooled``): it is read twice."""
    hook = _fit_hook(plan, None)
    assert hook is not None
    with tempfile.TemporaryDirectory(prefix=_LEARN_CACHE) as cache:
        units = _batches(_units(inputs, Stats(), shared=True))
        sketches, kept_batches = _fit_pass(plan, units, LocalPool(plan.jobs), cache, None)
        for path in kept_batches:
            os.unlink(path)
        return hook.fit(sketches)


#: Prefix of the folder where the fit pass keeps its batches for the second pass.
_LEARN_CACHE = "corpus-clean-learn-"


def _fit_pass(
    plan: Plan,
    batches: Iterator[list[RawUnit]],
    executor: Executor,
    cache: str,
    each: Callable[[], None] | None,
) -> tuple[list[Sketch], list[str]]:
    """The batches split and cleaned by the rules, as ``fit`` sketches them and as files
    of ``cache`` for the second pass; ``each`` is called after every batch."""
    fit_plan = replace(plan, dedup=None, learned=None, cache_dir=cache)
    sketches, kept_batches = [], []
    with contextlib.closing(_processed(fit_plan, batches, executor)) as fitted:
        for sketch, path in fitted:
            sketches.append(sketch)
            kept_batches.append(path)
            if each is not None:
                each()
    return sketches, kept_batches


def _pinned(options: CleanOptions) -> Learned:
    """The learned patterns pinned in rules files (``match = "folded"``)."""
    return Learned.from_rules(rule for rule in load_rules(options).rules if rule.match == "folded")


def learn_rules(plan: Plan, inputs: list[InputFile]) -> tuple[Learned, dict[TextKey, str], Stats]:
    """For ``corpus-clean learn``: what the fit pass learns, the text of each pattern, and
    what applying them removes (``removed_by_pattern``). The second pass runs in this
    process: it only looks up hashes."""
    assert plan.learn is not None
    stats = Stats()
    texts: dict[TextKey, str] = {}
    with _stdin_spooled(inputs) as spooled:
        inputs = [spooled.get(item.path, item) for item in inputs]
        learned = learn_from(plan, inputs)
        worker = _Worker(replace(plan, dedup=None, learned=None))
        for batch in _batches(_units(inputs, stats, shared=True)):
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
    with tempfile.TemporaryDirectory(prefix="corpus-clean-stdin-") as folder:
        path = os.path.join(folder, "stdin.jsonl")
        with temporary_errors(), open(path, "wb") as copy:
            shutil.copyfileobj(sys.stdin.buffer, copy, 1 << 20)
        yield {STDIN: InputFile(path, "jsonl", name="<stdin>")}


def _run(
    plan: Plan,
    batches: Generator[_Batch, None, None],
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
    spool = Spool(memory)
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
        _count_verdicts(verdicts, finder.ids, stats)
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


def _count_verdicts(verdicts: dict[int, Verdict], ids: list[str], stats: Stats) -> None:
    """The figures of a dashboard: removed records by similarity, this run's clusters by
    size, and the records that recur in the index (what ``--check`` reports)."""
    removed_in_run: collections.Counter[int] = collections.Counter()
    for n, verdict in verdicts.items():
        stats.similarity_bins[similarity_bin(verdict.similarity)] += 1
        if verdict.kind == "index":
            stats.recurring.append(
                {
                    "id": ids[n],
                    "indexed_id": verdict.duplicate_of,
                    "indexed_entry": verdict.indexed_entry,
                    "similarity": round(verdict.similarity, 4),
                }
            )
        else:
            removed_in_run[verdict.cluster_size] += 1
    clusters = {size: removed // (size - 1) for size, removed in removed_in_run.items()}
    stats.cluster_sizes.update(clusters)
    stats.cluster_sizes[1] += len(ids) - len(verdicts) - sum(clusters.values())


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
    batch: _Batch,
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
