"""Splitting: a scraped page becomes its articles, site chrome and bylines dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SAMPLES, read, split

from corpus_clean.record import Record
from corpus_clean.stages.split import PageSplitter
from corpus_clean.stats import Stats

P000 = "samples/000_27f52f622c7b214e.txt"
P001 = "samples/001_ad5554182b99526e.txt"
P002 = "samples/002_75b1cbe0efa3536a.txt"
P003 = "samples/003_d562b866f99e4e4a.txt"
P004 = "samples/004_377303c4f75a8b3e.txt"

TIANJIN = (
    "Notice of the General Office of Tianjin Municipal People\u2019s Government on Printing"
    ' and Distributing the "Fourteenth Five-Year Plan" of Tianjin\u2019s Scientific and'
    " Technological Innovation"
)
LIAONING = (
    "On January 22, Liaoning added 2 cases of asymptomatic infected persons imported from"
    " abroad, both of which were reported by Shenyang."
)
CHIP_FENCE = (
    'New media: the United States has encountered resistance in setting up a "chip fence"'
    " against China"
)
NEW_ENERGY = (
    'Life and death robbery of new energy vehicles "national compensation": opportunities,'
    " hidden dangers and challenges from survivors one after another"
)

#: (id, title, date) of every article of the seed pages, in order.
SEED_ARTICLES = [
    (f"{P000}#1", LIAONING, None),
    (f"{P000}#2", TIANJIN, None),
    (f"{P000}#3", CHIP_FENCE, None),
    (
        f"{P000}#4",
        "Multi-local tax big data shows that products with wide export to domestic market"
        " are popular.",
        None,
    ),
    (
        f"{P000}#5",
        "Ministry of Education: Scientific research in colleges and universities should make"
        " real discoveries and solve real problems.",
        None,
    ),
    (
        f"{P000}#6",
        'Many places intensively promote housing consumption, and "Xiaoyangchun" is coming?',
        None,
    ),
    (f"{P000}#7", NEW_ENERGY, None),
    (
        f"{P000}#8",
        'June 1 exclusive welfare! Miyazaki Hayao Film Appreciation will re-show "City of the Sky"',
        None,
    ),
    (
        f"{P000}#9",
        "It is no longer a spare tire for big factories, but a factory in the Internet is"
        " robbing talents.",
        None,
    ),
    (
        f"{P000}#10",
        "Interview | Qin Hao: The role of Tuina is very similar to mine, but it is different"
        " but thinks it is mainstream.",
        None,
    ),
    (f"{P001}#1", TIANJIN, None),
    (
        f"{P002}#1",
        "Convey and study the spirit of the important speech of the Supreme Leader General"
        " Secretary at the ninth meeting of the Central Financial and Economic Committee, and"
        " study the food safety work.",
        None,
    ),
    (f"{P002}#2", "China\u2019s Energy Transformation", None),
    (
        f"{P002}#3",
        "Central environmental protection inspector feedback Xinjiang problem: the"
        " implementation of groundwater prohibition and restriction is not effective",
        None,
    ),
    (
        f"{P002}#4",
        'A drop of perfume makes water "sesame oil"? This additive may have flowed into some'
        " restaurants.",
        None,
    ),
    (
        f"{P002}#5",
        'The drug Lord tied the "Ma Zi" with a dog chain and was killed and buried beside the'
        " Mekong River because he didn\u2019t want to swallow drugs.",
        None,
    ),
    (
        f"{P002}#6",
        "Opinions of the Ministry of Transport on Shenzhen\u2019s pilot work of building a"
        " transportation power, such as the construction of a high-quality innovative"
        " international aviation hub.",
        None,
    ),
    (f"{P002}#7", LIAONING, None),
    (f"{P002}#8", TIANJIN, None),
    (f"{P002}#9", CHIP_FENCE, None),
    (f"{P002}#10", NEW_ENERGY, None),
    (
        f"{P003}#1",
        "Key scientific and technological tasks of Hebei province in 2022 are determined",
        "2022-05-25",
    ),
    (
        f"{P004}#1",
        "Why are these areas the focus of this year\u2019s technological innovation"
        " construction plans",
        "2022-06-09",
    ),
]


@pytest.fixture(scope="module")
def seed_split() -> tuple[list[Record], Stats]:
    stats = Stats()
    # Read as "samples/..." so ids match the golden files and the CLI run from the root.
    pages = read([SAMPLES], stats)
    pages = [p.evolve(id=_rel(p.id), source=_rel(p.source)) for p in pages]
    return split(pages, stats), stats


def _rel(path: str) -> str:
    return str(Path(path).relative_to(SAMPLES.parent))


def test_seed_pages_give_exactly_these_23_articles(seed_split: tuple[list[Record], Stats]) -> None:
    articles, stats = seed_split
    assert [(a.id, a.title, a.date) for a in articles] == SEED_ARTICLES
    assert stats["articles_split"] == 23
    assert stats["pages_read"] == 5


def test_articles_carry_their_page_as_source(seed_split: tuple[list[Record], Stats]) -> None:
    articles, _ = seed_split
    assert all(a.id.startswith(a.source + "#") for a in articles)
    assert not any(a.is_page for a in articles)


def test_page_headers_are_dropped(seed_split: tuple[list[Record], Stats]) -> None:
    articles, stats = seed_split
    # 000 starts with "首页", 002 with "标签归档 武汉夜生活网", 001 with its first title.
    assert stats["page_headers_dropped"] == 3
    for a in articles:
        assert "首页" not in a.text
        assert "标签归档" not in a.text
        assert "通过admin" not in a.text
    [tianjin_001] = [a for a in articles if a.source == P001]
    # The repeated title stands once, as the title, and not again at the top of the text.
    assert not tianjin_001.text.startswith("Notice of")
    assert tianjin_001.text.startswith(
        "General Office of Tianjin Municipal People\u2019s Government on Printing and"
        " Distributing\n"
    )


def test_pages_without_separator_are_one_dated_article(
    seed_split: tuple[list[Record], Stats],
) -> None:
    articles, _ = seed_split
    by_source = {a.source: a for a in articles if a.source in (P003, P004)}
    assert by_source[P003].text.startswith("On January 26, Hebei province held")
    assert by_source[P004].text.startswith("As one of the seven important policies")
    for a in by_source.values():
        assert " 0 By" not in a.text
        assert a.text.count("\n") == 0  # title, byline and blank lines gone: one paragraph


def test_article_text_is_the_lines_between_title_and_next_separator(
    seed_split: tuple[list[Record], Stats],
) -> None:
    articles, _ = seed_split
    lines = (SAMPLES / Path(P000).name).read_text("utf-8").split("\n")
    # Page lines 5-9: title, blank, paragraph, blank, paragraph; line 11 is the separator.
    assert lines[10] == "通过admin"
    assert articles[0].title == lines[4]
    assert articles[0].text == "\n".join(lines[6:9])


def page(text: str, source: str = "p.txt") -> Record:
    return Record(id=source, text=text, source=source, is_page=True)


@pytest.mark.parametrize(
    "separator",
    ["通过admin", "通过 admin", "  通过admin  ", "\t通过\u3000admin", "通过Admin", "通过editor_01"],
)
def test_separator_variants(separator: str) -> None:
    text = (
        f"首页\n{separator}\nFirst title\nFirst body.\n"
        f"{separator}\n\nSecond title\n\nSecond body.\n"
    )
    stats = Stats()
    articles = PageSplitter().split_page(page(text), stats)
    assert [(a.title, a.text) for a in articles] == [
        ("First title", "First body."),
        ("Second title", "Second body."),
    ]
    assert [a.id for a in articles] == ["p.txt#1", "p.txt#2"]
    assert stats["page_headers_dropped"] == 1


@pytest.mark.parametrize(
    "line",
    ["通过admin审核的文章", "通过 admin and the editors", "经过admin", "by admin"],
)
def test_content_lines_that_only_look_like_separators_are_kept(line: str) -> None:
    text = f"Title\n\nBody starts.\n{line}\nBody ends."
    [only] = PageSplitter().split_page(page(text), Stats())
    assert only.text == f"Body starts.\n{line}\nBody ends."


@pytest.mark.parametrize(
    "header",
    [
        "Breaking: an intro\nwith a line",
        "Wuhan Nightlife Net",  # a site name no rule knows
        "Home > News > Science",  # a breadcrumb
        "Tag Archives: science",
        "分类目录归档\uff1a科技",
        "作者归档\uff1aadmin",
        "Subscribe to our newsletter for the latest news!\n\nMenu",
    ],
)
def test_whatever_stands_before_the_first_separator_is_chrome(header: str) -> None:
    text = f"{header}\n通过admin\nTitle\nBody.\n通过admin\nSecond\nMore."
    stats = Stats()
    articles = PageSplitter().split_page(page(text), stats)
    assert [(a.id, a.title, a.text) for a in articles] == [
        ("p.txt#1", "Title", "Body."),
        ("p.txt#2", "Second", "More."),
    ]
    assert stats["page_headers_dropped"] == 1


def test_a_page_without_separators_keeps_its_first_line_as_the_title() -> None:
    # No separator, no chrome to tell apart: the page is one article, header and all.
    [only] = PageSplitter().split_page(page("Wuhan Nightlife Net\nTitle\nBody."), Stats())
    assert (only.title, only.text) == ("Wuhan Nightlife Net", "Title\nBody.")


def test_header_repeating_the_first_title_is_dropped_despite_case_and_blank_lines() -> None:
    text = "\n  THE Title \n\n通过admin\n\nThe title\nBody."
    stats = Stats()
    articles = PageSplitter().split_page(page(text), stats)
    assert [(a.title, a.text) for a in articles] == [("The title", "Body.")]
    assert stats["page_headers_dropped"] == 1


def test_empty_articles_between_separators_are_dropped() -> None:
    text = "通过admin\n\n通过admin\n   \n通过admin\nTitle\nBody."
    stats = Stats()
    articles = PageSplitter().split_page(page(text), stats)
    assert [(a.id, a.title) for a in articles] == [("p.txt#1", "Title")]
    assert stats["empty_articles_dropped"] == 2


def test_date_byline_under_the_title_is_taken_as_the_date() -> None:
    text = "Title\n\n2022-05-25 0 By\n\nBody.\n2022-05-26 0 By stays: not under the title."
    [only] = PageSplitter().split_page(page(text), Stats())
    assert (only.title, only.date) == ("Title", "2022-05-25")
    assert only.text == "Body.\n2022-05-26 0 By stays: not under the title."


def test_records_that_are_not_pages_pass_through_unchanged() -> None:
    record = Record(id="r", text="通过admin\nTitle\nBody", source="s.jsonl", meta={"k": 1})
    assert list(PageSplitter().run([record], Stats())) == [record]


def test_page_date_and_fields_are_inherited() -> None:
    parent = Record(id="p", text="T\nbody", source="p.txt", date="2020-01-01", is_page=True)
    [only] = PageSplitter().split_page(parent, Stats())
    assert (only.date, only.source, only.is_page) == ("2020-01-01", "p.txt", False)
