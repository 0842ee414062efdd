"""Which articles are copies of one another (reposts never count as recurrence)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...options import LearnOptions
from .arrays import NO_KEY, components, distinct_per_pair, group_sizes, mix64, once_per_record
from .evidence import EDIT_MARK_LINES, MARKS, KeySets


def cluster_keys(
    cluster: np.ndarray, own_min: np.ndarray, hashes: np.ndarray, record_of: np.ndarray
) -> np.ndarray:
    """A key per record that is the same for every copy of an article in any run: the
    smallest hash of the cluster's own long lines (copies share most of them), else (no
    long line of its own) the sum of the hashes of the cluster's first record's lines."""
    n = len(cluster)
    smallest = np.full(n, NO_KEY, dtype=np.uint64)
    np.minimum.at(smallest, cluster, own_min)
    summed = np.zeros(n, dtype=np.uint64)
    np.add.at(summed, record_of, hashes)
    chosen = np.where(smallest[cluster] != NO_KEY, smallest[cluster], summed[cluster])
    return mix64(chosen)


@dataclass
class RecordMarks:
    """The records' marks (``article_marks``), one after another: each one's record and hash;
    and per record whether its marks are the keys of its lines less one (``by_edits``)."""

    record: np.ndarray
    mark: np.ndarray
    by_edits: np.ndarray


def article_marks(
    pieces: Pieces,
    site_ids: np.ndarray,
    edits: tuple[np.ndarray, np.ndarray],
    options: LearnOptions,
) -> RecordMarks:
    """Per record, its ``MARKS`` smallest hashes of the sentences of its long lines that
    are its own (not on most pages of its site: ``_ubiquitous``). A copy with a sentence
    edited keeps most of them, where the one smallest hash, an article's key in an
    earlier run, changes whenever the edit hits it. A record with none (a short article:
    ``edits`` gives, per line of each, the key of its lines less that one), of up to
    ``EDIT_MARK_LINES`` lines, is marked by those keys: a later copy with one line
    edited holds one of them."""
    n = len(site_ids)
    piece, record, _ = once_per_record(pieces.hashes, pieces.record_of.astype(np.int64))
    own = ~_ubiquitous(site_ids[record].astype(np.int64), piece, site_ids, options)
    sentences = KeySets.smallest(record[own], piece[own], n, MARKS)
    edit_record, masked = edits
    lines = np.bincount(edit_record, minlength=n)
    by_edits = (sentences.counts == 0) & (lines > 0) & (lines <= EDIT_MARK_LINES)
    marked = by_edits[edit_record]
    edit_marks = KeySets.smallest(edit_record[marked], masked[marked], n, EDIT_MARK_LINES)
    records = np.arange(n, dtype=np.int64)
    return RecordMarks(
        np.concatenate(
            [np.repeat(records, sentences.counts), np.repeat(records, edit_marks.counts)]
        ),
        np.concatenate([sentences.flat, edit_marks.flat]),
        by_edits,
    )


@dataclass(frozen=True)
class Pieces:
    """The pieces of every record's long lines (see ``Sketch``): stable hash, length in
    bytes and record of each (``uint32``), in record order."""

    hashes: np.ndarray
    lengths: np.ndarray
    record_of: np.ndarray


def copy_clusters(
    hashes: np.ndarray,
    lengths: np.ndarray,
    record_of: np.ndarray,
    pieces: Pieces,
    site_ids: np.ndarray,
    options: LearnOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A cluster number per record, the smallest hash of its own long lines (not on
    most pages of its site; ``NO_KEY``: none), the long lines that travel with an
    article (sorted; see below), and of the records without long lines of their own,
    per line the record and the key of its lines less that one. Records that share at
    least ``copy_share`` of the larger one's long-line characters, compared sentence by
    sentence (``pieces``), are copies of one article. Only records next to each other in
    a sentence's list of records are compared (no quadratic work).

    Sentences, not whole lines: a copy with a word changed, or under another site's
    promo appended to its last paragraph, shares all the other sentences of those
    paragraphs, where it would share none of their lines.

    Sentences on most pages of a site (``ubiquitous_share``: a sidebar's blurb, a long
    disclaimer, a promo) may be chrome, or an article the site holds on most of its
    pages. Records that share half of their long-line characters are copies, unless both
    have sentences of their own (not on most pages of the site) that they do not share
    and that are more than a small edit (``small_edit`` of what they share): two
    articles under a sidebar bigger than either. A repost must never count twice, so
    when in doubt the records are copies (and some chrome is not learned).

    A copy edited in many places, or above a long list of other articles' leads, may
    share too little to be found a copy, and an article reposted onto fifty pages would
    then count as several. But its long lines travel together: most pairs of records
    next to each other in such a line's list share another long line of their own too,
    which chrome (a promo, a disclaimer, stand-alone on the page) does not. Those lines
    are the article's, and never learned.

    Records without long lines of their own are copies when their lines differ in one
    line only (``_one_line_edits``), which those keys tell.
    """
    n = len(site_ids)
    long = lengths >= options.long_line
    line, record, _ = once_per_record(hashes[long], record_of[long])
    site = site_ids[record].astype(np.int64)
    ubiquitous = _ubiquitous(site, line, site_ids, options)
    own_min = np.full(n, NO_KEY, dtype=np.uint64)
    np.minimum.at(own_min, record[~ubiquitous], line[~ubiquitous])
    travelling = _travelling(line, record, site, ubiquitous, options)
    del line, record, site, ubiquitous  # not held through copy_pairs, the fit's peak
    a, b = copy_pairs(pieces, site_ids, options)
    # Records of the very same lines are copies, long lines or not (a short article).
    mixed = mix64(hashes)
    summed = np.zeros(n, dtype=np.uint64)
    np.add.at(summed, record_of, mixed)
    line_counts = np.bincount(record_of, minlength=n)
    texts = mix64(summed ^ line_counts.astype(np.uint64))
    order = np.argsort(texts, kind="stable")
    same = (texts[order][1:] == texts[order][:-1]) & (line_counts[order][1:] > 0)
    short = own_min[record_of] == NO_KEY
    short_record = record_of[short]
    # Less one line: the same for two records whose lines differ in that line only.
    masked = mix64(
        (summed[short_record] - mixed[short]) ^ line_counts[short_record].astype(np.uint64)
    )
    edited_a, edited_b = _one_line_edits(hashes, record_of, site_ids, short, masked, options)
    a = np.concatenate([a, order[:-1][same], edited_a])
    b = np.concatenate([b, order[1:][same], edited_b])
    return components(n, a, b), own_min, travelling, (short_record, masked)


