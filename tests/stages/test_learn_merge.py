"""This run's evidence with an index's: cluster counts joined, copies known by their marks,
only what a run asks for read."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from learn_pages import KEY_ROWS, KEYS, invoke, key_lists, key_sets, write_night

from corpus_clean.options import LearnOptions
from corpus_clean.stages.learn.copies import RecordMarks
from corpus_clean.stages.learn.evidence import (
    EVIDENCE_KEYS,
    LINE_ROW,
    MARK_ROW,
    SITE_ROW,
    TAIL_ROW,
    Evidence,
    Marks,
    Wanted,
)
from corpus_clean.stages.learn.merge import Merger, merged_with_prior
from corpus_clean.storage.sqlite import IndexStore


@settings(max_examples=200, deadline=None)
@given(KEY_ROWS, st.data())
def test_merged_counts_the_union_of_both_sides_clusters(
    run: list[set[int]], data: st.DataObject
) -> None:
    # Row by row: the run's and the prior's clusters together, counted exactly while both
    # sides know every key (fewer than EVIDENCE_KEYS), with the smallest keys of both.
    prior = [data.draw(st.sets(KEYS, max_size=EVIDENCE_KEYS)) for _ in run]
    counts, keys = merged_with_prior(
        np.array([len(row) for row in run], dtype=np.int64),
        key_sets(run),
        np.array([len(row) for row in prior], dtype=np.int64),
        key_sets(prior),
    )
    union = [a | b for a, b in zip(run, prior, strict=True)]
    assert key_lists(keys) == [sorted(row)[:EVIDENCE_KEYS] for row in union]
    for n, (a, b) in enumerate(zip(run, prior, strict=True)):
        if max(len(a), len(b)) < EVIDENCE_KEYS:
            assert counts[n] == len(a | b)
        else:
            assert counts[n] >= max(len(a), len(b))


def sentence_marks(rows: list[list[int]]) -> RecordMarks:
    """Records' marks of their sentences, a list a record."""
    return RecordMarks(
        np.repeat(np.arange(len(rows)), [len(row) for row in rows]),
        np.array([mark for row in rows for mark in row], dtype=np.uint64),
        np.zeros(len(rows), dtype=bool),
    )


def test_a_copy_takes_the_key_of_the_article_its_rare_marks_name_not_a_sidebars() -> None:
    # An earlier run saw article A (key 7) and, among many pages under one sidebar, B (key
    # 5, the smallest). A copy of A holds eight marks: four of A's own, on A alone, and
    # four of the sidebar, on nine pages (of twenty: not the site's chrome) under B's key.
    # Both hold half its marks; the sidebar's say less.
    sidebar, own = [1, 2, 3, 4], [5, 6, 7, 8]
    rows = [("news", m, np.array([5], dtype="<u8").tobytes(), 9) for m in sidebar]
    rows += [("news", m, np.array([7], dtype="<u8").tobytes(), 1) for m in own]
    rows.append(("news", 0, b"", 20))  # the site's pages
    prior = Evidence.of_rows([], Marks.of_rows(rows))
    merger = Merger(prior, np.array(["news"]), np.array([99], dtype=np.uint64))
    zero = np.zeros(1, dtype=np.int64)
    marks = sentence_marks([sidebar + own])
    merger.adopt(zero, zero, marks, LearnOptions())
    assert merger.record_keys.tolist() == [7]


def test_two_clusters_that_are_copies_of_one_earlier_article_count_as_one() -> None:
    # Weekly posts sharing their closing paragraphs were one article in an earlier run;
    # tonight their copies, edited, were not found copies of each other, but both hold
    # that article's marks. Counted as two, the lines they share would recur.
    marks = list(range(1, 9))
    rows = [("news", m, np.array([7], dtype="<u8").tobytes(), 2) for m in marks]
    rows.append(("news", 0, b"", 10))
    prior = Evidence.of_rows([], Marks.of_rows(rows))
    merger = Merger(prior, np.array(["news"]), np.array([3, 4], dtype=np.uint64))
    sites = np.zeros(2, dtype=np.int64)
    clusters = merger.adopt(sites, np.array([0, 1]), sentence_marks([marks, marks]), LearnOptions())
    assert clusters.tolist() == [0, 0] and merger.record_keys.tolist() == [7, 7]


def test_a_run_reads_of_the_index_only_what_it_asks_for_as_the_index_holds_it(
    tmp_path: Path,
) -> None:
    # A run looks up the rows of its own sites, lines (on any site), closing sentences and
    # marks (learn.Wanted), more than one query's worth: what comes back is what a full
    # read holds of them, and nothing else.
    scrape, index = tmp_path / "scrape", str(tmp_path / "accepted.db")
    write_night(scrape / "news", 0, 130)
    write_night(scrape / "daily", 200, 5)
    invoke("run", str(scrape), "-q", "--index", index)
    with IndexStore.open(index, None, readonly=True) as store:
        every = list(store.learned_evidence().rows())
    marks = [row for row in every if row[1] == MARK_ROW]
    lines = [row for row in every if row[1] == LINE_ROW]
    tails = [(row[0], row[2]) for row in every if row[1] == TAIL_ROW]
    sites = sorted({row[0] for row in every})
    assert len(sites) == 2 and len(marks) > 1000
    assert len({row[2] for row in lines}) < len(lines)  # lines both sites hold
    rnd = random.Random(2)

    def pairs(rows: Iterable[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
        ordered = sorted((sites.index(site), value) for site, value in rows)
        return np.array([n for n, _ in ordered]), np.array([v for _, v in ordered])

    # All the lines and marks, with lines no site holds (more than the index holds: read
    # and sifted); then half of them (looked up).
    for share, absent in ((1.0, 1000), (0.5, 0)):
        line_hashes = {row[2] for row in rnd.sample(lines, int(share * len(lines)))}
        asked = {(row[0], row[2]) for row in rnd.sample(marks, int(share * len(marks)))}
        wanted = Wanted(
            sites=sites,
            lines=np.array(sorted(line_hashes | set(range(absent))), dtype=np.int64),
            tails=pairs(tails),
            marks=pairs([*asked, (sites[0], 12345)]),
        )
        with IndexStore.open(index, None, readonly=True) as store:
            some = list(store.learned_evidence(wanted).rows())
        assert some == [
            row
            for row in every
            if row[1] in (SITE_ROW, TAIL_ROW)
            or (row[1] == LINE_ROW and row[2] in line_hashes)
            or (row[1] == MARK_ROW and (row[0], row[2]) in asked)
        ]
