"""Learned boilerplate: what recurs across different articles of a site goes, reposts and
an article's own headline stay; the same bytes for any job count; pinned rules remove
what learning removes."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, cast

import numpy as np
import pytest
import xxhash
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from support import SCRIPT

from corpus_clean._fast import sketch_texts
from corpus_clean.cli import cli
from corpus_clean.options import LearnOptions
from corpus_clean.record import Record
from corpus_clean.stages.clean import RulesError, parse_rules
from corpus_clean.stages.learn.arrays import NO_KEY, components, once_per_record
from corpus_clean.stages.learn.copies import RecordMarks, _travelling
from corpus_clean.stages.learn.evidence import (
    EVIDENCE_KEYS,
    LINE_ROW,
    MARK_ROW,
    SITE_ROW,
    TAIL_ROW,
    Evidence,
    KeySets,
    Marks,
    Wanted,
)
from corpus_clean.stages.learn.fit import fit, fit_with
from corpus_clean.stages.learn.merge import Merger, merged_with_prior
from corpus_clean.stages.learn.patterns import Learned, TextKey
from corpus_clean.stages.learn.rules import rules_toml, texts_of
from corpus_clean.stages.learn.sketch import Sketch
from corpus_clean.stages.learn.text import (
    _WORD,
    FOLD_MAX,
    MIN_TAIL,
    TAIL_LINES,
    TAIL_WINDOW,
    closing_sentences,
    fold,
    folded_lines,
    last_paragraph,
    line_words,
    paragraphs,
    site_of,
    slug_words,
    stable_hash,
)
from corpus_clean.stats import Stats
from corpus_clean.storage.sqlite import IndexStore

WORDS = (
    "river",
    "council",
    "market",
    "school",
    "bridge",
    "harvest",
    "winter",
    "station",
    "doctor",
    "budget",
    "village",
    "museum",
    "engine",
    "forest",
    "theatre",
    "planet",
    "garden",
    "island",
    "report",
    "summer",
    "railway",
    "festival",
)
HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工"

MENU = ["Home", "World", "Sports", "About us"]
FOOTER = ["Subscribe to our newsletter", "© Example News. All rights reserved."]


def sentence(rnd: random.Random, words: int = 14) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(words)).capitalize() + "."


def paragraph(rnd: random.Random) -> str:
    return " ".join(sentence(rnd) for _ in range(3))


def headline(i: int) -> str:
    return f"Story number {i} about the {WORDS[i % len(WORDS)]}"


def page_lines(i: int, related: list[int], rnd: random.Random) -> list[str]:
    body = [paragraph(rnd) for _ in range(3)]
    links = ["Related stories", *(headline(j) for j in related)]
    return [*MENU, headline(i), *body, *links, *FOOTER]


def record(site: str, n: int, lines: list[str], **meta: str) -> Record:
    source = f"{site}/{n}.txt"
    return Record(id=source, text="\n\n".join(lines), source=source, meta=meta)


def learned_from(records: list[Record], **options: int) -> Learned:
    return fit([Sketch.of(records)], LearnOptions(**options))


def lines_of(record: Record) -> list[str]:
    return record.text.split("\n\n")


def news_site(pages: int = 8, site: str = "news") -> list[Record]:
    rnd = random.Random(7)
    return [
        record(site, i, page_lines(i, [(i + 1) % pages, (i + 2) % pages], rnd))
        for i in range(pages)
    ]


def test_a_line_on_many_different_articles_of_a_site_is_learned() -> None:
    records = news_site()
    learned = learned_from(records)
    stats = Stats()
    cleaned = [learned.apply(r, stats) for r in records]
    for before, after in zip(records, cleaned, strict=True):
        kept = lines_of(after)
        assert not set(kept) & {*MENU, *FOOTER, "Related stories"}
        # Everything of the article stays: its headline and its three paragraphs.
        assert kept == lines_of(before)[4:8]
    assert stats.removed_by_rule["learned_line"] == sum(
        len(lines_of(b)) - len(lines_of(a)) for b, a in zip(records, cleaned, strict=True)
    )
    assert stats.removed_by_pattern["line", "news", "subscribe to our newsletter"] == 8


def test_a_headline_in_another_pages_related_list_stays_on_its_own_page() -> None:
    records = news_site()
    learned = learned_from(records)
    third = learned.apply(records[3])
    assert headline(3) in lines_of(third)
    # ... and goes from the pages that only list it.
    assert all(headline(3) not in lines_of(learned.apply(records[i])) for i in (1, 2))


def test_the_same_article_reposted_on_fifty_pages_loses_no_line() -> None:
    rnd = random.Random(3)
    story = [headline(0), *(paragraph(rnd) for _ in range(6)), "Thanks for reading."]
    records = []
    for n in range(50):
        copy = list(story)
        if n % 3 == 1:  # a small edit: one paragraph differs
            copy[2] = paragraph(rnd)
        # Half on one site, the others each on a site of their own.
        records.append(record("mirror" if n < 25 else f"site{n}", n, copy))
    learned = learned_from(records)
    assert [learned.apply(r) for r in records] == records


def test_a_viral_article_above_related_lists_on_twenty_sites_loses_no_line() -> None:
    # Copies on twenty sites, each above a list of other articles' leads (long lines of
    # its own), every third with one paragraph edited: most pairs of copies share less
    # than half of their long lines, yet the article's paragraphs travel together.
    rnd = random.Random(11)
    story = [paragraph(rnd) for _ in range(3)]
    records = [
        record(f"site{n % 20}", 100 + n, [paragraph(rnd), paragraph(rnd)]) for n in range(140)
    ]
    for n in range(60):
        copy = list(story)
        if n % 3 == 1:
            copy[n % 2] = paragraph(rnd)
        leads = [sentence(rnd, 16) for _ in range(8)]
        records.append(record(f"site{n % 20}", n, [*copy, "Related", *leads]))
    learned = learned_from(records)
    for before in records[140:]:
        assert lines_of(learned.apply(before))[:3] == lines_of(before)[:3]


PROMOS = {
    "en": "Follow {site} on WeChat for more local news every day.",
    "zh": "关注{site}微信公众号，获取更多本地资讯。",  # noqa: RUF001
}


def story_sentence(rnd: random.Random, lang: str) -> str:
    if lang == "zh":
        return "".join(rnd.choice(HAN) for _ in range(rnd.randint(12, 36))) + "。"
    return sentence(rnd, rnd.randint(8, 24))


def one_word_changed(sentence: str, rnd: random.Random, lang: str) -> str:
    """The sentence with one word (a Han character: one of its own) changed."""
    if lang == "zh":
        i = rnd.randrange(len(sentence) - 1)
        return sentence[:i] + rnd.choice(HAN.replace(sentence[i], "")) + sentence[i + 1 :]
    words = sentence[:-1].split(" ")
    i = rnd.randrange(1, len(words))
    words[i] = rnd.choice([w for w in WORDS if w != words[i]])
    return " ".join(words) + "."


def reposted_world(
    rnd: random.Random,
    lang: str,
    copies: int,
    paragraphs: int,
    promo_as_tail: bool,
    lead_alone: bool,
) -> tuple[list[Record], list[tuple[Record, list[str]]]]:
    """Three sites of articles, each ending in its site's promo (appended to the last
    paragraph, or a paragraph of its own) and a footer, half of them above a related
    list that names other articles' leads, the story's among them; and the story
    (``paragraphs`` of two to four sentences) reposted ``copies`` times onto those
    sites, every other copy with one word changed. The records, and each copy with the
    article's own lines."""
    joiner = "" if lang == "zh" else " "
    lead = [story_sentence(rnd, lang)] if lead_alone else []
    story = [
        [story_sentence(rnd, lang) for _ in range(rnd.randint(2, 4))] for _ in range(paragraphs)
    ]

    def page(site: int, n: int, paragraphs: list[str], related: bool) -> Record:
        promo = PROMOS[lang].format(site=f"Site {site}")
        lines = list(paragraphs)
        if promo_as_tail:
            lines[-1] += joiner + promo
        else:
            lines.append(promo)
        if related:
            lines += ["Related", headline(n % 5), *lead, headline(n % 5 + 1)]
        return record(f"site{site}", n, [*lines, f"© Site {site}"])

    records = []
    for n in range(24):
        other = [joiner.join(story_sentence(rnd, lang) for _ in range(3)) for _ in range(2)]
        records.append(page(n % 3, n, other, related=n % 2 == 0))
    reposts = []
    for n in range(100, 100 + copies):
        sentences = [list(p) for p in [lead, *story] if p]
        if n % 2:
            p = rnd.randrange(len(sentences))
            s = rnd.randrange(len(sentences[p]))
            sentences[p][s] = one_word_changed(sentences[p][s], rnd, lang)
        own = [joiner.join(p) for p in sentences]
        copy = page(n % 3, n, own, related=rnd.random() < 0.5)
        records.append(copy)
        reposts.append((copy, own))
    return records, reposts


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10_000),
    st.sampled_from(["en", "zh"]),
    st.integers(2, 8),
    st.integers(2, 4),
    st.booleans(),
    st.booleans(),
)
def test_a_copy_with_a_word_changed_under_another_sites_promo_loses_no_line(
    seed: int, lang: str, copies: int, paragraphs: int, promo_as_tail: bool, lead_alone: bool
) -> None:
    # The copies of an edited article share none of its edited lines, and none of its
    # last paragraph where each site appends its own promo: only their sentences tell
    # that they are one article, whose lines (its lead too, listed in other pages'
    # related lists) recur in one article only.
    records, reposts = reposted_world(
        random.Random(seed), lang, copies, paragraphs, promo_as_tail, lead_alone
    )
    learned = learned_from(records)
    assert learned.lines  # the footers (and related lists) go
    for copy, own in reposts:
        text = learned.apply(copy).text
        assert all(line in text for line in own)


