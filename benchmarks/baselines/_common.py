"""I/O shared by the baseline scripts: same input, same output format as corpus-clean.

Each baseline reads articles.jsonl and writes the records it removes as JSONL objects
``{"id": ..., "duplicate_of": ...}`` (duplicate_of is null where the tool does not say),
so run.py scores every tool the same way.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

NUM_PERM = 128
THRESHOLD = 0.8
NGRAM = 5


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("articles", type=Path, help="articles.jsonl")
    parser.add_argument("removed", type=Path, help="JSONL of removed ids to write")
    return parser.parse_args()


def read_articles(path: Path) -> Iterator[tuple[str, str]]:
    """(id, text) per line, with the standard json module a typical script would use."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            yield record["id"], record["text"]


def word_ngrams(text: str) -> list[str]:
    """Word 5-grams over text.split(), joined by spaces: what a typical script hashes."""
    words = text.split()
    return [" ".join(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)]


def write_removed(path: Path, removed: Iterable[tuple[str, str | None]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for art_id, duplicate_of in removed:
            out.write(json.dumps({"id": art_id, "duplicate_of": duplicate_of}) + "\n")
