"""The plan of a run and the per-batch work: which stages run (``STAGES``, the one place
a stage is registered), and the worker that takes a batch through them.

The main process only names the input (page files; JSONL in runs of lines) and hands it
out in order-preserving batches (``batched``); parsing, splitting, cleaning,
fingerprinting and JSON encoding are pure per-record work done by worker processes
(``Worker``), so the output is byte-identical whatever the number of jobs. The driver
(``driver.py``) orders the run: the map, dedup, writing, publishing, committing.
"""

from __future__ import annotations

import functools
import itertools
import marshal
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import IO, Any, Literal

from .dedup import Fingerprinter, Fingerprints
from .executors import Executor, Work
from .heap import release_freed_memory
from .io.codec import encode
from .io.inputs import InputFile
from .io.readers import RawUnit, parse_unit, read_units
from .io.spill import FileSpans, MemoryBudget, file_spans, temporary_errors
from .options import (
    MEMORY_BUDGET,
    CleanOptions,
    DedupOptions,
    LearnOptions,
    ReadOptions,
    SplitOptions,
)
from .record import Record, record_fields
from .stages.clean import Cleaner, RuleSet, load_rules
from .stages.learn import Evidence, Learned, Learning, Prior, Sketch
from .stages.split import PageSplitter
from .stats import Stats
from .storage import Accepted

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
    #: With ``clean``: learn each site's boilerplate from the input first (a fit pass).
    learn: LearnOptions | None = None
    #: What the workers apply after the rules: learned, and pinned in rules files.
    learned: Learned | None = None
    #: Set for a fit pass: how it keeps the batches it processed for the second pass.
    #: "files": each in a file of ``cache_dir``; "memory" (the work runs in this
    #: process): as they are while ``memory`` bytes have room, only the rest in files
    #: (writing and reading them took about a tenth of a one-job run); "process" (the
    #: executor ``keeps_processes``): in the memory of the worker that made them (a
    #: ``KeptHere`` names each) while its share of ``memory`` has room, the rest in
    #: files; "nothing" (``corpus-clean learn`` needs only the sketches).
    fit_keeps: Literal["files", "memory", "process", "nothing"] | None = None
    cache_dir: str | None = None
    jobs: int = 1
    #: Bytes of records and shingle sets waiting for dedup kept in memory; the rest
    #: wait in temporary files.
    memory: int = MEMORY_BUDGET
    #: With ``dedup``: keep every record, fingerprinted but not compared (``index add``
    #: seeds an index with a clean corpus as it is).
    keep_all: bool = False


#: The phases of a run, in order. Reading includes splitting, cleaning and (without
#: learning) fingerprinting, done as batches are read; with learning, the input is read
#: and cleaned first, then learned from, then fingerprinted. Committing is the index's.
PHASES = ("reading", "learning", "fingerprinting", "resolving", "writing", "committing")

#: Told of the phase a run is in and of its counts so far, after every batch.
ProgressCallback = Callable[[str, Stats], None]


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
class Batch:
    """What a worker sends back for a batch of units: encoded records, and what dedup
    and an index need of them."""

    #: None for an output line that is mostly its input line (see ``reread``).
    lines: list[bytes | None]
    reread: FileSpans | None
    heads: list[tuple[str, str | None, str]]  # id, title, source
    prints: Fingerprints | None
    stats: Stats
    rejects: list[bytes]


@dataclass
class Guess:
    """A kept batch's records as the second pass gives them if what the fit learns
    leaves them alone, and their fingerprints: taken while the fit runs, by workers that
    would otherwise wait, and reused for each record learning did not touch."""

    ids: list[str]
    texts: list[str]
    dates: list[str | None]
    prints: Fingerprints

    def size(self) -> int:
        """About the bytes the fingerprints hold (the texts are the kept records')."""
        p = self.prints
        return p.band_keys.nbytes + p.shingles.nbytes + p.offsets.nbytes + 40 * len(self.ids)


