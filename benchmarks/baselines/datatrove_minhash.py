"""Baseline: datatrove's four-stage MinHash deduplication, run locally and offline.

Stages as in datatrove's own example: signatures, buckets, cluster, filter, with its
default MinhashConfig (word 5-grams of its normalised, spaCy-tokenised English text,
14 buckets x 8 hashes, 64-bit sha1 shingle hashes). Every stage runs on LocalPipelineExecutor; the
bucket stage gets one worker per core. Only the removed documents are written, like the
other baselines. Needs datatrove, spacy (blank English tokenizer, no model download) and
orjson; nothing is fetched from the network.
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
        pipeline=pipeline,  # type: ignore[arg-type]
        tasks=tasks,
        workers=workers,
        logging_dir=str(logs),
    ).run()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    # datatrove's default xxhash path passes str to xxhash, which xxhash>=4 (the version
    # corpus-clean installs) rejects; its sha1 hash function is the supported alternative.
    config = MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"))
    source = args.articles.resolve()

    def reader() -> JsonlReader:
        return JsonlReader(str(source.parent), glob_pattern=source.name, id_key="id")

    with tempfile.TemporaryDirectory(prefix="datatrove-", dir=args.removed.parent) as tmp:
        work = Path(tmp)
        run_stage(
            [
                reader(),
                MinhashDedupSignature(
                    output_folder=str(work / "sigs"), config=config, language=Languages.english
                ),
            ],
            work / "logs/sigs",
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
            workers=os.cpu_count() or 1,
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
        )
        removed = [
            (json.loads(line)["id"], None)
            for path in sorted((work / "removed").glob("*.jsonl"))
            for line in path.open(encoding="utf-8")
        ]
    write_removed(args.removed, removed)


if __name__ == "__main__":
    main()
