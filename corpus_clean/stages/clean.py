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

from ..errors import CorpusCleanError
from ..options import CleanOptions, SplitOptions
from ..record import Record, Removal
from ..stats import Stats

BUILTIN_RULES = "rules.toml"
_ACTIONS = ("line", "tail")
_MATCHES = ("exact", "regex", "fuzzy", "folded")
_CONTEXTS = ("any", "beside", "run")

#: Letters of Latin script (ASCII, Latin-1, Latin Extended-A: "können.Bei der"), as
#: regex classes; Extended-A mixes cases, and counts as lowercase here.
_UPPER = "A-Z\u00c0-\u00d6\u00d8-\u00de"
_LOWER = "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u017f"
#: Where a glued sentence may be repaired: a stop (. ! ?), an optional closing quote,
#: then a capital letter ("layout.At the meeting"). Only a candidate: ``_glued_at``
#: decides, so the regex engine skips ahead to stops and the common case stays fast.
_GLUE_CANDIDATE = re.compile(f'[.!?][\u201d\u2019"]?(?=[{_UPPER}])')
#: What ends a sentence on the left of a sure glue: a word of at least two letters,
#: all lowercase or capitalized ("stage", "Center", "cross-disciplines", "yuan/ton"), or
#: a number ("44", "1,451", "25.6%"; not a lone digit), maybe in quotes or brackets; a
#: two-letter word only when it is an English one ("it", "up": not "np", "os"). A token with a dot
#: of its own ("U.S", "e.g", "os.path", "www.Example") or any other mix is an identifier,
#: an abbreviation or an address, and is left alone.
_SENTENCE_END = re.compile(
    "[(\\[\u201c\u2018\"']?"
    f"(?:(?=[{_UPPER}{_LOWER}]{{2}})[{_UPPER}]?[{_LOWER}]+(?:[-/][{_LOWER}]+)*"
    "|\\d[\\d,]*(?:\\.\\d+)?%?)"
    '[)\\]\u201d\u2019"]?'
)
#: A capitalized word, and the parts of a CamelCase one.
_CAPITALIZED = f"[{_UPPER}][{_LOWER}]+"
_CAPITALIZED_PART = re.compile(_CAPITALIZED)
#: What starts a sentence on the right: a capitalized word (parts of a CamelCase word
#: only when they are pinyin syllables: "GongJianZhang"), then more words: a space, or a
#: comma, a possessive or a hyphenated part before the space. "TestCase(", "Assert.",
#: "Array_x", "Foo=" and a word that ends the line are not sure.
_SENTENCE_START = re.compile(
    f"(?P<word>{_CAPITALIZED}(?:{_CAPITALIZED})*)(?:-[{_LOWER}]+)*"
    "(?:[\u2019']s)?[,;:]?\\s+[\\w\u201c\u2018\"'(]"
)
_PINYIN = re.compile(
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ueng|ang|eng|ing|ong|ian|iao|uai|uan|ai|ei|ao|ou|an|en|er|in|ia|ie"
    r"|iu|ua|uo|ui|un|ue|a|o|e|i|u|v)"
)
#: English words of two letters that end sentences; other two-letter tokens are more
#: often names in code ("np.Array", "os.Path") than words.
_SHORT_WORDS = frozenset(
    {"am", "an", "as", "at", "be", "by", "do", "go", "he", "in", "is", "it"}
    | {"me", "no", "of", "oh", "ok", "on", "or", "so", "to", "up", "us", "we"}
)
#: Domain endings and file extensions: after a dot they end a name ("Example.Com",
#: "File.Txt"), they do not start a sentence.
_NAME_ENDINGS = frozenset(
    {"com", "org", "net", "gov", "edu", "int", "mil", "info", "biz", "cn", "io", "uk", "de"}
    | {"txt", "pdf", "doc", "docx", "htm", "html", "xml", "json", "csv", "jpg", "png", "gif"}
    | {"zip", "exe", "py", "js", "ts", "md", "yaml", "toml", "cfg", "ini", "log", "tmp"}
)
#: Receivers of attribute access in code that also pass for words ("self.Assert and").
_CODE_RECEIVERS = frozenset({"self", "cls", "unittest"})
#: How far back a left token is looked for; a longer token is no word.
_LEFT_REACH = 48


