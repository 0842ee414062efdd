"""Why dedup's hot loops are corpus-clean's own: MinHash signatures and LSH buckets of the
same shingle sets, by corpus-clean's vectorised code and by datasketch document by
document, single-threaded, in one process.

    .venv/bin/python benchmarks/signatures.py ARTICLES.jsonl [--limit N] [--repeats R]

Shingling is timed once and apart (both sides start from the same shingle hashes). Then:

* signatures: ``MinHasher.signatures`` over the whole batch (one C loop) against
  datasketch's ``MinHash(scheme="affine32", hashfunc=identity).update_batch`` per
  document, the fastest per-document path it has (no sha1, numpy per document), and its
  ``MinHash.bulk``. The signatures are checked equal, so the work is the same.
* buckets: corpus-clean's band keys and ``candidate_pairs`` over every record against
  datasketch's ``MinHashLSH`` (18 bands x 7 rows, as corpus-clean's default) with an
  ``insert`` per document then a ``query`` per document.

Best of ``--repeats`` wall seconds for each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from corpus_clean.dedup.candidates import candidate_pairs
from corpus_clean.dedup.minhash import SCHEME, MinHasher
from corpus_clean.dedup.shingles import shingle_batch
from corpus_clean.options import DedupOptions

T = TypeVar("T")


def best_of(repeats: int, work: Callable[[], T]) -> tuple[float, T]:
    """The best wall seconds of ``repeats`` runs of ``work``, and what it gave."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("articles", type=Path, help="a JSONL file with a text field")
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with args.articles.open(encoding="utf-8") as lines:
        texts = [json.loads(line)["text"] for line in itertools.islice(lines, args.limit)]
    options = DedupOptions(containment=0)
    bands, rows = options.bands_rows
    hasher = MinHasher(options.num_perm, options.seed, bands, rows)
    shingling, batch = best_of(1, lambda: shingle_batch(texts, options.shingles.size))
    sets = [batch.shingles_of(i) for i in range(len(texts))]
    shingles = int(sum(len(s) for s in sets))
    print(f"{len(texts)} texts, {shingles} shingles; shingling {shingling:.3f} s")

    ours_s, ours = best_of(
        args.repeats,
        lambda: hasher.signatures(batch.shingles, batch.offsets),
    )

    def per_document() -> list[np.ndarray]:
        out = []
        for values in sets:
            minhash = MinHash(options.num_perm, options.seed, scheme=SCHEME, hashfunc=_same)
            minhash.update_batch(values)
            out.append(minhash.hashvalues)
        return out

    theirs_s, theirs = best_of(args.repeats, per_document)
    assert np.array_equal(np.stack(theirs), ours), "not the same signatures"
    bulk_s, _ = best_of(
        args.repeats,
        lambda: MinHash.bulk(
            sets, num_perm=options.num_perm, seed=options.seed, scheme=SCHEME, hashfunc=_same
        ),
    )

    def our_buckets() -> int:
        keys = hasher.band_keys(ours)
        nodes = np.arange(len(texts), dtype=np.int64)
        earlier, _ = candidate_pairs(keys.T, nodes, nodes)
        return len(earlier)

    buckets_s, pairs = best_of(args.repeats, our_buckets)
    leans = [LeanMinHash(seed=options.seed, hashvalues=s, scheme=SCHEME) for s in ours]

    def their_buckets() -> int:
        lsh = MinHashLSH(num_perm=options.num_perm, params=(bands, rows))
        for n, lean in enumerate(leans):
            lsh.insert(n, lean, check_duplication=False)
        return sum(len(lsh.query(lean)) - 1 for lean in leans) // 2

    lsh_s, their_pairs = best_of(args.repeats, their_buckets)
    print(f"{'step':34} {'seconds':>8} {'docs/s':>10}")
    rows_out = [
        ("signatures, corpus-clean (batch)", ours_s),
        ("signatures, datasketch update_batch", theirs_s),
        ("signatures, datasketch bulk", bulk_s),
        (f"buckets, corpus-clean ({pairs} pairs)", buckets_s),
        (f"buckets, datasketch LSH ({their_pairs} pairs)", lsh_s),
    ]
    for name, seconds in rows_out:
        print(f"{name:34} {seconds:8.3f} {len(texts) / seconds:10.0f}")
    print(
        f"corpus-clean: signatures {theirs_s / ours_s:.0f}x datasketch's update_batch and "
        f"{bulk_s / ours_s:.0f}x its bulk; buckets {lsh_s / buckets_s:.0f}x its MinHashLSH"
    )


def _same(value: object) -> object:
    """datasketch's hashfunc: the shingle hashes are 32-bit hashes already."""
    return value


if __name__ == "__main__":
    main()
