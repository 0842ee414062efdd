"""The many-sites benchmark: its scrape carries the chrome its truth names, and its
scorer counts what is left and what is lost (it is what the learned stage is judged by)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from support import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import sites


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sites")
    sites.generate(out, n_sites=4, n_articles=300, seed=3)
    return out


def perfect(data: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a perfect cleaner writes: every article once, as the truth has it, and the
    other copies of reposts in the duplicates file."""
    kept: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    seen = set()
    for row in sites.read_jsonl(data / "truth.jsonl"):
        for entry in row["articles"]:
            (removed if entry["article"] in seen else kept).append(
                {
                    "id": f"{data}/pages/{row['page']}#{entry['n']}",
                    "source": f"{data}/pages/{row['page']}",
                    "title": entry["title"],
                    "text": "\n\n".join(entry["sentences"]),
                }
            )
            seen.add(entry["article"])
    return kept, removed


def test_same_arguments_give_the_same_scrape(scrape: Path, tmp_path: Path) -> None:
    sites.generate(tmp_path, n_sites=4, n_articles=300, seed=3)
    for path in sorted((scrape / "pages").rglob("*.txt")):
        assert (tmp_path / path.relative_to(scrape)).read_bytes() == path.read_bytes()
    assert (tmp_path / "truth.jsonl").read_bytes() == (scrape / "truth.jsonl").read_bytes()


def test_every_article_ends_with_its_sites_promo_and_pages_with_its_footer(scrape: Path) -> None:
    rows = sites.read_jsonl(scrape / "truth.jsonl")
    assert len({row["site"] for row in rows}) == 4
    for row in rows:
        text = (scrape / "pages" / row["page"]).read_text("utf-8")
        for entry in row["articles"]:
            assert all(sentence in text for sentence in entry["sentences"])
            assert all(line in text for line in entry["boilerplate"] + entry["related"])
        assert all(line in text.split("\n") for line in row["header"])
        site = [e["boilerplate"] for e in row["articles"]]
        assert len({promo for promo, *_ in site}) == 1  # one promo per site
        footer = site[-1][-2:]  # the page's footer ends its last article
        assert text.rstrip("\n").split("\n\n")[-2:] == footer


def test_a_perfect_output_scores_perfectly(scrape: Path) -> None:
    figures = sites.score(scrape, *perfect(scrape))
    assert figures["reposted_articles"] > 0
    assert figures["related_planted"] > 0 and figures["related_left"] == 0
    assert (figures["boilerplate_left"], figures["empty_records"], figures["chrome_records"]) == (
        0,
        0,
        0,
    )
    assert figures["sentences_kept_share"] == 1.0
    assert figures["reposts_intact"] == figures["reposted_articles"]


def test_left_chrome_lost_sentences_and_broken_reposts_are_counted(scrape: Path) -> None:
    records, removed = perfect(scrape)
    promo = sites.read_jsonl(scrape / "truth.jsonl")[0]["articles"][0]["boilerplate"][0]
    records[0]["text"] += " " + promo
    records[1]["text"] = ""
    rows = sites.read_jsonl(scrape / "truth.jsonl")
    [(page, entry)] = [(r["page"], e) for r in rows for e in r["articles"] if e["related"]][:1]
    [with_related] = [r for r in records if r["title"] == entry["title"] and page in r["source"]]
    with_related["text"] += "\n\n" + entry["related"][0]
    header_page = next(r for r in sites.read_jsonl(scrape / "truth.jsonl") if r["header"])
    records.append(
        {
            "id": "x",
            "source": f"{scrape}/pages/{header_page['page']}",
            "title": header_page["header"][0],
            "text": "",
        }
    )
    removed[0]["text"] = removed[0]["text"][: len(removed[0]["text"]) // 2]
    figures = sites.score(scrape, records, removed)
    assert (figures["boilerplate_left"], figures["related_left"]) == (1, 1)
    assert (figures["empty_records"], figures["chrome_records"]) == (2, 1)
    assert figures["sentences_kept_share"] < 1.0
    assert figures["reposts_intact"] < figures["reposted_articles"]
