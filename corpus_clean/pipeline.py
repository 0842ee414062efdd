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
import contextlib
import ctypes
import functools
import gc
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import IO, cast

from . import _fast
from .clean import Cleaner, load_rules
from .dedup import Accepted, AcceptedIndex, DuplicateFinder, Fingerprinter, Fingerprints
from .io import (
    BlockWriter,
    InputFile,
    InputLines,
    MemoryBudget,
    RawUnit,
    Spool,
    add_fields,
    encode,
    parse_unit,
    read_records,
    read_units,
    write_all,
)
from .options import CleanOptions, DedupOptions, ReadOptions, SplitOptions
from .record import Record
from .signals import interrupts_held
from .split import PageSplitter
from .stats import Stats

#: fork starts workers in milliseconds with the library already imported; where there is
#: no fork, spawn imports it afresh in each worker.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
#: A batch of page files closes at this many pages or this many bytes, whichever comes
#: first. JSONL is read in runs of lines of about this many bytes, and each closes a batch.
BATCH_UNITS = 2000
BATCH_BYTES = 2 << 20


@dataclass(frozen=True)
class Plan:
    """Which stages run, with their options. ``None`` leaves a stage out."""

    read: ReadOptions = field(default_factory=ReadOptions)
    split: SplitOptions | None = None
    clean: CleanOptions | None = None
    dedup: DedupOptions | None = None
    jobs: int = 1


@dataclass
class Result:
    stats: Stats
    seconds: float
    #: Articles kept, when an index is to accept them (``collect_kept``).
    kept: list[Accepted]


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


class _Worker:
    """The per-record stages, built once per process from a Plan."""

    def __init__(self, plan: Plan) -> None:
        self.read = plan.read
        self.splitter = PageSplitter(plan.split) if plan.split is not None else None
        self.cleaner = Cleaner(load_rules(plan.clean)) if plan.clean is not None else None
        self.fingerprinter = Fingerprinter(plan.dedup) if plan.dedup is not None else None

    def __call__(self, units: list[RawUnit]) -> _Batch:
        stats = Stats()
        rejects: list[bytes] = []
        # Records that reach dedup's spool as they were read: an output line that is
        # mostly the input line can be read again at the end instead of travelling there.
        as_read = self.fingerprinter is not None and not (self.splitter or self.cleaner)
        origins: list[tuple[bytes, int | None]] | None = [] if as_read else None
        stream: Iterable[Record] = chain.from_iterable(
            parse_unit(unit, self.read, stats, rejects, origins) for unit in units
        )
        if self.splitter is not None:
            stream = self.splitter.run(stream, stats)
        if self.cleaner is not None:
            stream = self.cleaner.run(stream, stats)
        records = list(stream)
        prints = None
        if self.fingerprinter is not None:
            prints = self.fingerprinter.fingerprint([record.text for record in records])
        lines: list[bytes | None] = [encode(record) for record in records]
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
    reread = InputLines(unit.source, unit.stamp, array.array("q"), array.array("q"), [])
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


_process_worker: _Worker | None = None


def _init_process(plan: Plan) -> None:
    """Build the worker, and leave interruption to the main process: a forked worker
    would otherwise inherit the CLI's handlers, answer the pool's own SIGTERM (sent when
    it is torn down) with a traceback, and each catch Ctrl-C sent to the process group."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global _process_worker
    _process_worker = _Worker(plan)


def _in_process(units: list[RawUnit]) -> _Batch:
    assert _process_worker is not None, "worker process was not initialized"
    return _process_worker(units)


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def _reuse_freed_memory() -> None:
    """Have glibc keep freed memory for the next batch instead of handing it back.

    Each batch allocates and frees tens of megabytes. By default glibc returns much of it
    to the kernel, and the next batch faults it back in a page at a time: a sixth of a
    run's time at 100,000 articles. Up to 128 MB a process stays mapped instead. Forked
    workers inherit the setting; elsewhere than glibc this does nothing.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    mallopt(_M_TRIM_THRESHOLD, 128 << 20)


