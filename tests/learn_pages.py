"""Pages, sites and records the learned-boilerplate tests build (tests/stages/test_learn*.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from hypothesis import strategies as st

from corpus_clean.cli import cli
from corpus_clean.options import LearnOptions
from corpus_clean.record import Record
from corpus_clean.stages.learn.evidence import (
    EVIDENCE_KEYS,
    KeySets,
)
from corpus_clean.stages.learn.fit import fit
from corpus_clean.stages.learn.patterns import Learned
from corpus_clean.stages.learn.sketch import Sketch

WORDS = (
    "river",
    "council",
    "market",
    "school",
    "bridge",
    "harvest",
    "winter",
    "station",
    "doctor",
    "budget",
    "village",
    "museum",
    "engine",
    "forest",
    "theatre",
    "planet",
    "garden",
    "island",
    "report",
    "summer",
    "railway",
    "festival",
)

MENU = ["Home", "World", "Sports", "About us"]
FOOTER = ["Subscribe to our newsletter", "© Example News. All rights reserved."]


def sentence(rnd: random.Random, words: int = 14) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(words)).capitalize() + "."


def paragraph(rnd: random.Random) -> str:
    return " ".join(sentence(rnd) for _ in range(3))


def headline(i: int) -> str:
    return f"Story number {i} about the {WORDS[i % len(WORDS)]}"


def page_lines(i: int, related: list[int], rnd: random.Random) -> list[str]:
    body = [paragraph(rnd) for _ in range(3)]
    links = ["Related stories", *(headline(j) for j in related)]
    return [*MENU, headline(i), *body, *links, *FOOTER]


def record(site: str, n: int, lines: list[str], **meta: str) -> Record:
    source = f"{site}/{n}.txt"
    return Record(id=source, text="\n\n".join(lines), source=source, meta=meta)


def learned_from(records: list[Record], **options: int) -> Learned:
    return fit([Sketch.of(records)], LearnOptions(**options))


def lines_of(record: Record) -> list[str]:
    return record.text.split("\n\n")


POEM = [
    "Winter at the station",
    "The last train is late again",
    "snow on the railway bridge",
    "a doctor reads the budget",
    "and the village sleeps",
]


#: Short articles: three to eight distinct lines of a few words, none of them long.
SHORT_ARTICLES = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=2, max_size=5).map(" ".join),
    min_size=3,
    max_size=8,
    unique=True,
)


#: Cluster keys as runs make them, spread over 64 bits, few enough that rows share some.
KEYS = st.integers(0, 80).map(lambda k: k << 57 | 12345)
KEY_ROWS = st.lists(st.sets(KEYS, max_size=EVIDENCE_KEYS), min_size=1, max_size=6)


def key_sets(rows: list[set[int]]) -> KeySets:
    """As the index stores them: each row's keys, the smallest first."""
    blobs = [np.array(sorted(row), dtype="<u8").tobytes() for row in rows]
    return KeySets.of_blobs(blobs)


def key_lists(keys: KeySets) -> list[list[int]]:
    return [np.frombuffer(blob, dtype="<u8").tolist() for blob in keys.blobs()]


#: Characters where C's folding and Python's ``fold`` could part: ASCII whitespace that
#: str.split() knows (\x1c-\x1f too), other whitespace (U+2000 NFC makes U+2002),
#: capitals whose casefold is longer, combining marks (NFC; U+302A is one among the CJK
#: punctuation), Han, the CJK and fullwidth punctuation C folds, a fullwidth capital it
#: leaves to Python, a lone surrogate.
FOLD_CHARS = (
    "aZ \t\x0b\x0c\r\x1c\x1f\n.\xa0\u3000\x85\u0130\u00dfe\u0301\u4e2d"
    "\u2000\u3002\u3001\u302a\u201c\u2026\uff0c\uff1f\uff21\u9fff\u3400\ud800"
)


def invoke(*args: str, input: bytes | None = None) -> bytes:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def texts(output: bytes) -> list[str]:
    return [json.loads(line)["text"] for line in output.splitlines()]


def write_night(folder: Path, first: int, pages: int) -> None:
    """One night's scrape of a site: its pages ``first`` .. ``first + pages - 1`` in
    ``folder`` (the same folder every night, so the site is the same)."""
    rnd = random.Random(first)
    for old in folder.glob("*.txt"):
        old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + pages):
        lines = page_lines(i, [i + 1], rnd)
        (folder / f"{i:03d}.txt").write_text("\n".join(lines) + "\n", "utf-8")