def test_a_short_article_reposted_with_a_word_changed_keeps_its_lead() -> None:
    # As in benchmarks/sites.py: a short lead of its own (listed in related lists on
    # every site), two paragraphs, one of them edited on one site, each site's promo
    # appended to the last. The copies share no long line: they used to count as two
    # articles, and the lead that heads both as a line of two articles' related lists.
    rnd = random.Random(1)
    records, reposts = reposted_world(rnd, "zh", 2, 2, promo_as_tail=True, lead_alone=True)
    assert [len(own) for _, own in reposts] == [3, 3]
    learned = learned_from(records)
    for copy, own in reposts:
        assert lines_of(learned.apply(copy))[:3] == own  # its promo cut off


POEM = [
    "Winter at the station",
    "The last train is late again",
    "snow on the railway bridge",
    "a doctor reads the budget",
    "and the village sleeps",
]


def test_a_short_article_reposted_with_one_line_edited_loses_no_line() -> None:
    # No line of the poem is long enough to tell copies by: they differ in one line, and
    # used to count as two articles, so that both lost every line but the edited one.
    edited = [*POEM[:2], "snow on the old railway bridge", *POEM[3:]]
    copies = [record("poems", n, lines) for n, lines in enumerate((POEM, edited))]
    learned = learned_from(copies)
    assert [learned.apply(r) for r in copies] == copies
    # The same under a site's chrome, which goes but for the two lines that border the
    # poem (on this site's other pages they border other chrome).
    pages = [
        record("news", 100 + n, [*MENU, *lines, *FOOTER]) for n, lines in enumerate((POEM, edited))
    ]
    learned = learned_from([*news_site(), *pages])
    for page, lines in zip(pages, (POEM, edited), strict=True):
        assert lines_of(learned.apply(page)) == [MENU[-1], *lines, FOOTER[0]]


#: Short articles: three to eight distinct lines of a few words, none of them long.
SHORT_ARTICLES = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=2, max_size=5).map(" ".join),
    min_size=3,
    max_size=8,
    unique=True,
)


@settings(max_examples=60, deadline=None)
@given(SHORT_ARTICLES, st.data())
def test_a_short_article_and_its_copies_each_edited_in_one_line_lose_no_line(
    lines: list[str], data: st.DataObject
) -> None:
    # The original and up to three copies, each edited in a line of its own: each copy is
    # one line off the original, and so one article with it. (With more, or with copies
    # edited in the same line, every line they share is on most of the site's pages, as
    # the chrome of pages under a headline each is: see the next test.)
    edited = data.draw(st.lists(st.integers(0, len(lines) - 1), max_size=3, unique=True))
    versions = [lines]
    for i in edited:
        copy = list(lines)
        copy[i] = f"{copy[i]} {data.draw(st.sampled_from(WORDS))}"
        versions.append(copy)
    records = [record("poems", n, version) for n, version in enumerate(versions)]
    learned = learned_from(records)
    assert [learned.apply(r) for r in records] == records


def test_pages_of_chrome_under_a_headline_each_are_no_copies() -> None:
    # Each two differ in one line, as an edited short article's copies do, but all they
    # share is on every page of the site.
    records = [record("photos", i, [*MENU, headline(i), *FOOTER]) for i in range(6)]
    learned = learned_from(records)
    assert [lines_of(learned.apply(r)) for r in records] == [[headline(i)] for i in range(6)]


def bylined_site(site: str, pages: int = 8) -> list[Record]:
    """Pages with the byline of one of two authors between headline and article, and
    "Share this:" under every article."""
    rnd = random.Random(31)
    return [
        record(
            site,
            i,
            [
                *MENU,
                headline(i),
                "By ANNA SMITH" if i < 5 else "By BOB JONES",
                paragraph(rnd),
                paragraph(rnd),
                "Share this:",
                *FOOTER,
            ],
        )
        for i in range(pages)
    ]


