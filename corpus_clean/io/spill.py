"""The spill store: what a run parks while it must see everything before it writes
(encoded records, shingle sets), in memory first, as far as the run's memory budget goes,
then in a temporary file. An item is bytes, or bytes of an input file as the run read
it, read again (and checked unchanged) when the items are read back."""

from __future__ import annotations

import array
import bisect
import contextlib
import errno
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt

from .. import _fast
from ..errors import CorpusCleanError
from ..options import MEMORY_BUDGET
from .inputs import FileStamp


class MemoryBudget:
    """Bytes the stores of one run may still keep in memory, first come, first served;
    what does not fit goes to temporary files. Shared, so that a run whose records are
    read back from its input leaves the room to its shingle sets."""

    def __init__(self, size: int = MEMORY_BUDGET) -> None:
        self.room = size

    def take(self, size: int) -> bool:
        if size > self.room:
            return False
        self.room -= size
        return True


class TemporaryFileError(OSError):
    """A temporary file of records or shingle sets waiting for dedup failed. Its
    ``filename`` and ``strerror`` name the folder and what to do (``TMPDIR``), so it
    reads right wherever an OSError is told as ``FILENAME: STRERROR``."""

    @classmethod
    def of(cls, err: OSError) -> TemporaryFileError:
        full = err.errno in (errno.ENOSPC, errno.EDQUOT)
        hint = "a folder with more room" if full else "a folder this run can write to"
        return cls(
            err.errno,
            f"{err.strerror or err}; point TMPDIR at {hint}",
            f"temporary files in $TMPDIR ({tempfile.gettempdir()})",
        )


def temporary_file(prefix: str) -> IO[bytes]:
    """A nameless temporary file in $TMPDIR (gone when closed, or when the run dies)."""
    with temporary_errors():
        return tempfile.TemporaryFile(prefix=prefix)


def new_temporary_folder(kind: str) -> str:
    """A new folder of this run in $TMPDIR, ``corpus-clean-KIND-PID-...``. The folders of
    its kind that runs killed outright (kill -9, the OOM killer) left behind, their
    process gone, are removed first: they can be as big as the input."""
    stale = re.compile(rf"corpus-clean-{re.escape(kind)}-(\d+)-\w+")
    with contextlib.suppress(OSError):
        for entry in os.scandir(tempfile.gettempdir()):
            found = stale.fullmatch(entry.name)
            if found and entry.is_dir(follow_symlinks=False) and not alive(int(found[1])):
                shutil.rmtree(entry.path, ignore_errors=True)
    with temporary_errors():
        return tempfile.mkdtemp(prefix=f"corpus-clean-{kind}-{os.getpid()}-")


