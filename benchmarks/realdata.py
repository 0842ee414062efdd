"""How much boilerplate corpus-clean leaves, and how much article text it loses, on real pages.

The sets in ../shared/realdata (see its README) hold real scraped pages with the human
main text beside each. Every set is written out as page files, one folder per site, and
the corpus-clean CLI of this checkout cleans the folder (`corpus-clean clean -q`, so each
page is one record whose `source` is its path), with and without learning. A set whose
every page has its address (dragnet) is also cleaned as a crawler hands it over: one
JSONL record per page with its `url` (the site is then the url's host, and a learned line
named by the url's path is the page's own headline). A reference needs no tool: "drop
every line that occurs on two or more pages of the same site".

How a line is judged (dragnet, readability): a line's tokens are its words, casefolded
(a word is a run of letters and digits; every Han or kana character is a word of its
own). A token is *in gold* when it is part of a run of 3 consecutive tokens of the line
that occurs, in that order, in the gold text; the line's gold share is the share of its
tokens in gold. A line of fewer than 3 tokens has share 0 when none of its tokens occurs
in gold, and is left out otherwise: a lone "News", "Reply" or "2012" says nothing by its
words alone (counted as content when it is a whole line of the gold, the reference
below would lose 8.2% of the content lines instead of the issue's 6%: gold keeps comment
chrome such as "Reply", and a date split into "Jul", "24", "2012"). A line is *content*
when its share is >= 0.8 and *boilerplate* when it is <= 0.2; lines in between, and
lines without a word, are left out. A line is *kept* when the page's output holds it
(compared without whitespace, casefolded, so the glued-sentence repair does not count as
a change), or holds at least half of it as a line that begins it (a tail cut off). A
content line the scrape holds several times (a headline in the title bar, over the
article and in a list) counts as content as many times as the gold holds it (at least
once), and is lost when the output holds it fewer times. Of the content lost, the share on
two or more pages of its site is printed too, and of it the share that is content on every
page holding it (what recurrence cannot tell from chrome). Where a set holds pages whose
gold is UTF-16 read as Latin-1 (three of dragnet's), two more rows score the learning run
and the reference with that gold as text (``golds_decoded``); the rows above them score
the set as it is.

With ``--nightly`` (a set whose every page has its url), two runs of a scrape arriving
night after night, each ``corpus-clean run --index`` over one night's JSONL records:
the pages one of each site a night (a site's k-th page on night k), scored as above over
what every night wrote (kept or removed as a duplicate), with the pages removed as
duplicates of a page whose gold holds under half of their gold lines (another article:
dedup saw the chrome), and the learned lines the index holds after the last night; and
every page once, then every page again with one word of one of its content lines
changed (an edited repost): the lines the original kept that its copy lost (the edited
line aside). ``--nightly-args`` gives both more options (``--learn-forget-after 3``).

trafilatura: a `without` snippet *recurs* when a scrape line holding it occurs as a line
on two or more pages of the set (on *many* pages: ten or more); it is *removed* when the
page's output no longer holds it; *its line removed* (of those on many pages) when no line
on many pages that holds it is kept (the snippet may still stand inside a line of its own
page: "Kontakt" in "Kontakt-Anfrage"). A `with` snippet the scrape holds is *lost* when
the output no longer holds it.

With ``--scale HOSTS`` (dragnet only), what learning's evidence costs in an index at
scale: every dragnet page under HOSTS hosts (the url's host renamed ``h0-``, ``h1-``, ...),
one JSONL file, through ``corpus-clean run --index`` into a new index; then a next night
against it: the pages of host 0 again, every seventh page of host 1 with a word edited,
and the pages under a host not seen before. Each run's seconds and peak RSS (through
``measure.py``, the CLI's default jobs), and the index's size and learned rows.

    .venv/bin/python benchmarks/realdata.py [--sets bp-dragnet bp-trafilatura] [--json out.json]
        [--nightly [--nightly-args "--learn-forget-after 3"]] [--scale 40]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent


def find_realdata() -> Path:
    """`../shared/realdata` seen from the checkout, or from the folder a git worktree sits in."""
    for folder in HERE.parents:
        if (folder / "shared" / "realdata").is_dir():
            return folder / "shared" / "realdata"
    raise SystemExit("../shared/realdata not found above " + str(HERE))


REALDATA = find_realdata()
SETS = ("bp-dragnet", "bp-readability", "bp-trafilatura")
#: trafilatura: a `without` snippet's line on this many pages recurs on "many" pages.
MANY_PAGES = 10
CONTENT_SHARE = 0.8
BOILERPLATE_SHARE = 0.2
RUN = 3
RULE = (
    f"line tokens = casefolded words (Han/kana: one per character); share = tokens inside a "
    f"run of {RUN} line tokens found in that order in gold / tokens (lines of < {RUN} tokens: "
    f"0 if no token in gold, else ignored); content >= {CONTENT_SHARE}, "
    f"boilerplate <= {BOILERPLATE_SHARE}, the rest ignored; kept = output holds the line "
    "(whitespace-free, casefolded) or >= half of it as its beginning"
)
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFC", text).casefold())


def squash(line: str) -> str:
    """A line as compared with the output: NFC, casefolded, without any whitespace."""
    return "".join(unicodedata.normalize("NFC", line).casefold().split())


def scrape_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


class Gold:
    """A page's gold text, ready to judge its scrape lines."""

    def __init__(self, text: str) -> None:
        found = tokens(text)
        self.tokens = Counter(found)
        self.runs = {tuple(found[i : i + RUN]) for i in range(len(found) - RUN + 1)}
        self.squashed = squash(text)

    def share(self, line: str) -> float | None:
        """The line's gold share (see the module's docstring); None to leave it out."""
        found = tokens(line)
        if not found:
            return None
        if len(found) < RUN:
            return 0.0 if not any(self.tokens[t] for t in found) else None
        inside = [False] * len(found)
        for i in range(len(found) - RUN + 1):
            if tuple(found[i : i + RUN]) in self.runs:
                inside[i : i + RUN] = [True] * RUN
        return sum(inside) / len(found)