def test_a_byline_on_some_of_a_sites_articles_stays_between_headline_and_article() -> None:
    records = bylined_site("daily")
    learned = learned_from(records)
    for before in records:
        # The byline is learned (on five and three pages), and stays where it stands
        # between two lines that are not; "Share this:", on every page, goes.
        assert lines_of(learned.apply(before)) == lines_of(before)[4:8]
    assert learned_from(records, byline_share=0).apply(records[0]).text.count("By ") == 0


def test_a_byline_under_a_headline_that_related_lists_name_stays_too() -> None:
    # The headline is learned (other pages list it) but stays on its own page, under the
    # page's date: the byline beside it stands beside no boilerplate.
    rnd = random.Random(41)
    records = [
        record(
            "daily",
            i,
            [
                *MENU,
                f"Day {i}, 8:54 am",
                headline(i),
                "By ANNA SMITH" if i < 5 else "By BOB JONES",
                paragraph(rnd),
                paragraph(rnd),
                "Share this:",
                "Related stories",
                headline((i + 1) % 8),
                headline((i + 2) % 8),
                *FOOTER,
            ],
        )
        for i in range(8)
    ]
    learned = learned_from(records)
    for before in records:
        assert lines_of(learned.apply(before)) == lines_of(before)[4:9]


def test_a_line_that_other_sites_hold_too_is_no_byline() -> None:
    rnd = random.Random(37)
    others = [
        record(f"other{n}", 0, [paragraph(rnd), "By ANNA SMITH", paragraph(rnd)]) for n in range(3)
    ]
    learned = learned_from([*bylined_site("daily"), *others])
    assert "By ANNA SMITH" not in lines_of(learned.apply(bylined_site("daily")[0]))


#: A sidebar of the site's own links, on every page: long runs of learned lines.
SIDEBAR = [f"Section {name}" for name in WORDS[:12]]


def sidebar_page(i: int, rnd: random.Random) -> list[str]:
    """A page whose sidebar holds lines of its own: a date, a headline of a related
    list, one about the page's own article; under the article, comments between "Reply"."""
    return [
        f"Edition {i}",  # the page's first line, above the sidebar: its title
        *SIDEBAR,
        f"Weather on day {i}: 22°C",  # the page's own, among the site's chrome
        f"{WORDS[(i + 5) % 22]} {WORDS[(i + 9) % 22]} {WORDS[(i + 3) % 22]}",
        *SIDEBAR,
        headline(i),
        paragraph(rnd),
        paragraph(rnd),
        "Reply",
        f"Nice one, number {i}!",  # a comment between "Reply" links
        "Reply",
        f"Thanks {i}!",
        "Reply",
        *SIDEBAR,
        f"Yesterday's top story {i}",
        *SIDEBAR,
    ]


def most_read_page(i: int, rnd: random.Random) -> list[str]:
    """A page of a site whose every page lists the same headlines twice (most read, most
    shared), the page's own among them, and nowhere else: its prose is of its topic."""
    topics = [WORDS[4 * k : 4 * k + 4] for k in range(5)]
    titles = [" ".join(topic).capitalize() for topic in topics]
    body = [" ".join(rnd.choice(topics[i]) for _ in range(30)) + "." for _ in range(3)]
    return [*MENU, "Most read", *titles, "Most shared", *titles[::-1], *body, *FOOTER]


def test_a_pages_own_headline_in_a_list_of_headlines_stays_once() -> None:
    rnd = random.Random(41)
    records = [record("daily", i, most_read_page(i, rnd)) for i in range(5)]
    learned = learned_from(records)
    for i, before in enumerate(records):
        after = learned.apply(before)
        title = " ".join(WORDS[4 * i : 4 * i + 4]).capitalize()
        # Its own headline, the first time it is listed, and its prose; nothing else.
        assert lines_of(after) == [title, *lines_of(before)[-5:-2]]
        assert learned.apply(after) == after
    # With too many words asked of a headline, every listed headline goes.
    strict = learned_from(records, headline_words=5)
    assert all(len(lines_of(strict.apply(r))) == 3 for r in records)


def test_a_pages_own_short_headline_stays_where_its_url_names_it() -> None:
    # Headlines of three words, listed on every page; no word of them in any page's prose.
    topics = [WORDS[3 * k : 3 * k + 3] for k in range(5)]
    titles = [" ".join(topic).title() for topic in topics]
    rnd = random.Random(43)
    bodies = [
        [" ".join(rnd.choice(WORDS[15:]) for _ in range(30)) + "." for _ in range(3)]
        for _ in topics
    ]
    pages = [[*MENU, "Most read", *titles, *body, *FOOTER] for body in bodies]
    with_url = [
        record("daily", i, page, url=f"https://daily.example/2012/11/0{i}/{'-'.join(topic)}/")
        for i, (page, topic) in enumerate(zip(pages, topics, strict=True))
    ]
    learned = learned_from(with_url)
    for i, before in enumerate(with_url):
        after = learned.apply(before)
        assert lines_of(after) == [titles[i], *bodies[i]]
        assert learned.apply(after) == after
    # Without its address, a page cannot tell its own headline from the others.
    bare = [record("daily", i, page) for i, page in enumerate(pages)]
    learned = learned_from(bare)
    assert [lines_of(learned.apply(r)) for r in bare] == bodies
    # Two words named by the address are enough by default; asked for four, none stays.
    strict = learned_from(with_url, address_words=4)
    assert [lines_of(strict.apply(r)) for r in with_url] == bodies
    # Words in a folder of the path are not the page's own: the slug has more words.
    slug = "-".join(WORDS[15:19])
    in_folder = [
        record("daily", i, page, url=f"https://daily.example/{'-'.join(topic)}/{slug}/")
        for i, (page, topic) in enumerate(zip(pages, topics, strict=True))
    ]
    learned = learned_from(in_folder)
    assert [lines_of(learned.apply(r)) for r in in_folder] == bodies


#: Cluster keys as runs make them, spread over 64 bits, few enough that rows share some.
KEYS = st.integers(0, 80).map(lambda k: k << 57 | 12345)
KEY_ROWS = st.lists(st.sets(KEYS, max_size=EVIDENCE_KEYS), min_size=1, max_size=6)


def key_sets(rows: list[set[int]]) -> KeySets:
    """As the index stores them: each row's keys, the smallest first."""
    blobs = [np.array(sorted(row), dtype="<u8").tobytes() for row in rows]
    return KeySets.of_blobs(blobs)


def key_lists(keys: KeySets) -> list[list[int]]:
    return [np.frombuffer(blob, dtype="<u8").tolist() for blob in keys.blobs()]