@dataclass
class KeptBatch:
    """A batch the fit pass processed, as it waits for the second pass (see
    ``Worker.sketch``): its records as the rules left them."""

    records: list[Record]
    stats: Stats
    rejects: list[bytes]
    #: The records' sketch: the second pass needs not fold their lines again.
    sketch: Sketch
    #: Kept in a worker: its fingerprints if learning leaves it alone (see ``Guess``).
    guess: Guess | None = None

    def size(self) -> int:
        """About the bytes the records hold in memory: their texts, and the rest of a
        record (its other strings, the object) counted as a few hundred bytes."""
        return sum(sys.getsizeof(record.text) + 300 for record in self.records)

    def dump(self, file: IO[bytes]) -> None:
        """Into a file of this run: the records as rows of their fields, marshalled (half
        the time pickle takes to write them), the rest pickled."""
        rest = pickle.dumps((self.stats, self.rejects, self.sketch), protocol=5)
        file.write(marshal.dumps((rest, [record_fields(record) for record in self.records])))

    @classmethod
    def load(cls, file: IO[bytes]) -> KeptBatch:
        # Read whole first: marshal.load reads a file a call per object (five times slower).
        rest, rows = marshal.loads(file.read())
        stats, rejects, sketch = pickle.loads(rest)
        return cls([Record(*row) for row in rows], stats, rejects, sketch)


@dataclass(frozen=True)
class KeptHere:
    """A batch the fit pass keeps in the memory of the worker process that made it (see
    ``Plan.fit_keeps``): the executor runs the second pass's item at the same position
    in that process."""

    pid: int
    number: int


@dataclass(frozen=True)
class Guessing:
    """The item that has a worker guess the fingerprints of the batches it keeps (see
    ``Guess``) in a thread of its own, until the second pass's first item comes."""


#: A worker that keeps batches for the second pass hands the memory of those taken back
#: to the kernel each time this much has been taken, and when none is left.
RELEASE_EVERY = 64 << 20


class _Keeper:
    """What this process keeps for the second pass (``fit_keeps="process"``): the
    batches by ``KeptHere.number``, the room left for them and their guesses, and the
    thread guessing."""

    def __init__(self) -> None:
        self.batches: dict[int, KeptBatch] = {}
        self.numbers = itertools.count()
        self.room: MemoryBudget | None = None
        self.guessing: tuple[threading.Thread, threading.Event] | None = None
        #: Bytes of the batches taken since their memory was last handed back.
        self.taken = 0

    def begin(self, room: MemoryBudget) -> MemoryBudget:
        """A fit pass begins here: what an earlier one kept is of no use any more (its
        run went on without it, or failed)."""
        self.stop_guessing()
        self.batches.clear()
        self.room = room
        return room

    def keep(self, kept: KeptBatch) -> KeptHere:
        number = next(self.numbers)
        self.batches[number] = kept
        return KeptHere(os.getpid(), number)

    def take(self, handle: KeptHere) -> KeptBatch:
        self.stop_guessing()
        kept = self.batches.pop(handle.number, None) if handle.pid == os.getpid() else None
        if kept is None:
            raise RuntimeError(
                f"{handle} is not kept in process {os.getpid()}: an executor that "
                "keeps_processes runs it where it was made"
            )
        # The batches taken before this one are gone: their pages go back to the kernel
        # now and then, and once none is left, for the main process to use.
        self.taken += kept.size()
        if self.taken >= RELEASE_EVERY or not self.batches:
            release_freed_memory()
            self.taken = 0
        return kept

    def start_guessing(self, guess: Callable[[KeptBatch], Guess | None]) -> None:
        self.stop_guessing()
        stop = threading.Event()
        thread = threading.Thread(target=self._guess, args=(guess, stop), daemon=True)
        thread.start()
        self.guessing = (thread, stop)

    def _guess(self, guess: Callable[[KeptBatch], Guess | None], stop: threading.Event) -> None:
        """The kept batches' guesses, in order, while there is room and until ``stop``.
        A guess only saves time: one that fails is not taken."""
        for number in sorted(self.batches):
            kept = self.batches[number]
            if stop.is_set() or kept.guess is not None:
                continue
            try:
                found = guess(kept)
            except Exception:
                return
            if found is None or self.room is None or not self.room.take(found.size()):
                return
            kept.guess = found

    def stop_guessing(self) -> None:
        if self.guessing is not None:
            thread, stop = self.guessing
            stop.set()
            thread.join()
            self.guessing = None


_kept_here = _Keeper()


def forget_kept() -> None:
    """Drop what this process keeps for a second pass that will not come (a run that
    failed between its passes, with its one batch kept here)."""
    _kept_here.begin(MemoryBudget(0))


#: A stage as the pipeline runs it (see ``stages.Stage``): records in, records out;
#: ``(records, stats)``, or ``(records, stats, sketch)`` for a ``sketched`` one.
StageRun = Callable[..., Iterable[Record]]


