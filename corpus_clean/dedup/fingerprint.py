"""Step 1, per shard or batch, in the workers: texts -> ``Fingerprints`` (band keys,
exact-text hashes, shingle sets). Nothing here looks beyond its own batch."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import xxhash

from ..options import DedupOptions
from .minhash import SCHEME, MinHasher
from .shingles import SHINGLE_BITS, U64, ShingleBatch, Shingles, fmix64, shingle_batch

HASHING = f"{SCHEME}/shingle-poly64-fmix-{SHINGLE_BITS}bit"
#: Mixed into containment keys, so that they never meet a band key; and the salts of the
#: keys that stand in for the missing ones of a text with fewer shingles than keys.
_CONTAINMENT_TAG = np.uint64(0xC0 << 40)
_PAD_SALTS = fmix64(np.arange(1 << 20, (1 << 20) + 256, dtype=np.uint64))


@dataclass
class Fingerprints:
    """What deduplication keeps of a batch of texts, computed in a worker process."""

    band_keys: U64  # (texts, bands + containment keys)
    exact: bytes  # a 16-byte hash of each text's word sequence, one after another
    shingles: Shingles  # flat, sorted per text
    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    #: Normalized text of texts too short for a meaningful Jaccard (index -> text).
    short_texts: dict[int, str] = field(default_factory=dict)
    #: Each text's ``date`` field (``--keep earliest`` walks by it), None when unknown.
    dates: list[str | None] | None = None

    def shingles_of(self, i: int) -> Shingles:
        return self.shingles[self.offsets[i] : self.offsets[i + 1]]

    def __len__(self) -> int:
        return len(self.lengths)

    def select(self, rows: Sequence[int]) -> Fingerprints:
        """The fingerprints of texts ``rows`` (in that order), numbered from 0."""
        at = np.asarray(rows, dtype=np.int64)
        sizes = self.offsets[at + 1] - self.offsets[at]
        offsets = np.zeros(len(at) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        gather = np.repeat(self.offsets[at] - offsets[:-1], sizes) + np.arange(offsets[-1])
        short = [(new, self.short_texts.get(old)) for new, old in enumerate(rows)]
        return Fingerprints(
            band_keys=self.band_keys[at],
            exact=b"".join(self.exact[16 * row : 16 * row + 16] for row in rows),
            shingles=self.shingles[gather],
            offsets=offsets,
            lengths=self.lengths[at],
            short_texts={new: text for new, text in short if text is not None},
            dates=None if self.dates is None else [self.dates[row] for row in rows],
        )

    @classmethod
    def joined(cls, first: Fingerprints, second: Fingerprints) -> Fingerprints:
        """The fingerprints of ``first``'s texts, then ``second``'s."""
        n = len(first)
        return cls(
            band_keys=np.vstack((first.band_keys, second.band_keys)),
            exact=first.exact + second.exact,
            shingles=np.concatenate((first.shingles, second.shingles)),
            offsets=np.concatenate((first.offsets, second.offsets[1:] + first.offsets[-1])),
            lengths=np.concatenate((first.lengths, second.lengths)),
            short_texts={**first.short_texts, **{n + i: t for i, t in second.short_texts.items()}},
            dates=None
            if first.dates is None or second.dates is None
            else first.dates + second.dates,
        )


class Fingerprinter:
    """Texts -> Fingerprints. Picklable: the pipeline runs it in worker processes."""

    def __init__(self, options: DedupOptions) -> None:
        self.options = options
        bands, rows = options.bands_rows
        self.minhasher = MinHasher(options.num_perm, options.seed, bands, rows)

    def settings(self) -> dict[str, object]:
        """Everything that must match for two fingerprints to be comparable."""
        bands, rows = self.options.bands_rows
        containment = (
            {"containment_keys": self.options.containment_keys}
            if self.options.containment_keys
            else {}
        )
        return {
            **containment,
            "num_perm": self.options.num_perm,
            "bands": bands,
            "rows": rows,
            "seed": self.options.seed,
            "shingle": "words",
            "shingle_size": self.options.shingles.size,
            "hashing": HASHING,
            "tokenizer_version": self.options.shingles.tokenizer_version,
        }

    def fingerprint(
        self, texts: Sequence[str], dates: Sequence[str | None] | None = None
    ) -> Fingerprints:
        """The fingerprints of a batch of texts (one shard's, or part of it), with each
        text's date when ``--keep earliest`` needs it. Texts are numbered from 0 in the
        batch; ``DuplicateFinder.add`` numbers them in the run."""
        batch = shingle_batch(texts, self.options.shingles.size)
        signatures = self.minhasher.signatures(batch.shingles, batch.offsets)
        short_limit = int(self.options.short_text_shingles / self.options.threshold) + 1
        counts = np.diff(batch.offsets)
        words = batch.words.data.cast("B")  # its slices cost less than numpy's
        bounds = (batch.word_offsets * batch.words.itemsize).tolist()
        band_keys = self.minhasher.band_keys(signatures)
        short = counts < short_limit
        if self.options.containment_keys:
            keys = _containment_keys(batch, band_keys, self.options.containment_keys, short)
            band_keys = np.hstack((band_keys, keys))
        return Fingerprints(
            band_keys=band_keys,
            exact=b"".join(
                xxhash.xxh3_128_digest(words[a:b]) for a, b in itertools.pairwise(bounds)
            ),
            shingles=batch.shingles,
            offsets=batch.offsets,
            lengths=np.array([len(text) for text in texts], dtype=np.int64),
            short_texts={
                i: " ".join(texts[i].lower().split()) for i in np.flatnonzero(short).tolist()
            },
            dates=list(dates) if dates is not None else None,
        )


def _containment_keys(
    batch: ShingleBatch, band_keys: U64, keys: int, short: npt.NDArray[np.bool_]
) -> U64:
    """``(texts, keys)``: each text's ``keys`` smallest shingle hashes (its shingles are
    sorted), as keys of their own. A text with fewer shingles fills the rest with keys
    drawn from its first band key, which meet only a text that shares that band; so
    does a ``short`` text entirely: one of a few shingles is compared by its characters
    (``fuzz.ratio``), which two texts sharing a shingle by chance would often pass.

    A text lying mostly inside another shares with it, with known probability, one of
    the smallest hashes of both (``options.containment_detection``), whatever their
    sizes: what MinHash bands tuned for Jaccard similarity miss.
    """
    starts, ends = batch.offsets[:-1, None], batch.offsets[1:, None]
    at = starts + np.arange(keys)
    present = (at < ends) & ~short[:, None]
    if len(batch.shingles):
        values = batch.shingles[np.minimum(at, len(batch.shingles) - 1)]
    else:
        values = np.zeros(at.shape, np.uint32)
    own = fmix64(values.astype(np.uint64) | _CONTAINMENT_TAG)
    stand_ins = fmix64(band_keys[:, :1] ^ _PAD_SALTS[:keys])
    keyed: U64 = np.where(present, own, stand_ins)
    return keyed
