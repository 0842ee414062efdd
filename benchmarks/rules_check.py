"""Check boilerplate rules against real pages: what each rule removes, content or not.

On the real-pages sets (``../shared/realdata``), every scrape line a rule removes (a
whole line, or a tail cut off one) is classed. Against the human-marked main text of
each page (dragnet, readability):

- **content**: the line's words stand, in order, in the gold text, or at least half of
  its word trigrams do (what the human kept);
- **boilerplate**: fewer than a fifth of its trigrams do and it is not in the gold text
  (for lines of one or two words: it is not in the gold text);
- **mixed**: the rest.

Against trafilatura's snippets: **content** when the line holds a snippet the main text
must keep (``with``) or stands inside one, **boilerplate** the same for a ``without``
snippet, **mixed** (unknown) otherwise.

A rule may remove (nearly) no content line. Usage::

    .venv/bin/python benchmarks/rules_check.py                     # the built-in rules
    .venv/bin/python benchmarks/rules_check.py --rules old.toml --no-builtin-rules
    .venv/bin/python benchmarks/rules_check.py --show content       # list those lines
    .venv/bin/python benchmarks/rules_check.py --glue               # glued-sentence repairs

Measures only; nothing here is timed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from realdata import REALDATA

from corpus_clean.options import CleanOptions
from corpus_clean.stages.clean import RuleSet, clean_text, load_rules

SETS = ("bp-dragnet", "bp-readability", "bp-trafilatura")
WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def trigrams(seq: list[str]) -> set[tuple[str, ...]]:
    return {tuple(seq[i : i + 3]) for i in range(len(seq) - 2)}


class Gold:
    """A page's gold text, ready to be asked whether a line is in it."""

    def __init__(self, text: str) -> None:
        seq = words(text)
        self.joined = " " + " ".join(seq) + " "
        self.trigrams = trigrams(seq)

    def classify(self, line: str) -> str:
        seq = words(line)
        if not seq:
            return "mixed"
        if " " + " ".join(seq) + " " in self.joined:
            return "content"
        grams = trigrams(seq)
        if not grams:
            return "boilerplate"
        share = len(grams & self.trigrams) / len(grams)
        if share >= 0.5:
            return "content"
        return "boilerplate" if share < 0.2 else "mixed"


class Snippets:
    """A page's ``with`` and ``without`` snippets (trafilatura's evaluation)."""

    def __init__(self, keep: list[str], drop: list[str]) -> None:
        self.keep = [" " + " ".join(words(s)) + " " for s in keep if words(s)]
        self.drop = [" " + " ".join(words(s)) + " " for s in drop if words(s)]

    def classify(self, line: str) -> str:
        seq = " " + " ".join(words(line)) + " "
        if seq.strip() and any(s in seq or seq in s for s in self.keep):
            return "content"
        if seq.strip() and any(s in seq or seq in s for s in self.drop):
            return "boilerplate"
        return "mixed"


def removals(rules: RuleSet, scrape: str) -> Iterator[tuple[str, str]]:
    """(rule, removed text) for every line or tail the rules remove from a page."""
    for raw in scrape.split("\n"):
        line = raw.strip()
        if not line:
            continue
        before = line
        line, rule = rules.cut_tail(line)
        while rule is not None:
            yield rule, before[len(line) :].strip()
            before = line
            line, rule = rules.cut_tail(line)
        if line and (rule := rules.line_rule(line)) is not None:
            yield rule, line


def glue_repairs(realdata: Path) -> int:
    """How many spaces the glued-sentence repair inserts on the real pages (each repaired
    line listed on stderr)."""
    no_rules = RuleSet([])
    total = 0
    for name in SETS:
        with gzip.open(realdata / f"{name}.jsonl.gz", "rt", encoding="utf-8") as pages:
            for page in map(json.loads, pages):
                for line in page["scrape"].split("\n"):
                    counts: Counter[str] = Counter()
                    repaired = clean_text(line, no_rules, counts=counts)
                    if counts["glued_sentences_split"]:
                        total += counts["glued_sentences_split"]
                        print(f"{name}\t{repaired[:200]}", file=sys.stderr)
    print(f"glued sentences split on {', '.join(SETS)}: {total}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--rules", action="append", default=[], type=Path, metavar="FILE")
    parser.add_argument("--no-builtin-rules", action="store_true")
    parser.add_argument("--show", choices=("content", "mixed", "boilerplate"))
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    parser.add_argument(
        "--glue", action="store_true", help="count (and list on stderr) the glue repairs instead"
    )
    args = parser.parse_args(argv)
    if args.glue:
        return glue_repairs(args.realdata)
    rules = load_rules(CleanOptions(tuple(args.rules), not args.no_builtin_rules))
    figures: dict[str, dict[str, Counter[str]]] = {}
    for name in SETS:
        path = args.realdata / f"{name}.jsonl.gz"
        per_rule: dict[str, Counter[str]] = {}
        with gzip.open(path, "rt", encoding="utf-8") as pages:
            for page in map(json.loads, pages):
                gold = (
                    Gold(page["gold"])
                    if "gold" in page
                    else Snippets(page["with"], page["without"])
                )
                for rule, text in removals(rules, page["scrape"]):
                    kind = gold.classify(text)
                    per_rule.setdefault(rule, Counter())[kind] += 1
                    if kind == args.show:
                        print(f"{name}\t{rule}\t{text[:160]}", file=sys.stderr)
        figures[name] = per_rule
    if args.json:
        out = {s: {r: dict(c) for r, c in sorted(f.items())} for s, f in figures.items()}
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'set':16} {'rule':24} {'content':>8} {'mixed':>6} {'boilerplate':>12}")
    for name, per_rule in figures.items():
        for rule in sorted(rule.name for rule in rules.rules):
            counts = per_rule.get(rule, Counter())
            print(
                f"{name:16} {rule:24} {counts['content']:8} {counts['mixed']:6}"
                f" {counts['boilerplate']:12}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
