"""Learned boilerplate, fit and applied: what recurs across different articles of a site
goes; reposts, bylines under their headline and an article's own headline stay; promo
tails are cut; applying twice changes nothing. (The package's parts, the command line
and the index have test_learn_*.py of their own.)"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from learn_pages import (
    FOOTER,
    MENU,
    POEM,
    SHORT_ARTICLES,
    WORDS,
    headline,
    learned_from,
    lines_of,
    page_lines,
    paragraph,
    record,
    sentence,
)

from corpus_clean.record import Record
from corpus_clean.stats import Stats

HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工"


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
