"""Learning through the command line: the chrome goes, pipes equal run, pinned rules
remove what learning removes, the same bytes for any job count and hash seed."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from learn_pages import FOOTER, invoke, page_lines, texts
from support import SCRIPT

from corpus_clean.cli import cli

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
