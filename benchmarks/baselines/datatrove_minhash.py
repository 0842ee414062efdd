"""Baseline: datatrove's four-stage MinHash deduplication, run locally and offline.

Stages as in datatrove's own example: signatures, buckets, cluster, filter, with its
default MinhashConfig (word 5-grams of its normalised, spaCy-tokenised English text,
14 buckets x 8 hashes, 64-bit sha1 shingle hashes), on LocalPipelineExecutor. datatrove
parallelises over input files, so the input is first cut into one contiguous shard per
core (inside the timed run, as a user with one big file would have to). Only the removed
documents are written, like the other baselines. Needs datatrove, spacy (a blank English
tokenizer, no model download), orjson, regex and tokenizers; nothing is fetched from the
network.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from _common import parse_args, write_removed

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # make any accidental hub access fail fast

try:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.typeshelper import Languages
except ImportError as exc:
    sys.exit(
        f"datatrove baseline unavailable: {exc}. "
        "Install it with: pip install -r benchmarks/requirements.txt"
    )


def run_stage(pipeline: list[object], logs: Path, tasks: int = 1, workers: int = 1) -> None:
    LocalPipelineExecutor(
        pipeline=pipeline,
        tasks=tasks,
        workers=workers,
        logging_dir=str(logs),
    ).run()


def shard(source: Path, folder: Path, parts: int) -> None:
    """Split a JSONL file into `parts` contiguous files, keeping the document order."""
    lines = source.read_bytes().splitlines(keepends=True)
    folder.mkdir(parents=True)
    step = -(-len(lines) // parts)
    for part in range(parts):
        (folder / f"{part:05d}.jsonl").write_bytes(b"".join(lines[part * step : (part + 1) * step]))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    # datatrove's default xxhash path passes str to xxhash, which xxhash>=4 (the version
    # corpus-clean installs) rejects; its sha1 hash function is the supported alternative.
    config = MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"))
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="datatrove-", dir=args.removed.parent) as tmp:
        work = Path(tmp)
        shard(args.articles, work / "input", cores)

        def reader() -> JsonlReader:
            return JsonlReader(str(work / "input"), id_key="id")

        run_stage(
            [
                reader(),
                MinhashDedupSignature(
                    output_folder=str(work / "sigs"), config=config, language=Languages.english
                ),
            ],
            work / "logs/sigs",
            tasks=cores,
            workers=cores,
        )
        run_stage(
            [
                MinhashDedupBuckets(
                    input_folder=str(work / "sigs"),
                    output_folder=str(work / "buckets"),
                    config=config,
                )
            ],
            work / "logs/buckets",
            tasks=config.num_buckets,
            workers=cores,
        )
        run_stage(
            [
                MinhashDedupCluster(
                    input_folder=str(work / "buckets"),
                    output_folder=str(work / "remove_ids"),
                    config=config,
                )
            ],
            work / "logs/cluster",
        )
        run_stage(
            [
                reader(),
                MinhashDedupFilter(
                    input_folder=str(work / "remove_ids"),
                    exclusion_writer=JsonlWriter(str(work / "removed"), compression=None),
                ),
            ],
            work / "logs/filter",
            tasks=cores,
            workers=cores,
        )
        removed = [
            (json.loads(line)["id"], None)
            for path in sorted((work / "removed").glob("*.jsonl"))
            for line in path.open(encoding="utf-8")
        ]
    write_removed(args.removed, removed)


if __name__ == "__main__":
    main()
