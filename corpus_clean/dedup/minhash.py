"""MinHash signatures and LSH band keys for whole batches of texts at once.

The signatures are datasketch's: the same ``affine32`` permutations, drawn from the
same seed, applied to the same 32-bit inputs give exactly ``datasketch.MinHash``'s
``hashvalues`` (a test checks it), so they can be handed to ``datasketch.LeanMinHash``
or ``MinHashLSH`` (``datasketch_minhashes`` does). Computing them here over a flat array
of every shingle in the batch, in one C loop, costs a few vector instructions per
shingle instead of a Python call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .. import _fast
from ..options import DedupOptions
from .shingles import U64, Shingles, fmix64, shingle_batch

U32 = npt.NDArray[np.uint32]

if TYPE_CHECKING:
    from datasketch import LeanMinHash

#: The permutation scheme of the signatures, as datasketch names it.
SCHEME = "affine32"


@dataclass(frozen=True)
class MinHasher:
    """Signs batches of shingle sets; picklable, so worker processes get their own copy."""

    num_perm: int
    seed: int
    bands: int
    rows: int

    @cached_property
    def permutations(self) -> tuple[U32, U32]:
        """datasketch's affine32 permutations ``h -> a * h + b mod 2**32`` for this seed.

        Drawn exactly as ``datasketch.MinHash(num_perm, seed).permutations`` draws them (a
        test checks it): importing datasketch would cost half a second per process, for
        three lines of numpy.
        """
        generator = np.random.RandomState(self.seed)
        a = generator.randint(0, 1 << 31, self.num_perm, dtype=np.uint32) * np.uint32(2) + 1
        b = generator.randint(0, 1 << 32, self.num_perm, dtype=np.uint32)
        return a.astype(np.uint32), b

    def signatures(self, shingles: Shingles, offsets: npt.NDArray[np.int64]) -> U32:
        """``(texts, num_perm)`` signatures of the sets ``shingles[offsets[i]:offsets[i+1]]``.

        A shingle's 32 bits go through MurmurHash3's 32-bit finalizer (as datasketch
        hashes its input) before the permutations; a text without shingles gets
        datasketch's empty signature (all 0xFFFFFFFF). The loop is in C
        (``_fast.min_hashes``).
        """
        a, b = self.permutations
        signed = _fast.min_hashes(
            np.ascontiguousarray(shingles, dtype=np.uint32),
            np.ascontiguousarray(offsets, dtype=np.int64),
            a,
            b,
        )
        return np.frombuffer(signed, dtype=np.uint32).reshape(len(offsets) - 1, self.num_perm)

    @cached_property
    def _row_weights(self) -> U64:
        return fmix64(np.arange(1, self.rows + 1, dtype=np.uint64))

    @cached_property
    def _band_salts(self) -> U64:
        return fmix64(np.arange(1000, 1000 + self.bands, dtype=np.uint64))

    def band_keys(self, signatures: U32) -> U64:
        """``(texts, bands)`` 64-bit keys: two texts share a key iff a band of rows agrees
        (up to 64-bit hash collisions). The band number is mixed in, so keys of different
        bands never meet in one table."""
        used = signatures[:, : self.bands * self.rows].astype(np.uint64)
        grouped = used.reshape(len(signatures), self.bands, self.rows)
        mixed = (grouped * self._row_weights).sum(axis=2, dtype=np.uint64)
        return fmix64(mixed ^ self._band_salts)


def datasketch_minhashes(
    texts: Iterable[str], options: DedupOptions | None = None
) -> list[LeanMinHash]:
    """Each text's MinHash as a ``datasketch.LeanMinHash``: the very signature
    corpus-clean computes with ``options`` (its defaults when None: ``num_perm``,
    ``seed``, word 5-gram shingles), to use with datasketch's own tools.

    Example::

        from datasketch import MinHashLSH
        from corpus_clean import datasketch_minhashes

        lsh = MinHashLSH(threshold=0.8, num_perm=128)
        for key, minhash in zip(ids, datasketch_minhashes(texts)):
            lsh.insert(key, minhash)
        lsh.query(datasketch_minhashes([other_text])[0])  # the keys of likely copies

    The signature is of corpus-clean's shingle hashes, not of datasketch's own
    ``update(bytes)``: mix these only with signatures this function made with the same
    options. ``jaccard`` between two of them estimates the Jaccard similarity that
    ``dedup`` verifies exactly.
    """
    from datasketch import LeanMinHash  # half a second to import: only when asked

    options = options if options is not None else DedupOptions()
    batch = shingle_batch(list(texts), options.shingles.size)
    bands, rows = options.bands_rows
    hasher = MinHasher(options.num_perm, options.seed, bands, rows)
    signatures = hasher.signatures(batch.shingles, batch.offsets)
    return [
        LeanMinHash(seed=options.seed, hashvalues=signature, scheme=SCHEME)
        for signature in signatures
    ]
