"""Learning with an index: what earlier nights saw counts, so one page a night is enough
and a later night's copy of an article loses no line."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from learn_pages import (
    FOOTER,
    MENU,
    POEM,
    SHORT_ARTICLES,
    WORDS,
    headline,
    invoke,
    learned_from,
    lines_of,
    paragraph,
    record,
    sentence,
    texts,
    write_night,
)

from corpus_clean.cli import cli
from corpus_clean.options import LearnOptions
from corpus_clean.stages.learn.arrays import NO_KEY
from corpus_clean.stages.learn.evidence import (
    Evidence,
    Wanted,
)
from corpus_clean.stages.learn.fit import fit_with
from corpus_clean.stages.learn.sketch import Sketch
from corpus_clean.storage.sqlite import IndexStore


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
