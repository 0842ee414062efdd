"""Learning: what recurs across different articles of a site, or across sites."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ...options import LearnOptions
from ...record import Record
from .arrays import distinct_per_pair, max_per_pair, recurrence, site_numbers
from .copies import Pieces, article_marks, cluster_keys, copy_clusters
from .evidence import LINE_ROW, TAIL_ROW, Evidence, KeySets, Prior
from .merge import Merger, merged_with_prior, wanted_of
from .patterns import ANYWHERE, BESIDE, IN_RUN, LEARNED_LINE, LEARNED_TAIL, Learned, Pattern
from .sketch import Sketch


def fit(sketches: Iterable[Sketch], options: LearnOptions) -> Learned:
    """Learn the boilerplate of every site from sketches of all the input's records (in
    input order). Deterministic: only stable hashes and sorted arrays decide."""
    return fit_with(sketches, options, None)[0]


@dataclass
class Learning:
    """Learning as its stage's fit hook (``stages.Fit``): a ``Sketch`` of each batch, then
    what every sketch teaches (``fit_with``), counted with what earlier runs saw
    (``prior``); ``evidence`` is then what the index keeps for the next run."""

    options: LearnOptions
    prior: Prior | None = None
    evidence: Evidence | None = None

    def sketch(self, records: Sequence[Record]) -> Sketch:
        return Sketch.of(records, self.options.long_line)

    def fit(self, sketches: list[Sketch]) -> Learned:
        learned, self.evidence = fit_with(sketches, self.options, self.prior)
        return learned


def fit_with(
    sketches: Iterable[Sketch], options: LearnOptions, prior: Prior | None
) -> tuple[Learned, Evidence | None]:
    """``fit``, counting what earlier runs saw (``prior``, from an index) with what the
    input holds; with a prior, also the merged evidence to keep for the next run."""
    parts = list(sketches)
    sites = [site for part in parts for site in part.sites]
    n = len(sites)
    learned = Learned(
        prose_line=options.prose_line,
        island_line=options.island_line,
        island_run=options.island_run,
        headline_words=options.headline_words,
        headline_share=options.headline_share,
        address_words=options.address_words,
    )
    if n == 0:
        return learned, (Evidence.empty() if prior is not None else None)
    counts = np.concatenate([np.frombuffer(p.line_counts, np.uint32) for p in parts])
    hashes = np.concatenate([np.frombuffer(p.hashes, np.uint64) for p in parts])
    lengths = np.concatenate([np.frombuffer(p.lengths, np.uint32) for p in parts])
    tails = np.concatenate([np.frombuffer(p.tails, np.uint64) for p in parts]).reshape(n, 2)
    tail_lines = np.concatenate([np.frombuffer(p.tail_lines, np.uint64) for p in parts])
    names, site_ids = site_numbers(sites)
    record_of = np.repeat(np.arange(n, dtype=np.int64), counts.astype(np.int64))
    piece_counts = np.concatenate([np.frombuffer(p.piece_counts, np.uint32) for p in parts])
    pieces = Pieces(
        np.concatenate([np.frombuffer(p.pieces, np.uint64) for p in parts]),
        np.concatenate([np.frombuffer(p.piece_lengths, np.uint32) for p in parts]),
        # Four bytes a record number: there are ten sentences for every record.
        np.repeat(np.arange(n, dtype=np.uint32), piece_counts.astype(np.int64)),
    )
    cluster, own_min, travelling, edits = copy_clusters(
        hashes, lengths, record_of, pieces, site_ids, options
    )
    merger = None
    if prior is not None:
        marks = article_marks(pieces, site_ids, edits, options)
        seen = prior.learned_evidence(wanted_of(names, site_ids, hashes, tails, marks))
        merger = Merger(seen, names, cluster_keys(cluster, own_min, hashes, record_of))
        cluster = merger.adopt(site_ids, cluster, marks, options)
    del edits  # not held through the learning of lines, the fit's peak
    site_clusters = distinct_per_pair(site_ids.astype(np.int64), cluster, len(names))
    if merger is not None:
        site_clusters = merger.site_clusters(site_ids, site_clusters)
    _learn_lines(
        learned,
        names,
        site_ids,
        record_of,
        hashes,
        lengths,
        cluster,
        site_clusters,
        options,
        travelling,
        merger,
    )
    record_ids = np.arange(n, dtype=np.int64)
    # The closing sentences of a reposted article's paragraph are the article's too.
    article_end = np.isin(tail_lines, travelling)
    for k in range(2):
        has = (tails[:, k] != 0) & ~article_end
        tail_clusters = cluster[record_ids[has]]
        _learn_tails(
            learned,
            names,
            site_ids[has],
            tails[has, k],
            tail_clusters,
            site_clusters,
            options,
            merger,
            record_ids[has],
        )
    return learned, (merger.evidence() if merger is not None else None)


def _learn_lines(
    learned: Learned,
    names: np.ndarray,
    site_ids: np.ndarray,
    record_of: np.ndarray,
    hashes: np.ndarray,
    lengths: np.ndarray,
    cluster: np.ndarray,
    site_clusters: np.ndarray,
    options: LearnOptions,
    travelling: np.ndarray,
    merger: Merger | None = None,
) -> None:
    """Lines on ``min_pages`` different articles of a site, or ``min_sites`` sites, are
    learned. Where a learned line stands next to a line that is not (the article, say), it
    is *anchored*: a line anchored on ``min_pages`` articles (sites) borders every article
    (a menu's last item, "Share this:") and goes wherever it stands; the others (a
    headline anchored on its own page only, listed among others elsewhere) go only where
    they are not anchored."""
    distinct, rank, times = np.unique(hashes, return_inverse=True, return_counts=True)
    # A line that stands once in the input is learned nowhere: most lines are, and only
    # the others are counted (the positions ``at``; ``[at]`` of a per-line array is
    # theirs). With an index, so are those shorter than prose (``prose_line``: a menu
    # item, a related list's headline on the one page of a site that a nightly scrape
    # holds: on the next night's page it recurs) and those that earlier runs saw. Prose
    # (most often an article's paragraph) is not.
    counted = times[rank] >= min(2, options.min_pages, options.min_sites)
    if merger is not None:
        counted |= lengths < options.prose_line
        counted |= np.isin(hashes, merger.prior.hashes[merger.prior.kinds == LINE_ROW])
    at = np.flatnonzero(counted)
    ranks = (rank[at], len(distinct))  # sorted once for the three
    line_site = site_ids[record_of[at]].astype(np.int64)
    line_cluster = cluster[record_of[at]]
    site, key, pages, site_pair = recurrence(line_site, hashes[at], line_cluster, ranks)
    zeros = np.zeros(len(at), dtype=np.int64)
    _, wide_key, wide_pages, wide_pair = recurrence(zeros, hashes[at], line_cluster, ranks)
    _, _, wide_sites, _ = recurrence(zeros, hashes[at], line_site, ranks)
    pair_length = max_per_pair(site_pair, lengths[at], len(site))
    if merger is not None:
        line_keys = merger.record_keys[record_of[at]]
        pages, found, page_keys = merger.pairs(LINE_ROW, site, key, pages, site_pair, line_keys)
        _, _, prior_anchored, prior_anchored_keys, prior_inside, prior_length = merger.prior_rows(
            found
        )
        pair_length = np.maximum(pair_length, prior_length)
        wide_pages, wide_sites = merger.wide(wide_key, wide_pages, wide_pair, line_keys, line_site)
    # A long line, unlike a menu item, is most often an article's paragraph: recurring
    # on a few articles that are not copies (edited reposts: a typo in every other
    # paragraph), it is still content. It is learned only when a share of the site's
    # articles hold it (a disclaimer, a sidebar's blurb), or across ``long_min_sites``.
    long_line = pair_length >= options.long_line
    needed = np.where(
        long_line,
        np.maximum(options.min_pages, options.long_share * site_clusters[site]),
        options.min_pages,
    )
    # A long line that travels with an article across sites (see copy_clusters) is a
    # reposted article's paragraph: never learned.
    by_site = (pages >= needed) & ~(long_line & np.isin(key, travelling))
    wide_long = max_per_pair(wide_pair, lengths[at], len(wide_key)) >= options.long_line
    wide_needed = np.where(
        wide_long, max(options.min_sites, options.long_min_sites), options.min_sites
    )
    wide = (wide_sites >= wide_needed) & (wide_pages >= wide_needed)
    wide &= ~(wide_long & np.isin(wide_key, travelling))
    learned_line = np.zeros(len(hashes), dtype=bool)
    learned_line[at] = by_site[site_pair] | wide[wide_pair]
    # Beyond either end of a text counts as boilerplate (a related list may end a page).
    same_record = record_of[1:] == record_of[:-1]
    plain_before = np.zeros(len(hashes), dtype=bool)
    plain_before[1:] = same_record & ~learned_line[:-1]
    plain_after = np.zeros(len(hashes), dtype=bool)
    plain_after[:-1] = same_record & ~learned_line[1:]
    anchored = (plain_before | plain_after)[at]
    inside = (plain_before & plain_after)[at]
    heads = np.ones(len(hashes), dtype=bool)
    heads[1:] = ~same_record
    heads = heads[at]
    site_heads = distinct_per_pair(site_pair[heads], line_cluster[heads], len(site))
    wide_heads = distinct_per_pair(wide_pair[heads], line_cluster[heads], len(wide_key))
    site_anchored = distinct_per_pair(site_pair[anchored], line_cluster[anchored], len(site))
    wide_inside = distinct_per_pair(wide_pair[inside], line_site[inside], len(wide_key))
    if merger is not None:
        run_anchored_keys = KeySets.smallest(site_pair[anchored], line_keys[anchored], len(site))
        site_anchored, anchored_keys = merged_with_prior(
            site_anchored, run_anchored_keys, prior_anchored, prior_anchored_keys
        )
        wide_inside = merger.wide_inside(wide_pair[inside], line_site[inside])
        pair_inside = (np.bincount(site_pair[inside], minlength=len(site)) > 0) | (prior_inside > 0)
        # Kept: what recurs on a site or across sites, and every line shorter than prose
        # (counted there next time).
        wide_recurs = wide_pages[np.searchsorted(wide_key, key)] >= 2
        keep = (pages >= 2) | wide_recurs | (pair_length < options.prose_line)
        merger.keep(
            LINE_ROW,
            site[keep],
            key[keep],
            pages[keep],
            page_keys[keep],
            site_anchored[keep],
            anchored_keys[keep],
            pair_inside[keep],
            pair_length[keep],
        )
    # Held by no other site: a byline or a date line may be, a phrase such as "Latest
    # News" (that sites share) is not.
    own_site = wide_sites[np.searchsorted(wide_key, key)] <= 1
    for s, h, p, a, t, o in zip(
        site[by_site].tolist(),
        key[by_site].tolist(),
        pages[by_site].tolist(),
        site_anchored[by_site].tolist(),
        site_heads[by_site].tolist(),
        own_site[by_site].tolist(),
        strict=True,
    ):
        if a >= max(options.min_pages, options.anchored_share * p) and (
            not o
            or p >= options.byline_share * site_clusters[s]
            or p < options.byline_min_share * site_clusters[s]
        ):
            strength = ANYWHERE
        else:  # anchored on its own page only, a headline; on a few, chrome near the text
            strength = BESIDE if a >= options.min_pages else IN_RUN
        lead = 0 < t < options.min_pages
        learned.lines.setdefault(str(names[s]), {})[h] = Pattern(strength, LEARNED_LINE, p, 1, lead)
    if wide.any():
        table = learned.lines.setdefault(None, {})
        for h, p, n, a, t in zip(
            wide_key[wide].tolist(),
            wide_pages[wide].tolist(),
            wide_sites[wide].tolist(),
            wide_inside[wide].tolist(),
            wide_heads[wide].tolist(),
            strict=True,
        ):
            strength = ANYWHERE if a <= options.inside_share * n else BESIDE
            table[h] = Pattern(strength, LEARNED_LINE, p, n, 0 < t < options.min_pages)


def _learn_tails(
    learned: Learned,
    names: np.ndarray,
    site_ids: np.ndarray,
    tails: np.ndarray,
    cluster: np.ndarray,
    site_clusters: np.ndarray,
    options: LearnOptions,
    merger: Merger | None = None,
    records: np.ndarray | None = None,
) -> None:
    """A closing sentence on ``min_pages`` different articles of a site is its promo tail."""
    if not len(tails):
        return
    site, key, pages, pair_of = recurrence(site_ids.astype(np.int64), tails, cluster)
    if merger is not None:
        assert records is not None
        pages, _, keys = merger.pairs(
            TAIL_ROW, site, key, pages, pair_of, merger.record_keys[records]
        )
        keep = pages >= 2
        merger.keep(TAIL_ROW, site[keep], key[keep], pages[keep], keys[keep])
    # As for long lines: a closing sentence of a few edited reposts is not a promo.
    enough = pages >= np.maximum(options.min_pages, options.long_share * site_clusters[site])
    for s, h, p in zip(
        site[enough].tolist(), key[enough].tolist(), pages[enough].tolist(), strict=True
    ):
        table = learned.tails.setdefault(str(names[s]), {})
        table.setdefault(h, Pattern(ANYWHERE, LEARNED_TAIL, p, 1))
