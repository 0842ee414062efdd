"""Output files: opened before a run reads anything, published together at its end.

A regular file, or a path not there yet, is written as a temporary file beside it and
renamed over it when the run has succeeded, so a failed or interrupted run never leaves
half a file. A symlink's target is what gets replaced (the link stays a link). What
cannot be replaced, a character device or a FIFO (``/dev/null``, a named pipe,
``/dev/stdout``, ``/dev/fd/N``), is written straight through, as GNU ``sort -o`` does.

A name ending in ``.gz``, ``.zst`` or ``.parquet`` is written in that format (see
``formats``), as the records come: the encoder wraps the temporary file and is finished
before the file is synced, so what is published is always a whole file. A
``BlockWriter`` gathers the lines into big writes, made from a thread of its own.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import stat
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from ..errors import CorpusCleanError
from ..formats import FormatError, ParquetEncoder, encoder_for, is_parquet, require_pyarrow
from ..signals import interrupts_held
from .spill import alive

STDOUT = "-"

#: Paths that name a descriptor of this process: written straight through, whatever
#: the descriptor is (a pipe, a terminal, a file the shell opened).
_DESCRIPTOR_ALIAS = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/(self|\d+)/fd/\d+")


class OutputPathError(CorpusCleanError):
    """An output path that cannot be one: a folder, a path named twice, a closed stdout."""


def check_targets(named: dict[str, str | None]) -> None:
    """Refuse two options naming one file (the one renamed last would silently win),
    compared with symlinks resolved and, for files there, by identity. ``named`` maps
    option names to paths (None: not given; ``-``: stdout)."""
    given = [(option, path) for option, path in named.items() if path is not None]
    for i, (option, path) in enumerate(given):
        for other, other_path in given[:i]:
            if _same_target(path, other_path):
                shown = "standard output" if path == STDOUT else path
                raise OutputPathError(
                    f"{other} and {option} both name {shown}: give each its own file"
                )


def _same_target(a: str, b: str) -> bool:
    if STDOUT in (a, b):
        return a == b
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is not there yet
        return False


def check_output(path: str) -> None:
    """Refuse an output path that cannot be written, before the run starts: a folder, a
    folder that is not there or takes no new files; Parquet without pyarrow."""
    if is_parquet(path):
        try:
            require_pyarrow()
        except FormatError as err:
            raise OutputPathError(f"{path}: {err}") from None
    if path == STDOUT or _written_in_place(path):
        return
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise OutputPathError(f"{path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{path}: cannot create files in {folder}; pick a writable folder")


def _written_in_place(path: str) -> bool:
    """Whether ``path`` is written straight through (a descriptor of this process, a
    character device, a FIFO) rather than replaced (a regular file, or nothing yet);
    refuses what can be neither."""
    if _DESCRIPTOR_ALIAS.fullmatch(os.path.abspath(path)):
        return True
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:  # nothing there yet, or a symlink to nothing yet
        return False
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return True
    if stat.S_ISDIR(mode):
        raise OutputPathError(f"{path}: is a folder; name a file to write")
    if not stat.S_ISREG(mode):  # a block device, a socket
        raise OutputPathError(
            f"{path}: not a regular file, character device or FIFO; name a file to write"
        )
    return False


@dataclass
class _Sink:
    """One output: a stream to write, and how it is published or thrown away."""

    path: str  # as the user gave it
    raw: IO[bytes]  # the file itself
    owned: bool = True  # opened here, so closed here (stdout is not)
    tmp: str | None = None  # None: written in place (stdout, a device, a FIFO)
    final: str | None = None  # where tmp is renamed to: the path, its symlinks resolved
    #: What the run writes to: the format's encoder around ``raw`` (None: ``raw``).
    encoder: IO[bytes] | None = None

    @property
    def stream(self) -> IO[bytes]:
        return self.encoder if self.encoder is not None else self.raw

    def finish(self) -> None:
        """Everything written out and on disk (only then may anything be renamed)."""
        with _naming(self.path):  # a full disk may show only now, as the last writes go out
            if self.encoder is not None:
                self.encoder.close()  # the last block and the format's end; raw stays open
            self.raw.flush()
            if self.tmp is not None:
                os.fsync(self.raw.fileno())
            if self.owned:
                self.raw.close()

    def discard(self) -> None:
        if self.owned:
            with contextlib.suppress(OSError):  # what it still buffers is thrown away anyway
                self.raw.close()
        # The encoder is left as it is: finishing it could wait on a stalled FIFO, or
        # race the writer thread; with raw closed, it can write nowhere.
        if isinstance(self.encoder, ParquetEncoder):
            self.encoder.abandon()
        if self.tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)


class Outputs:
    """The output files of one run (a sink set): ``open`` each before the run reads
    anything, write, then ``publish`` them all at once. Leaving the block without
    publishing throws the temporary files away.

    ``publish`` first writes out and syncs every file, then renames them one after
    another with interrupts held back, so that they come out together; should an error
    still land between two renames, ``published`` names the files that are out.
    """

    def __init__(self) -> None:
        self._sinks: list[_Sink] = []
        #: The paths published so far, in the order given.
        self.published: list[str] = []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *_: object) -> None:
        for sink in self._sinks:
            if sink.path not in self.published:
                sink.discard()

    @property
    def unpublished(self) -> list[str]:
        return [sink.path for sink in self._sinks if sink.path not in self.published]

    def open(self, path: str | None, *, by_name: bool = True) -> IO[bytes]:
        """A binary stream of JSONL for ``path`` (None or ``-``: stdout), written in the
        format the name says unless ``by_name`` is False (a report is JSON whatever its
        name)."""
        if path is None or path == STDOUT:
            if sys.stdout is None:
                raise OutputPathError(
                    "cannot write to standard output: it is closed; redirect it to a file or a pipe"
                )
            sink = _Sink(STDOUT, sys.stdout.buffer, owned=False)
        elif _written_in_place(path):
            with _naming(path):
                sink = _Sink(path, open(path, "wb"))  # noqa: SIM115 (closed by finish/discard)
        else:
            sink = _open_replacement(path)
        self._sinks.append(sink)
        if by_name and sink.path != STDOUT:
            try:
                sink.encoder = encoder_for(sink.path, sink.raw)
            except BaseException:
                self._sinks.remove(sink)
                sink.discard()
                raise
        return sink.stream

    def publish(self) -> None:
        for sink in self._sinks:
            sink.finish()
        with interrupts_held():
            for sink in self._sinks:
                if sink.tmp is not None:
                    assert sink.final is not None
                    with _naming(sink.path):
                        os.replace(sink.tmp, sink.final)
                self.published.append(sink.path)


def _open_replacement(path: str) -> _Sink:
    """A temporary file beside the file (symlinks resolved) that it will replace."""
    final = os.path.realpath(path)
    folder, name = os.path.split(final)
    _remove_stale_temporaries(folder, name)
    tmp = os.path.join(folder, f".{name}.corpus-clean-{os.getpid()}.tmp")
    with _naming(path):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with _naming(path):
            _take_over_from(final, fd)
        return _Sink(path, os.fdopen(fd, "wb"), tmp=tmp, final=final)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise


def _take_over_from(final: str, fd: int) -> None:
    """Give the new file the mode (and, where allowed, the owner) of the file it replaces,
    or the mode an ordinary open() gives a new file."""
    try:
        info = os.stat(final)
    except FileNotFoundError:
        umask = os.umask(0)  # read by setting it, then putting it back
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        return
    if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.fchown(fd, info.st_uid, info.st_gid)
    os.fchmod(fd, stat.S_IMODE(info.st_mode))


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Remove the temporary files of ``name`` that runs killed outright (kill -9, a lost
    machine) left behind: those whose process is gone."""
    pattern = re.compile(rf"\.{re.escape(name)}\.corpus-clean-(\d+)\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            found = pattern.fullmatch(entry.name)
            pid = int(found.group(1)) if found else 0
            # This process's own is stale too: it is about to write that very name.
            if found and (pid == os.getpid() or not alive(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


@contextlib.contextmanager
def atomic_output(path: str | None) -> Iterator[IO[bytes]]:
    """One output on its own (of any name: written as it is), published if the block
    finishes without error."""
    with Outputs() as outputs:
        stream = outputs.open(path, by_name=False)
        yield stream
        outputs.publish()


def write_text(path: str | None, text: str) -> None:
    """Write a small text file (a report) atomically; None or ``-``: stdout."""
    with atomic_output(path) as out:
        out.write(text.encode("utf-8"))


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """An OSError inside names ``path``, the file the user asked for, rather than our
    temporary file or nothing at all."""
    try:
        yield
    except OSError as err:
        raise OSError(err.errno, err.strerror, path) from err


class BlockWriter:
    """Gathers a stream's small writes into blocks, and writes the blocks from a thread
    of its own: a line at a time through an 8 KB buffer costs a system call every few
    lines, and once the kernel holds as much unwritten data as it allows, every write
    waits for the disk while the lines to come could be in the making.

    Use it as a context manager: leaving the block normally writes out what is left and
    waits for it. An error in writing (a full disk, a closed pipe) is raised by the next
    ``write`` or on leaving; leaving on an error drops what is not yet written.
    """

    def __init__(self, stream: IO[bytes], size: int = 1 << 20, depth: int = 4) -> None:
        self._stream = stream
        self._size = size
        self._pending = bytearray()
        self._blocks: queue.Queue[bytearray | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._dropped = False
        self._thread = threading.Thread(target=self._drain, name="corpus-clean-writer", daemon=True)
        self._thread.start()

    def __enter__(self) -> BlockWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self._drop()
            return
        if self._pending:
            self._hand_over()
        self._blocks.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= self._size:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._error is not None:
            raise self._error
        self._blocks.put(self._pending)
        self._pending = bytearray()

    def _drain(self) -> None:
        while (block := self._blocks.get()) is not None:
            if self._error is None and not self._dropped:
                try:
                    write_all(self._stream, block)
                except BaseException as err:  # handed to the writing thread
                    self._error = err

    def _drop(self) -> None:
        """Stop without waiting: the thread may be stuck writing to a stalled pipe."""
        self._dropped = True
        with contextlib.suppress(queue.Empty):
            while True:
                self._blocks.get_nowait()
        self._blocks.put(None)


def write_all(stream: IO[bytes], data: bytes | bytearray) -> None:
    """Write all of ``data``: a big write to a pipe whose reader has gone can come back
    short without an error (``BrokenPipeError`` comes with the next write)."""
    view = memoryview(data)
    while view:
        view = view[stream.write(view) :]