@settings(max_examples=200, deadline=None)
@given(KEY_ROWS, st.randoms(use_true_random=False))
def test_key_sets_are_rows_of_sorted_keys(rows: list[set[int]], rnd: random.Random) -> None:
    keys = key_sets(rows)
    assert key_lists(keys) == [sorted(row) for row in rows]
    assert keys.dense(EVIDENCE_KEYS).tolist() == [
        sorted(row) + [int(NO_KEY)] * (EVIDENCE_KEYS - len(row)) for row in rows
    ]
    assert keys.kth(1).tolist() == [sorted(row)[1] if len(row) > 1 else int(NO_KEY) for row in rows]
    assert key_lists(keys.first(2)) == [sorted(row)[:2] for row in rows]
    picked = [rnd.randrange(len(rows)) for _ in range(rnd.randrange(8))]
    assert key_lists(keys[np.array(picked, dtype=np.int64)]) == [sorted(rows[i]) for i in picked]
    found = np.array([rnd.randrange(-1, len(rows)) for _ in range(5)], dtype=np.int64)
    assert key_lists(keys.found(found)) == [sorted(rows[i]) if i >= 0 else [] for i in found]
    group = np.array([g for g, row in enumerate(rows) for _ in row], dtype=np.int64)
    flat = np.array([k for row in rows for k in rnd.sample(sorted(row), len(row))], np.uint64)
    assert key_lists(KeySets.smallest(group, flat, len(rows), 3)) == [
        sorted(row)[:3] for row in rows
    ]


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


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_the_words_of_ascii_text_are_those_the_general_pattern_finds(line: str) -> None:
    assert line_words(line) == set(_WORD.findall(line.casefold()))


def test_a_slug_in_any_script_gives_its_words() -> None:
    url = "https://news.example.cn/2012/%E5%8C%97%E4%BA%AC%E5%A4%A9%E6%B0%94_river-council.html"
    found = slug_words(url)
    assert found == {"北京", "京天", "天气", "river", "council", "html"}


def test_short_lines_that_long_runs_of_learned_chrome_cut_off_from_the_article_go() -> None:
    rnd = random.Random(23)
    records = [record("daily", i, sidebar_page(i, rnd)) for i in range(6)]
    learned = learned_from(records)
    stats = Stats()
    for i, before in enumerate(records):
        after = learned.apply(before.evolve(removed=[]), stats)
        kept = lines_of(after)
        assert f"Weather on day {i}: 22°C" not in kept
        assert f"Yesterday's top story {i}" not in kept
        # The title, a line of the article's own words, the article and its comments stay.
        assert kept[0] == f"Edition {i}"
        assert lines_of(before)[14] in kept
        assert {f"Nice one, number {i}!", f"Thanks {i}!", headline(i)} <= set(kept)
        assert ("line", f"Weather on day {i}: 22°C", "learned_island") in (after.removed or [])
        assert learned.apply(after) == after
    assert stats.removed_by_rule["learned_island"] == 12
    assert not any(key[2].startswith("weather") for key in stats.removed_by_pattern)


def test_a_short_line_cut_off_by_chrome_stays_where_its_url_names_it() -> None:
    rnd = random.Random(23)
    address = "https://daily.example/2012/11/0{}/yesterday-s-top-story/"
    records = [record("daily", i, sidebar_page(i, rnd), url=address.format(i)) for i in range(6)]
    learned = learned_from(records)
    stats = Stats()
    for i, before in enumerate(records):
        after = learned.apply(before, stats)
        assert f"Yesterday's top story {i}" in lines_of(after)  # the page's own headline
        assert f"Weather on day {i}: 22°C" not in lines_of(after)
        assert learned.apply(after) == after
    assert stats.removed_by_rule["learned_island"] == 6


def test_without_long_runs_of_learned_lines_or_prose_no_short_line_goes() -> None:
    rnd = random.Random(29)
    records = [record("daily", i, sidebar_page(i, rnd)) for i in range(6)]
    # A run shorter than island_run cuts nothing off; a text without prose loses no line
    # that is not learned.
    short = learned_from(records, island_run=len(SIDEBAR) + 1)
    assert all(
        f"Weather on day {i}: 22°C" in lines_of(short.apply(r)) for i, r in enumerate(records)
    )
    no_prose = learned_from(records, prose_line=10_000)
    assert all(
        f"Weather on day {i}: 22°C" in lines_of(no_prose.apply(r)) for i, r in enumerate(records)
    )


def test_a_promo_sentence_above_a_related_list_is_cut_off_the_articles_last_paragraph() -> None:
    rnd = random.Random(6)
    promo = "Follow Example News for the latest on the county."
    records = [
        record(
            "county",
            i,
            [
                paragraph(rnd),
                f"{paragraph(rnd)} {promo}",
                "Related stories",
                headline(i + 1),
                headline(i + 2),
            ],
        )
        for i in range(6)
    ]
    learned = learned_from(records)
    for before in records:
        after = lines_of(learned.apply(before))
        assert after[:2] == [lines_of(before)[0], lines_of(before)[1].removesuffix(f" {promo}")]


def test_a_promo_sentence_ending_many_articles_is_cut_off_the_last_paragraph() -> None:
    rnd = random.Random(5)
    promo = "Follow Example News for the latest on the county."
    records = [record("county", i, [paragraph(rnd), f"{paragraph(rnd)} {promo}"]) for i in range(5)]
    learned = learned_from(records)
    stats = Stats()
    for before in records:
        after = learned.apply(before, stats)
        assert after.text == before.text.removesuffix(f" {promo}")
    assert stats.removed_by_rule["learned_tail"] == 5


def test_chinese_sites_are_learned_without_word_splitting() -> None:
    rnd = random.Random(11)

    def han(n: int) -> str:
        return "".join(rnd.choice(HAN) for _ in range(n)) + "。"

    header = ["首页", "新闻中心", "标签归档 例子网"]
    footer = ["关注我们了解最新消息", "版权所有 例子网"]
    records = [record("zh", i, [*header, han(20), han(80), han(90), *footer]) for i in range(6)]
    learned = learned_from(records)
    for before in records:
        assert lines_of(learned.apply(before)) == lines_of(before)[3:6]


def test_lines_on_many_sites_are_learned_across_the_input() -> None:
    rnd = random.Random(13)
    records = [
        record(f"blog{i}", 0, [paragraph(rnd), paragraph(rnd), "Impressum", "Datenschutz"])
        for i in range(4)
    ]
    cleaned = [learned_from(records).apply(r) for r in records]
    assert [lines_of(r) for r in cleaned] == [lines_of(r)[:2] for r in records]
    # Below --learn-min-sites nothing is learned across sites.
    assert learned_from(records, min_sites=5).apply(records[0]) == records[0]


