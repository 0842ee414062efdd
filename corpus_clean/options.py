"""One frozen options object per stage: defaults and units live here and nowhere else."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

KeepPolicy = Literal["first", "longest", "earliest"]

#: Bytes of parked data (records and shingle sets waiting for dedup) a run keeps in
#: memory; the rest waits in temporary files.
MEMORY_BUDGET = 768 << 20


@dataclass(frozen=True)
class ReadOptions:
    """How input files and streams become records."""

    #: JSON key holding the text of an input record.
    text_field: str = "text"
    #: Skip malformed JSONL lines (counted, optionally saved) instead of stopping.
    skip_invalid: bool = False
    #: Key of an object that holds the fields corpus-clean adds (``source``, ``date``, a
    #: title it found, dedup annotations), dolma-style; None: at the top level.
    metadata_field: str | None = None


@dataclass(frozen=True)
class SplitOptions:
    """How a raw page is cut into articles.

    The patterns are matched against whole, stripped lines.
    """

    #: The byline line that precedes every article on the page ("通过admin", "通过 admin").
    separator: str = r"通过\s*[A-Za-z0-9_.\-]{1,40}"
    #: A date byline under the title of a page without separators ("2022-05-25 0 By").
    byline: str = r"(\d{4}-\d{2}-\d{2})(?:\s+\d+)?\s+By\b.{0,80}"


@dataclass(frozen=True)
class CleanOptions:
    """Which boilerplate rules apply (the built-in file plus any the user adds), and what
    else cleaning does."""

    rule_files: tuple[Path, ...] = ()
    use_builtin_rules: bool = True
    #: Give a sure glued sentence ("layout.At the meeting") its space back.
    glue_repair: bool = True
    #: Keep, per record, each removed line or tail and its rule (``--explain FILE``).
    explain: bool = False


@dataclass(frozen=True)
class LearnOptions:
    """How boilerplate is learned from the input itself (see ``stages/learn``).

    Recurrence is counted in different articles: copies of one article (reposts) count once.
    """

    #: A line (or closing sentence) of a site is learned when this many different
    #: articles of the site hold it; then it is removed where both neighbours are
    #: learned too.
    min_pages: int = 2
    #: With an index: a line seen on one article only, and on none in the ``forget_runs``
    #: runs that learned since (a comment's timestamp, a related list's headline that
    #: never came back), is dropped from the index within ``forget_runs`` more such runs
    #: (0: kept for ever; runs with ``--no-learn`` and ``index add`` see no line, and
    #: do not count). A menu item recurs the next night; without this, such lines are
    #: most of what an index of real pages holds.
    forget_runs: int = 30
    #: A line that this many sites hold is learned across the whole input; then it is
    #: removed where a neighbour is learned too.
    min_sites: int = 3
    #: A learned line of a site that borders articles (stands next to a line that is not
    #: learned) on ``min_pages`` articles and this share of those it is on goes wherever
    #: it stands; one that borders ``min_pages`` articles but fewer goes where a
    #: neighbour is learned too.
    anchored_share: float = 0.5
    #: ... unless it is on fewer than this share of the site's articles (and on no other
    #: site): a byline or a date line ("By NATE SILVER" on five of seven pages), which
    #: goes only where a neighbour is learned too, and stays between a headline and the
    #: article. Chrome stands on (nearly) every page of a site. A line on fewer than
    #: ``byline_min_share`` of them says too little (a folder of pages of many hosts).
    byline_share: float = 0.9
    byline_min_share: float = 0.1
    #: A line learned across sites goes wherever it stands when it stands between two
    #: lines that are not learned on at most this share of its sites (a heading such as
    #: "Conclusion" mostly does: it then goes only beside other boilerplate). On the
    #: trafilatura pages 0.8 removes 82% of the snippets that must go and recur on 10+
    #: pages, against 65% at 0.5, and loses none that must stay; 1.0 loses two.
    inside_share: float = 0.8
    #: Lines of at least this many UTF-8 bytes (a Han character counts three) tell which
    #: articles are copies of each other: those that share at least ``copy_share`` of
    #: the larger one's long-line bytes, compared sentence by sentence (an edited
    #: sentence, or a site's promo appended to a paragraph, leaves the others shared).
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
    #: A short line (under ``island_line`` UTF-8 bytes) that is not learned, but that
    #: runs of at least ``island_run`` learned lines cut off from every line of prose
    #: (``prose_line`` bytes or more, not learned) on its page, goes too: a headline
    #: of a related list, a date or a tag among the site's chrome. A run of one or two
    #: ("Reply" under each comment) cuts nothing off; a text without prose loses none.
    #: With an index, every line shorter than prose is kept there even seen once (so a
    #: related list's headline on one page a night recurs the next night).
    prose_line: int = 150
    island_line: int = 100
    island_run: int = 10
    #: A learned line of at least ``headline_words`` words (of four letters or more; in
    #: Chinese, pairs of characters) of which at least ``headline_share`` stand in its
    #: page's prose is that article's own headline or lead, listed among the site's
    #: chrome (a "Most read" box): its first occurrence on the page stays. On the
    #: dragnet pages this keeps 42 more content lines and 79 more boilerplate lines
    #: (most of them headlines of other articles on the same subject).
    headline_words: int = 4
    headline_share: float = 0.8
    #: ... and so is one of at least ``address_words`` such words of which
    #: ``headline_share`` stand in the slug of its record's url (the path's segment with
    #: the most words: most sites make an article's address of its headline). On the
    #: dragnet pages, as JSONL records with their url, this keeps 34 more content lines
    #: and 2 more boilerplate lines.
    address_words: int = 2


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


#: Containment LSH is tuned for pairs down to this size ratio (smaller / larger set).
CONTAINMENT_MIN_RATIO = 0.3
#: Set sizes (in shingles) of the larger set over which the worst case is sought.
_CONTAINMENT_SIZES = (20, 100, 1000, 10000)


@functools.cache
def containment_keys(
    containment: float, min_ratio: float = CONTAINMENT_MIN_RATIO, min_detection: float = 0.95
) -> int:
    """How many of its smallest shingle hashes each text is indexed under, so that two
    texts sharing one become a candidate pair for containment, in ``min_detection`` of
    the pairs where one lies ``containment`` inside the other, at any size ratio down to
    ``min_ratio`` (the fewest keys that do, at the worst sizes).

    MinHash LSH tuned for Jaccard similarity finds few such pairs: a 30% excerpt wholly
    inside its source has Jaccard 0.3. LSH Ensemble (datasketch) partitions sets by size
    and gives each pair of partitions a band layout of its own; but a pair 0.9 contained
    at ratio 0.3 has Jaccard 0.26, which 128 permutations catch at 95% only with bands of
    2 rows, 42 or more of them (``lsh_bands(0.26, 128)`` is 64 x 2), each shared by
    chance by pairs of Jaccard s with probability s**2. The K smallest hashes of a text do better:
    they are a sample of its shingles that a contained text shares whatever the sizes
    (see ``containment_detection``). For 0.9 and 0.3 this is 10 keys (95.7% at worst).
    """
    if not 0.0 < containment <= 1.0:
        raise ValueError("containment must be in (0, 1]")
    for keys in range(1, 257):
        if _worst_containment_detection(containment, keys, min_ratio) >= min_detection:
            return keys
    raise ValueError(f"no number of keys detects {min_detection:.0%} at containment {containment}")


def _worst_containment_detection(containment: float, keys: int, min_ratio: float) -> float:
    """The lowest ``containment_detection`` over sizes and ratios from ``min_ratio`` to 1,
    with the smaller set exactly ``containment`` inside the larger."""
    worst = 1.0
    for larger in _CONTAINMENT_SIZES:
        for step in range(8):
            ratio = min_ratio + step * (1.0 - min_ratio) / 7
            smaller = max(1, round(larger * ratio))
            common = math.ceil(containment * smaller)
            worst = min(worst, containment_detection(smaller, larger, common, keys))
    return worst


def containment_detection(smaller: int, larger: int, common: int, keys: int) -> float:
    """Probability that sets of these sizes with ``common`` shingles in common share one
    of the ``keys`` smallest hashes of each (hash order taken as a random permutation).

    They do exactly when the smallest common shingle is among the ``keys`` smallest of
    both: the shingles before it are t of the two sets' own ones, t >= 0 with probability
    falling geometrically, and among them fewer than ``keys`` may be from either set
    (a hypergeometric split).
    """
    only_small, only_large = smaller - common, larger - common
    own = only_small + only_large
    if common <= 0:
        return 0.0
    found, reach = 0.0, 1.0  # reach: probability that the first t shingles are own ones
    for t in range(min(2 * keys - 1, own + 1)):
        first_common_next = reach * common / (own + common - t)
        splits = sum(
            math.comb(only_small, i) * math.comb(only_large, t - i)
            for i in range(max(0, t - keys + 1), min(keys - 1, t) + 1)
        )
        found += first_common_next * splits / math.comb(own, t)
        reach *= (own - t) / (own + common - t)
    return found


@dataclass(frozen=True)
class DedupOptions:
    """Near-duplicate detection settings. Changing any of them changes the output."""

    #: Verified Jaccard similarity at or above which two articles are duplicates.
    threshold: float = 0.8
    num_perm: int = 128
    seed: int = 1
    #: The order records are walked in, the first of similar ones being kept: input
    #: order, the longest text first, or by the ``date`` field (undated last); ties in
    #: input order.
    keep: KeepPolicy = "first"
    shingles: ShingleOptions = field(default_factory=ShingleOptions)
    #: Texts with fewer shingles than this are verified with rapidfuzz on the text
    #: itself: a handful of shingles gives a coarse Jaccard.
    short_text_shingles: int = 20
    #: A text at least this much inside a longer kept one (shared shingles over its own)
    #: is its duplicate, however different their sizes; 0 switches containment off.
    containment: float = 0.9
    #: Write ``cluster_id`` and ``cluster_size`` into kept records too, so that an audit
    #: can join them with the duplicates file.
    cluster_fields: bool = False

    @property
    def bands_rows(self) -> tuple[int, int]:
        return lsh_bands(self.threshold, self.num_perm)

    @property
    def containment_keys(self) -> int:
        """Smallest shingle hashes each text is indexed under; 0 with containment off."""
        return containment_keys(self.containment) if self.containment > 0 else 0


def default_jobs() -> int:
    """All the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
