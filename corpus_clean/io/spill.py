"""Data parked while a run must see everything before it writes: in memory first, as far
as the run's memory budget goes, then in temporary files."""

from __future__ import annotations

import array
import contextlib
import errno
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from ..errors import CorpusCleanError
from .inputs import FileStamp


@dataclass(frozen=True)
class InputLines:
    """Output lines that are mostly their input line as it stands (often all of it; or
    all but a field the output adds at the end): the run reads that much again from the
    input file at the end instead of carrying the whole line there. Among a batch's
    lines, ``None`` stands for each of these, in order."""

    path: str
    stamp: FileStamp
    offsets: array.array[int]  # where each input line starts in the file
    lengths: array.array[int]  # how much of it the output line begins with
    tails: list[bytes]  # what the output line goes on with


#: Bytes of parked data (spooled records, shingle sets) a run keeps in memory.
MEMORY_BUDGET = 768 << 20


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


#: Bytes a Spool gathers before writing to disk, and reads at a time.
SPOOL_CHUNK = 4 << 20


class Spool:
    """Encoded items parked while a stage that must see everything first makes up its
    mind; read back once, in the order they were appended.

    The first items stay in memory as they are, as far as the ``memory`` budget goes:
    writing them to a file costs more than the rest of a typical run. The rest gather
    into chunks of a few megabytes for a temporary file: one write call per item would
    cost more than the copying. An item may also be ``None``, standing for the next of
    the ``InputLines`` given with it, which is read back from its input file.
    """

    def __init__(self, memory: MemoryBudget | None = None, chunk: int = SPOOL_CHUNK) -> None:
        self._held: list[bytes | None] = []
        # Lines to read back (see InputLines), and the file of each run of them as
        # (number of the first, path, stamp).
        self._reread_offsets = array.array("q")
        self._reread_lengths = array.array("q")
        self._reread_tails: list[bytes] = []
        self._reread_files: list[tuple[int, str, FileStamp]] = []
        self._memory = memory if memory is not None else MemoryBudget()
        self._file: IO[bytes] | None = None
        self._chunk = chunk
        self._pending = bytearray()
        self.count = 0

    def append(self, data: bytes) -> None:
        self.extend((data,))

    def extend(self, items: Sequence[bytes | None], reread: InputLines | None = None) -> None:
        """Park a batch of items: in memory while the whole batch fits, else on disk
        (and every batch after it, so memory always holds the first items)."""
        if reread is not None and len(reread.offsets):
            file = (reread.path, reread.stamp)
            if not self._reread_files or self._reread_files[-1][1:] != file:
                self._reread_files.append((len(self._reread_offsets), *file))
            self._reread_offsets.extend(reread.offsets)
            self._reread_lengths.extend(reread.lengths)
            self._reread_tails.extend(reread.tails)
        self.count += len(items)
        size = sum(len(item) if item is not None else _REREAD_COST for item in items)
        if self._file is None and self._memory.take(size):
            self._held.extend(items)
            return
        if self._file is None:
            self._file = temporary_file("corpus-clean-spool-")
        pending = self._pending
        for item in items:
            if item is None:
                pending += _REREAD_MARK
                continue
            pending += len(item).to_bytes(4, "little")
            pending += item
        if len(pending) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        assert self._file is not None
        try:
            self._file.write(self._pending)
        except OSError as err:
            raise TemporaryFileError.of(err) from err
        self._pending.clear()

    def read(self) -> Iterator[bytes]:
        reread = (self._reread_offsets, self._reread_lengths, self._reread_tails)
        with _LineReader(*reread, self._reread_files) as lines:
            for item in self._held:
                yield lines.next() if item is None else item
            if self._file is None:
                return
            self._flush()
            try:
                self._file.flush()
                self._file.seek(0)
            except OSError as err:
                raise TemporaryFileError.of(err) from err
            buffer, start = b"", 0
            for _ in range(self.count - len(self._held)):
                if len(buffer) - start < 4:
                    buffer, start = buffer[start:] + self._read(max(self._chunk, 4)), 0
                if buffer[start : start + 4] == _REREAD_MARK:
                    yield lines.next()
                    start += 4
                    continue
                end = start + 4 + int.from_bytes(buffer[start : start + 4], "little")
                if end > len(buffer):
                    rest = self._read(max(self._chunk, end - len(buffer)))
                    buffer, end, start = buffer[start:] + rest, end - start, 0
                yield buffer[start + 4 : end]
                start = end

    def _read(self, size: int) -> bytes:
        assert self._file is not None
        try:
            return self._file.read(size)
        except OSError as err:  # an I/O error of the disk under $TMPDIR
            raise TemporaryFileError.of(err) from err

    def close(self) -> None:
        self._held.clear()
        if self._file is not None:
            close_temporary_file(self._file)


#: Stands on disk for a line to read back (no item is 4 GiB long).
_REREAD_MARK = b"\xff\xff\xff\xff"
#: Bytes of memory a line to read back is counted as: its place in two lists and two
#: arrays (tails are shared between lines).
_REREAD_COST = 32


class InputChangedError(CorpusCleanError):
    """An input file changed while the run still had to read lines back from it."""


class _LineReader:
    """Reads output lines back from their input files, in order, each file opened once
    and checked, when opened and again once its last line is read, to be the file the
    run read: a change while its lines are read back would go out unseen otherwise."""

    def __init__(
        self,
        offsets: array.array[int],
        lengths: array.array[int],
        tails: list[bytes],
        files: list[tuple[int, str, FileStamp]],
    ) -> None:
        self._offsets, self._lengths, self._tails, self._files = offsets, lengths, tails, files
        self._done = 0  # lines read so far
        self._next_file = 0  # in files
        self._handle: IO[bytes] | None = None
        self._reading: tuple[str, FileStamp] | None = None  # the open file's path and stamp

    def __enter__(self) -> _LineReader:
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
        return handle.read(self._lengths[n]) + self._tails[n]

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
