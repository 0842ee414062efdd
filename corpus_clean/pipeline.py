"""Folds the stages into one run: read -> split -> clean -> dedup -> write.

Splitting, cleaning and fingerprinting are pure per-record work: they run in worker
processes on order-preserving batches, so the output is byte-identical whatever the
number of jobs. Reading, deduplication (which must see everything) and writing stay in
this process.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import IO, Any

from .clean import Cleaner, load_rules
from .dedup import AcceptedIndex, Deduplicator, Fingerprinter, Fingerprints, Verdict
from .io import InputFile, encode, read_records
from .options import CleanOptions, DedupOptions, ReadOptions, SplitOptions
from .record import Record
from .split import PageSplitter
from .stats import Stats

#: A batch closes at this many records or this many bytes of text, whichever comes first.
BATCH_RECORDS = 2000
BATCH_BYTES = 4 << 20


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
    #: Records kept, with band keys and shingles, when an index is to accept them.
    kept: list[tuple[Record, Any, Any]]


class _Worker:
    """The per-record stages, built once per process from a Plan."""

    def __init__(self, plan: Plan) -> None:
        self.splitter = PageSplitter(plan.split) if plan.split is not None else None
        self.cleaner = Cleaner(load_rules(plan.clean)) if plan.clean is not None else None
        self.fingerprinter = Fingerprinter(plan.dedup) if plan.dedup is not None else None

    def __call__(self, records: list[Record]) -> tuple[list[Record], Fingerprints | None, Stats]:
        stats = Stats()
        stream: Iterable[Record] = records
        if self.splitter is not None:
            stream = self.splitter.run(stream, stats)
        if self.cleaner is not None:
            stream = self.cleaner.run(stream, stats)
        done = list(stream)
        prints = None
        if self.fingerprinter is not None:
            prints = self.fingerprinter.fingerprint([record.text for record in done])
        return done, prints, stats


_process_worker: _Worker | None = None


def _init_process(plan: Plan) -> None:
    global _process_worker
    _process_worker = _Worker(plan)


def _in_process(records: list[Record]) -> tuple[list[Record], Fingerprints | None, Stats]:
    assert _process_worker is not None, "worker process was not initialized"
    return _process_worker(records)


def _batches(records: Iterable[Record]) -> Iterator[list[Record]]:
    batch: list[Record] = []
    size = 0
    for record in records:
        batch.append(record)
        size += len(record.text)
        if len(batch) >= BATCH_RECORDS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _processed(
    plan: Plan, batches: Iterator[list[Record]]
) -> Iterator[tuple[list[Record], Fingerprints | None, Stats]]:
    """Each batch through the per-record stages: inline for one job or one batch, else in
    a pool of worker processes (results in input order)."""
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
    context = multiprocessing.get_context("forkserver")
    with context.Pool(plan.jobs, initializer=_init_process, initargs=(plan,)) as pool:
        yield from pool.imap(_in_process, chain([first, second], batches))


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
    stats = Stats()
    records = read_records(inputs, plan.read, stats, rejects)
    processed = _processed(plan, _batches(records))

    def merged() -> Iterator[tuple[list[Record], Fingerprints | None]]:
        for done, prints, batch_stats in processed:
            stats.merge(batch_stats)
            if progress is not None:
                progress(stats["bytes_read"])
            yield done, prints

    kept: list[tuple[Record, Any, Any]] = []
    verdicts: Iterator[tuple[Record, Verdict | None]]
    if plan.dedup is not None:
        dedup = Deduplicator(plan.dedup, index)
        dedup.collect_kept = collect_kept
        verdicts = dedup.run(((done, p) for done, p in merged() if p is not None), stats)
    else:
        verdicts = ((record, None) for done, _ in merged() for record in done)
    for record, verdict in verdicts:
        if verdict is None:
            stats.add("written")
            if out is not None:
                out.write(encode(record))
        elif duplicates is not None:
            duplicates.write(encode(record, verdict.as_fields()))
    if plan.dedup is not None:
        kept = dedup.kept
    return Result(stats, time.perf_counter() - started, kept)


def index_corpus(
    index: Any,
    inputs: list[InputFile],
    read: ReadOptions,
    fingerprinter: Fingerprinter,
    run_label: str,
) -> int:
    """Add every record of a clean corpus to an index as it is; return how many were added."""
    stats = Stats()
    kept: list[tuple[Record, Any, Any]] = []
    for batch in _batches(read_records(inputs, read, stats)):
        prints = fingerprinter.fingerprint([record.text for record in batch])
        kept.extend(
            (record, prints.band_keys[i], prints.shingles_of(i)) for i, record in enumerate(batch)
        )
    added: int = index.accept(kept, run_label=run_label)
    return added
