"""What the fit sees of each article: the sketch made in C is the Python definitions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NoReturn, cast

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from learn_pages import FOLD_CHARS

from corpus_clean._fast import sketch_texts
from corpus_clean.record import Record
from corpus_clean.stages.learn.sketch import Sketch
from corpus_clean.stages.learn.text import (
    FOLD_MAX,
    MIN_TAIL,
    TAIL_LINES,
    TAIL_WINDOW,
    fold,
    last_paragraph,
    paragraphs,
    site_of,
    stable_hash,
)

#: Where a piece of a long line ends (see ``Sketch``), as a regex: C finds it in the
#: line's UTF-8 without decoding it. Group 1 is the piece's end, the match's the next's
#: start.
CLOSERS = "\"')\\]\u201d\u2019\u300d\u300f\uff09"
PIECE_END = re.compile(
    f"([.!?][{CLOSERS}]*)(?:[ \\t\\n\\x0b\\x0c\\r\\x1c-\\x1f]+|(?=[\u3400-\u9fff]))"
    f"|([\u3002\uff01\uff1f][{CLOSERS}]*)[ \\t\\n\\x0b\\x0c\\r\\x1c-\\x1f]*"
)
PIECE_CHARS = f".!?\u3002\uff01\uff1f{CLOSERS} \t\x1f\xa0\u3000\u4e2d\u33ff\u9fff\uffff_ab1"


def reference_pieces(line: str) -> list[str]:
    pieces, start = [], 0
    for end in PIECE_END.finditer(line):
        if end.end() < len(line):
            pieces.append(line[start : end.end(1) if end.group(1) else end.end(2)])
            start = end.end()
    return [*pieces, line[start:]] if line else []


def reference_piece_hash(piece: bytes) -> int:
    """What C hashes a piece by: eight bytes at a time (little-endian), the rest as one word,
    never 0."""
    mult, mask = 0x9E3779B97F4A7C15, (1 << 64) - 1
    h, whole = mult ^ len(piece), len(piece) // 8 * 8
    for i in range(0, whole, 8):
        h = (h ^ int.from_bytes(piece[i : i + 8], "little")) * mult & mask
        h ^= h >> 29
    h ^= int.from_bytes(piece[whole:], "little")
    for shift, factor in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)):
        h = (h ^ h >> shift) * factor & mask
    return (h ^ h >> 33) or 1


def reference_sketch(records: list[Record], long_line: int) -> Sketch:
    """A ``Sketch`` by the Python definitions, record by record."""
    found = Sketch(long_line)
    for record in records:
        lines = paragraphs(record.text)
        folded = [fold(line).encode("utf-8", "surrogatepass") for line in lines]
        hashes = [stable_hash(fold(line)) for line in lines]
        pieces = [
            piece.encode("utf-8", "surrogatepass")
            for line in folded
            if len(line) >= long_line
            for piece in reference_pieces(line.decode("utf-8", "surrogatepass"))
        ]
        at, starts = last_paragraph(lines)
        tails = [stable_hash(fold(lines[at][start:])) for start in starts]
        found.sites.append(site_of(record))
        found.line_counts.append(len(lines))
        found.hashes.extend(hashes)
        found.lengths.extend(map(len, folded))
        found.tails.extend(tails + [0] * (2 - len(tails)))
        found.tail_lines.append(hashes[at] if tails else 0)
        found.piece_counts.append(len(pieces))
        found.pieces.extend(map(reference_piece_hash, pieces))
        found.piece_lengths.extend(map(len, pieces))
    return found


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.text(alphabet=FOLD_CHARS + ".!?\u3002\uff01\u201d\n", max_size=14),
                st.integers(1, 12),
            ),
            max_size=14,
        ),
        max_size=4,
    ),
    st.integers(0, 80),
)
def test_a_sketch_in_c_is_the_python_definitions(
    texts: list[list[tuple[str, int]]], long_line: int
) -> None:
    # Repeats make lines longer than FOLD_MAX (kept as they are) and blank lines.
    records = [
        Record(id=str(i), text="".join(piece * times for piece, times in text), source=f"s/{i}")
        for i, text in enumerate(texts)
    ]
    assert Sketch.of(records, long_line) == reference_sketch(records, long_line)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.text(alphabet=PIECE_CHARS, max_size=30), st.integers(1, 8)), max_size=4),
    st.integers(0, 120),
)
def test_the_pieces_of_long_lines_are_their_sentences_found_in_c(
    lines: list[tuple[str, int]], long_line: int
) -> None:
    # Each text is one line (PIECE_CHARS has no newline); one longer than FOLD_MAX keeps its
    # whitespace as it is.
    records = [
        Record(id=str(i), text=line * times, source="s/x") for i, (line, times) in enumerate(lines)
    ]
    sketch, expected = Sketch.of(records, long_line), reference_sketch(records, long_line)
    assert sketch.piece_lengths == expected.piece_lengths
    assert sketch.piece_counts == expected.piece_counts
    # A piece's hash is that of its bytes alone, wherever it stands.
    assert sketch.pieces == expected.pieces


def test_a_sketch_passes_on_what_its_callables_raise() -> None:
    def refuse(_: object) -> NoReturn:
        raise ValueError("refused")

    limits = (FOLD_MAX, TAIL_LINES, TAIL_WINDOW, MIN_TAIL, 60)
    text = "A line. Two of them.\n\n\u0130stanbul"  # C leaves the capital İ to Python
    with pytest.raises(ValueError, match="refused"):
        sketch_texts([text], *limits, refuse, xxhash.xxh3_64_intdigest)
    with pytest.raises(ValueError, match="refused"):
        sketch_texts([text], *limits, lambda line: line.encode(), refuse)
    with pytest.raises(TypeError, match="fold must return bytes"):
        not_bytes = cast(Callable[[str], bytes], str.upper)
        sketch_texts([text], *limits, not_bytes, xxhash.xxh3_64_intdigest)


#: Urls (at the top, or in a metadata object) and sources the sites of records are told
#: from: a host with and without "www.", urls without a host (the source's folder then),
#: one urlsplit refuses, a url that is not a str.
URLS = [
    "https://www.a.com/1",
    "http://a.com/2",
    "b.org/x",
    "",
    "http://www./",
    "http://[c",
    7,
    None,
]
SOURCES = ["p/1.txt", "p/2.txt", "q/1.txt", "all.jsonl"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(URLS), st.sampled_from(SOURCES), st.booleans()), max_size=12)
)
def test_a_sketch_has_the_site_of_each_record(pages: list[tuple[object, str, bool]]) -> None:
    records = [
        Record(
            id=str(i),
            text="x",
            source=source,
            meta={} if url is None else {"metadata": {"url": url}} if inner else {"url": url},
        )
        for i, (url, source, inner) in enumerate(pages)
    ]
    assert Sketch.of(records).sites == [site_of(record) for record in records]