def _one_line_edits(
    hashes: np.ndarray,
    record_of: np.ndarray,
    site_ids: np.ndarray,
    short: np.ndarray,
    masked: np.ndarray,
    options: LearnOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of records of three lines or more, without long lines of their own
    (``short``: their lines; ``copy_pairs`` cannot tell them apart), whose lines differ
    in one line each (equal ``masked``: the key of a record's lines less one, of each
    line) and that share a line not on most pages of their site: a short article (a
    poem, a list) reposted with a word changed. Pages of chrome under one headline each
    share only the chrome, and are no copies."""
    n = len(site_ids)
    record, line = record_of[short], hashes[short]
    # Only the records in a pair are looked at further (few: most short records are in
    # none), the keys sorted once.
    order = np.lexsort((record, masked))
    order = order[np.bincount(record, minlength=n)[record[order]] >= 3]
    paired = (masked[order][1:] == masked[order][:-1]) & (record[order][1:] != record[order][:-1])
    in_pair = np.zeros(len(order), dtype=bool)
    in_pair[1:] = paired
    in_pair[:-1] |= paired
    order = order[in_pair]
    if not len(order):
        return record[:0], record[:0]
    candidate = np.zeros(n, dtype=bool)
    candidate[record[order]] = True
    # Whether each of their lines is on most pages of its site, counted on every record
    # holding it (found by a search among their lines, not by sorting all lines).
    theirs = candidate[record]
    looked_up = np.unique(line[theirs])
    wanted = looked_up[np.minimum(np.searchsorted(looked_up, hashes), len(looked_up) - 1)]
    wanted = wanted == hashes
    key, holder, _ = once_per_record(hashes[wanted], record_of[wanted])
    chrome = _ubiquitous(site_ids[holder].astype(np.int64), key, site_ids, options)
    chrome_codes = mix64(key[chrome] ^ mix64(holder[chrome].astype(np.uint64)))
    own = np.zeros(len(record), dtype=bool)
    own[theirs] = ~np.isin(
        mix64(line[theirs] ^ mix64(record[theirs].astype(np.uint64))), chrome_codes
    )
    own_counts = np.bincount(record, weights=own, minlength=n)
    order = order[own_counts[record[order]] - own[order] >= 1]
    masked, record = masked[order], record[order]
    pair = (masked[1:] == masked[:-1]) & (record[1:] != record[:-1])
    return record[:-1][pair], record[1:][pair]


def _ubiquitous(
    site: np.ndarray, key: np.ndarray, site_ids: np.ndarray, options: LearnOptions
) -> np.ndarray:
    """Per occurrence (as ``once_per_record`` gives them, ``site`` its record's), whether
    its key stands on most pages of the site (``ubiquitous_share``). Only keys on enough
    records in all are looked at: most stand on one."""
    out = np.zeros(len(key), dtype=bool)
    if not len(key):
        return out
    site_records = np.bincount(site_ids, minlength=int(site_ids.max()) + 1)
    new = np.ones(len(key), dtype=bool)
    new[1:] = key[1:] != key[:-1]
    run = np.cumsum(new) - 1
    needed = max(1, math.ceil(options.ubiquitous_share * options.ubiquitous_min_pages))
    look = np.flatnonzero(np.bincount(run)[run] >= needed)
    at = site[look]
    on_pages = group_sizes(at, key[look])
    out[look] = (site_records[at] >= options.ubiquitous_min_pages) & (
        on_pages >= options.ubiquitous_share * site_records[at]
    )
    return out


def copy_pairs(
    pieces: Pieces, site_ids: np.ndarray, options: LearnOptions
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of records (two arrays) that share enough of their long lines'
    sentences to be copies (see ``copy_clusters``)."""
    n = len(site_ids)
    piece, record, at = once_per_record(pieces.hashes, pieces.record_of)
    size = pieces.lengths[at]
    del at  # one array of every sentence fewer at the fit's peak
    long_chars = np.bincount(record, weights=size, minlength=n)
    # Only pieces on two records or more tell anything (most stand on one).
    repeated = np.zeros(len(piece), dtype=bool)
    repeated[1:] = piece[1:] == piece[:-1]
    repeated[:-1] |= repeated[1:]
    piece = piece[repeated]
    record = record[repeated]
    size = size[repeated]
    ubiquitous = _ubiquitous(site_ids[record].astype(np.int64), piece, site_ids, options)
    own_chars = long_chars - np.bincount(record[ubiquitous], weights=size[ubiquitous], minlength=n)
    next_to = piece[1:] == piece[:-1]
    pairs = record[:-1][next_to].astype(np.int64) * n + record[1:][next_to]
    unique_pairs, which = np.unique(pairs, return_inverse=True)
    shared = np.bincount(which, weights=size[1:][next_to])
    either = (ubiquitous[:-1] | ubiquitous[1:])[next_to]
    shared_own = np.bincount(which, weights=np.where(either, 0, size[1:][next_to]))
    a, b = unique_pairs // n, unique_pairs % n
    largest_own = np.maximum(own_chars[a], own_chars[b])
    smallest_own = np.minimum(own_chars[a], own_chars[b])
    copies = (shared >= options.copy_share * np.maximum(long_chars[a], long_chars[b])) & (
        (smallest_own == 0)
        | (shared_own >= options.copy_share * largest_own)
        | (largest_own <= options.small_edit * (shared - shared_own))
    )
    # A copy under a long list of related articles' leads (or an edited one) holds
    # less than half of the larger's long lines, but most of the smaller's own.
    copies |= (smallest_own > 0) & (shared_own >= options.copy_share * smallest_own)
    return a[copies], b[copies]


def _travelling(
    line: np.ndarray,
    record: np.ndarray,
    site: np.ndarray,
    ubiquitous: np.ndarray,
    options: LearnOptions,
) -> np.ndarray:
    """The long lines on ``long_min_sites`` sites or more that travel with an article
    (see ``copy_clusters``): most pairs of records next to each other in the line's list
    share another long line of their own. Given one position per (line, record), sorted
    by line then record; only such lines are looked at, so this costs little."""
    if len(line) < 2:
        return np.zeros(0, dtype=np.uint64)
    own = ~ubiquitous
    lines, line_of = np.unique(line, return_inverse=True)
    wide = distinct_per_pair(line_of, site, len(lines))[line_of] >= options.long_min_sites
    at = np.flatnonzero(wide & own)
    if len(at) < 2:
        return np.zeros(0, dtype=np.uint64)
    next_to = line[at[1:]] == line[at[:-1]]
    pair_line = line[at[1:]][next_to]
    # Records next to each other in the list of every line they share (an article on
    # fifty sites): each pair is looked at once, not once a line.
    span = np.int64(record.max()) + 1
    both, pair_of = np.unique(
        record[at[:-1]][next_to] * span + record[at[1:]][next_to], return_inverse=True
    )
    a, b = both // span, both % span
    # Each record's own long lines, by record; then each of a's looked up among b's.
    by_record = np.lexsort((line[own], record[own]))
    own_record, own_line = record[own][by_record], line[own][by_record]
    first = np.searchsorted(own_record, a, side="left")
    count = np.searchsorted(own_record, a, side="right") - first
    pair = np.repeat(np.arange(len(a)), count)
    offset = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    candidate = own_line[np.repeat(first, count) + offset]
    known = mix64(own_line ^ mix64(own_record.astype(np.uint64)))
    looked_up = mix64(candidate ^ mix64(b[pair].astype(np.uint64)))
    shared = np.bincount(pair, weights=np.isin(looked_up, known), minlength=len(a))[pair_of]
    groups, group_of = np.unique(pair_line, return_inverse=True)
    with_other = np.bincount(group_of, weights=shared >= 2)
    return groups[with_other >= options.copy_share * np.bincount(group_of)]