@dataclass(frozen=True)
class Registered:
    """A stage in the pipeline: ``build`` makes what runs it from a plan (None: the plan
    leaves it out); one ``after_fit`` runs after the fit pass, on what the stages
    before it made (see ``stages.Fit``)."""

    name: str
    build: Callable[[Plan], StageRun | None]
    after_fit: bool = False
    #: Runs as ``run(records, stats, sketch)``: the fit pass's sketch of the batch lets it
    #: pass on untouched records without looking at them again.
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
        "learned",
        lambda plan: plan.learned.run if plan.learned else None,
        after_fit=True,
        sketched=True,
    ),
    Registered(
        "settle",
        lambda plan: Cleaner(RuleSet(()), plan.clean).finish if plan.clean else None,
        True,
    ),
)


def pinned(options: CleanOptions) -> Learned:
    """The learned patterns pinned in rules files (``match = "folded"``): what the workers
    apply after the rules, with what a fit pass learns."""
    return Learned.from_rules(rule for rule in load_rules(options).rules if rule.match == "folded")


def fit_hook(plan: Plan, prior: Prior | None) -> Learning | None:
    """The fit hook of the plan's stage that must see the whole input first: learning,
    over what the rules leave (``prior``: what earlier runs saw, from an index)."""
    if plan.learn is None or plan.clean is None:
        return None
    return Learning(plan.learn, prior)