def site_folder(site: str) -> str:
    return re.sub(r"[^\w.-]", "_", site)


def write_pages(pages: list[dict[str, Any]], root: Path) -> list[str]:
    """The pages as files, one folder per site; returns each page's path, in page order."""
    paths = []
    for n, page in enumerate(pages):
        folder = root / site_folder(page["site"])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{n:04d}_{site_folder(page['name'])[:60]}.txt"
        path.write_text(page["scrape"], encoding="utf-8")
        paths.append(str(path))
    return paths


def write_records(pages: list[dict[str, Any]], path: Path) -> list[str]:
    """The pages as one JSONL file, a record per page with its url; returns each page's
    record id, in page order."""
    with path.open("w", encoding="utf-8") as handle:
        for n, page in enumerate(pages):
            record = {"id": str(n), "url": page["url"], "text": page["scrape"]}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return [str(n) for n in range(len(pages))]


def cli() -> str:
    """The corpus-clean command of this checkout (beside the Python running this)."""
    return shutil.which("corpus-clean", path=str(Path(sys.executable).parent)) or "corpus-clean"


def output_lines(record: dict[str, Any]) -> list[str]:
    """The lines of a record written: its title, if it has one, and its text's."""
    return ([record["title"]] if record.get("title") else []) + scrape_lines(record["text"])


