"""Boilerplate removal and layout normalization.

``clean_text(text, rules)`` is pure text-in, text-out; ``Cleaner`` is the stream stage
around it. The rules are data (see ``rules.toml``): built-in ones ship with the package,
users add their own in the same format with ``--rules FILE``.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from .options import CleanOptions
from .record import Record
from .stats import Stats

BUILTIN_RULES = "rules.toml"
_ACTIONS = ("line", "tail")
_MATCHES = ("exact", "regex", "fuzzy", "folded")
_CONTEXTS = ("any", "beside", "run")

#: A sentence end glued to the next sentence ("layout.At the meeting"): a lowercase
#: letter, digit, percent sign, bracket or closing quote, then . ! or ?, an optional
#: closing quote, and a capitalized word. Requiring a lowercase letter or digit before
#: the stop leaves "U.S.", "Ph.D." alone; requiring an uppercase+lowercase pair after
#: it leaves "Node.js", "3.14" and "e.g.x" alone; a capitalized domain is not a sentence.
_GLUED_SENTENCE = re.compile(
    # Starts with the stop itself, so the regex engine can skip ahead to candidates.
    r"[.!?](?<=[a-z0-9%)\u201d\u2019\"][.!?])[\u201d\u2019\"]?(?=[A-Z][a-z])"
    r"(?![A-Za-z]+\.(?:com|org|net|gov|edu|cn|io)\b)"
)


class RulesError(Exception):
    """A rules file that cannot be used; the message names the file, the rule and the fix."""


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    match: str
    patterns: tuple[str, ...]
    min_score: float = 90.0
    #: "folded" rules only (the learned-boilerplate stage applies them, see learn.py):
    #: the site they belong to (None: any), and where a line goes: "any" where it stands,
    #: "beside" where a neighbour is boilerplate too, "run" where both neighbours are.
    site: str | None = None
    context: str = "any"


class RuleSet:
    """Compiled rules: one dict lookup, one regex and a few fuzzy checks per line."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._exact: dict[str, str] = {}
        line_regexes: list[str] = []
        tail_regexes: list[str] = []
        self._group_rule: dict[str, str] = {}
        #: Regexes with groups of their own, kept apart: inside the combined expression
        #: their numbered backreferences would point elsewhere and their names could clash.
        self._apart: list[tuple[re.Pattern[str], str, str]] = []
        self._fuzzy: list[tuple[Rule, int]] = []
        for rule in self.rules:
            if rule.match == "folded":  # applied by the learned-boilerplate stage
                continue
            if rule.match == "exact" and rule.action == "line":
                for pattern in rule.patterns:
                    self._exact.setdefault(pattern.strip(), rule.name)
            elif rule.match == "fuzzy":
                longest = max(len(p) for p in rule.patterns)
                self._fuzzy.append((rule, longest + longest // 4))
            else:
                target = line_regexes if rule.action == "line" else tail_regexes
                for pattern in rule.patterns:
                    if rule.match == "regex" and re.compile(pattern).groups:
                        end = "" if rule.action == "line" else r"\s*$"
                        regex = re.compile(f"(?:{pattern}){end}")
                        self._apart.append((regex, rule.action, rule.name))
                        continue
                    group = f"_r{len(self._group_rule)}"
                    self._group_rule[group] = rule.name
                    body = re.escape(pattern) if rule.match == "exact" else pattern
                    target.append(f"(?P<{group}>{body})")
        self._line = re.compile("|".join(line_regexes)) if line_regexes else None
        self._tail = re.compile(f"(?:{'|'.join(tail_regexes)})\\s*$") if tail_regexes else None

    def line_rule(self, line: str) -> str | None:
        """Name of the rule that removes this whole (stripped) line, or None to keep it."""
        name = self._exact.get(line)
        if name is not None:
            return name
        if self._line is not None and (found := self._line.fullmatch(line)):
            return self._group_rule[str(found.lastgroup)]
        for regex, action, name in self._apart:
            if action == "line" and regex.fullmatch(line):
                return name
        for rule, max_len in self._fuzzy:
            if len(line) <= max_len and process.extractOne(
                line, rule.patterns, scorer=fuzz.ratio, score_cutoff=rule.min_score
            ):
                return rule.name
        return None

    def cut_tail(self, line: str) -> tuple[str, str | None]:
        """The line without a boilerplate tail, and the rule that cut it (or None)."""
        cut: tuple[int, str] | None = None
        if self._tail is not None and (found := self._tail.search(line)):
            cut = (found.start(), self._group_rule[str(found.lastgroup)])
        for regex, action, name in self._apart:
            found = regex.search(line) if action == "tail" else None
            if found is not None and (cut is None or found.start() < cut[0]):
                cut = (found.start(), name)
        if cut is None:
            return line, None
        return line[: cut[0]].rstrip(), cut[1]


def clean_text(text: str, rules: RuleSet, removed: Counter[str] | None = None) -> str:
    """Article text with boilerplate lines and tails removed and the layout normalized.

    Normalized means: Unicode NFC, no indentation, one paragraph per line with one blank
    line between paragraphs, and glued sentences ("end.Next") given their space.
    Idempotent: cleaning clean text changes nothing. Removals are counted into ``removed``.
    """
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    kept: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            if raw and removed is not None:
                removed["whitespace_only_line"] += 1
            continue
        line = _GLUED_SENTENCE.sub(r"\g<0> ", line)
        # Until none is left: cutting one tail may bare another (a promo repeated twice),
        # and a second cleaning must not find anything more to cut.
        line, tail_rule = rules.cut_tail(line)
        while tail_rule is not None:
            if removed is not None:
                removed[tail_rule] += 1
            line, tail_rule = rules.cut_tail(line)
        if not line:
            continue
        rule = rules.line_rule(line)
        if rule is None:
            kept.append(line)
        elif removed is not None:
            removed[rule] += 1
    return "\n\n".join(kept)


def clean_title(title: str) -> str:
    """A title on one line: NFC, inner whitespace runs folded to one space."""
    return " ".join(unicodedata.normalize("NFC", title).split())


class Cleaner:
    """The clean stage: every record's title and text cleaned, removals counted by rule."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def run(self, records: Iterable[Record], stats: Stats) -> Iterator[Record]:
        for record in records:
            text = clean_text(record.text, self.rules, stats.removed_by_rule)
            title = clean_title(record.title) if record.title is not None else None
            stats.add("records_cleaned")
            yield record.evolve(text=text, title=title)


def load_rules(options: CleanOptions) -> RuleSet:
    """The built-in rules (unless disabled) followed by the user's rule files."""
    rules: list[Rule] = []
    origin: dict[str, str] = {}

    def add(parsed: list[Rule], where: str) -> None:
        for rule in parsed:
            if rule.name in origin:
                raise RulesError(
                    f"{where}: rule name {rule.name!r} is already used in {origin[rule.name]}; "
                    "give each rule its own name"
                )
            origin[rule.name] = where
            rules.append(rule)

    if options.use_builtin_rules:
        builtin = resources.files("corpus_clean").joinpath(BUILTIN_RULES).read_text("utf-8")
        add(parse_rules(builtin, "<built-in rules>"), "<built-in rules>")
    for path in options.rule_files:
        try:
            content = Path(path).read_text("utf-8")
        except OSError as err:
            raise RulesError(f"{path}: cannot read rules file ({err.strerror})") from err
        except UnicodeDecodeError as err:
            raise RulesError(f"{path}: not UTF-8 text ({err.reason}); save it as UTF-8") from err
        add(parse_rules(content, str(path)), str(path))
    return RuleSet(rules)


def parse_rules(content: str, where: str) -> list[Rule]:
    """Rules from the TOML text of a rules file; ``RulesError`` says what to fix."""
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as err:
        raise RulesError(f"{where}: not valid TOML ({err})") from err
    entries = data.get("rule", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise RulesError(f"{where}: rules go in [[rule]] tables")
    return [_parse_rule(entry, f"{where}: rule {n}") for n, entry in enumerate(entries, 1)]


def _parse_rule(entry: dict[str, Any], where: str) -> Rule:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise RulesError(f"{where}: needs a name = \"...\"")
    where = f"{where} ({name})"
    action = entry.get("action", "line")
    match = entry.get("match", "exact")
    if action not in _ACTIONS:
        raise RulesError(f"{where}: action must be one of {', '.join(_ACTIONS)}")
    if match not in _MATCHES:
        raise RulesError(f"{where}: match must be one of {', '.join(_MATCHES)}")
    if action == "tail" and match == "fuzzy":
        raise RulesError(f"{where}: a tail rule matches by exact text or regex, not fuzzy")
    patterns = entry.get("patterns")
    if not isinstance(patterns, list) or not patterns or not all(
        isinstance(p, str) and p.strip() for p in patterns
    ):
        raise RulesError(f"{where}: patterns must be a non-empty list of non-empty strings")
    if match == "regex":
        for pattern in patterns:
            try:
                # Compiled as it will be used: one group of a combined expression (where,
                # for one, a global flag such as "(?i)" is an error; "(?i:...)" is fine).
                re.compile(f"(?:{pattern})")
            except re.error as err:
                raise RulesError(f"{where}: bad regular expression {pattern!r}: {err}") from err
    min_score = entry.get("min_score", 90)
    if not isinstance(min_score, int | float) or not 0 < min_score <= 100:
        raise RulesError(f"{where}: min_score must be a number in (0, 100]")
    site, context = entry.get("site"), entry.get("context", "any")
    if (site is not None or context != "any") and match != "folded":
        raise RulesError(f"{where}: site and context go with match = \"folded\" only")
    if site is not None and not isinstance(site, str):
        raise RulesError(f"{where}: site must be a string (a host, or a folder of pages)")
    if context not in _CONTEXTS:
        raise RulesError(f"{where}: context must be one of {', '.join(_CONTEXTS)}")
    return Rule(name, action, match, tuple(patterns), float(min_score), site, context)
