"""What was learned (``Learned``) and how it is removed from each record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from ...options import LearnOptions
from ...record import Record, Removal
from ...stats import Stats
from .sketch import Sketch
from .text import (
    fold,
    folded_lines,
    last_paragraph,
    learned_words,
    line_hashes,
    line_words,
    site_of,
    slug_words,
    stable_hash,
    url_field,
)

#: Rule names the removals of what ``fit`` learned are counted under.
LEARNED_LINE = "learned_line"
LEARNED_TAIL = "learned_tail"
#: The rule short lines that learned boilerplate cuts off from the article are counted
#: under (``Learned._islands``).
LEARNED_ISLAND = "learned_island"
#: How strongly a line is boilerplate: only where both neighbours are boilerplate, where
#: one is, or anywhere.
IN_RUN, BESIDE, ANYWHERE = 1, 2, 3
#: The same, as a rules file's ``context`` says it.
CONTEXTS = {"run": IN_RUN, "beside": BESIDE, "any": ANYWHERE}

Kind = Literal["line", "tail"]
#: A learned pattern: what it removes, of which site (None: of any), in folded form.
PatternKey = tuple[Kind, str | None, str]
#: The same with the stable hash of the folded text instead.
TextKey = tuple[Kind, str | None, int]


@dataclass(frozen=True)
class Pattern:
    """What is known of one learned pattern: its strength, the rule its removals are
    counted under, and on how many articles (copy clusters) and sites it was seen."""

    strength: int
    rule: str
    pages: int = 0
    sites: int = 0
    #: Heads the text of fewer than ``min_pages`` articles (an article's lead, listed in
    #: other pages' related lists): where it heads a text, it stays.
    lead: bool = False


@dataclass
class Learned:
    """Learned patterns, by site (None: any site) and stable hash of their folded form.
    Picklable: the pipeline hands it to every worker."""

    lines: dict[str | None, dict[int, Pattern]] = field(default_factory=dict)
    tails: dict[str | None, dict[int, Pattern]] = field(default_factory=dict)
    #: See ``LearnOptions``: what cuts a short line off from the article (``_islands``).
    prose_line: int = LearnOptions.prose_line
    island_line: int = LearnOptions.island_line
    island_run: int = LearnOptions.island_run
    #: See ``LearnOptions``: what makes a learned line its page's own headline.
    headline_words: int = LearnOptions.headline_words
    headline_share: float = LearnOptions.headline_share
    address_words: int = LearnOptions.address_words

    def __bool__(self) -> bool:
        return bool(self.lines or self.tails)

    def update(self, other: Learned) -> None:
        """Add another's patterns; where both know one, the stronger wins (ours on a tie).
        The other's thresholds (a fit's options) replace ours."""
        self.prose_line, self.island_line = other.prose_line, other.island_line
        self.island_run = other.island_run
        self.headline_words, self.headline_share = other.headline_words, other.headline_share
        self.address_words = other.address_words
        for mine, theirs in ((self.lines, other.lines), (self.tails, other.tails)):
            for site, patterns in theirs.items():
                into = mine.setdefault(site, {})
                for key, pattern in patterns.items():
                    if key not in into or pattern.strength > into[key].strength:
                        into[key] = pattern

    def run(
        self, records: Iterable[Record], stats: Stats, sketch: Sketch | None = None
    ) -> Iterable[Record]:
        """The stream stage: every record with its learned boilerplate removed. With the
        records' ``sketch`` (the fit pass made it), one none of whose lines and closing
        sentences was learned passes on as it is, its lines not folded again."""
        if sketch is None:
            for record in records:
                yield self.apply(record, stats)
            return
        touched = self._touched(sketch)
        for i, record in enumerate(records):
            yield self.apply(record, stats) if touched[i] else record

    def _touched(self, sketch: Sketch) -> np.ndarray:
        """Per sketched record, whether a line or closing sentence of it is a pattern of
        some site (``apply`` then sees whether of its own)."""
        n = len(sketch.sites)
        touched = np.zeros(n, dtype=bool)
        for table, hashes, record_of in (
            (self.lines, sketch.hashes, None),
            (self.tails, sketch.tails, np.arange(2 * n) // 2),
        ):
            known = np.fromiter(
                (h for patterns in table.values() for h in patterns), dtype=np.uint64
            )
            hit = np.flatnonzero(np.isin(np.frombuffer(hashes, dtype=np.uint64), known))
            if record_of is None:
                counts = np.frombuffer(sketch.line_counts, dtype=np.uint32).astype(np.int64)
                record_of = np.repeat(np.arange(n), counts)
            touched[record_of[hit]] = True
        return touched

    def apply(self, record: Record, stats: Stats | None = None) -> Record:
        """The record without the learned lines and closing sentences of its site, and
        without the short lines that learned boilerplate cuts off from the article
        (``_islands``).

        Idempotent: removing a line never makes another removable (a line kept because
        a neighbour is not boilerplate keeps that neighbour), cutting repeats until
        nothing is left to cut, and what is left holds no run of learned lines long
        enough to cut a line off (a run of three has a middle line that goes).
        """
        site = site_of(record)
        lines, folded = folded_lines(record.text)
        hashes = line_hashes(folded)
        own, anywhere = self.lines.get(site, {}), self.lines.get(None, {})
        has_tails = site in self.tails or None in self.tails
        if not has_tails and not any(h in own or h in anywhere for h in hashes):
            return record  # most articles: nothing of theirs was learned
        removed: Counter[tuple[str, PatternKey]] = Counter()
        # With --explain, what goes is listed with the record (see clean.Cleaner).
        removals = None if record.removed is None else list(record.removed)
        # Each line's position in the record's text: islands are found among them all.
        origin = list(range(len(lines)))
        url = url_field(record)
        lines, hashes, origin = self._settle(
            site, url, lines, hashes, origin, has_tails, removed, removals
        )
        # Fewer lines went than a run that cuts one off needs (most articles): no islands.
        island = (
            self._islands(origin, list(map(len, folded)), lines, url)
            if len(folded) - len(origin) >= self.island_run
            else None
        )
        if island is not None and any(island[i] for i in origin):
            at = [k for k, i in enumerate(origin) if island[i]]
            for k in at:
                removed[LEARNED_ISLAND, ("line", site, fold(lines[k]))] += 1
                if removals is not None:
                    removals.append(("line", lines[k], LEARNED_ISLAND))
            stay = [k for k, i in enumerate(origin) if not island[i]]
            lines, hashes = [lines[k] for k in stay], [hashes[k] for k in stay]
            origin = [origin[k] for k in stay]
            lines, hashes, origin = self._settle(
                site, url, lines, hashes, origin, has_tails, removed, removals
            )
        if not removed:
            return record
        if stats is not None:
            for (rule, key), n in removed.items():
                stats.removed_by_rule[rule] += n
                if rule != LEARNED_ISLAND:  # a line of one page: no pattern
                    stats.removed_by_pattern[key] += n
        return record.evolve(text="\n\n".join(lines), removed=removals)

    def _settle(
        self,
        site: str,
        url: str | None,
        lines: list[str],
        hashes: list[int],
        origin: list[int],
        has_tails: bool,
        removed: Counter[tuple[str, PatternKey]],
        removals: list[Removal] | None,
    ) -> tuple[list[str], list[int], list[int]]:
        """Learned lines and closing sentences removed until none is left to remove."""
        changed = True
        while changed and lines:
            changed = False
            kept = self._kept_lines(site, url, lines, hashes, removed, removals)
            if len(kept) != len(lines):
                lines, hashes = [lines[i] for i in kept], [hashes[i] for i in kept]
                origin = [origin[i] for i in kept]
                changed = True
            at, starts = last_paragraph(lines) if has_tails else (-1, [])
            cut = self._cut_tail(site, lines[at], starts, removed, removals) if starts else None
            if cut is not None:
                lines[at], hashes[at], changed = cut, stable_hash(fold(cut)), True
        return lines, hashes, origin

    def _names_address(self, words: Set[str], url: str | None) -> bool:
        """Whether a line of these words is the headline the record's url is named
        after (``address_words`` or more, ``headline_share`` of them in its slug)."""
        if url is None or len(words) < self.address_words:
            return False
        return len(words & slug_words(url)) >= self.headline_share * len(words)

    def _islands(
        self, origin: list[int], lengths: list[int], lines: list[str], url: str | None
    ) -> list[bool]:
        """Per line of the text, whether it is a short line (under ``island_line`` bytes)
        that stays but is cut off from every line of prose (``prose_line`` bytes or more,
        not learned) by a run of at least ``island_run`` learned lines that went: a
        headline of a related list, a date or a tag among the site's chrome. Comments
        between "Reply" links, a caption between paragraphs, and every line of a text
        without prose stay; so do the text's first line (a page's title) and a line
        most of whose words the prose holds or the url's slug names (the article's own
        headline, away from it among the chrome). ``lines`` are the lines that stay, as
        ``origin`` places them."""
        n = len(lengths)
        gone = [True] * n
        for i in origin:
            gone[i] = False
        prose = [not gone[i] and lengths[i] >= self.prose_line for i in range(n)]
        if not any(prose):
            return [False] * n
        apart = [True] * n
        apart[0] = False
        for order in (range(n), range(n - 1, -1, -1)):
            run = longest = 0
            seen = False
            for i in order:
                if gone[i]:
                    run += 1
                    longest = max(longest, run)
                    continue
                run = 0
                # Prose on this side, and no long run of chrome between: not cut off.
                if seen and longest < self.island_run:
                    apart[i] = False
                if prose[i]:
                    seen, longest = True, 0
        island = [apart[i] and not gone[i] and lengths[i] < self.island_line for i in range(n)]
        if any(island):
            text = dict(zip(origin, lines, strict=True))
            known = set().union(*(line_words(text[i]) for i in range(n) if prose[i]))
            for i in range(n):
                if island[i] and len(words := line_words(text[i])) >= 2:
                    island[i] = 2 * len(words & known) < len(words) and not (
                        self._names_address(words, url)
                    )
        return island

    def _find(
        self, table: dict[str | None, dict[int, Pattern]], site: str, folded_hash: int
    ) -> tuple[str | None, Pattern] | None:
        """The pattern of this site, or of any site, for a hash (the stronger one)."""
        own = table.get(site, {}).get(folded_hash)
        anywhere = table.get(None, {}).get(folded_hash)
        if own is not None and (anywhere is None or own.strength >= anywhere.strength):
            return site, own
        return (None, anywhere) if anywhere is not None else None

    def _kept_lines(
        self,
        site: str,
        url: str | None,
        lines: list[str],
        hashes: list[int],
        removed: Counter[tuple[str, PatternKey]],
        removals: list[Removal] | None,
    ) -> list[int]:
        """Which lines (their positions) stay: the others are learned boilerplate here.
        ``url``: the record's (``url_field``), whose slug may name its headline."""
        found = [self._find(self.lines, site, h) for h in hashes]
        strength = [0 if f is None else f[1].strength for f in found]
        # Beyond either end of the text counts as boilerplate: a related list may end a page.
        padded = [ANYWHERE, *strength, ANYWHERE]
        kept = []
        prose: set[str] | None = None  # the words of the page's prose, once asked for
        stayed: set[int] = set()  # learned lines that stay, by hash
        for i, line in enumerate(lines):
            hit = found[i]
            learned_before, learned_after = padded[i] > 0, padded[i + 2] > 0
            heads_text = i == 0 and hit is not None and hit[1].lead and padded[2] == 0
            if hit is None or heads_text:  # an article's lead, above its text
                kept.append(i)
                if heads_text:
                    stayed.add(hashes[i])
                continue
            goes = (
                strength[i] == ANYWHERE
                or (strength[i] == BESIDE and (_chrome(padded, i) or _chrome(padded, i + 2)))
                or (learned_before and learned_after)
            )
            if goes and hashes[i] not in stayed:  # the page's own headline stays once
                words = learned_words(line)
                enough = self.headline_share * len(words)
                goes = not self._names_address(words, url)
                if goes and len(words) >= self.headline_words:
                    if prose is None:
                        prose = self._prose_words(lines, found)
                    goes = len(words & prose) < enough
            if not goes:
                kept.append(i)
                stayed.add(hashes[i])
                continue
            removed[hit[1].rule, ("line", hit[0], fold(line))] += 1
            if removals is not None:
                removals.append(("line", line, hit[1].rule))
        return kept

    def _prose_words(
        self, lines: list[str], found: list[tuple[str | None, Pattern] | None]
    ) -> set[str]:
        """The words of the lines of prose (``prose_line`` UTF-8 bytes or more) that no
        pattern names: the article's own, which its headline and lead share."""
        return set().union(
            *(
                line_words(line)
                for line, hit in zip(lines, found, strict=True)
                if hit is None and len(line.encode("utf-8", "surrogatepass")) >= self.prose_line
            )
        )

    def _cut_tail(
        self,
        site: str,
        paragraph: str,
        starts: list[int],
        removed: Counter[tuple[str, PatternKey]],
        removals: list[Removal] | None,
    ) -> str | None:
        """The paragraph without its learned closing sentence(s), or None if it has none.
        Two sentences are tried before one: the longer learned tail is cut whole."""
        for start in reversed(starts):
            tail = fold(paragraph[start:])
            hit = self._find(self.tails, site, stable_hash(tail))
            if hit is not None:
                removed[hit[1].rule, ("tail", hit[0], tail)] += 1
                if removals is not None:
                    removals.append(("tail", paragraph[start:].strip(), hit[1].rule))
                return paragraph[:start].rstrip()
        return None

    @classmethod
    def from_rules(cls, rules: Iterable[RuleLike]) -> Learned:
        """Patterns pinned in a rules file (``match = "folded"``), as ``learn`` writes them."""
        learned = cls()
        for rule in rules:
            table = learned.lines if rule.action == "line" else learned.tails
            into = table.setdefault(rule.site, {})
            strength = CONTEXTS[rule.context]
            for text in rule.patterns:
                into.setdefault(stable_hash(fold(text)), Pattern(strength, rule.name))
        return learned


def _chrome(padded: list[int], j: int) -> bool:
    """Whether the line at ``padded[j]`` (strengths, the ends padded with ``ANYWHERE``) is
    boilerplate for a line beside it to go with: a line that goes wherever it stands or
    beside others, or a headline that goes here (between two learned lines); a headline
    that stays (above a byline) is none."""
    if padded[j] >= BESIDE:
        return True
    return padded[j] == IN_RUN and padded[j - 1] > 0 and padded[j + 1] > 0


class RuleLike(Protocol):
    """What ``Learned.from_rules`` reads of a rule (clean.Rule has these attributes)."""

    @property
    def name(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def site(self) -> str | None: ...
    @property
    def context(self) -> str: ...
    @property
    def patterns(self) -> Sequence[str]: ...
