"""One frozen options object per stage: defaults and units live here and nowhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

KeepPolicy = Literal["first", "longest"]


@dataclass(frozen=True)
class ReadOptions:
    """How input files and streams become records."""

    #: JSON key holding the text of an input record.
    text_field: str = "text"
    #: Skip malformed JSONL lines (counted, optionally saved) instead of stopping.
    skip_invalid: bool = False


@dataclass(frozen=True)
class SplitOptions:
    """How a raw page is cut into articles.

    The patterns are matched against whole, stripped lines.
    """

    #: The byline line that precedes every article on the page ("通过admin", "通过 admin").
    separator: str = r"通过\s*[A-Za-z0-9_.\-]{1,40}"
    #: Site chrome that may stand before the first article ("首页", "标签归档 <site name>").
    site_header: str = r"首页|标签归档\s*\S.{0,80}"
    #: A date byline under the title of a page without separators ("2022-05-25 0 By").
    byline: str = r"(\d{4}-\d{2}-\d{2})(?:\s+\d+)?\s+By\b.{0,80}"


@dataclass(frozen=True)
class CleanOptions:
    """Which boilerplate rules apply: the built-in file plus any the user adds."""

    rule_files: tuple[Path, ...] = ()
    use_builtin_rules: bool = True


@dataclass(frozen=True)
class LearnOptions:
    """How boilerplate is learned from the input itself (see ``learn.py``).

    Recurrence is counted in different articles: copies of one article (reposts) count once.
    """

    #: A line (or closing sentence) of a site is learned when this many different
    #: articles of the site hold it; then it is removed where both neighbours are
    #: learned too.
    min_pages: int = 2
    #: A line that this many sites hold is learned across the whole input; then it is
    #: removed where a neighbour is learned too.
    min_sites: int = 3
    #: A learned line of a site that borders articles (stands next to a line that is not
    #: learned) on ``min_pages`` articles and this share of those it is on goes wherever
    #: it stands; one that borders ``min_pages`` articles but fewer goes where a
    #: neighbour is learned too.
    anchored_share: float = 0.5
    #: A line learned across sites goes wherever it stands when it stands between two
    #: lines that are not learned on at most this share of its sites (a heading such as
    #: "Conclusion" mostly does: it then goes only beside other boilerplate).
    inside_share: float = 0.5
    #: Lines of at least this many UTF-8 bytes (a Han character counts three) tell which
    #: articles are copies of each other: those that share at least ``copy_share`` of
    #: the larger one's long-line bytes.
    long_line: int = 60
    copy_share: float = 0.5
    #: Long lines on this share of a site's pages (a site of at least
    #: ``ubiquitous_min_pages``) may be chrome: records that share them are copies only
    #: if what else they hold is shared too, or is at most ``small_edit`` of it.
    ubiquitous_share: float = 0.8
    ubiquitous_min_pages: int = 3
    small_edit: float = 0.25
    #: A long line, or a closing sentence, is learned only when this share of the site's
    #: articles hold it (across sites: this many sites): on a few articles that are not
    #: copies it is most often a paragraph of an edited repost.
    long_share: float = 0.1
    long_min_sites: int = 10


@dataclass(frozen=True)
class ShingleOptions:
    """How a text becomes the set of features MinHash sketches.

    Text is lowercased and punctuation folded; words are runs of letters and digits, and
    every character of a script written without spaces (Han, kana, Thai, ...) is a word
    of its own, so Chinese text is shingled by characters.
    """

    #: Words per shingle.
    size: int = 5
    #: Bumped whenever tokenization changes, so persisted indexes can refuse stale data.
    tokenizer_version: int = 1


def lsh_bands(threshold: float, num_perm: int, min_detection: float = 0.95) -> tuple[int, int]:
    """Bands and rows for MinHash LSH that catch >= ``min_detection`` of pairs AT the threshold.

    A pair of Jaccard similarity s shares at least one band with probability
    ``1 - (1 - s**rows) ** bands``. datasketch's own choice balances false positives
    against false negatives and, at num_perm=128 and threshold=0.8, detects only ~40%
    of pairs whose similarity is exactly 0.8. We instead take the most selective
    setting (largest ``rows``, so fewest spurious candidates to verify) that still
    reaches ``min_detection`` at the threshold. For 128 permutations and 0.8 this is
    18 bands of 7 rows: 98.6% detection at 0.8, 13% at 0.5, 0.2% at 0.3.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    best: tuple[int, int] | None = None
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if detection_probability(threshold, bands, rows) >= min_detection:
            best = (bands, rows)
    if best is None:
        raise ValueError(
            f"no band layout of {num_perm} permutations detects {min_detection:.0%} of pairs "
            f"at similarity {threshold}; use a larger --num-perm"
        )
    return best


def detection_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that LSH with ``bands`` x ``rows`` makes a pair of this similarity a
    candidate."""
    return float(1.0 - (1.0 - similarity**rows) ** bands)


@dataclass(frozen=True)
class DedupOptions:
    """Near-duplicate detection settings. Changing any of them changes the output."""

    #: Verified Jaccard similarity at or above which two articles are duplicates.
    threshold: float = 0.8
    num_perm: int = 128
    seed: int = 1
    keep: KeepPolicy = "first"
    shingles: ShingleOptions = field(default_factory=ShingleOptions)
    #: Texts with fewer shingles than this are verified with rapidfuzz on the text
    #: itself: a handful of shingles gives a coarse Jaccard.
    short_text_shingles: int = 20

    @property
    def bands_rows(self) -> tuple[int, int]:
        return lsh_bands(self.threshold, self.num_perm)


def default_jobs() -> int:
    """All the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
