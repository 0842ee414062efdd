"""How learning compares lines and where a record belongs: folding (in C as in Python),
words, slugs, a text's last paragraph and closing sentences, a record's site."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from learn_pages import FOLD_CHARS

from corpus_clean.record import Record
from corpus_clean.stages.learn.text import (
    _WORD,
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
)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_the_words_of_ascii_text_are_those_the_general_pattern_finds(line: str) -> None:
    assert line_words(line) == set(_WORD.findall(line.casefold()))


def test_a_slug_in_any_script_gives_its_words() -> None:
    url = "https://news.example.cn/2012/%E5%8C%97%E4%BA%AC%E5%A4%A9%E6%B0%94_river-council.html"
    found = slug_words(url)
    assert found == {"北京", "京天", "天气", "river", "council", "html"}


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