def test_the_site_is_the_url_host_else_the_folder_of_the_source() -> None:
    assert site_of(Record(id="x", text="", source="scrape/a.com/1.txt")) == "scrape/a.com"
    with_url = Record(id="x", text="", source="all.jsonl", meta={"url": "https://www.a.com/x"})
    assert site_of(with_url) == "a.com"
    # dolma and datatrove keep the url in their metadata object; a url field comes first.
    inner = {"metadata": {"url": "https://b.org/x", "dump": "CC-MAIN-2024-10"}}
    assert site_of(Record(id="x", text="", source="all.jsonl", meta=inner)) == "b.org"
    both = {**inner, "url": "https://a.com/y"}
    assert site_of(Record(id="x", text="", source="all.jsonl", meta=both)) == "a.com"
    redpajama = {"meta": {"url": "https://www.c.net/z", "language": "en"}}
    assert site_of(Record(id="x", text="", source="all.jsonl", meta=redpajama)) == "c.net"
    # A url field that is no url (urlsplit refuses it) is as good as none.
    broken = Record(id="x", text="", source="scrape/a.com/1.txt", meta={"url": "http://[a.com/x"})
    assert site_of(broken) == "scrape/a.com"
    assert slug_words("http://[a.com/x") == frozenset()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # site
            st.lists(st.sampled_from(["Home", "Share", "Next", "Top", "A b c."]), max_size=6),
            st.integers(0, 3),  # paragraphs of its own
            st.sampled_from(["", " Subscribe now.", " Read more here."]),  # a closing tail
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 10_000),
)
def test_applying_what_was_learned_twice_changes_nothing(
    pages: list[tuple[int, list[str], int, str]], seed: int
) -> None:
    rnd = random.Random(seed)
    records = []
    for n, (site, chrome, own, tail) in enumerate(pages):
        body = [paragraph(rnd) for _ in range(own)]
        lines = [*chrome[:2], *body, *chrome[2:]]
        if lines:
            lines[-1] += tail
        records.append(record(f"s{site}", n, lines or ["Home"]))
    learned = learned_from(records)
    once = [learned.apply(r) for r in records]
    assert [learned.apply(r) for r in once] == once


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),  # site
            # Where the page's own short lines stand in a long run of the site's chrome.
            st.lists(st.integers(0, len(SIDEBAR)), max_size=4),
            st.integers(0, 2),  # paragraphs of its own
            st.booleans(),  # the sidebar above the article, or below it
        ),
        min_size=2,
        max_size=10,
    ),
    st.integers(0, 10_000),
)
def test_applying_what_was_learned_twice_changes_nothing_with_islands_too(
    pages: list[tuple[int, list[int], int, bool]], seed: int
) -> None:
    rnd = random.Random(seed)
    records = []
    for n, (site, own_at, own, above) in enumerate(pages):
        sidebar = list(SIDEBAR)
        for k, at in enumerate(sorted(own_at, reverse=True)):
            sidebar.insert(at, f"Page {n} line {k}")
        body = [paragraph(rnd) for _ in range(own)]
        lines = [*sidebar, *body] if above else [*body, *sidebar]
        records.append(record(f"s{site}", n, lines))
    learned = learned_from(records)
    once = [learned.apply(r) for r in records]
    assert [learned.apply(r) for r in once] == once


#: Characters where C's folding and Python's ``fold`` could part: ASCII whitespace that
#: str.split() knows (\x1c-\x1f too), other whitespace (U+2000 NFC makes U+2002),
#: capitals whose casefold is longer, combining marks (NFC; U+302A is one among the CJK
#: punctuation), Han, the CJK and fullwidth punctuation C folds, a fullwidth capital it
#: leaves to Python, a lone surrogate.
FOLD_CHARS = (
    "aZ \t\x0b\x0c\r\x1c\x1f\n.\xa0\u3000\x85\u0130\u00dfe\u0301\u4e2d"
    "\u2000\u3002\u3001\u302a\u201c\u2026\uff0c\uff1f\uff21\u9fff\u3400\ud800"
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.text(alphabet=FOLD_CHARS, max_size=12), st.integers(1, 30)), max_size=12)
)
def test_lines_folded_in_c_are_the_paragraphs_folded_as_in_python(
    pieces: list[tuple[str, int]],
) -> None:
    text = "".join(piece * times for piece, times in pieces)  # long lines too (> FOLD_MAX)
    lines, folded = folded_lines(text)
    assert lines == paragraphs(text)
    assert folded == [fold(line).encode("utf-8", "surrogatepass") for line in lines]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["One line", "Two. Sentences here.", "Ends. Yes! 好", "x"]), max_size=20
    )
)
def test_the_last_paragraph_is_the_last_of_the_tail_lines_with_closing_sentences(
    lines: list[str],
) -> None:
    expected = next(
        (
            (i, closing_sentences(lines[i]))
            for i in range(len(lines) - 1, max(-1, len(lines) - 1 - TAIL_LINES), -1)
            if closing_sentences(lines[i])
        ),
        (-1, []),
    )
    assert last_paragraph(lines) == expected


#: What a sentence end is (see ``closing_sentences``), as a regex: C finds it without one.
SENTENCE_END = re.compile(
    r"[.!?][\"'\u201d\u2019)\]]*(?:\s+|(?=[\u3400-\u9fff]))"
    r"|[\u3002\uff01\uff1f][\u201d\u2019\u300d\u300f\uff09]*\s*"
)
SENTENCE_CHARS = ".!?\u3002\uff01\uff1f\"')]\u201d\u2019\u300d\u300f\uff09 \t\xa0\u3000\u4e2d_ab1"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=SENTENCE_CHARS, max_size=40), st.integers(0, 300))
def test_closing_sentences_are_where_the_last_two_sentence_ends_are(
    paragraph: str, padding: int
) -> None:
    paragraph = "w" * padding + paragraph  # sentence ends before the window do not count
    end = len(paragraph)
    ends = [m.end() for m in SENTENCE_END.finditer(paragraph, max(0, end - TAIL_WINDOW))]
    last_two = [start for start in ends if start < end][::-1][:2]
    sentences = [
        start
        for start in last_two
        if end - start >= MIN_TAIL and re.search(r"[^\W_]", paragraph[start:])
    ]
    assert closing_sentences(paragraph) == sentences


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


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 9)), min_size=1, max_size=40
    )
)
def test_occurrences_are_sorted_by_key_then_record_once_each(
    occurrences: list[tuple[int, int, int]],
) -> None:
    # Keys that differ in their lowest bits only share the bits the one sort orders by.
    high = [0x9E3779B97F4A7C15, 0xFFFFFFFFFFFFFFF0, 1 << 40, 0]
    keys = [high[h] ^ low for h, low, _ in occurrences]
    records = sorted(record for _, _, record in occurrences)
    key, record = np.array(keys, dtype=np.uint64), np.array(records, dtype=np.int64)
    got_key, got_record, at = once_per_record(key, record)
    expected = sorted(set(zip(keys, records, strict=True)))
    assert list(zip(got_key.tolist(), got_record.tolist(), strict=True)) == expected
    assert key[at].tolist() == got_key.tolist() and record[at].tolist() == got_record.tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40),
        )
    )
)
def test_copies_are_clustered_under_the_smallest_record_joined_to_them(
    graph: tuple[int, list[tuple[int, int]]],
) -> None:
    n, pairs = graph
    smallest = list(range(n))
    for _ in range(n):  # the least record reachable, by relaxing every pair n times
        for x, y in pairs:
            smallest[x] = smallest[y] = min(smallest[x], smallest[y])
    a = np.array([x for x, _ in pairs], dtype=np.int64)
    b = np.array([y for _, y in pairs], dtype=np.int64)
    assert components(n, a, b).tolist() == smallest
    assert components(n, b[::-1], a[::-1]).tolist() == smallest