def _batches(units: Iterable[RawUnit]) -> Iterator[list[RawUnit]]:
    batch: list[RawUnit] = []
    size = 0
    for unit in units:
        batch.append(unit)
        size += len(unit.data)
        if unit.kind == "jsonl" or len(batch) >= BATCH_UNITS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _processed(plan: Plan, batches: Iterator[list[RawUnit]]) -> Iterator[_Batch]:
    """Each batch through the per-record stages: inline for one job or a single batch,
    else in a pool of worker processes (results in input order)."""
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    if plan.jobs <= 1 or second is None:
        worker = _Worker(plan)
        yield worker(first)
        for batch in chain([second] if second is not None else [], batches):
            yield worker(batch)
        return
    # A process pool that notices a worker dying (killed, out of memory): the run then
    # fails with BrokenProcessPool instead of waiting forever for its batch.
    with ProcessPoolExecutor(
        plan.jobs,
        mp_context=multiprocessing.get_context(_START_METHOD),
        initializer=_init_process,
        initargs=(plan,),
    ) as pool:
        pending: deque[Future[_Batch]] = deque()
        try:
            # The first submit forks the workers: an interrupt inside it was swallowed
            # by a fork hook, or left the pool without its manager, hanging the exit.
            with interrupts_held():
                pending.append(pool.submit(_in_process, first))
            for batch in chain([second], batches):
                pending.append(pool.submit(_in_process, batch))
                # A few batches in flight per worker: enough to keep it busy, few
                # enough that memory does not grow with the input.
                if len(pending) > 2 * plan.jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Records and batches hold no reference cycles, yet as a run allocates millions of
    objects the cycle collector walks every live one again and again: 4% of a run.
    Forked workers inherit the pause."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_cycle_collector_paused()
def run(
    plan: Plan,
    inputs: list[InputFile],
    out: IO[bytes] | None,
    duplicates: IO[bytes] | None = None,
    *,
    index: AcceptedIndex | None = None,
    collect_kept: bool = False,
    rejects: list[bytes] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Result:
    """Run the plan over the inputs, writing kept records to ``out`` (None: write nothing)
    and removed ones, with their verdict, to ``duplicates``."""
    started = time.perf_counter()
    _reuse_freed_memory()
    stats = Stats()
    batches = _processed(plan, _batches(read_units(inputs, stats, BATCH_BYTES)))
    kept: list[Accepted] = []
    if plan.dedup is None:
        for batch in batches:
            _merge(batch, stats, rejects, progress)
            stats.add("written", len(batch.lines))
            if out is not None:
                write_all(out, b"".join(cast(list[bytes], batch.lines)))  # None: dedup only
        return Result(stats, time.perf_counter() - started, kept)

    memory = MemoryBudget()
    finder = DuplicateFinder(plan.dedup, index, memory)
    spool = Spool(memory)
    heads: list[tuple[str | None, str]] = []
    try:
        for batch in batches:
            _merge(batch, stats, rejects, progress)
            assert batch.prints is not None
            finder.add([head[0] for head in batch.heads], batch.prints)
            if collect_kept:
                heads.extend((title, source) for _, title, source in batch.heads)
            spool.extend(batch.lines, batch.reread)
        verdicts = finder.resolve(stats)
        with contextlib.ExitStack() as writers:
            kept_out = writers.enter_context(BlockWriter(out)) if out is not None else None
            removed_out = (
                writers.enter_context(BlockWriter(duplicates)) if duplicates is not None else None
            )
            for n, line in enumerate(spool.read()):
                verdict = verdicts.get(n)
                if verdict is not None:
                    if removed_out is not None:
                        removed_out.write(add_fields(line, verdict.as_fields()))
                    continue
                if kept_out is not None:
                    kept_out.write(line)
                if collect_kept:
                    title, source = heads[n]
                    kept.append(
                        Accepted(
                            finder.ids[n], title, source, finder.band_keys(n), finder.shingles(n)
                        )
                    )
        stats.add("written", len(finder.ids) - len(verdicts))
    finally:
        spool.close()
        finder.close()
    return Result(stats, time.perf_counter() - started, kept)


def _merge(
    batch: _Batch,
    stats: Stats,
    rejects: list[bytes] | None,
    progress: Callable[[int], None] | None,
) -> None:
    stats.merge(batch.stats)
    if rejects is not None:
        rejects.extend(batch.rejects)
    if progress is not None:
        progress(stats["bytes_read"])


def index_corpus(
    index: AcceptedIndex,
    inputs: list[InputFile],
    read: ReadOptions,
    fingerprinter: Fingerprinter,
    run_label: str,
) -> int:
    """Add every record of a clean corpus to an index as it is; return how many were added.

    Records are read and fingerprinted a batch at a time as the index takes them, so
    memory stays flat however big the corpus.
    """
    records = read_records(inputs, read, Stats())
    return index.accept(_as_accepted(records, fingerprinter), run_label=run_label)


def _as_accepted(records: Iterator[Record], fingerprinter: Fingerprinter) -> Iterator[Accepted]:
    while batch := list(islice(records, BATCH_UNITS)):
        prints = fingerprinter.fingerprint([record.text for record in batch])
        for i, record in enumerate(batch):
            yield Accepted(
                record.id, record.title, record.source, prints.band_keys[i], prints.shingles_of(i)
            )