def corpus_clean(
    inputs: Path, extra: list[str], key: str = "source"
) -> tuple[dict[str, list[str]], float]:
    """The output lines of each page (by the records' ``key``: a page file's path, or a
    record's id), from the CLI of this checkout, and seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [cli(), "clean", str(inputs), "-q", "-j", "1", *extra],
        capture_output=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    lines: dict[str, list[str]] = defaultdict(list)
    for raw in done.stdout.splitlines():
        record = json.loads(raw)
        lines[record[key]].extend(output_lines(record))
    return lines, seconds


def recurring_lines_dropped(pages: list[dict[str, Any]]) -> list[list[str]]:
    """The reference: every line that occurs on two or more pages of its site is dropped."""
    pages_with: dict[tuple[str, str], int] = Counter()
    for page in pages:
        for line in set(map(squash, scrape_lines(page["scrape"]))):
            pages_with[page["site"], line] += 1
    return [
        [
            line
            for line in scrape_lines(page["scrape"])
            if pages_with[page["site"], squash(line)] < 2
        ]
        for page in pages
    ]


def kept_flags(scrape: list[str], output: Iterable[str]) -> list[bool]:
    """For each scrape line, whether the output still holds it (whole, or its beginning)."""
    left = Counter(squash(line) for line in output)
    flags = []
    pending = []
    for i, line in enumerate(scrape):
        key = squash(line)
        if left[key] > 0:
            left[key] -= 1
            flags.append(True)
        else:
            flags.append(False)
            pending.append(i)
    rest = [key for key, n in left.items() for _ in range(n) if key]
    for i in pending:
        key = squash(scrape[i])
        for j, piece in enumerate(rest):
            if 2 * len(piece) >= len(key) and key.startswith(piece):
                flags[i] = True
                del rest[j]
                break
    return flags


def score_gold(pages: list[dict[str, Any]], outputs: list[list[str]]) -> dict[str, Any]:
    boilerplate = boilerplate_left = content = content_lost = 0
    # Content lines on two or more pages of their site, as the reference counts them:
    # what recurrence alone cannot tell from chrome.
    # Of those, the lines that are content on every page that holds them (a byline, a date,
    # a "follow us" line on every article of a site): to recurrence, chrome.
    golds = [Gold(page["gold"] or "") for page in pages]
    pages_with: Counter[tuple[str, str]] = Counter()
    not_content: set[tuple[str, str]] = set()
    for page, gold in zip(pages, golds, strict=True):
        lines = set(scrape_lines(page["scrape"]))
        for line in lines:
            share = gold.share(line)
            if share is None or share < CONTENT_SHARE:
                not_content.add((page["site"], squash(line)))
        for line in set(map(squash, lines)):
            pages_with[page["site"], line] += 1
    recurring = recurring_lost = everywhere_lost = 0
    for page, output, gold in zip(pages, outputs, golds, strict=True):
        scrape = scrape_lines(page["scrape"])
        # A content line the scrape repeats (a headline in the title bar, over the article
        # and in a list) is content as often as the gold holds it; keeping it that often
        # is right.
        kept_content: Counter[str] = Counter()
        seen_content: Counter[str] = Counter()
        for line, kept in zip(scrape, kept_flags(scrape, output), strict=True):
            share = gold.share(line)
            if share is None:
                continue
            if share >= CONTENT_SHARE:
                key = squash(line)
                seen_content[key] += 1
                kept_content[key] += kept
            elif share <= BOILERPLATE_SHARE:
                boilerplate += 1
                boilerplate_left += kept
        for key, seen in seen_content.items():
            times = min(seen, max(1, gold.squashed.count(key)))
            lost = max(0, times - kept_content[key])
            content += times
            content_lost += lost
            if pages_with[page["site"], key] >= 2:
                recurring += times
                recurring_lost += lost
                if (page["site"], key) not in not_content:
                    everywhere_lost += lost
    return {
        "boilerplate_lines": boilerplate,
        "content_lines": content,
        "boilerplate_left_pct": round(100 * boilerplate_left / max(boilerplate, 1), 2),
        "content_lost_pct": round(100 * content_lost / max(content, 1), 2),
        # Of all content lines: those on 2+ pages of their site, and those of them lost.
        "content_recurring_pct": round(100 * recurring / max(content, 1), 2),
        "content_lost_recurring_pct": round(100 * recurring_lost / max(content, 1), 2),
        # ... and those of them that are content on every page that holds them.
        "content_lost_everywhere_pct": round(100 * everywhere_lost / max(content, 1), 2),
    }


def score_snippets(pages: list[dict[str, Any]], outputs: list[list[str]]) -> dict[str, Any]:
    on_pages: Counter[str] = Counter()
    for page in pages:
        on_pages.update(set(map(squash, scrape_lines(page["scrape"]))))
    recurring = recurring_removed = without = without_removed = kept_with = lost_with = 0
    many = many_removed = many_lines_removed = 0
    for page, output in zip(pages, outputs, strict=True):
        text = "\n".join(squash(line) for line in output)
        scrape = scrape_lines(page["scrape"])
        lines = [squash(line) for line in scrape]
        line_kept = kept_flags(scrape, output)
        whole = "\n".join(lines)
        for snippet in page.get("without") or []:
            key = squash(snippet)
            if not key or key not in whole:
                continue
            without += 1
            removed = key not in text
            without_removed += removed
            if any(key in line and on_pages[line] >= 2 for line in lines):
                recurring += 1
                recurring_removed += removed
            on_many = [
                i for i, line in enumerate(lines) if key in line and on_pages[line] >= MANY_PAGES
            ]
            if on_many:
                many += 1
                many_removed += removed
                # Still in the output, but only inside lines that do not recur ("Kontakt"
                # in "Kontakt-Anfrage"): the recurring line went, as a line cleaner can.
                many_lines_removed += not any(line_kept[i] for i in on_many)
        for snippet in page.get("with") or []:
            key = squash(snippet)
            if key and key in whole:
                kept_with += 1
                lost_with += key not in text
    return {
        "without_in_scrape": without,
        "without_removed_pct": round(100 * without_removed / max(without, 1), 2),
        "without_recurring": recurring,
        "recurring_without_removed_pct": round(100 * recurring_removed / max(recurring, 1), 2),
        "without_on_many_pages": many,
        "many_pages_without_removed_pct": round(100 * many_removed / max(many, 1), 2),
        "many_pages_lines_removed_pct": round(100 * many_lines_removed / max(many, 1), 2),
        "with_in_scrape": kept_with,
        "with_lost": lost_with,
    }


def run_nights(
    nights: list[list[dict[str, Any]]], folder: Path, extra: Iterable[str] = ()
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each night's records through ``corpus-clean run --index`` (one index for all, with
    the options ``extra``), in turn; the lines of every record written, kept or removed
    as a duplicate, by id, and the ``duplicate_of`` of those removed."""
    index, night, kept, removed = (
        folder / name for name in ("index.db", "in.jsonl", "kept.jsonl", "dups.jsonl")
    )
    lines: dict[str, list[str]] = {}
    duplicate_of: dict[str, str] = {}
    for records in nights:
        with night.open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        command = [cli(), "run", str(night), "--index", str(index), "-q", "-j", "1", *extra]
        subprocess.run([*command, "-o", str(kept), "--duplicates", str(removed)], check=True)
        for path in (kept, removed):
            for raw in path.read_bytes().splitlines():  # bytes: text may hold U+2028
                record = json.loads(raw)
                lines[record["id"]] = output_lines(record)
                if path == removed:
                    duplicate_of[record["id"]] = record["duplicate_of"]
    return lines, duplicate_of