@contextlib.contextmanager
def temporary_folder(kind: str) -> Iterator[str]:
    """A ``new_temporary_folder``, removed with what it holds when the block ends."""
    path = new_temporary_folder(kind)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    """Whether a process of that number runs (someone else's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def temporary_errors() -> Iterator[None]:
    """An OSError inside, from a file of $TMPDIR, becomes a ``TemporaryFileError``."""
    try:
        yield
    except TemporaryFileError:
        raise
    except OSError as err:
        raise TemporaryFileError.of(err) from err


def close_temporary_file(file: IO[bytes]) -> None:
    """Close a temporary file that holds nothing still wanted: what it fails to write
    out as it closes (a full disk) no longer matters, and must not hide the error the
    run is stopping for."""
    with contextlib.suppress(OSError):
        file.close()


@dataclass(frozen=True)
class FileSpans:
    """Items of a batch that are bytes of one input file, each followed by bytes of its
    own (its tail): an output line that is mostly its input line (often all of it, or
    all but a field the output adds at the end) is read again from the input at the end
    instead of carried there. Among a batch's items, ``None`` stands for each of these,
    in order."""

    path: str
    stamp: FileStamp
    offsets: array.array[int]  # where each span starts in the file
    lengths: array.array[int]  # how many bytes of the file it is
    tails: list[bytes]  # what the item goes on with


def file_spans(
    path: str, stamp: FileStamp, items: list[bytes | None], origins: list[tuple[bytes, int | None]]
) -> FileSpans:
    """The items that are mostly their input line (``origins``: each item's line and
    where it starts in the file, None if it cannot be read again), as spans of the file;
    each is replaced by None in ``items``."""
    spans = FileSpans(path, stamp, array.array("q"), array.array("q"), [])
    tails: dict[bytes, bytes] = {}  # one object per distinct tail: pickled once
    for i, (line, offset) in enumerate(origins):
        item = items[i]
        if offset is None or item is None:
            continue
        same = _fast.common_prefix(item, line)
        if 2 * same >= len(item):
            items[i] = None
            spans.offsets.append(offset)
            spans.lengths.append(same)
            tail = item[same:]
            spans.tails.append(tails.setdefault(tail, tail))
    return spans


#: A batch held as one buffer, and where each of its items ends in it.
_Packed = tuple[memoryview, npt.NDArray[np.int64]]
#: Bytes a spill store gathers before writing to its file, and reads at a time.
SPILL_CHUNK = 4 << 20
#: Bytes of memory an item that is a span of an input file is counted as: its place in
#: a list and three arrays (tails are shared between items).
_SPAN_COST = 32


class SpillStore:
    """Items parked until a run writes: added a batch at a time, read back once in order
    (``read``), or one at a time by number (``get``, for items that are bytes).

    The first batches stay in memory as they came, as far as the ``memory`` budget goes:
    writing them to a file costs more than the rest of a typical run. The rest gather
    into chunks of a few megabytes for a temporary file: one write call per item would
    cost more than the copying.
    """

    def __init__(
        self,
        memory: MemoryBudget | None = None,
        chunk: int = SPILL_CHUNK,
        prefix: str = "corpus-clean-spill-",
    ) -> None:
        self._memory = memory if memory is not None else MemoryBudget()
        self._chunk = chunk
        self._prefix = prefix
        # In memory: batches as they came, a list of items or one buffer and the ends of
        # its items; and the number of each batch's first item.
        self._held: list[list[bytes] | _Packed] = []
        self._held_from = array.array("q")
        self._held_count = 0
        self._file: IO[bytes] | None = None
        self._ends = array.array("q", [0])  # where each item of the file ends in it
        self._pending = bytearray()
        self._flushed = 0
        # Items that are spans of input files: their numbers, spans, and the file of
        # each run of them as (number of its first span, path, stamp).
        self._span_items = array.array("q")
        self._span_offsets = array.array("q")
        self._span_lengths = array.array("q")
        self._span_files: list[tuple[int, str, FileStamp]] = []
        self.count = 0

    def extend(self, items: Sequence[bytes | None], spans: FileSpans | None = None) -> None:
        """Add a batch of items; ``None`` stands for the next of ``spans``. In memory while
        the whole batch fits, else on disk (and every batch after it, so that memory
        always holds the first items)."""
        first = self.count
        if spans is not None and len(spans.offsets):
            file = (spans.path, spans.stamp)
            if not self._span_files or self._span_files[-1][1:] != file:
                self._span_files.append((len(self._span_items), *file))
            self._span_items.extend(first + i for i, item in enumerate(items) if item is None)
            self._span_offsets.extend(spans.offsets)
            self._span_lengths.extend(spans.lengths)
            tails = iter(spans.tails)
            stored = [item if item is not None else next(tails) for item in items]
        else:
            stored = cast(list[bytes], items)
        self.count += len(items)
        size = sum(map(len, stored)) + _SPAN_COST * (len(spans.offsets) if spans else 0)
        if self._file is None and self._memory.take(size):
            self._hold(stored, first)
            return
        end = self._ends[-1]
        for item in stored:
            self._pending += item
            end += len(item)
            self._ends.append(end)
        self._spill()

    def extend_packed(self, data: npt.NDArray[Any], ends: npt.NDArray[np.int64]) -> None:
        """Add a batch of items given as one array and where each item ends in it, in
        bytes: held as that array while it fits (no copy), as ``extend`` does."""
        view = data.data.cast("B")
        first = self.count
        self.count += len(ends)
        if self._file is None and self._memory.take(view.nbytes):
            self._hold((view, ends), first)
            return
        self._pending += view
        self._ends.extend((ends + self._ends[-1]).tolist())
        self._spill()

    def _hold(self, batch: list[bytes] | _Packed, first: int) -> None:
        self._held.append(batch)
        self._held_from.append(first)
        self._held_count = self.count

    def _spill(self) -> None:
        """Write the pending chunk out once it is big enough (to a file made the first
        time: from then on, every batch goes there)."""
        if self._file is None:
            self._file = temporary_file(self._prefix)
        if len(self._pending) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        assert self._file is not None
        with temporary_errors():
            self._file.write(self._pending)
            self._file.flush()
        self._flushed += len(self._pending)
        self._pending.clear()

    def get(self, n: int) -> bytes | memoryview:
        """Item ``n``, which must not be a span of an input file."""
        if n < self._held_count:
            k = bisect.bisect_right(self._held_from, n) - 1
            batch, i = self._held[k], n - self._held_from[k]
            if isinstance(batch, list):
                return batch[i]
            view, ends = batch
            return view[ends[i - 1] if i else 0 : ends[i]]
        assert self._file is not None
        i = n - self._held_count
        start, end = self._ends[i], self._ends[i + 1]
        if end > self._flushed:
            self._flush()
        with temporary_errors():
            return os.pread(self._file.fileno(), end - start, start)

    def read(self) -> Iterator[bytes]:
        """Every item, in order; spans are read from their files."""
        spans = _SpanReader(self._span_offsets, self._span_lengths, self._span_files)
        span_items = iter(self._span_items)
        next_span = next(span_items, -1)
        with spans:
            for n, item in enumerate(itertools.chain(self._held_items(), self._file_items())):
                if n == next_span:
                    yield spans.next() + item
                    next_span = next(span_items, -1)
                else:
                    yield item

    def _held_items(self) -> Iterator[bytes]:
        for batch in self._held:
            if isinstance(batch, list):
                yield from batch
                continue
            view, ends = batch
            start = 0
            for end in ends.tolist():
                yield bytes(view[start:end])
                start = end

    def _file_items(self) -> Iterator[bytes]:
        if self._file is None:
            return
        self._flush()
        with temporary_errors():
            self._file.seek(0)
        buffer, base = b"", 0  # base: where buffer starts in the file
        ends = self._ends
        for i in range(len(ends) - 1):
            start, end = ends[i], ends[i + 1]
            if end > base + len(buffer):
                with temporary_errors():  # an I/O error of the disk under $TMPDIR
                    more = self._file.read(max(self._chunk, end - base - len(buffer)))
                buffer, base = buffer[start - base :] + more, start
            yield buffer[start - base : end - base]

    def close(self) -> None:
        self._held.clear()
        if self._file is not None:
            close_temporary_file(self._file)


class InputChangedError(CorpusCleanError):
    """An input file changed while the run still had to read items back from it."""


class _SpanReader:
    """Reads spans back from their input files, in order, each file opened once and
    checked, when opened and again once its last span is read, to be the file the run
    read: a change while its spans are read back would go out unseen otherwise."""

    def __init__(
        self,
        offsets: array.array[int],
        lengths: array.array[int],
        files: list[tuple[int, str, FileStamp]],
    ) -> None:
        self._offsets, self._lengths, self._files = offsets, lengths, files
        self._done = 0  # spans read so far
        self._next_file = 0  # in files
        self._handle: IO[bytes] | None = None
        self._reading: tuple[str, FileStamp] | None = None  # the open file's path and stamp

    def __enter__(self) -> _SpanReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._check()
        finally:
            if self._handle is not None:
                self._handle.close()

    def next(self) -> bytes:
        n = self._done
        self._done += 1
        if self._next_file < len(self._files) and self._files[self._next_file][0] == n:
            self._open(*self._files[self._next_file][1:])
            self._next_file += 1
        handle = self._handle
        assert handle is not None
        offset = self._offsets[n]
        if handle.tell() != offset:
            handle.seek(offset)
        return handle.read(self._lengths[n])

    def _open(self, path: str, stamp: FileStamp) -> None:
        if self._handle is not None:
            self._check()
            self._handle.close()
        self._handle = open(path, "rb", buffering=1 << 20)  # noqa: SIM115
        self._reading = (path, stamp)
        self._check()

    def _check(self) -> None:
        """Raise ``InputChangedError`` if the open file is not as the run first read it."""
        if self._handle is None or self._reading is None:
            return
        path, stamp = self._reading
        if FileStamp.of(self._handle.fileno()) != stamp:
            raise InputChangedError(
                f"{path}: changed while this run read it; run again on a copy that stays put"
            )
