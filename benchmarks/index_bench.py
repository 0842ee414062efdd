"""How the persistent dedup index (``--index``) scales: lookup, accept, size, memory.

Builds an index of N synthetic articles through ``IndexStore.accept``, then, in another
process (so that its peak RSS is the index's, not the build's), measures:

* lookup: ``candidates`` for 10,000 new articles in one batch (as dedup asks)
  plus verification of every hit (read the entry's shingles, exact Jaccard), per article;
  and the same one article at a time, for latency;
* accept: adding 10,000 more articles in one transaction;
* ``info()`` (the CLI calls it on every run), file size, and peak RSS.

Fingerprints are random arrays, not texts run through the Fingerprinter: the index sees
only arrays, and the random ones have the sizes that matter. Each article has 18 uint64
band keys (the default settings' bands) and a set of 32-bit shingle hashes whose size is
log-normal around 230 (the synthetic corpus of ``synth.py``: ~1.45 KB per article, clipped
to [20, 3000]). Of the looked-up articles, 10% are near-copies of indexed ones (5% of
shingles replaced, 8 of 18 band keys kept, as MinHash gives at Jaccard ~0.9); the rest are
new. Timings are with the file in the OS page cache (the machine has the memory for it).

Example::

    python benchmarks/index_bench.py --articles 100000 --json index-100k.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from corpus_clean.dedup import Fingerprinter, jaccard
from corpus_clean.dedup.shingles import SHINGLE_BITS
from corpus_clean.options import DedupOptions
from corpus_clean.storage import Accepted
from corpus_clean.storage.sqlite import IndexStore

SETTINGS = Fingerprinter(DedupOptions()).settings()
BANDS = int(str(SETTINGS["bands"]))
MEAN_SHINGLES, SIGMA = 230, 0.45
BUILD_CHUNK = 50_000
NEAR_COPY_SHARE = 0.10
#: Indexed articles kept aside (keys and shingles) to make near-copies of.
SAMPLE = 2_000


def synthetic(rng: np.random.Generator, first: int, n: int) -> list[Accepted]:
    """``n`` articles numbered from ``first``, with band keys and sorted shingle sets."""
    counts = np.clip(rng.lognormal(np.log(MEAN_SHINGLES), SIGMA, n), 20, 3000).astype(np.int64)
    owner = np.repeat(np.arange(n, dtype=np.uint64), counts)
    values = rng.integers(0, 1 << SHINGLE_BITS, len(owner), dtype=np.uint64)
    packed = np.sort((owner << np.uint64(SHINGLE_BITS)) | values)  # sorted per article
    packed = packed[np.concatenate(([True], packed[1:] != packed[:-1]))]
    offsets = np.searchsorted(packed >> np.uint64(SHINGLE_BITS), np.arange(n + 1))
    shingles = (packed & np.uint64((1 << SHINGLE_BITS) - 1)).astype(np.uint32)
    keys = rng.integers(0, 1 << 64, (n, BANDS), dtype=np.uint64)
    page = [f"scrape/2024-06-01/page_{(first + i) // 4:07d}.txt" for i in range(n)]
    return [
        Accepted(
            id=f"{page[i]}#{(first + i) % 4 + 1}",
            title=f"Synthetic article {first + i} on a subject of some public interest",
            source=page[i],
            band_keys=keys[i],
            shingles=shingles[offsets[i] : offsets[i + 1]],
        )
        for i in range(n)
    ]


def near_copy(rng: np.random.Generator, keys: np.ndarray, shingles: np.ndarray) -> tuple[Any, Any]:
    """Keys and shingles of a light edit of an article: Jaccard ~0.9."""
    new_keys = keys.copy()
    changed = rng.choice(BANDS, BANDS - 8, replace=False)
    new_keys[changed] = rng.integers(0, 1 << 64, len(changed), dtype=np.uint64)
    keep = rng.random(len(shingles)) >= 0.05
    extra = rng.integers(0, 1 << SHINGLE_BITS, int((~keep).sum()), dtype=np.uint64)
    edited = np.sort(np.concatenate((shingles[keep], extra)))
    return new_keys, edited[np.concatenate(([True], edited[1:] != edited[:-1]))]


def build(path: Path, articles: int, seed: int) -> dict[str, Any]:
    """Fill a new index with ``articles`` synthetic articles; keep a sample aside."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    sample_keys, sample_shingles = [], []
    with IndexStore.open(path, SETTINGS) as store:
        for first in range(0, articles, BUILD_CHUNK):
            kept = synthetic(rng, first, min(BUILD_CHUNK, articles - first))
            for article in kept[: max(1, SAMPLE * len(kept) // articles)]:
                # Copies: a view would keep the whole chunk's arrays alive.
                sample_keys.append(article.band_keys.copy())
                sample_shingles.append(article.shingles.copy())
            store.accept(kept, run_label=f"build-{first // BUILD_CHUNK}")
            print(f"  built {first + len(kept):,} articles, {time.perf_counter() - started:.0f} s")
    lengths = np.array([len(s) for s in sample_shingles])
    np.savez(
        f"{path}.sample.npz",
        keys=np.stack(sample_keys),
        shingles=np.concatenate(sample_shingles),
        offsets=np.concatenate(([0], np.cumsum(lengths))),
    )
    return {
        "build_seconds": round(time.perf_counter() - started, 1),
        "build_peak_rss_mb": round(peak_rss_mb(), 1),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def verify_hits(store: IndexStore, shingles: np.ndarray, entries: list[int]) -> int:
    """What dedup's verify step does with the index's candidates: read each set, exact Jaccard."""
    return sum(jaccard(shingles, store.shingles(entry)) >= 0.8 for entry in entries)


def measure(path: Path, queries: int, accept: int, seed: int, verify: bool) -> dict[str, Any]:
    """Runs in a fresh process: lookups, an accept, info, optionally verify."""
    rng = np.random.default_rng(seed + 1)
    sample = np.load(f"{path}.sample.npz")
    copies = int(queries * NEAR_COPY_SHARE)
    fresh = synthetic(rng, 10**9, queries - copies)
    keys = [article.band_keys for article in fresh]
    sets = [article.shingles for article in fresh]
    for i in rng.choice(len(sample["keys"]), copies, replace=True):
        start, end = sample["offsets"][i], sample["offsets"][i + 1]
        k, s = near_copy(rng, sample["keys"][i], sample["shingles"][start:end])
        keys.append(k)
        sets.append(s)
    batch = np.stack(keys)
    new = synthetic(rng, 2 * 10**9, accept)
    del sample
    # Everything above is the benchmark's own; what the peak RSS gains below is the index's.
    out: dict[str, Any] = {"peak_rss_mb_before_opening": round(peak_rss_mb(), 1)}
    with IndexStore.open(path, SETTINGS) as store:
        started = time.perf_counter()
        found = store.candidates(batch)
        looked_up = time.perf_counter()
        hits = sum(verify_hits(store, s, e) for s, e in zip(sets, found, strict=True))
        done = time.perf_counter()
        out["lookup_batch_us_per_article"] = round((done - started) / queries * 1e6, 1)
        out["of_which_candidates_us"] = round((looked_up - started) / queries * 1e6, 1)
        out["candidates_per_article"] = round(sum(map(len, found)) / queries, 3)
        out["near_copies_found"] = f"{hits}/{copies}"

        single = []
        for row, s in zip(batch[:1000], sets[:1000], strict=True):
            started = time.perf_counter()
            verify_hits(store, s, store.candidates(row[None, :])[0])
            single.append(time.perf_counter() - started)
        out["lookup_single_us_median"] = round(statistics.median(single) * 1e6, 1)
        out["lookup_single_us_p99"] = round(float(np.percentile(single, 99)) * 1e6, 1)
        out["peak_rss_mb_after_lookups"] = round(peak_rss_mb(), 1)

        started = time.perf_counter()
        info = store.info()
        out["info_ms"] = round((time.perf_counter() - started) * 1e3, 1)
        out["file_mb_before_accept"] = round(info["file_bytes"] / 1e6, 1)

        started = time.perf_counter()
        added = store.accept(new, run_label="bench-accept")
        out["accept_seconds"] = round(time.perf_counter() - started, 2)
        assert added == accept, (added, accept)
        out["peak_rss_mb_after_accept"] = round(peak_rss_mb(), 1)
        out["articles_after"] = store.info()["articles"]
        out["file_mb_after_accept"] = round(path.stat().st_size / 1e6, 1)
        if verify:
            started = time.perf_counter()
            problems = store.verify()
            out["verify_seconds"] = round(time.perf_counter() - started, 1)
            out["verify_problems"] = len(problems)
            out["peak_rss_mb_after_verify"] = round(peak_rss_mb(), 1)
    return out


def _call(function: Callable[..., dict[str, Any]], args: tuple[Any, ...], queue: Any) -> None:
    queue.put(function(*args))


def in_child(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``function(*args)`` in a fresh process. Linux hands a parent's peak RSS down to its
    children, so both phases run in children of this small parent: each one's figure is
    then its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_call, args=(function, args, queue))
    child.start()
    result: dict[str, Any] = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1_000_000, help="indexed articles")
    parser.add_argument("--queries", type=int, default=10_000, help="articles looked up")
    parser.add_argument("--accept", type=int, default=10_000, help="articles then added")
    parser.add_argument("--dir", type=Path, help="where to build the index (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=Path("index_bench.json"))
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--verify", action="store_true", help="also time IndexStore.verify()")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "index.db"
        print(f"building an index of {args.articles:,} synthetic articles in {path}")
        results: dict[str, Any] = {
            "articles": args.articles,
            "queries": args.queries,
            "accepted": args.accept,
        }
        results.update(in_child(build, path, args.articles, args.seed))
        results.update(in_child(measure, path, args.queries, args.accept, args.seed, args.verify))
    results["cpus"] = os.cpu_count()
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