def test_learned_patterns_written_as_rules_read_back_as_they_were() -> None:
    odd = ['Say "hi" \\ there', "del\x7fchar", "«Zurück» zur Übersicht", "关注我们"]
    records = [
        record('site "q"', i, [*odd, paragraph(random.Random(i)), *odd[::-1]]) for i in range(4)
    ]
    learned = learned_from(records)
    texts: dict[TextKey, str] = {}
    texts_of(learned, records, texts)
    written = rules_toml(learned, texts, Stats().removed_by_pattern, "a header")
    pinned = Learned.from_rules(parse_rules(written, "learned.toml"))
    strengths = {site: {h: p.strength for h, p in t.items()} for site, t in learned.lines.items()}
    assert strengths == {
        site: {h: p.strength for h, p in t.items()} for site, t in pinned.lines.items()
    }
    assert [pinned.apply(r) for r in records] == [learned.apply(r) for r in records]


def test_a_folded_rule_needs_match_folded_and_a_known_context() -> None:
    with pytest.raises(RulesError, match="folded"):
        parse_rules('[[rule]]\nname = "x"\nsite = "a"\npatterns = ["y"]\n', "f.toml")
    with pytest.raises(RulesError, match="context must be one of"):
        parse_rules(
            '[[rule]]\nname = "x"\nmatch = "folded"\ncontext = "near"\npatterns = ["y"]\n',
            "f.toml",
        )


# ---- through the command line ------------------------------------------------------


def write_scrape(root: Path, sites: int = 3, pages: int = 6) -> Path:
    """Page files, a folder per site, each page a single article (no separators)."""
    rnd = random.Random(17)
    for s in range(sites):
        folder = root / "scrape" / f"site{s}"
        folder.mkdir(parents=True)
        for i in range(pages):
            lines = page_lines(s * 100 + i, [s * 100 + (i + 1) % pages], rnd)
            (folder / f"{i:02d}.txt").write_text("\n".join(lines) + "\n", "utf-8")
    return root / "scrape"


def write_jsonl_scrape(root: Path) -> list[Path]:
    """Three JSONL files of articles with a url (three batches, so -j 2 uses two workers)."""
    rnd = random.Random(19)
    files = []
    for f in range(3):
        path = root / f"part{f}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for i in range(6):
                lines = page_lines(f * 10 + i, [f * 10 + (i + 1) % 6], rnd)
                url = f"https://s{i % 2}.org/{f}/{i}"
                obj = {"title": lines[4], "text": "\n".join(lines), "url": url}
                out.write(json.dumps(obj) + "\n")
        files.append(path)
    return files


def invoke(*args: str, input: bytes | None = None) -> bytes:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def texts(output: bytes) -> list[str]:
    return [json.loads(line)["text"] for line in output.splitlines()]


def test_learning_removes_the_sites_chrome_and_no_learn_keeps_it(tmp_path: Path) -> None:
    scrape = write_scrape(tmp_path)
    learned = texts(invoke("run", str(scrape), "-q"))
    plain = texts(invoke("run", str(scrape), "-q", "--no-learn"))
    assert len(learned) == len(plain) == 18
    assert all("Subscribe to our newsletter" in text for text in plain)
    assert not any("Subscribe to our newsletter" in text for text in learned)
    # What stays is the article: its headline and its three paragraphs (the page's first
    # line, "Home", is the record's title: split makes it so).
    assert all(len(text.split("\n\n")) == 4 for text in learned)
    assert all(text.startswith("Story number ") for text in learned)


def test_split_clean_dedup_piped_equals_run_with_learning(tmp_path: Path) -> None:
    scrape = write_scrape(tmp_path)
    split = invoke("split", str(scrape), "-q")
    cleaned = invoke("clean", "-q", input=split)
    assert invoke("dedup", "-", "-q", input=cleaned) == invoke("run", str(scrape), "-q")
    assert cleaned != invoke("clean", "-q", "--no-learn", input=split)


def test_pinned_learned_rules_remove_what_learning_removes(tmp_path: Path) -> None:
    scrape = write_scrape(tmp_path)
    rules = tmp_path / "learned.toml"
    invoke("learn", str(scrape), "-o", str(rules), "-q")
    text = rules.read_text("utf-8")
    assert "# 6 pages; removed 6 times" in text and '"subscribe to our newsletter",' in text
    assert f'site = "{scrape}/site0"' in text
    learned = invoke("run", str(scrape), "-q")
    assert invoke("run", str(scrape), "-q", "--rules", str(rules), "--no-learn") == learned
    assert learned != invoke("run", str(scrape), "-q", "--no-learn")


@pytest.mark.skipif(not SCRIPT.exists(), reason="corpus-clean is not installed")
def test_what_is_learned_is_the_same_for_any_job_count_and_hash_seed(tmp_path: Path) -> None:
    files = [str(p) for p in write_jsonl_scrape(tmp_path)]
    outputs = []
    for jobs, seed in (("1", "1"), ("2", "2"), ("2", "3")):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [str(SCRIPT), "run", *files, "-q", "-j", jobs],
            env=env,
            capture_output=True,
            timeout=120,
            check=True,
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert b"Subscribe to our newsletter" not in outputs[0]
    assert len(outputs[0].splitlines()) == 18


def test_explain_lists_learned_removals_and_an_article_learning_empties_is_dropped(
    tmp_path: Path,
) -> None:
    scrape = write_scrape(tmp_path)
    # A page of site0 whose one article holds nothing but the site's footer.
    (scrape / "site0" / "99.txt").write_text(
        "通过admin\nA notice\n" + "\n".join(FOOTER) + "\n", "utf-8"
    )
    explain = tmp_path / "explain.jsonl"
    result = CliRunner().invoke(cli, ["run", str(scrape), "--explain", str(explain)])
    assert result.exit_code == 0, result.stderr
    ids = [json.loads(line)["id"] for line in result.stdout_bytes.splitlines()]
    notice = f"{scrape}/site0/99.txt#1"
    assert notice not in ids
    entries = {entry["id"]: entry for entry in map(json.loads, explain.read_bytes().splitlines())}
    assert entries[notice]["dropped"] == "empty_article"
    learned = [r for r in entries[notice]["removed"] if r["rule"].startswith("learned")]
    assert [r["line"] for r in learned] == FOOTER
    assert any(
        {"line": "Subscribe to our newsletter", "rule": "learned_line"} in entry["removed"]
        for entry in entries.values()
    )


