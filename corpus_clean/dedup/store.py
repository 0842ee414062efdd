"""Where the shingle sets of a run wait for verification: memory first, then a
temporary file (the one place dedup touches ``io``'s spill machinery)."""

from __future__ import annotations

import array
import bisect
import os
from typing import IO

import numpy as np
import numpy.typing as npt

from ..io import MemoryBudget, TemporaryFileError, close_temporary_file, temporary_file
from .shingles import Shingles


class ShingleStore:
    """Shingle sets of every record seen: verification reads the few it needs.

    The first sets stay in memory as far as the ``memory`` budget goes, as the batch
    arrays they came in; the rest go to a temporary file a few megabytes at a time (see
    ``io.Spool``, which holds records the same way).
    """

    def __init__(self, memory: MemoryBudget | None = None) -> None:
        self._held: list[Shingles] = []
        self._held_from: list[int] = []  # where each held array starts, in shingles
        self._held_size = 0
        self._memory = memory if memory is not None else MemoryBudget()
        self._file: IO[bytes] | None = None
        # Of each set, in shingles (held ones, then the file's): 8 bytes each, not a Python int.
        self._offsets = array.array("q", [0])
        self._pending = bytearray()
        self._flushed = 0

    def extend(self, shingles: Shingles, offsets: npt.NDArray[np.int64]) -> None:
        """Add the sets ``shingles[offsets[i]:offsets[i+1]]`` of a batch, in order: in
        memory while the whole batch fits, else on disk, as is every batch after it."""
        sets = shingles[offsets[0] : offsets[-1]]
        base = self._offsets[-1] - int(offsets[0])
        self._offsets.frombytes((offsets[1:] + base).astype(np.int64).tobytes())
        if self._file is None and self._memory.take(sets.nbytes):
            self._held.append(sets)
            self._held_from.append(self._held_size)
            self._held_size += len(sets)
            return
        if self._file is None:
            self._file = temporary_file("corpus-clean-shingles-")
        self._pending += sets.tobytes()
        if len(self._pending) > 1 << 22:
            self._flush()

    def _flush(self) -> None:
        assert self._file is not None
        try:
            self._file.write(self._pending)
            self._file.flush()
        except OSError as err:
            raise TemporaryFileError.of(err) from err
        self._flushed += len(self._pending)
        self._pending.clear()

    def get(self, i: int) -> Shingles:
        start, end = self._offsets[i], self._offsets[i + 1]
        if start == end:
            return np.zeros(0, dtype=np.uint32)
        if end <= self._held_size:
            k = bisect.bisect_right(self._held_from, start) - 1
            return self._held[k][start - self._held_from[k] : end - self._held_from[k]]
        assert self._file is not None
        size = np.dtype(np.uint32).itemsize
        if (end - self._held_size) * size > self._flushed:
            self._flush()
        try:
            data = os.pread(
                self._file.fileno(), (end - start) * size, (start - self._held_size) * size
            )
        except OSError as err:
            raise TemporaryFileError.of(err) from err
        return np.frombuffer(data, dtype=np.uint32)

    def close(self) -> None:
        self._held.clear()
        if self._file is not None:
            close_temporary_file(self._file)
