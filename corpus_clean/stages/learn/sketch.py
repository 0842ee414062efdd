"""What ``fit`` sees of each article: stable hashes of its lines, and of its long lines'
sentences."""

from __future__ import annotations

import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import xxhash

from ..._fast import sketch_texts
from ...options import LearnOptions
from ...record import Record
from .text import FOLD_MAX, MIN_TAIL, TAIL_LINES, TAIL_WINDOW, folded_utf8, sites_of


@dataclass
class Sketch:
    """What ``fit`` needs of a batch of records: per record its site, the stable hash and
    length of each line, and the hashes of its closing sentences (0: none); and the
    *pieces* of its long lines (of ``long_line`` bytes or more), by which copies of an
    article are told from different articles: each sentence's stable hash and length in
    bytes (in C: ``_fast.sketch_texts``; a sentence ends at a stop . ! ?, any closing
    quotes or brackets, then whitespace or a Han character; or at a CJK stop and its
    closers). A copy with a word changed, or with its site's promo appended to its last
    paragraph, keeps all the other sentences of those lines as they were."""

    long_line: int = LearnOptions.long_line
    sites: list[str] = field(default_factory=list)
    line_counts: array.array[int] = field(default_factory=lambda: array.array("I"))
    hashes: array.array[int] = field(default_factory=lambda: array.array("Q"))
    lengths: array.array[int] = field(default_factory=lambda: array.array("I"))
    tails: array.array[int] = field(default_factory=lambda: array.array("Q"))
    #: The hash of the paragraph the closing sentences end (0: none).
    tail_lines: array.array[int] = field(default_factory=lambda: array.array("Q"))
    piece_counts: array.array[int] = field(default_factory=lambda: array.array("I"))
    pieces: array.array[int] = field(default_factory=lambda: array.array("Q"))
    piece_lengths: array.array[int] = field(default_factory=lambda: array.array("I"))

    @classmethod
    def of(cls, records: Iterable[Record], long_line: int = LearnOptions.long_line) -> Sketch:
        """The sketch of the records: their lines folded (``folded_lines``), hashed
        (``line_hashes``), measured in bytes and cut into pieces, and their
        ``last_paragraph``'s closing sentences folded and hashed, in one pass of C over
        each text, since every article is sketched."""
        records = list(records)
        line_counts, hashes, lengths, tails, tail_lines, piece_counts, pieces, piece_lengths = (
            sketch_texts(
                [record.text for record in records],
                FOLD_MAX,
                TAIL_LINES,
                TAIL_WINDOW,
                MIN_TAIL,
                long_line,
                folded_utf8,
                xxhash.xxh3_64_intdigest,
            )
        )
        return cls(
            long_line,
            sites_of(records),
            array.array("I", line_counts),
            array.array("Q", hashes),
            # Bytes measure length alike in every script: a Han character, which says about
            # what an English word says, counts three.
            array.array("I", lengths),
            array.array("Q", tails),
            array.array("Q", tail_lines),
            array.array("I", piece_counts),
            array.array("Q", pieces),
            array.array("I", piece_lengths),
        )