def _glued_at(line: str, stop: re.Match[str]) -> bool:
    """True when the stop at ``stop`` surely ends one sentence glued to the next."""
    start, end = stop.span()
    before = line[max(0, start - _LEFT_REACH) : start]
    space = max(before.rfind(" "), before.rfind("\t"), before.rfind("\u3000"))
    if space < 0:  # no word before the token in reach: not prose, or no token at all
        return False
    left = before[space + 1 :]
    if not left or not _SENTENCE_END.fullmatch(left):
        return False
    word = left.strip("(\u201c\u2018\"')]\u201d\u2019")
    if word.lower() in _CODE_RECEIVERS:
        return False
    if len(word) == 2 and word.isalpha() and word.lower() not in _SHORT_WORDS:
        return False
    if len(word) == 1:  # an ordinal or a list number ("9.Auflage", "1.Introduction")
        return False
    if word[0].isupper() and not _deep_in_sentence(line, start - len(left)):
        return False
    right = _SENTENCE_START.match(line, end)
    if right is None:
        return False
    parts = _CAPITALIZED_PART.findall(right.group("word"))
    if len(parts) == 1 and parts[0].lower() in _NAME_ENDINGS:
        return False
    return len(parts) == 1 or all(_PINYIN.fullmatch(part.lower()) for part in parts)


def _deep_in_sentence(line: str, at: int) -> bool:
    """Whether ``at`` has a sentence's worth of words before it (four, since the last
    stop): a capitalized word ends a sentence there ("the Innovation Center.To meet"),
    not a class name ("The React.Component class")."""
    before = line[max(0, at - 200) : at]
    stop = max(before.rfind(". "), before.rfind("! "), before.rfind("? "))
    return len(before[stop + 1 :].split()) >= 4


def _repair_glued(line: str) -> tuple[str, int]:
    """The line with a space after every sure glued sentence end, and how many it got."""
    cuts = [stop.end() for stop in _GLUE_CANDIDATE.finditer(line) if _glued_at(line, stop)]
    if not cuts:
        return line, 0
    pieces = [line[i:j] for i, j in zip([0, *cuts], [*cuts, len(line)], strict=True)]
    return " ".join(pieces), len(cuts)


class RulesError(CorpusCleanError):
    """A rules file that cannot be used; the message names the file, the rule and the fix."""


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    match: str
    patterns: tuple[str, ...]
    min_score: float = 90.0
    #: "folded" rules only (the learned-boilerplate stage applies them, see stages/learn):
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


