"""corpus-clean as one step of a datatrove pipeline, through the JSONL both speak.

datatrove's ``JsonlWriter`` writes one JSON object per document, ``{"text", "id",
"metadata", ...}``, into numbered parts (``00000.jsonl.gz``, ...); corpus-clean reads
such a folder as it is (recursively, in sorted order, ``.gz`` or not), keeps every field
it does not own (``metadata`` included) untouched, and writes the same kind of JSONL,
which datatrove's ``JsonlReader`` reads back (``text`` and ``id`` where it looks for
them, the rest into its metadata). datatrove is not a dependency of corpus-clean: with
it installed, a pipeline looks like this::

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    # 1. datatrove: extract and filter, write parts to stage1/
    LocalPipelineExecutor([WarcReader("crawl/"), ..., JsonlWriter("stage1/")]).run()
    # 2. corpus-clean: clean and deduplicate stage1/ into stage2/
    deduplicate_parts("stage1/", "stage2/")
    # 3. datatrove again: tokenize, ... from stage2/
    LocalPipelineExecutor([JsonlReader("stage2/"), ...]).run()

Run it alone: python examples/datatrove_step.py stage1/ stage2/
"""

from __future__ import annotations

import sys
from pathlib import Path

import corpus_clean


def deduplicate_parts(input_folder: str, output_folder: str, index: str | None = None) -> int:
    """Clean and deduplicate datatrove's parts in ``input_folder`` into one part,
    ``output_folder/00000.jsonl``, the removed documents (with their verdicts) into
    ``OUTPUT_FOLDER-removed.jsonl`` beside the folder; with ``index``,
    also against (and into) the documents accepted by earlier runs. Returns how many
    documents were written."""
    out = Path(output_folder)
    out.mkdir(parents=True, exist_ok=True)
    report = corpus_clean.run(
        [input_folder],
        out / "00000.jsonl",
        duplicates=out.with_name(f"{out.name}-removed.jsonl"),
        # datatrove's documents are articles already: no page splitting
        split=False,
        index=index,
    )
    return report.written


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: datatrove_step.py INPUT_FOLDER OUTPUT_FOLDER [INDEX]", file=sys.stderr)
        return 2
    try:
        written = deduplicate_parts(*argv)
    except corpus_clean.CorpusCleanError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{written:,} documents written to {argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
