"""Where the shingle sets of a run wait for verification: a spill store (memory first,
then a temporary file; the one place dedup touches ``io``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..io.spill import MemoryBudget, SpillStore
from .shingles import Shingles


class ShingleStore:
    """Shingle sets of every record seen, in a spill store (held as the batch arrays
    they came in): verification reads the few it needs."""

    def __init__(self, memory: MemoryBudget | None = None) -> None:
        self._sets = SpillStore(memory, prefix="corpus-clean-shingles-")

    def extend(self, shingles: Shingles, offsets: npt.NDArray[np.int64]) -> None:
        """Add the sets ``shingles[offsets[i]:offsets[i+1]]`` of a batch, in order."""
        sets = shingles[offsets[0] : offsets[-1]]
        self._sets.extend_packed(sets, (offsets[1:] - offsets[0]) * sets.itemsize)

    def get(self, i: int) -> Shingles:
        return np.frombuffer(self._sets.get(i), dtype=np.uint32)

    def close(self) -> None:
        self._sets.close()
