"""Which lines travel with an article from site to site (a repost's paragraphs)."""

from __future__ import annotations

import itertools
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus_clean.options import LearnOptions
from corpus_clean.stages.learn.copies import _travelling


@settings(max_examples=300, deadline=None)
@given(
    st.sets(st.tuples(st.integers(0, 5), st.integers(0, 9)), max_size=40),
    st.lists(st.integers(0, 3), min_size=10, max_size=10),
    st.randoms(use_true_random=False),
)
def test_travelling_lines_are_those_most_neighbouring_pairs_share_another_line_of(
    positions: set[tuple[int, int]], site_of: list[int], rnd: random.Random
) -> None:
    # The definition, pair by pair, against _travelling, which looks at each pair of
    # records once however many lines list them next to each other.
    options = LearnOptions(long_min_sites=2)
    ordered = sorted(positions)
    ubiquitous = [rnd.random() < 0.2 for _ in ordered]
    sites: dict[int, set[int]] = {}
    own: dict[int, set[int]] = {}
    for (line, record), chrome in zip(ordered, ubiquitous, strict=True):
        sites.setdefault(line, set()).add(site_of[record])
        if not chrome:
            own.setdefault(record, set()).add(line)
    listed: dict[int, list[int]] = {}
    for (line, record), chrome in zip(ordered, ubiquitous, strict=True):
        if len(sites[line]) >= options.long_min_sites and not chrome:
            listed.setdefault(line, []).append(record)
    expected = []
    for line, records in listed.items():
        pairs = list(itertools.pairwise(records))
        with_other = sum(len(own[a] & own[b]) >= 2 for a, b in pairs)
        if pairs and with_other >= options.copy_share * len(pairs):
            expected.append(line)
    found = _travelling(
        np.array([line for line, _ in ordered], dtype=np.uint64),
        np.array([record for _, record in ordered], dtype=np.int64),
        np.array([site_of[record] for _, record in ordered], dtype=np.int64),
        np.array(ubiquitous, dtype=bool),
        options,
    )
    assert found.tolist() == sorted(expected)
