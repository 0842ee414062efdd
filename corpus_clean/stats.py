"""Counters with a reason: the summary table and the JSON report both read these."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Every counter a stage may add, in one place: the report shows each of them, zero or
#: not, so that a dashboard reading it never meets a missing key (a test checks that
#: every name the package counts is here).
COUNTERS = (
    "pages_read",
    "records_read",
    "bytes_read",
    "special_files_skipped",
    "binary_pages_skipped",
    "articles_split",
    "invalid_utf8_bytes",
    "lone_surrogates_replaced",
    "invalid_lines_skipped",
    "page_headers_dropped",
    "empty_articles_dropped",
    "records_cleaned",
    "glued_sentences_split",
    "candidates_verified",
    "candidates_rejected",
    "duplicates_exact",
    "duplicates_near",
    "duplicates_contained",
    "duplicates_index",
    "extends_indexed",
    "kept",
    "written",
)

#: The kinds of duplicates a run counts (``duplicates_<kind>``).
DUPLICATE_KINDS = ("exact", "near", "contained", "index")

#: The similarity of removed records is counted in bins this wide (1.0 in the last).
SIMILARITY_BIN = 0.05
SIMILARITY_BINS = 20
#: Cluster sizes (a kept record plus the records of the run removed as its duplicates)
#: are counted in these ranges: (label, smallest, largest or None).
CLUSTER_SIZE_RANGES = (("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6-10", 6, 10), ("11+", 11, None))


@dataclass
class Stats:
    """Everything a run counted. Stages add to it; worker processes send theirs back to merge."""

    #: Plain counts by name (see ``COUNTERS``).
    counts: Counter[str] = field(default_factory=Counter)
    #: Boilerplate lines or fragments removed, by rule name.
    removed_by_rule: Counter[str] = field(default_factory=Counter)
    #: With ``--explain``: one entry per record that lost anything, in input order
    #: (what it lost, and by which rule; written as one JSON line each).
    explained: list[dict[str, Any]] = field(default_factory=list)
    #: Kept records that extend an indexed article: {"id": ..., "extends": indexed id}.
    extended: list[dict[str, str]] = field(default_factory=list)
    #: Removals by learned pattern: (kind "line" or "tail", site or None, folded text).
    removed_by_pattern: Counter[tuple[str, str | None, str]] = field(default_factory=Counter)
    #: Removed records by bin of similarity (``similarity_bin``).
    similarity_bins: Counter[int] = field(default_factory=Counter)
    #: Clusters of this run by size (kept records without duplicates are clusters of 1).
    cluster_sizes: Counter[int] = field(default_factory=Counter)
    #: Input records that recur in the index, in input order: {"id", "indexed_id",
    #: "indexed_source", "similarity"} (the source is filled in by whoever holds the index).
    recurring: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def merge(self, other: Stats) -> None:
        self.counts.update(other.counts)
        self.removed_by_rule.update(other.removed_by_rule)
        self.explained.extend(other.explained)
        self.extended.extend(other.extended)
        self.removed_by_pattern.update(other.removed_by_pattern)
        self.similarity_bins.update(other.similarity_bins)
        self.cluster_sizes.update(other.cluster_sizes)
        self.recurring.extend(other.recurring)

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "removed_by_rule": dict(sorted(self.removed_by_rule.items())),
        }


def similarity_bin(similarity: float) -> int:
    """The bin of a similarity: [0, 0.05) is 0, ..., [0.95, 1.0] is 19."""
    return min(int(similarity / SIMILARITY_BIN + 1e-9), SIMILARITY_BINS - 1)