class Worker:
    """The per-record stages, built once per process from a Plan."""

    def __init__(self, plan: Plan) -> None:
        self.read = plan.read
        built = [(entry, entry.build(plan)) for entry in STAGES]
        #: The stages a fit pass sees the output of, and those that run after it.
        self.before = [run for entry, run in built if run is not None and not entry.after_fit]
        self.after = [(entry, run) for entry, run in built if run is not None and entry.after_fit]
        self.fit = fit_hook(plan, None)
        self.cache_dir = plan.cache_dir
        self.fit_keeps = plan.fit_keeps
        self.fit_memory = MemoryBudget(plan.memory)
        if plan.fit_keeps == "process":  # each worker keeps its share, guesses included
            self.fit_memory = _kept_here.begin(MemoryBudget(plan.memory // plan.jobs))
        self.fingerprinter = Fingerprinter(plan.dedup) if plan.dedup is not None else None

    def sketch(self, units: list[RawUnit]) -> tuple[Sketch, KeptBatch | KeptHere | str | None]:
        """The fit pass over a batch: its records as the rules leave them, sketched for
        ``fit``, and kept for ``finish`` as ``fit_keeps`` says: as they are, or in this
        process (a ``KeptHere``), or in a file of ``cache_dir`` (its path returned), or
        not (None)."""
        stats = Stats()
        rejects: list[bytes] = []
        assert self.fit is not None
        records = list(self._cleaned(units, stats, rejects, None))
        sketch = self.fit.sketch(records)
        if self.fit_keeps == "nothing":
            return sketch, None
        kept = KeptBatch(records, stats, rejects, sketch)
        if self.fit_keeps in ("memory", "process") and self.fit_memory.take(kept.size()):
            return sketch, kept if self.fit_keeps == "memory" else _kept_here.keep(kept)
        assert self.cache_dir is not None
        with temporary_errors():
            fd, path = tempfile.mkstemp(dir=self.cache_dir, suffix=".kept")
            with os.fdopen(fd, "wb") as cache:
                kept.dump(cache)
        return sketch, path

    def finish(self, batch: KeptBatch | KeptHere | str) -> Batch:
        """The second pass over a batch the fit pass kept (where it is kept): learned
        boilerplate removed, then the rest of the stages."""
        if isinstance(batch, str):
            with temporary_errors(), open(batch, "rb") as cache:
                kept = KeptBatch.load(cache)
            os.unlink(batch)
        elif isinstance(batch, KeptHere):
            kept = _kept_here.take(batch)
        else:
            kept = batch
        records = list(self._finished(kept.records, kept.stats, kept.sketch))
        return self._encoded(records, kept.stats, kept.rejects, None, [], kept.guess)

    def guess(self, kept: KeptBatch) -> Guess | None:
        """A kept batch through the stages after the fit as they are before it (rules
        files' learned patterns only), and fingerprinted (see ``Guess``)."""
        if self.fingerprinter is None:
            return None
        records = list(self._finished(kept.records, Stats(), kept.sketch))
        texts, dates = [record.text for record in records], [record.date for record in records]
        ids = [record.id for record in records]
        return Guess(ids, texts, dates, self.fingerprinter.fingerprint(texts, dates))

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
        """Records through the stages that run after a fit pass; those fitted from the
        sketches are told the batch's own (``sketch``: None when it was not sketched)."""
        for entry, run in self.after:
            records = run(records, stats, sketch) if entry.sketched else run(records, stats)
        return records

    def __call__(self, batch: list[RawUnit] | KeptBatch | KeptHere | Guessing | str) -> Any:
        """A batch of units through every stage (a ``Batch``); in a fit pass
        (``fit_keeps``), the fit pass over it (``sketch``); a batch the fit pass kept
        (where it is kept), the rest; ``Guessing``: guesses start (None)."""
        if isinstance(batch, Guessing):
            _kept_here.start_guessing(self.guess)
            return None
        if isinstance(batch, (KeptBatch, KeptHere, str)):
            return self.finish(batch)
        if self.fit_keeps is not None:
            return self.sketch(batch)
        return self._all(batch)

    def _all(self, units: list[RawUnit]) -> Batch:
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
        guess: Guess | None = None,
    ) -> Batch:
        prints = self._fingerprints(records, guess) if self.fingerprinter is not None else None
        meta = self.read.metadata_field
        lines: list[bytes | None] = [encode(record, None, meta) for record in records]
        return Batch(
            lines=lines,
            reread=_reread(units, lines, origins) if origins is not None else None,
            heads=[(record.id, record.title, record.source) for record in records],
            prints=prints,
            stats=stats,
            rejects=rejects,
        )

    def _fingerprints(self, records: list[Record], guess: Guess | None) -> Fingerprints:
        """The records' fingerprints: a ``guess``'s for each record it holds as it is
        (the same text and date give the same fingerprint), taken anew for the rest."""
        assert self.fingerprinter is not None
        fingerprint = self.fingerprinter.fingerprint
        if guess is None:
            return fingerprint([record.text for record in records], [r.date for r in records])
        guessed = {record_id: row for row, record_id in enumerate(guess.ids)}
        rows: list[int] = []
        fresh: list[Record] = []
        for record in records:
            row = guessed.get(record.id)
            if row is None or guess.texts[row] != record.text or guess.dates[row] != record.date:
                row = len(guess.ids) + len(fresh)
                fresh.append(record)
            rows.append(row)
        if not fresh and rows == list(range(len(guess.ids))):
            return guess.prints
        taken = fingerprint([record.text for record in fresh], [r.date for r in fresh])
        return Fingerprints.joined(guess.prints, taken).select(rows)


def _reread(
    units: list[RawUnit], lines: list[bytes | None], origins: list[tuple[bytes, int | None]]
) -> FileSpans | None:
    """The output lines that are mostly their input line, as spans of the input file to
    read again at the end (see ``FileSpans``), each of them replaced by None in ``lines``."""
    from_file = [unit for unit in units if unit.offset is not None]
    if len(from_file) != 1:  # a batch holds at most one run of JSONL lines
        return None
    unit = from_file[0]
    assert unit.stamp is not None
    return file_spans(unit.path, unit.stamp, lines, origins)


def input_units(inputs: list[InputFile], stats: Stats, *, shared: bool) -> Iterator[RawUnit]:
    """The raw units of the inputs, in order. With ``shared`` (the workers read this
    machine's files), a page file is a unit that only names it: the worker reads it
    (``_loaded``), so that the main process neither reads nor ships its bytes."""
    for item in inputs:
        if shared and item.kind == "page":
            yield RawUnit("page", item.source, 0, b"", path=item.path)
        else:
            yield from read_units([item], stats, BATCH_BYTES)


def _loaded(unit: RawUnit, stats: Stats) -> RawUnit:
    """A page unit that only names its file (see ``input_units``) with the file's bytes."""
    if unit.kind != "page" or not unit.path:
        return unit
    with open(unit.path, "rb") as handle:
        data = handle.read()
    stats.add("pages_read")
    stats.add("bytes_read", len(data))
    return replace(unit, data=data, path="")


def batched(units: Iterable[RawUnit]) -> Iterator[list[RawUnit]]:
    """The units in batches of about ``BATCH_BYTES`` (a run of JSONL lines alone)."""
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


def processed(plan: Plan, batches: Iterator[Any], executor: Executor) -> Generator[Any, None, None]:
    """Each batch through the per-record stages (``Worker.__call__``), wherever the
    executor runs them (results in input order)."""
    yield from executor.map(Work(functools.partial(Worker, plan)), batches)