def write_night(folder: Path, first: int, pages: int) -> None:
    """One night's scrape of a site: its pages ``first`` .. ``first + pages - 1`` in
    ``folder`` (the same folder every night, so the site is the same)."""
    rnd = random.Random(first)
    for old in folder.glob("*.txt"):
        old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + pages):
        lines = page_lines(i, [i + 1], rnd)
        (folder / f"{i:03d}.txt").write_text("\n".join(lines) + "\n", "utf-8")


def write_only_page(folder: Path, name: str, lines: list[str]) -> None:
    """One night's scrape of a site that is a single page: ``name`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):
        old.unlink()
    (folder / name).write_text("\n".join(lines) + "\n", "utf-8")


def run_night(site: Path, index: str, *options: str) -> bytes:
    """One night's ``run --index`` over the scrape holding ``site``; its records."""
    return invoke("run", str(site.parent), "-q", "--index", index, *options)


def test_with_an_index_a_few_pages_lose_the_chrome_earlier_runs_learned(tmp_path: Path) -> None:
    site, index = tmp_path / "scrape" / "news", str(tmp_path / "accepted.db")
    few = ("--learn-min-pages", "4")  # three pages are too few to learn from alone
    write_night(site, 0, 10)
    first = texts(run_night(site, index, *few))
    assert len(first) == 10 and not any(FOOTER[0] in text for text in first)
    write_night(site, 100, 3)
    alone = texts(invoke("run", str(site.parent), "-q", *few))
    assert len(alone) == 3 and all(FOOTER[0] in text and MENU[-1] in text for text in alone)
    # --no-learn ignores what the index learned (on a copy: the run adds its articles).
    copy = str(tmp_path / "copy.db")
    shutil.copy(index, copy)
    assert texts(invoke("run", str(site.parent), "-q", "--index", copy, *few, "--no-learn")) == (
        alone
    )
    # --check reads what the index learned, and changes nothing.
    checked = tmp_path / "check.json"
    before = Path(index).read_bytes()
    invoke(
        "run", str(site.parent), "-q", "--index", index, "--check", "--report", str(checked), *few
    )
    assert json.loads(checked.read_text())["learned_patterns"]
    assert Path(index).read_bytes() == before
    second = texts(run_night(site, index, *few))
    assert len(second) == 3
    chrome = [*FOOTER, MENU[-1], "Related stories"]
    assert not any(line in text for text in second for line in chrome)
    # What stays is the article (and its one related link, on two pages only).
    assert [[len(line) > 100 for line in text.split("\n\n")] for text in second] == (
        [[False, True, True, True, False]] * 3
    )
    # The evidence accumulates: a fourth night of one page still loses the chrome.
    write_night(site, 200, 1)
    (third,) = texts(run_night(site, index, *few))
    assert FOOTER[0] not in third and MENU[-1] not in third


def test_with_an_index_one_page_a_night_is_enough_to_learn_the_chrome(tmp_path: Path) -> None:
    # The short lines of a page seen once are kept in the index too: the next night's
    # page, which holds its menu and footer again, makes them recur.
    site, index = tmp_path / "scrape" / "news", str(tmp_path / "accepted.db")
    nights = []
    for night in range(4):
        write_night(site, 10 * night, 1)
        (text,) = texts(run_night(site, index))
        nights.append(text)
    chrome = [*FOOTER, MENU[-1], "Related stories"]
    assert all(line in nights[0] for line in chrome)  # nothing to learn from yet
    assert not any(line in text for text in nights[1:] for line in chrome)
    assert all(headline(10 * n) in text for n, text in enumerate(nights))


def test_with_an_index_one_page_a_night_learns_a_most_read_box_of_long_headlines(
    tmp_path: Path,
) -> None:
    # Headlines of 60 bytes or more, under prose's 150, are kept in the index seen once
    # too: the box of most-read stories on one night's page recurs on the next.
    site, index = tmp_path / "scrape" / "news", str(tmp_path / "accepted.db")
    most_read = [
        "Harbour council approves the new ferry timetable after a long public debate",
        "Storm closes the coast road for a second night as the river rises again",
    ]
    rnd = random.Random(4)
    nights = []
    for night in range(3):
        article = [headline(night), paragraph(rnd), paragraph(rnd)]
        write_only_page(site, f"{night}.txt", [*MENU, *article, "Most read", *most_read, *FOOTER])
        (text,) = texts(run_night(site, index))
        nights.append(text)
        assert all(line in text for line in article)
    assert all(line in nights[0] for line in most_read)  # nothing to learn from yet
    assert not any(line in text for text in nights[1:] for line in most_read)


def test_with_an_index_pages_under_a_sidebar_longer_than_their_articles_are_told_apart(
    tmp_path: Path,
) -> None:
    # One page a night, each a short article under the same long sidebar: most of its
    # marks are the sidebar's. From the third page on, the sidebar is on most of the
    # site's pages, so its marks are chrome, and the page is no copy of the others.
    site, index = tmp_path / "scrape" / "blog", str(tmp_path / "accepted.db")
    rnd = random.Random(8)
    sidebar = [paragraph(rnd) for _ in range(5)]
    nights = []
    for night in range(6):
        article = [headline(night), sentence(rnd, 16) + " " + sentence(rnd, 16)]
        write_only_page(site, f"{night}.txt", [*MENU, *article, *sidebar, *FOOTER])
        (text,) = texts(run_night(site, index))
        nights.append(text)
        assert all(line in text for line in article)
    assert not any(line in text for text in nights[3:] for line in [*FOOTER, MENU[-1]])


def test_with_an_index_a_later_nights_edited_copy_of_an_article_loses_no_line(
    tmp_path: Path,
) -> None:
    # An article of short lines and long paragraphs, then on later nights copies of it,
    # each with one word of another paragraph changed: whichever sentence an edit hits,
    # the copy is the article seen before, so its short lines do not recur.
    site, index = tmp_path / "scrape" / "news", str(tmp_path / "accepted.db")
    rnd = random.Random(3)
    body = [paragraph(rnd) for _ in range(4)]
    short = ["Photo: the harbour at dawn", "Read the council's answer below"]
    article = [headline(1), body[0], short[0], body[1], body[2], short[1], body[3]]
    write_only_page(site, "0.txt", [*MENU, *article, *FOOTER])
    run_night(site, index)
    for n in range(len(body)):
        edited = [line.replace(" ", " and ", 1) if line == body[n] else line for line in article]
        write_only_page(site, f"{n + 1}.txt", [*MENU, *edited, *FOOTER])
        # Kept or removed as a duplicate of the article, the copy keeps all its lines.
        removed = tmp_path / "removed.jsonl"
        kept = run_night(site, index, "--duplicates", str(removed))
        (text,) = texts(kept + removed.read_bytes())
        assert [line for line in edited if line not in text] == [], n


