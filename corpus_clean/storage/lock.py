"""One run at a time: an exclusive (or shared, for readers) ``flock`` on the index file
itself, held from open to close (see ``sqlite``'s docstring for why the file, not a name
beside it)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from . import IndexStoreError


class IndexLock:
    """An exclusive (or, for read-only use, shared) ``flock`` on the index file itself."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        _HELD_LOCKS.add(fd)

    @classmethod
    def acquire(
        cls, index: Path, wait_seconds: float, *, shared: bool, create: bool, optional: bool
    ) -> IndexLock | None:
        """Lock ``index``, waiting up to ``wait_seconds``; if it is still busy, None when
        the lock is ``optional`` (a reader that need not take its turn), else fail."""
        deadline = time.monotonic() + wait_seconds
        while True:
            fd = cls._open(index, shared=shared, create=create)
            try:
                locked = cls._wait(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, deadline)
            except BaseException:
                os.close(fd)
                raise
            if not locked:
                holder = _flock_holder(os.fstat(fd))
                os.close(fd)
                if optional:
                    return None
                by = f" (process {holder})" if holder else ""
                raise IndexStoreError(
                    f"{index} is in use by another corpus-clean run{by}; waited "
                    f"{wait_seconds:g} s for it. Runs on one index must take turns: "
                    "re-run when that one has finished"
                )
            if _same_file(fd, index):
                return cls(fd)
            # A failed first run removed the empty file while we waited for it: the
            # lock is on a file nobody else will open. Open the path afresh.
            os.close(fd)

    @staticmethod
    def _open(index: Path, *, shared: bool, create: bool) -> int:
        # Read-only suffices for flock, and works in a read-only folder; a writer opens
        # for writing, to learn now that it could not commit.
        flags = (os.O_RDONLY if shared else os.O_RDWR) | (os.O_CREAT if create else 0)
        try:
            return os.open(index, flags, 0o644)
        except FileNotFoundError as err:
            if create:
                raise IndexStoreError(
                    f"cannot create the index {index}: its folder must exist"
                ) from err
            raise no_index(index) from err
        except OSError as err:
            need = "be readable" if shared else "be writable, and its folder too"
            raise IndexStoreError(
                f"cannot open the index {index} ({err.strerror}): to "
                f"{'read' if shared else 'change'} it, it must {need}"
            ) from err

    @staticmethod
    def _wait(fd: int, mode: int, deadline: float) -> bool:
        """Take the flock by ``deadline``; False if it is still held by then. The same
        descriptor all along: closing one on the database would drop the POSIX locks
        an SQLite connection of this process holds on it."""
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(0.05, left))

    def release(self) -> None:
        _HELD_LOCKS.discard(self._fd)
        os.close(self._fd)  # closing the last descriptor drops the flock


#: Descriptors holding index locks in this process: a forked child (a pool worker) closes
#: its copies, else it would hold the lock as long as it lives, past its parent's death.
_HELD_LOCKS: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in _HELD_LOCKS:
        os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def _same_file(fd: int, path: Path) -> bool:
    try:
        there = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def _flock_holder(file: os.stat_result) -> int | None:
    """The process holding a flock on ``file``, for the message, from /proc/locks where
    there is one (its lines read ``1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF``)."""
    wanted = f"{os.major(file.st_dev):02x}:{os.minor(file.st_dev):02x}:{file.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == wanted:
            with contextlib.suppress(ValueError):
                return int(fields[4])
    return None


def no_index(path: Path) -> IndexStoreError:
    return IndexStoreError(
        f"no index at {path}: check the path, or start one with "
        f"'corpus-clean run ... --index {path}'"
    )


def has_index_file(path: Path) -> bool:
    """Whether ``path`` holds something; an empty file is what a first run killed before
    its commit leaves behind, and counts as no index."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False
