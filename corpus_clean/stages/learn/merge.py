"""This run's evidence joined with what earlier runs saw (an index's ``Prior``)."""

from __future__ import annotations

import numpy as np

from ...options import LearnOptions
from .arrays import NO_KEY, distinct_per_pair, mix64, recurrence, renumbered
from .copies import RecordMarks
from .evidence import EVIDENCE_KEYS, LINE_ROW, MARK_KEYS, SITE_ROW, Evidence, KeySets, Marks, Wanted


def wanted_of(
    names: np.ndarray,
    site_ids: np.ndarray,
    hashes: np.ndarray,
    tails: np.ndarray,
    marks: RecordMarks,
) -> Wanted:
    """What of an index the records' learning reads (see ``Wanted``)."""

    def site_pairs(site: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        signed = value.view(np.int64)
        order = np.lexsort((signed, site))
        site, signed = site[order], signed[order]
        new = np.ones(len(site), dtype=bool)
        new[1:] = (site[1:] != site[:-1]) | (signed[1:] != signed[:-1])
        return site[new], signed[new]

    every_site = np.arange(len(names), dtype=np.int64)
    mark_site = site_ids[marks.record].astype(np.int64)
    tail_site = np.repeat(site_ids.astype(np.int64), tails.shape[1])
    tail = tails.ravel()
    return Wanted(
        sites=names.tolist(),
        lines=np.unique(hashes.view(np.int64)),
        tails=site_pairs(tail_site[tail != 0], tail[tail != 0]),
        marks=site_pairs(
            np.concatenate([mark_site, every_site]),
            np.concatenate([marks.mark, np.zeros(len(names), dtype=np.uint64)]),
        ),
    )


def merged_with_prior(
    run_count: np.ndarray, run_keys: KeySets, prior_count: np.ndarray, prior_keys: KeySets
) -> tuple[np.ndarray, KeySets]:
    """Clusters seen by this run and earlier ones together, row by row, and their
    smallest keys. Exact while every key of both sides is known (fewer than
    ``EVIDENCE_KEYS``); beyond, estimated from the smallest keys (k minimum values)."""
    row = np.concatenate([run_keys.row_of_keys(), prior_keys.row_of_keys()])
    key = np.concatenate([run_keys.flat, prior_keys.flat])
    both = KeySets.smallest(row, key, len(run_count), 2 * EVIDENCE_KEYS)
    exact = run_count + both.counts - run_keys.counts
    both = both.first(EVIDENCE_KEYS)
    kth = both.kth(EVIDENCE_KEYS - 1).astype(np.float64)
    estimate = np.where(
        kth < float(NO_KEY), (EVIDENCE_KEYS - 1) * 2.0**64 / np.maximum(kth, 1.0), 0
    ).astype(np.int64)
    complete = (run_count < EVIDENCE_KEYS) & (prior_count < EVIDENCE_KEYS)
    beyond = np.maximum(np.maximum(run_count, prior_count), estimate)
    return np.where(complete, exact, beyond), both


def _match(
    run_site: np.ndarray, run_key: np.ndarray, prior_site: np.ndarray, prior_key: np.ndarray
) -> np.ndarray:
    """For each run pair (site, key), the prior row of the same pair, or -1."""
    site = np.concatenate([run_site, prior_site]).astype(np.int64)
    key = np.concatenate([run_key, prior_key]).astype(np.uint64)
    side = np.concatenate([np.zeros(len(run_site), np.int64), np.ones(len(prior_site), np.int64)])
    where = np.concatenate([np.arange(len(run_site)), np.arange(len(prior_site))])
    order = np.lexsort((side, key, site))
    site, key, side, where = site[order], key[order], side[order], where[order]
    same = (site[1:] == site[:-1]) & (key[1:] == key[:-1]) & (side[:-1] == 0) & (side[1:] == 1)
    found = np.full(len(run_site), -1, dtype=np.int64)
    found[where[:-1][same]] = where[1:][same]
    return found


class Merger:
    """Counts what earlier runs saw (an index's ``Evidence``) with what this input holds,
    and gathers the merged evidence of the patterns this input holds to keep it."""

    def __init__(self, prior: Evidence, names: np.ndarray, record_keys: np.ndarray) -> None:
        self.prior = prior
        self.names = names
        self.record_keys = record_keys
        # The prior's sites as site numbers of this input (-1: not in it).
        self.prior_site = renumbered(names, prior.names)[prior.sites]
        self.kept: list[Evidence] = []
        self.marks = Marks.of_rows([])

    def _prior_of(self, kind: int, site: np.ndarray, key: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero((self.prior.kinds == kind) & (self.prior_site >= 0))
        found = _match(site, key, self.prior_site[rows], self.prior.hashes[rows])
        if not len(rows):
            return found
        return np.where(found >= 0, rows[np.maximum(found, 0)], -1)

    def prior_rows(
        self, found: np.ndarray
    ) -> tuple[np.ndarray, KeySets, np.ndarray, KeySets, np.ndarray, np.ndarray]:
        """Per run pair, the prior's pages, keys, anchored, anchored keys, inside, length
        (zero and none where the prior lacks the pair)."""
        has = found >= 0
        at = np.maximum(found, 0)
        p = self.prior
        if not len(p):
            zero = np.zeros(len(found), dtype=np.int64)
            none = KeySets.none(len(found))
            return zero, none, zero, none, zero, zero
        return (
            np.where(has, p.pages[at], 0),
            p.keys.found(found),
            np.where(has, p.anchored[at], 0),
            p.anchored_keys.found(found),
            np.where(has, p.inside[at], 0),
            np.where(has, p.lengths[at], 0),
        )

    def adopt(
        self,
        site_ids: np.ndarray,
        cluster: np.ndarray,
        marks: RecordMarks,
        options: LearnOptions,
    ) -> np.ndarray:
        """Give a copy of an article an earlier run saw that article's key, as copies in
        one run are told (``copy_pairs``), by its marks (``article_marks``): a record holding
        ``copy_share`` of its marks on one article the prior marked is a copy of it,
        unless the marks it holds are the site's chrome (on most of the site's pages, in
        all runs) and it has more marks of its own than a small edit. Its cluster takes
        that article's key; of several, the one whose marks it holds weigh most (a mark
        weighs one over the pages holding it: a sidebar on half the site's pages holds
        marks of many articles), then the one holding the most, then the smallest.
        A short article marked by the keys of its lines less one (``by_edits``) is a copy
        of an article that holds one of them, unless that one is on most of the site's
        pages (the chrome of pages under a headline each). A cluster that is no copy, but
        whose key is that of an article it shares marks with (a sidebar's long line, the
        smallest of both), gets a key of its own. Then every record's marks are kept, so
        that a later run finds copies of this run's articles. Returns the clusters, those
        that are copies of one earlier article joined: they count once, as they did
        then."""
        n = len(cluster)
        record, mark = marks.record, marks.mark
        site = site_ids[record].astype(np.int64)
        prior = self.prior.marks
        # The prior's sites as site numbers of this input (-1: not in it).
        prior_site = renumbered(self.names, prior.names)[prior.sites]
        pair_site, pair_mark, _, pair_of = recurrence(site, mark, cluster[record])
        pair_found = _match(pair_site, pair_mark, prior_site, prior.hashes)

        def prior_holders(found: np.ndarray) -> np.ndarray:
            if not len(prior):
                return np.zeros(len(found), dtype=np.int64)
            return np.where(found >= 0, prior.holders[np.maximum(found, 0)], 0)

        holders = np.bincount(pair_of, minlength=len(pair_site)) + prior_holders(pair_found)
        sites = np.arange(len(self.names), dtype=np.int64)
        site_found = _match(sites, np.zeros(len(sites), np.uint64), prior_site, prior.hashes)
        site_pages = np.bincount(site_ids, minlength=len(sites)) + prior_holders(site_found)
        pages = site_pages[pair_site]
        chrome = (pages >= options.ubiquitous_min_pages) & (
            holders >= options.ubiquitous_share * pages
        )
        found, own = pair_found[pair_of], ~chrome[pair_of]
        held = found >= 0
        joined = np.arange(n)
        if held.any():
            hit = np.repeat(record[held], MARK_KEYS)
            hit_own = np.repeat(own[held], MARK_KEYS)
            # A mark few articles hold tells more of which one a copy is than a sidebar's.
            rarity = np.repeat(1.0 / holders[pair_of[held]], MARK_KEYS)
            key = prior.keys[found[held]].ravel()
            valid = key != NO_KEY
            hit, hit_own, key, rarity = hit[valid], hit_own[valid], key[valid], rarity[valid]
            # Per (record, key): the record's marks the key holds, and of them its own.
            pair, which = np.unique(
                np.stack([hit, key.view(np.int64)]), axis=1, return_inverse=True
            )
            hit, key = pair[0], pair[1].view(np.uint64)
            shared = np.bincount(which)
            shared_own = np.bincount(which, weights=hit_own)
            rare = np.bincount(which, weights=rarity)
            total = np.bincount(record, minlength=n)[hit]
            owned = np.bincount(record[own], minlength=n)[hit]
            copy = (shared >= options.copy_share * total) & (
                (owned == 0)
                | (shared_own >= options.copy_share * owned)
                | (owned - shared_own <= options.small_edit * (shared - shared_own))
            )
            # A short article's lines less one, not on most of the site's pages.
            copy = np.where(marks.by_edits[hit], shared_own >= 1, copy)
            root = cluster[hit]
            # Per cluster, the key its records hold the rarest marks of, then the most.
            order = np.lexsort((key[copy], -shared[copy], -rare[copy], root[copy]))
            copy_root, copy_key = root[copy][order], key[copy][order]
            first = np.ones(len(copy_root), dtype=bool)
            first[1:] = copy_root[1:] != copy_root[:-1]
            taken = np.full(n, NO_KEY, dtype=np.uint64)
            taken[copy_root[first]] = copy_key[first]
            # Clusters that are copies of one earlier article are one article, as then.
            copies = np.flatnonzero(taken != NO_KEY)
            copies = copies[np.lexsort((copies, taken[copies]))]
            head = np.ones(len(copies), dtype=bool)
            head[1:] = taken[copies][1:] != taken[copies][:-1]
            joined[copies] = copies[head][np.cumsum(head) - 1]
            # No copy, but under the key of an article it shares marks with.
            collided = np.zeros(n, dtype=bool)
            collided[root[self.record_keys[hit] == key]] = True
            collided &= taken == NO_KEY
            own_min = np.full(n, NO_KEY, dtype=np.uint64)
            np.minimum.at(own_min, cluster[record[own]], mark[own])
            renamed = collided & (own_min != NO_KEY)
            taken[renamed] = mix64(self.record_keys[renamed] ^ own_min[renamed])
            adopted = taken[cluster]
            self.record_keys = np.where(adopted != NO_KEY, adopted, self.record_keys)
        # Kept: each (site, mark) of this input with the smallest keys holding it, its
        # records' and the prior's, and its holders; and each site's pages (under mark 0).
        group = np.concatenate([pair_of, np.repeat(pair_of[held], MARK_KEYS)])
        keys = np.concatenate([self.record_keys[record], prior.keys[found[held]].ravel()])
        none = np.full((len(sites), MARK_KEYS), NO_KEY, dtype=np.uint64)
        self.marks = Marks(
            self.names,
            np.concatenate([pair_site, sites]),
            np.concatenate([pair_mark, np.zeros(len(sites), dtype=np.uint64)]),
            np.concatenate(
                [KeySets.smallest(group, keys, len(pair_site), MARK_KEYS).dense(MARK_KEYS), none]
            ),
            np.concatenate([holders, site_pages]),
        )
        clusters: np.ndarray = joined[cluster]
        return clusters

    def site_clusters(self, site_ids: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        sites = np.arange(len(self.names), dtype=np.int64)
        zeros = np.zeros(len(sites), dtype=np.uint64)
        found = self._prior_of(SITE_ROW, sites, zeros)
        pages, keys, *_ = self.prior_rows(found)
        run_keys = KeySets.smallest(site_ids.astype(np.int64), self.record_keys, len(sites))
        merged, merged_keys = merged_with_prior(clusters, run_keys, pages, keys)
        self.keep(SITE_ROW, sites, zeros, merged, merged_keys)
        return merged

    def pairs(
        self,
        kind: int,
        site: np.ndarray,
        key: np.ndarray,
        pages: np.ndarray,
        pair_of: np.ndarray,
        occurrence_keys: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, KeySets]:
        """Merged pages of each (site, key) pair of this input; the prior's row of each
        (-1: none) and the merged keys, for ``keep_pairs``."""
        found = self._prior_of(kind, site, key)
        prior_pages, prior_keys, *_ = self.prior_rows(found)
        run_keys = KeySets.smallest(pair_of, occurrence_keys, len(site))
        merged, merged_keys = merged_with_prior(pages, run_keys, prior_pages, prior_keys)
        return merged, found, merged_keys

    def wide(
        self,
        wide_key: np.ndarray,
        wide_pages: np.ndarray,
        wide_pair: np.ndarray,
        occurrence_keys: np.ndarray,
        occurrence_sites: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merged pages and sites of each line of this input across sites (the prior's
        rows of any site count)."""
        p = self.prior
        rows = np.flatnonzero(p.kinds == LINE_ROW)
        n = len(wide_key)
        at = np.minimum(np.searchsorted(wide_key, p.hashes[rows]), max(n - 1, 0))
        hit = wide_key[at] == p.hashes[rows] if n else np.zeros(len(rows), dtype=bool)
        rows, at = rows[hit], at[hit]
        run_keys = KeySets.smallest(wide_pair, occurrence_keys, n)
        held = p.keys[rows]
        prior_keys = KeySets.smallest(np.repeat(at, held.counts), held.flat, n)
        full = np.zeros(n, dtype=bool)
        full[at[p.pages[rows] >= EVIDENCE_KEYS]] = True
        prior_count = np.where(full, EVIDENCE_KEYS, prior_keys.counts)
        pages, _ = merged_with_prior(wide_pages, run_keys, prior_count, prior_keys)
        # Sites by name, this input's and the prior's together.
        all_names = np.unique(np.concatenate([self.names, p.names]))
        self._wide = (n, rows, at, np.searchsorted(all_names, p.names)[p.sites[rows]])
        self._run_site = np.searchsorted(all_names, self.names)
        run_site = self._run_site[occurrence_sites]
        group = np.concatenate([wide_pair, at])
        sites = distinct_per_pair(group, np.concatenate([run_site, self._wide[3]]), n)
        return pages, sites

    def wide_inside(self, wide_pair: np.ndarray, occurrence_sites: np.ndarray) -> np.ndarray:
        """Sites where each line stands between two that are not learned, with the
        prior's (after ``wide``)."""
        n, rows, at, prior_site = self._wide
        was_inside = self.prior.inside[rows] > 0
        group = np.concatenate([wide_pair, at[was_inside]])
        sites = np.concatenate([self._run_site[occurrence_sites], prior_site[was_inside]])
        return distinct_per_pair(group, sites, n)

    def keep(
        self,
        kind: int,
        site: np.ndarray,
        key: np.ndarray,
        pages: np.ndarray,
        keys: KeySets,
        anchored: np.ndarray | None = None,
        anchored_keys: KeySets | None = None,
        inside: np.ndarray | None = None,
        lengths: np.ndarray | None = None,
    ) -> None:
        n = len(site)
        zero = np.zeros(n, dtype=np.int64)
        self.kept.append(
            Evidence(
                names=self.names,
                sites=site.astype(np.int64),
                kinds=np.full(n, kind, dtype=np.int64),
                hashes=key.astype(np.uint64),
                pages=pages.astype(np.int64),
                keys=keys,
                anchored=zero if anchored is None else anchored.astype(np.int64),
                anchored_keys=KeySets.none(n) if anchored_keys is None else anchored_keys,
                inside=zero if inside is None else inside.astype(np.int64),
                lengths=zero if lengths is None else lengths.astype(np.int64),
            )
        )

    def evidence(self) -> Evidence:
        """The merged evidence of this input's sites and recurring patterns, one row per
        (site, kind, hash) (the larger count where two passes saw one), sorted."""
        parts = self.kept or [Evidence.empty()]

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(part, name) for part in parts])

        def joined_keys(name: str) -> KeySets:
            return KeySets.concat([getattr(part, name) for part in parts])

        both = Evidence(
            self.names,
            joined("sites"),
            joined("kinds"),
            joined("hashes"),
            joined("pages"),
            joined_keys("keys"),
            joined("anchored"),
            joined_keys("anchored_keys"),
            joined("inside"),
            joined("lengths"),
            self.marks,
        )
        order = np.lexsort((-both.pages, both.hashes, both.kinds, both.sites))
        both = both.select(order)
        first = np.ones(len(both), dtype=bool)
        first[1:] = (
            (both.sites[1:] != both.sites[:-1])
            | (both.kinds[1:] != both.kinds[:-1])
            | (both.hashes[1:] != both.hashes[:-1])
        )
        return both.select(first)