def test_with_an_index_a_later_nights_copy_of_a_short_article_edited_in_a_line_loses_no_line(
    tmp_path: Path,
) -> None:
    # No line of the poem's page is long: it is marked by the keys of its lines less one,
    # and the next night's copy with a line edited holds one of them.
    site, index = tmp_path / "scrape" / "poems", str(tmp_path / "accepted.db")
    write_only_page(site, "0.txt", [*MENU, *POEM])
    run_night(site, index)
    edited = [*POEM[:2], "snow on the old railway bridge", *POEM[3:]]
    write_only_page(site, "1.txt", [*MENU, *edited])
    removed = tmp_path / "removed.jsonl"
    kept = run_night(site, index, "--duplicates", str(removed))
    (text,) = texts(kept + removed.read_bytes())
    assert [line for line in edited if line not in text] == []


@dataclass
class HeldEvidence:
    """What an index would hold after one run: the evidence it kept (``Prior``)."""

    evidence: Evidence

    def learned_evidence(self, wanted: Wanted | None = None) -> Evidence:
        return self.evidence


@settings(max_examples=60, deadline=None)
@given(SHORT_ARTICLES, st.booleans(), st.data())
def test_a_short_articles_copy_edited_in_one_line_a_night_later_loses_no_line(
    lines: list[str], under_menu: bool, data: st.DataObject
) -> None:
    chrome = MENU if under_menu else []
    original = record("poems", 0, [*chrome, *lines])
    _, kept = fit_with([Sketch.of([original])], LearnOptions(), HeldEvidence(Evidence.empty()))
    assert kept is not None
    i = data.draw(st.integers(0, len(lines) - 1))
    edited = [*lines[:i], f"{lines[i]} {data.draw(st.sampled_from(WORDS))}", *lines[i + 1 :]]
    copy = record("poems", 1, [*chrome, *edited])
    learned, _ = fit_with([Sketch.of([copy])], LearnOptions(), HeldEvidence(kept))
    assert learned.apply(copy) == copy


def test_with_an_index_pages_of_chrome_under_a_headline_one_a_night_lose_it_from_the_third(
    tmp_path: Path,
) -> None:
    # The second night's page is one line off the first, as a copy would be; from the
    # third on, the keys they share are on every page of the site: chrome.
    site, index = tmp_path / "scrape" / "photos", str(tmp_path / "accepted.db")
    nights = []
    for night in range(4):
        write_only_page(site, f"{night}.txt", [*MENU, headline(night), *FOOTER])
        (text,) = texts(run_night(site, index))
        nights.append(text.split("\n\n"))
    assert nights[:2] == [[*MENU[1:], headline(n), *FOOTER] for n in range(2)]
    assert nights[2:] == [[headline(2)], [headline(3)]]


@given(
    st.dictionaries(
        st.tuples(
            st.sampled_from(["a.example", "b.example", "news"]), st.integers(-(2**63), 2**63 - 1)
        ),
        st.tuples(
            st.lists(st.integers(0, 2**64 - 2), max_size=4, unique=True), st.integers(0, 2**40)
        ),
        max_size=30,
    )
)
def test_marks_read_back_as_the_index_stores_them(
    marks: dict[tuple[str, int], tuple[list[int], int]],
) -> None:
    rows = [
        (site, mark, np.array(keys, dtype="<u8").tobytes(), holders)
        for (site, mark), (keys, holders) in marks.items()
    ]
    assert list(Marks.of_rows(iter(rows)).rows()) == sorted(rows)


def test_marks_are_read_a_chunk_at_a_time_and_come_back_whole() -> None:
    rows = [
        (f"site{n % 7}", n - 2**62, np.array([n, 2 * n], dtype="<u8").tobytes(), n % 5)
        for n in range(70_000)
    ]
    assert list(Marks.of_rows(iter(rows)).rows()) == sorted(rows)


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


def test_the_same_pages_scraped_night_after_night_count_once(tmp_path: Path) -> None:
    site, index = tmp_path / "scrape" / "news", str(tmp_path / "accepted.db")
    write_night(site, 0, 3)
    for _ in range(4):  # the same three articles scraped again: copies of what was seen
        run_night(site, index, "--learn-min-pages", "4")
    with IndexStore.open(index, None, readonly=True) as store:
        evidence = store.learned_evidence()
    lines = evidence.kinds == 0
    assert lines.any() and evidence.pages[lines].max() == 3  # the menu, on three articles
    # Each article's marks are held by it alone, under one key every night; the site's
    # row (mark 0) counts its pages, twelve.
    marks = evidence.marks
    article = marks.hashes != 0
    assert article.any() and (marks.keys[article, 1:] == NO_KEY).all()
    assert len(np.unique(marks.keys[article, 0])) == 3
    assert marks.holders[~article].tolist() == [12]
    # As the index stores them, and reads them back.
    assert list(Evidence.of_rows(list(evidence.rows())).rows()) == list(evidence.rows())
    # index info counts them: the site, its lines and closing sentences, the marks; and
    # the four runs that learned, the last of which saw every line seen on one article.
    info = CliRunner().invoke(cli, ["index", "info", index])
    assert info.exit_code == 0 and info.stderr == ""
    seen_once = int((evidence.pages[lines] == 1).sum())
    assert seen_once > 0
    assert json.loads(info.stdout)["learned"] == {
        "sites": 1,
        "lines": int(lines.sum()),
        "closing_sentences": int((evidence.kinds == 1).sum()),
        "marks": int(article.sum()),
        "learning_runs": 4,
        "lines_seen_once_by_age": {"0": seen_once},
    }


def test_an_articles_lead_listed_on_other_sites_stays_where_it_heads_the_text() -> None:
    rnd = random.Random(13)
    lead = "The council opens the new bridge on Monday."
    own = record("daily", 0, [lead, paragraph(rnd), paragraph(rnd)])
    records = [own]
    for n in range(1, 13):  # other sites' pages list it, with its title, among others
        listed = ["Related", sentence(rnd, 5), lead, sentence(rnd, 5), sentence(rnd, 6)]
        records.append(record(f"site{n % 4}", n, [paragraph(rnd), paragraph(rnd), *listed]))
    learned = learned_from(records)
    assert learned.apply(own) == own
    assert all(lead not in lines_of(learned.apply(r)) for r in records[1:])