def clean_text(
    text: str,
    rules: RuleSet,
    removed: Counter[str] | None = None,
    *,
    glue_repair: bool = True,
    counts: Counter[str] | None = None,
    removals: list[Removal] | None = None,
) -> str:
    """Article text with boilerplate lines and tails removed and the layout normalized.

    Normalized means: Unicode NFC, no indentation, one paragraph per line with one blank
    line between paragraphs, and (with ``glue_repair``) sure glued sentences ("end.Next")
    given their space. Idempotent: cleaning clean text changes nothing. Removals are
    counted into ``removed`` by rule, repairs into ``counts`` (``glued_sentences_split``);
    ``removals``, when given, gets each removed line or tail in order (whitespace-only
    lines are layout, not removals, and are only counted).
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
        if glue_repair:
            line, glued = _repair_glued(line)
            if glued and counts is not None:
                counts["glued_sentences_split"] += glued
        # Until none is left: cutting one tail may bare another (a promo repeated twice),
        # and a second cleaning must not find anything more to cut.
        before = line
        line, tail_rule = rules.cut_tail(line)
        while tail_rule is not None:
            if removed is not None:
                removed[tail_rule] += 1
            if removals is not None:
                removals.append(("tail", before[len(line) :].strip(), tail_rule))
            before = line
            line, tail_rule = rules.cut_tail(line)
        if not line:
            continue
        rule = rules.line_rule(line)
        if rule is None:
            kept.append(line)
            continue
        if removed is not None:
            removed[rule] += 1
        if removals is not None:
            removals.append(("line", line, rule))
    return "\n\n".join(kept)


def clean_title(title: str) -> str:
    """A title on one line: NFC, inner whitespace runs folded to one space."""
    return " ".join(unicodedata.normalize("NFC", title).split())


class Cleaner:
    """The clean stage: every record's title and text cleaned, removals counted by rule.

    ``run`` is ``finish(clean(...))``; a stage that removes more (learned boilerplate)
    goes between the two, and appends what it removes to ``record.removed`` (a list when
    ``explain`` is on, else None). ``finish`` drops an article split from a page whose
    text is empty once cleaned (a title over nothing but boilerplate), counted as
    ``empty_articles_dropped``; a record the user gave is always written, even with an
    empty text: what it is, is theirs to say. With ``explain``, it also puts one entry in
    ``stats.explained`` per record that lost anything.
    """

    def __init__(self, rules: RuleSet, options: CleanOptions | None = None) -> None:
        options = options or CleanOptions()
        self.rules = rules
        self.glue_repair = options.glue_repair
        self.explain = options.explain

    def run(self, records: Iterable[Record], stats: Stats) -> Iterator[Record]:
        return self.finish(self.clean(records, stats), stats)

    def clean(self, records: Iterable[Record], stats: Stats) -> Iterator[Record]:
        for record in records:
            removals: list[Removal] | None = [] if self.explain else None
            text = clean_text(
                record.text,
                self.rules,
                stats.removed_by_rule,
                glue_repair=self.glue_repair,
                counts=stats.counts,
                removals=removals,
            )
            title = clean_title(record.title) if record.title is not None else None
            stats.add("records_cleaned")
            yield record.evolve(text=text, title=title, removed=removals)

    def finish(self, records: Iterable[Record], stats: Stats) -> Iterator[Record]:
        for record in records:
            dropped = not record.text and _split_from_page(record)
            if record.removed:
                stats.explained.append(_explain(record, record.removed, dropped))
            if dropped:
                stats.add("empty_articles_dropped")
                continue
            yield record if record.removed is None else record.evolve(removed=None)


def _split_from_page(record: Record) -> bool:
    """Whether the split stage made this record: its id is ``{source}#{n}`` (so this
    still holds when ``split | clean`` passes it through JSONL)."""
    source, _, number = record.id.rpartition("#")
    return source == record.source and number.isdigit()


def _explain(record: Record, removals: list[Removal], dropped: bool) -> dict[str, Any]:
    """The ``--explain`` entry of a record: what it lost, in order, and by which rule."""
    entry: dict[str, Any] = {
        "id": record.id,
        "source": record.source,
        "removed": [{kind: text, "rule": rule} for kind, text, rule in removals],
    }
    if dropped:
        entry["dropped"] = "empty_article"
    return entry


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
        add([*_split_rules(), *parse_rules(builtin, "<built-in rules>")], "<built-in rules>")
    for path in options.rule_files:
        try:
            content = Path(path).read_text("utf-8")
        except OSError as err:
            raise RulesError(f"{path}: cannot read rules file ({err.strerror})") from err
        except UnicodeDecodeError as err:
            raise RulesError(f"{path}: not UTF-8 text ({err.reason}); save it as UTF-8") from err
        add(parse_rules(content, str(path)), str(path))
    return RuleSet(rules)


def _split_rules() -> list[Rule]:
    """What the split stage cuts at, as line rules for text it did not split: its patterns
    are written once, in ``SplitOptions``."""
    split = SplitOptions()
    return [
        Rule("separator", "line", "regex", (split.separator,)),
        Rule("date_byline", "line", "regex", (split.byline,)),
    ]


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
        raise RulesError(f'{where}: needs a name = "..."')
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
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p.strip() for p in patterns)
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
        raise RulesError(f'{where}: site and context go with match = "folded" only')
    if site is not None and not isinstance(site, str):
        raise RulesError(f"{where}: site must be a string (a host, or a folder of pages)")
    if context not in _CONTEXTS:
        raise RulesError(f"{where}: context must be one of {', '.join(_CONTEXTS)}")
    return Rule(name, action, match, tuple(patterns), float(min_score), site, context)