def same_article(page: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether the gold of ``other`` holds at least half of the gold lines of ``page``."""
    lines = {squash(line) for line in (page["gold"] or "").split("\n")} - {""}
    theirs = {squash(line) for line in (other["gold"] or "").split("\n")}
    return 2 * len(lines & theirs) >= len(lines)


def nightly(pages: list[dict[str, Any]], folder: Path, extra: Iterable[str] = ()) -> dict[str, Any]:
    """The two nightly measures of the module's docstring (the runs with the options
    ``extra``)."""
    records = [{"id": str(n), "url": p["url"], "text": p["scrape"]} for n, p in enumerate(pages)]
    seen: Counter[str] = Counter()
    night_of = []
    for page in pages:
        night_of.append(seen[page["site"]])
        seen[page["site"]] += 1
    nights = [
        [r for r, k in zip(records, night_of, strict=True) if k == night]
        for night in range(max(seen.values()))
    ]
    (folder / "one-a-night").mkdir(parents=True)
    by_id, duplicate_of = run_nights(nights, folder / "one-a-night", extra)
    one_a_night = score_gold(pages, [by_id.get(str(n), []) for n in range(len(pages))])
    index = folder / "one-a-night" / "index.db"
    info = subprocess.run([cli(), "index", "info", str(index)], capture_output=True, check=True)
    one_a_night["index_learned_lines"] = json.loads(info.stdout)["learned"]["lines"]
    one_a_night["index_bytes"] = index.stat().st_size
    # Dedup must see the article, not the chrome: a page removed as a duplicate of a page
    # whose gold is another article's is one lost.
    one_a_night["duplicates"] = len(duplicate_of)
    one_a_night["duplicates_of_another_article"] = sorted(
        int(page)
        for page, of in duplicate_of.items()
        if not same_article(pages[int(page)], pages[int(of)])
    )
    rnd = random.Random(5)
    copies, edited = [], {}
    for record, page in zip(records, pages, strict=True):
        gold = Gold(page["gold"] or "")
        lines = record["text"].split("\n")
        content = [
            i
            for i, line in enumerate(lines)
            if len(line) >= 80 and (gold.share(line) or 0) >= CONTENT_SHARE
        ]
        if content:
            i = rnd.choice(content)
            words = lines[i].split(" ")
            j = rnd.randrange(len(words))
            words[j] += "x"
            edited[record["id"]] = lines[i] = " ".join(words)
        copies.append({**record, "id": record["id"] + "-copy", "text": "\n".join(lines)})
    (folder / "copies").mkdir()
    by_id, _ = run_nights([records, copies], folder / "copies", extra)
    lost = content_lost = pages_hit = 0
    for record, copy, page in zip(records, copies, pages, strict=True):
        gold = Gold(page["gold"] or "")
        have = {squash(line) for line in by_id.get(copy["id"], [])}
        unchanged = set(scrape_lines(copy["text"])) - {edited.get(record["id"])}
        missing = [
            line
            for line in by_id.get(record["id"], [])
            if line in unchanged and squash(line) not in have
        ]
        lost += len(missing)
        content_lost += sum((gold.share(line) or 0) >= CONTENT_SHARE for line in missing)
        pages_hit += bool(missing)
    return {
        "one_page_of_each_site_a_night": one_a_night,
        "edited_copies_next_night": {
            "pages": len(pages),
            "lines_lost": lost,
            "content_lines_lost": content_lost,
            "pages_losing_lines": pages_hit,
        },
    }


def on_host(record: dict[str, Any], prefix: str) -> dict[str, Any]:
    parts = urlsplit(record["url"])
    return {**record, "url": urlunsplit(parts._replace(netloc=prefix + parts.netloc))}


def at_scale(pages: list[dict[str, Any]], hosts: int, folder: Path) -> dict[str, Any]:
    """The ``--scale`` runs of the module's docstring."""
    records = [{"id": str(n), "url": p["url"], "text": p["scrape"]} for n, p in enumerate(pages)]
    first = [
        on_host({**r, "id": f"{k}-{r['id']}"}, f"h{k}-") for k in range(hosts) for r in records
    ]
    edited = []
    for record in records[::7]:
        words = record["text"].split(" ")
        words[len(words) // 2] = "edited"
        edited.append({**record, "text": " ".join(words)})
    night = [
        *(on_host({**r, "id": f"again-{r['id']}"}, "h0-") for r in records),
        *(on_host({**r, "id": f"edited-{r['id']}"}, "h1-") for r in edited),
        *(on_host({**r, "id": f"new-{r['id']}"}, f"h{hosts}-") for r in records),
    ]
    index = folder / "index.db"
    result: dict[str, Any] = {"hosts": hosts}
    for label, batch in (("first", first), ("next", night)):
        path = folder / f"{label}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in batch)
        usage = folder / f"{label}-usage.json"
        command = [cli(), "run", str(path), "--index", str(index), "-o", str(folder / "out.jsonl")]
        measure = [sys.executable, str(HERE / "measure.py"), str(usage), "--"]
        subprocess.run([*measure, *command, "-q"], check=True)
        measured = json.loads(usage.read_text())
        result[label] = {
            "pages": len(batch),
            "input_bytes": path.stat().st_size,
            "seconds": round(measured["seconds"], 2),
            "peak_rss_mb": round(measured["max_rss_kib"] / 1024),
        }
    info = subprocess.run([cli(), "index", "info", str(index)], capture_output=True, check=True)
    result["index"] = {**json.loads(info.stdout)["learned"], "file_bytes": index.stat().st_size}
    return result


def _print_scale(measured: dict[str, Any]) -> None:
    index = measured["index"]
    print(f"bp-dragnet at scale: every page on {measured['hosts']} hosts, run --index")
    for label in ("first", "next"):
        run = measured[label]
        print(
            f"  {label + ' night':11} {run['pages']:7,} pages {run['input_bytes'] / 1e6:7.1f} MB "
            f"{run['seconds']:8.2f} s {run['peak_rss_mb']:7,} MB peak RSS"
        )
    print(
        f"  index: {index['file_bytes'] / 1e6:.1f} MB, {index['lines']:,} learned lines, "
        f"{index['closing_sentences']:,} closing sentences, {index['marks']:,} marks\n"
    )


def load(name: str) -> list[dict[str, Any]]:
    with gzip.open(REALDATA / f"{name}.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def golds_decoded(pages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The pages, those whose gold is UTF-16 read as Latin-1 (a BOM "ÿþ", then a NUL after
    every character: three dragnet pages, all of whose lines otherwise count as
    boilerplate) with it as text, and how many there were. The NULs are dropped, not the
    gold decoded as UTF-16: one of them lost a byte midway, and UTF-16 misreads what follows;
    the few characters above Latin-1 (curly quotes, dashes) become two that split no word."""
    decoded = []
    for page in pages:
        gold = page.get("gold") or ""
        if gold.startswith("\xff\xfe"):
            gold = gold[2:].encode("latin-1").replace(b"\x00", b"").decode("latin-1")
            page = {**page, "gold": gold}
        decoded.append(page)
    return decoded, sum(a is not b for a, b in zip(pages, decoded, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument("--keep", metavar="DIR", help="write the page folders here and keep them")
    parser.add_argument(
        "--learn-args", default="", metavar="ARGS", help="more options for the learning run"
    )
    parser.add_argument(
        "--nightly", action="store_true", help="also the runs night after night with --index"
    )
    parser.add_argument(
        "--nightly-args",
        default="",
        metavar="ARGS",
        help="more options for the nightly runs (say '--learn-forget-after 3')",
    )
    parser.add_argument(
        "--scale", type=int, metavar="HOSTS", help="also dragnet's pages on HOSTS hosts each"
    )
    args = parser.parse_args()
    variants = {
        "corpus-clean": args.learn_args.split(),
        "corpus-clean --no-learn": ["--no-learn"],
    }
    results: dict[str, Any] = {"rule": RULE, "sets": {}}
    print(f"rule: {RULE}\n", file=sys.stderr)
    for name in args.sets:
        pages = load(name)
        with tempfile.TemporaryDirectory(prefix=f"realdata-{name}-") as tmp:
            root = Path(args.keep or tmp) / name
            if root.exists():
                shutil.rmtree(root)
            runs = [(label, root, extra, "source") for label, extra in variants.items()]
            paths = {"source": write_pages(pages, root)}
            if all(page.get("url") for page in pages):
                records = Path(args.keep or tmp) / f"{name}.jsonl"
                paths["id"] = write_records(pages, records)
                runs.insert(
                    1, ("corpus-clean, JSONL with url", records, variants["corpus-clean"], "id")
                )
            rows: dict[str, Any] = {}
            written: dict[str, list[list[str]]] = {}
            for label, inputs, extra, key in runs:
                try:
                    by_page, seconds = corpus_clean(inputs, extra, key)
                except subprocess.CalledProcessError as err:
                    print(f"{label}: {err.stderr.decode().strip()}", file=sys.stderr)
                    continue
                written[label] = [by_page.get(page, []) for page in paths[key]]
                rows[label] = {"seconds": round(seconds, 2), **_score(pages, written[label])}
            reference = recurring_lines_dropped(pages)
            rows["reference: same line on 2+ pages of a site"] = _score(pages, reference)
            decoded, garbled = golds_decoded(pages)
            if garbled and "corpus-clean" in written:
                scored = _score(decoded, written["corpus-clean"])
                also = (
                    f"{garbled} golds as text ({scored['boilerplate_lines']}/"
                    f"{scored['content_lines']})"
                )
                rows[f"corpus-clean, {also}"] = scored
                rows[f"reference, {also}"] = _score(decoded, reference)
            if args.nightly and all(page.get("url") for page in pages):
                measured = nightly(pages, Path(tmp) / "nightly", args.nightly_args.split())
                rows["run --index, one page of each site a night"] = measured[
                    "one_page_of_each_site_a_night"
                ]
                rows["run --index, edited copies the next night"] = measured[
                    "edited_copies_next_night"
                ]
        results["sets"][name] = rows
        _print(name, len(pages), len({p["site"] for p in pages}), rows)
        if args.scale and name == "bp-dragnet":
            with tempfile.TemporaryDirectory(prefix="realdata-scale-") as tmp:
                results["at_scale"] = at_scale(pages, args.scale, Path(tmp))
            _print_scale(results["at_scale"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


def _score(pages: list[dict[str, Any]], outputs: list[list[str]]) -> dict[str, Any]:
    if pages and "gold" in pages[0]:
        return score_gold(pages, outputs)
    return score_snippets(pages, outputs)


def _print(name: str, n_pages: int, n_sites: int, rows: dict[str, Any]) -> None:
    print(f"{name}: {n_pages} pages, {n_sites} sites")
    first = next(iter(rows.values()))
    if "boilerplate_left_pct" in first:
        print(
            f"  {'':46} {'boilerplate left %':>18} {'content lost %':>15} "
            f"{'of it on 2+ pages':>18} {'of it content on all its pages':>30} "
            f"(of {first['boilerplate_lines']} / "
            f"{first['content_lines']} lines; {first['content_recurring_pct']:.2f}% of "
            "content lines are on 2+ pages of their site)"
        )
        for label, row in rows.items():
            if "lines_lost" in row:
                print(
                    f"  {label}: of {row['pages']} pages, {row['pages_losing_lines']} lose "
                    f"{row['lines_lost']} lines the original kept ({row['content_lines_lost']} "
                    "of them content)"
                )
                continue
            left, lost = row["boilerplate_left_pct"], row["content_lost_pct"]
            recurring = row["content_lost_recurring_pct"]
            everywhere = row["content_lost_everywhere_pct"]
            print(f"  {label:46} {left:18.2f} {lost:15.2f} {recurring:18.2f} {everywhere:30.2f}")
            if "duplicates" in row:
                others = row["duplicates_of_another_article"]
                print(
                    f"  {'':46} written as duplicates: {row['duplicates']} pages, "
                    f"{len(others)} of another article ({', '.join(map(str, others)) or '-'}); "
                    f"index after the last night: {row['index_learned_lines']:,} learned "
                    f"lines, {row['index_bytes'] / 2**20:.2f} MiB"
                )
    else:
        print(
            f"  {'':46} {'without removed %: on 2+ pages':>30} {f'{MANY_PAGES}+ pages':>10} "
            f"{'their line':>11} {'all':>7} {'with lost':>10}\n  {'':46} (of "
            f"{first['without_recurring']:>28} {first['without_on_many_pages']:>10} "
            f"{'':>11} {first['without_in_scrape']:>7} {first['with_in_scrape']:>10})"
        )
        for label, row in rows.items():
            print(
                f"  {label:46} {row['recurring_without_removed_pct']:30.2f} "
                f"{row['many_pages_without_removed_pct']:10.2f} "
                f"{row['many_pages_lines_removed_pct']:11.2f} {row['without_removed_pct']:7.2f} "
                f"{row['with_lost']:10d}"
            )
    print()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
