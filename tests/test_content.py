"""Never remove article content: every line of the seed pages that is not boilerplate
survives split + clean, in order; every boilerplate line is gone.

The boilerplate inventory below was made by reading the five pages; it is deliberately
written out line by line instead of reusing the rules under test.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from support import SAMPLE_FILES, clean, read, split

from corpus_clean.record import Record

#: Every boilerplate line of the seed pages (stripped) and how often it occurs in all five.
BOILERPLATE = {
    "通过admin": 21,  # article separator (byline): 10 in 000, 1 in 001, 10 in 002
    "首页": 1,  # site header of 000
    "标签归档 武汉夜生活网": 1,  # site header of 002
    "关于作者": 1,  # author footer of 001
    "admin administrator": 1,  # author footer of 001
    "2022-05-25 0 By": 1,  # date byline of 003
    "2022-06-09 0 By": 1,  # date byline of 004
    "?One-click ticket purchase": 1,  # call to action (000, Miyazaki screening)
    "Click on the link to participate in this activity!": 1,
    "Click on one-click ticket purchase:https://t.cfc.com.cn/te3rfv": 1,
}
#: A promotional sentence glued to the end of 003's last paragraph.
PROMO_TAIL = " Pay attention to Hebei News network, understand the latest news in Hebei."
#: 001 repeats its first title above the first separator (it stays once, as the title).
REPEATED_HEADER = ("001_ad5554182b99526e.txt", 0)


def squash(text: str) -> str:
    """Text without any whitespace: cleaning may only strip lines and add sentence spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFC", text))


def content_lines(page: Path) -> list[str]:
    """The lines of a page that are article content (title or body), stripped."""
    lines = []
    for number, raw in enumerate(page.read_text("utf-8").split("\n")):
        line = raw.strip()
        if not line or line in BOILERPLATE or (page.name, number) == REPEATED_HEADER:
            continue
        lines.append(line.removesuffix(PROMO_TAIL.strip()).rstrip())
    return lines


def articles_of(page: Path) -> list[Record]:
    return clean(split(read([page])))


def test_boilerplate_inventory_of_the_seed_pages() -> None:
    found: Counter[str] = Counter()
    for page in SAMPLE_FILES:
        for raw in page.read_text("utf-8").split("\n"):
            if raw.strip() in BOILERPLATE:
                found[raw.strip()] += 1
    assert found == Counter(BOILERPLATE)
    tails = [p.name for p in SAMPLE_FILES if PROMO_TAIL in p.read_text("utf-8")]
    assert tails == ["003_d562b866f99e4e4a.txt"]


@pytest.mark.parametrize("page", SAMPLE_FILES, ids=[p.name[:3] for p in SAMPLE_FILES])
def test_every_content_line_survives_in_order(page: Path) -> None:
    articles = articles_of(page)
    haystack = squash("".join(f"{a.title}\n{a.text}\n" for a in articles))
    position = 0
    for line in content_lines(page):
        needle = squash(line)
        found = haystack.find(needle, position)
        assert found >= 0, f"{page.name}: content line lost or out of order: {line[:120]!r}"
        position = found + len(needle)
    # ... and nothing else is there: no leftover boilerplate, nothing added.
    assert len(haystack) == sum(len(squash(line)) for line in content_lines(page))


def test_titles_are_content_lines() -> None:
    for page in SAMPLE_FILES:
        lines = set(content_lines(page))
        for a in articles_of(page):
            assert a.title in lines


def test_no_boilerplate_line_survives() -> None:
    articles = [a for page in SAMPLE_FILES for a in articles_of(page)]
    assert len(articles) == 23
    for a in articles:
        lines = {a.title, *a.text.split("\n")}
        for boilerplate in BOILERPLATE:
            assert boilerplate not in lines
        for fragment in (
            "通过admin",
            "首页",
            "标签归档",
            "关于作者",
            "admin administrator",
            " 0 By",
            "One-click ticket",
            "Click on",
            "https://",
            PROMO_TAIL.strip(),
        ):
            assert fragment not in a.text, (a.id, fragment)


def test_cleaned_text_is_stripped_paragraphs_with_one_blank_line_between() -> None:
    for page in SAMPLE_FILES:
        for a in articles_of(page):
            assert a.text == a.text.strip()
            assert "\n\n\n" not in a.text
            for paragraph in a.text.split("\n\n"):
                assert paragraph and paragraph == paragraph.strip()
                assert "\n" not in paragraph
