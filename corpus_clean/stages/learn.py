"""Learned boilerplate: what recurs across many *different* articles of a site.

No rule names a site's menu, footer or promo sentence, yet each stands on most of its
pages. ``fit`` sees every article first (as ``sketch`` gives it: stable hashes of its
lines and of its long lines' sentences, nothing else) and learns which lines, and which
closing sentences of a last paragraph, recur; ``Learned.apply`` then removes them from
each record, counting every removal.

- Reposts never count: articles that share at least half of their long-line characters
  are one copy cluster (union-find), and recurrence is the number of distinct clusters.
  Long lines are compared sentence by sentence, so a copy with a word changed, or with
  another site's promo appended to its last paragraph, still shares all the rest. A
  short article (no long line of its own: a poem, a list) is a copy of one whose lines
  differ from its own in one line, if they share a line not on most pages of the site.
- A site is the host of a record's url (its ``url`` field, else that of its
  ``metadata`` or ``meta`` object: dolma, datatrove, RedPajama), else the folder of its
  ``source``.
- A line of a site is learned when ``min_pages`` different articles of the site hold
  it. Where it stands next to a line that is not learned (the article), it is
  *anchored*. One anchored on many of its articles (a menu's last item above every
  headline, "Share this:" under every article, a byline) goes wherever it stands; one
  anchored on a few goes where a neighbour is learned too; the others (a headline,
  anchored on its own page only and listed among other headlines elsewhere) go only
  where both neighbours are learned, so they stay on their page. One anchored on many
  but on few of the site's articles, and on no other site (a byline, a date line), goes
  only where a neighbour is learned too: between a headline and the article it stays.
  A headline that stays is no such neighbour.
- A learned line most of whose words (``headline_words`` or more) stand in its page's
  prose, or (``address_words`` or more) in the slug of its url (the path's segment
  with the most words: ``/2012/11/05/lessons-from-a-marathon-not-run/``), is that
  article's own headline or lead, in a list among the chrome: its first occurrence on
  the page stays.
- A short line that is not learned but that long runs of learned lines cut off from
  every line of prose on its page (a related list's headline, a date, a tag among the
  chrome) goes too, unless it is the text's first line or most of its words are the
  prose's or its url's slug (the article's own headline).
- A line on ``min_sites`` different sites is learned across the whole input: it goes
  where a neighbour is learned too, or anywhere if it seldom stands between two lines
  that are not learned (a heading such as "Conclusion" does, "Impressum" does not).
- A closing sentence of the last paragraph on ``min_pages`` different articles of a
  site is its promo tail, cut wherever it ends a last paragraph.
- With an index, what earlier runs saw counts too (``fit_with``'s ``prior``): every
  line shorter than prose seen on one article is kept there, so one page of a site a
  night is enough, and so are each article's marks (``_marks``: a few hashes of its own
  sentences; of a short article, the keys of its lines less one), by which a later run
  knows its copies, edited or not, as the same article.
- Lines are compared folded (``fold``): NFC, casefolded, whitespace runs as one space;
  lines longer than ``FOLD_MAX`` characters as they are (after cleaning: NFC and
  stripped), since folding is the costly part and a long line hardly ever recurs in
  another spelling. Digits are kept: folded, every comment's timestamp ("November 12,
  2012 at 7:40 pm") recurs, and the real pages lost three times the article lines.
  No word splitting: Chinese works as well.
"""

from __future__ import annotations

import array
import functools
import itertools
import json
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence, Set
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import SplitResult, unquote, urlsplit

import numpy as np
import xxhash

from .._fast import fold_lines, last_sentences, sentence_starts, sketch_texts
from ..options import LearnOptions
from ..record import Record, Removal
from ..stats import Stats

#: Lines up to this many characters are folded before they are compared.
FOLD_MAX = 100
#: Characters a closing sentence needs to be learned as a promo tail, and the most
#: that the closing sentences learned as one may have.
MIN_TAIL = 4
TAIL_WINDOW = 240
#: Lines from the end of a text in which its last paragraph (of two or more sentences,
#: where a promo tail is looked for) is looked for.
TAIL_LINES = 12
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


def fold(line: str) -> str:
    """The form lines are compared in (see the module's docstring)."""
    if len(line) > FOLD_MAX:
        return line
    if not unicodedata.is_normalized("NFC", line):
        line = unicodedata.normalize("NFC", line)
    return " ".join(line.casefold().split())


def stable_hash(folded: str) -> int:
    """64 bits that are the same in every process and run (never 0: 0 means none)."""
    return xxhash.xxh3_64_intdigest(folded.encode("utf-8", "surrogatepass")) or 1


def folded_lines(text: str) -> tuple[list[str], list[bytes]]:
    """A text's ``paragraphs`` and the UTF-8 of each one's ``fold`` (in C for lines of
    ASCII, Han and CJK punctuation: every line of every article is folded in both
    passes)."""
    lines, folded = fold_lines(text, FOLD_MAX)
    if None in folded:
        for i, key in enumerate(folded):
            if key is None:
                folded[i] = _folded_utf8(lines[i])
    return lines, folded  # type: ignore[return-value]  # no None is left


def line_hashes(folded: list[bytes]) -> list[int]:
    """``stable_hash`` of each folded line, as ``folded_lines`` gives them."""
    hashes = list(map(xxhash.xxh3_64_intdigest, folded))
    if 0 in hashes:  # as good as never: 0 means none
        hashes = [h or 1 for h in hashes]
    return hashes


#: Words a headline is compared with its article's prose by: runs of four or more
#: letters (shorter ones are most often function words), and in scripts written
#: without spaces (Han, kana) every two characters in a row.
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W\d_]{4,}")
_SPACELESS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: ``_WORD`` in ASCII text, where it is this, found in half the time (1.2 µs against 2.6
#: for a line of 45 characters).
_ASCII_WORD = re.compile(r"[a-z]{4,}")


@functools.lru_cache(maxsize=8192)
def _learned_words(line: str) -> frozenset[str]:
    """``_words`` of a learned line, worked out once: such lines recur on many pages (on
    the dragnet pages, 67,188 of the 90,760 times ``_words`` was asked)."""
    return frozenset(_words(line))


def _words(line: str) -> set[str]:
    """The words of a line (see ``_WORD``), casefolded."""
    if line.isascii():
        return set(_ASCII_WORD.findall(line.lower()))
    found: set[str] = set()
    for word in _WORD.findall(line.casefold()):
        if _SPACELESS.match(word):
            found.update(word[k : k + 2] for k in range(max(1, len(word) - 1)))
        else:
            found.add(word)
    return found


#: The objects a record's url may stand in when it has no ``url`` field: dolma's and
#: datatrove's ``metadata``, RedPajama's ``meta``.
URL_HOLDERS = ("metadata", "meta")


def _url_field(record: Record) -> str | None:
    """The record's url: its ``url`` field, else the ``url`` of the first of its
    ``URL_HOLDERS`` that has one; None if that is no string."""
    meta = record.meta
    if not meta:  # a page file's articles: no fields beyond ours
        return None
    url = meta.get("url")
    for holder in URL_HOLDERS:
        if url is None and isinstance(inner := meta.get(holder), dict):
            url = inner.get("url")
    return url if isinstance(url, str) else None


def _split_url(url: str | None) -> SplitResult | None:
    """A url split; None for none, or where it is no url at all (a scrape's
    ``http://[broken`` must not stop the run: the record has no url then)."""
    if url is None:
        return None
    try:
        return urlsplit(url)
    except ValueError:
        return None


def site_of(record: Record) -> str:
    """The host of the record's url (``_url_field``) when it has one, else its source's
    folder."""
    url = _split_url(_url_field(record))
    if url is not None and (host := url.hostname):
        return host.removeprefix("www.")
    return os.path.dirname(record.source)


@functools.lru_cache(maxsize=1024)
def _slug_words(url: str) -> frozenset[str]:
    """The words (``_words``) of a url's slug: most sites name an article's address
    after its headline. The slug is the segment of the url's path with the most words
    (some sites put dates and an id after it); a folder such as ``/category/`` is not
    the page's own. Asked only where a learned line would go; kept for the other
    articles of the page, which share its url."""
    parts = _split_url(url)
    if parts is None:
        return frozenset()
    slug = max((_words(unquote(part)) for part in parts.path.split("/")), key=len)
    return frozenset(slug)


def _sites_of(records: Iterable[Record]) -> list[str]:
    """``site_of`` of each record, worked out once per source and url (a page's articles
    share them). Keyed by the source alone where there is no url: no tuple per record."""
    known: dict[str | tuple[str, str], str] = {}
    sites = []
    for record in records:
        url = _url_field(record)
        key = (url, record.source) if url is not None else record.source
        site = known.get(key)
        if site is None:
            site = known[key] = site_of(record)
        sites.append(site)
    return sites


def _folded_utf8(line: str) -> bytes:
    """What ``folded_lines`` gives for a line its C leaves to Python."""
    return fold(line).encode("utf-8", "surrogatepass")


def paragraphs(text: str) -> list[str]:
    """A cleaned text's lines (one paragraph each; cleaning puts a blank line between)."""
    return [line for line in text.split("\n") if line.strip()]


def closing_sentences(paragraph: str) -> list[int]:
    """Where the last and the last two sentences of a paragraph start (at most two offsets,
    last sentence first), within its last ``TAIL_WINDOW`` characters; none for a
    paragraph of one sentence.

    A sentence ends at a stop (. ! ?), any closing quotes or brackets, then space, or a
    Han character (a Chinese promo glued to an English paragraph); at a CJK stop and its
    closers, space or not. What follows is a sentence when it has ``MIN_TAIL`` characters
    or more and a letter or digit (a closing quote after a space is none). In C: this is
    looked for in the last paragraphs of every article.
    """
    return sentence_starts(paragraph, max(0, len(paragraph) - TAIL_WINDOW), MIN_TAIL)


def last_paragraph(lines: list[str]) -> tuple[int, list[int]]:
    """The article's last paragraph: the last of the last ``TAIL_LINES`` lines that has
    closing sentences (what follows is a related list's titles and leads, a caption:
    lines of one sentence), with its ``closing_sentences``; (-1, []) if there is none. In
    C: this is looked for in every article."""
    return last_sentences(lines, TAIL_LINES, TAIL_WINDOW, MIN_TAIL)


@dataclass
class Sketch:
    """What ``fit`` needs of a batch of records: per record its site, the stable hash and
    length of each line, and the hashes of its closing sentences (0: none); and the
    *pieces* of its long lines (of ``long_line`` bytes or more), by which copies of an
    article are told from different articles: each sentence's stable hash and length in
    bytes (in C: ``_fast.sketch_texts``; a sentence ends at a stop . ! ?, any closing
    quotes or brackets, then whitespace or a Han character; or at a CJK stop and its
    closers). A copy with a word changed, or with its site's promo appended to its last
    paragraph, keeps all the other sentences of those lines as they were."""

    long_line: int = LearnOptions.long_line
    sites: list[str] = field(default_factory=list)
    line_counts: array.array[int] = field(default_factory=lambda: array.array("I"))
    hashes: array.array[int] = field(default_factory=lambda: array.array("Q"))
    lengths: array.array[int] = field(default_factory=lambda: array.array("I"))
    tails: array.array[int] = field(default_factory=lambda: array.array("Q"))
    #: The hash of the paragraph the closing sentences end (0: none).
    tail_lines: array.array[int] = field(default_factory=lambda: array.array("Q"))
    piece_counts: array.array[int] = field(default_factory=lambda: array.array("I"))
    pieces: array.array[int] = field(default_factory=lambda: array.array("Q"))
    piece_lengths: array.array[int] = field(default_factory=lambda: array.array("I"))

    @classmethod
    def of(cls, records: Iterable[Record], long_line: int = LearnOptions.long_line) -> Sketch:
        """The sketch of the records: their lines folded (``folded_lines``), hashed
        (``line_hashes``), measured in bytes and cut into pieces, and their
        ``last_paragraph``'s closing sentences folded and hashed, in one pass of C over
        each text, since every article is sketched."""
        records = list(records)
        line_counts, hashes, lengths, tails, tail_lines, piece_counts, pieces, piece_lengths = (
            sketch_texts(
                [record.text for record in records],
                FOLD_MAX,
                TAIL_LINES,
                TAIL_WINDOW,
                MIN_TAIL,
                long_line,
                _folded_utf8,
                xxhash.xxh3_64_intdigest,
            )
        )
        return cls(
            long_line,
            _sites_of(records),
            array.array("I", line_counts),
            array.array("Q", hashes),
            # Bytes measure length alike in every script: a Han character, which says about
            # what an English word says, counts three.
            array.array("I", lengths),
            array.array("Q", tails),
            array.array("Q", tail_lines),
            array.array("I", piece_counts),
            array.array("Q", pieces),
            array.array("I", piece_lengths),
        )


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
        url = _url_field(record)
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
        return len(words & _slug_words(url)) >= self.headline_share * len(words)

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
            known = set().union(*(_words(text[i]) for i in range(n) if prose[i]))
            for i in range(n):
                if island[i] and len(words := _words(text[i])) >= 2:
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
        ``url``: the record's (``_url_field``), whose slug may name its headline."""
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
                words = _learned_words(line)
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
                _words(line)
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


def fit(sketches: Iterable[Sketch], options: LearnOptions) -> Learned:
    """Learn the boilerplate of every site from sketches of all the input's records (in
    input order). Deterministic: only stable hashes and sorted arrays decide."""
    return fit_with(sketches, options, None)[0]


@dataclass(frozen=True)
class Wanted:
    """What a run's learning asks an index for (``Prior``): the rows of its sites, of
    its lines on any site (a line on many sites is learned across them), of its sites'
    closing sentences and of its articles' marks (mark 0: a site's pages). Hashes as
    int64 (the index's), sorted, once each; closing sentences and marks as pairs of
    arrays, a site (a number among ``sites``) and a hash, sorted by site then hash."""

    sites: list[str]
    lines: np.ndarray
    tails: tuple[np.ndarray, np.ndarray]
    marks: tuple[np.ndarray, np.ndarray]


class Prior(Protocol):
    """Where what earlier runs saw is read from (an index)."""

    def learned_evidence(self, wanted: Wanted | None = None) -> Evidence:
        """Every row, or those ``wanted`` asks for: an index holds dozens of rows for
        every page it took, a run needs those of its own input."""
        ...


@dataclass
class Learning:
    """Learning as its stage's fit hook (``stages.Fit``): a ``Sketch`` of each batch, then
    what every sketch teaches (``fit_with``), counted with what earlier runs saw
    (``prior``); ``evidence`` is then what the index keeps for the next run."""

    options: LearnOptions
    prior: Prior | None = None
    evidence: Evidence | None = None

    def sketch(self, records: Sequence[Record]) -> Sketch:
        return Sketch.of(records, self.options.long_line)

    def fit(self, sketches: list[Sketch]) -> Learned:
        learned, self.evidence = fit_with(sketches, self.options, self.prior)
        return learned


def fit_with(
    sketches: Iterable[Sketch], options: LearnOptions, prior: Prior | None
) -> tuple[Learned, Evidence | None]:
    """``fit``, counting what earlier runs saw (``prior``, from an index) with what the
    input holds; with a prior, also the merged evidence to keep for the next run."""
    parts = list(sketches)
    sites = [site for part in parts for site in part.sites]
    n = len(sites)
    learned = Learned(
        prose_line=options.prose_line,
        island_line=options.island_line,
        island_run=options.island_run,
        headline_words=options.headline_words,
        headline_share=options.headline_share,
        address_words=options.address_words,
    )
    if n == 0:
        return learned, (Evidence.empty() if prior is not None else None)
    counts = np.concatenate([np.frombuffer(p.line_counts, np.uint32) for p in parts])
    hashes = np.concatenate([np.frombuffer(p.hashes, np.uint64) for p in parts])
    lengths = np.concatenate([np.frombuffer(p.lengths, np.uint32) for p in parts])
    tails = np.concatenate([np.frombuffer(p.tails, np.uint64) for p in parts]).reshape(n, 2)
    tail_lines = np.concatenate([np.frombuffer(p.tail_lines, np.uint64) for p in parts])
    names, site_ids = _site_numbers(sites)
    record_of = np.repeat(np.arange(n, dtype=np.int64), counts.astype(np.int64))
    piece_counts = np.concatenate([np.frombuffer(p.piece_counts, np.uint32) for p in parts])
    pieces = _Pieces(
        np.concatenate([np.frombuffer(p.pieces, np.uint64) for p in parts]),
        np.concatenate([np.frombuffer(p.piece_lengths, np.uint32) for p in parts]),
        # Four bytes a record number: there are ten sentences for every record.
        np.repeat(np.arange(n, dtype=np.uint32), piece_counts.astype(np.int64)),
    )
    cluster, own_min, travelling, edits = _copy_clusters(
        hashes, lengths, record_of, pieces, site_ids, options
    )
    merger = None
    if prior is not None:
        marks = _marks(pieces, site_ids, edits, options)
        seen = prior.learned_evidence(_wanted(names, site_ids, hashes, tails, marks))
        merger = _Merger(seen, names, _cluster_keys(cluster, own_min, hashes, record_of))
        cluster = merger.adopt(site_ids, cluster, marks, options)
    del edits  # not held through the learning of lines, the fit's peak
    site_clusters = _distinct_per_pair(site_ids.astype(np.int64), cluster, len(names))
    if merger is not None:
        site_clusters = merger.site_clusters(site_ids, site_clusters)
    _learn_lines(
        learned,
        names,
        site_ids,
        record_of,
        hashes,
        lengths,
        cluster,
        site_clusters,
        options,
        travelling,
        merger,
    )
    record_ids = np.arange(n, dtype=np.int64)
    # The closing sentences of a reposted article's paragraph are the article's too.
    article_end = np.isin(tail_lines, travelling)
    for k in range(2):
        has = (tails[:, k] != 0) & ~article_end
        tail_clusters = cluster[record_ids[has]]
        _learn_tails(
            learned,
            names,
            site_ids[has],
            tails[has, k],
            tail_clusters,
            site_clusters,
            options,
            merger,
            record_ids[has],
        )
    return learned, (merger.evidence() if merger is not None else None)


#: Copy clusters an index keeps of each recurring line, closing sentence and site (the
#: smallest keys: beyond that many, the count is estimated from them).
EVIDENCE_KEYS = 32
#: No cluster key: pads a row of keys (it sorts last).
NO_KEY = np.uint64(2**64 - 1)
#: Kinds of evidence rows: a line of a site, a closing sentence of a site, the site, and
#: a mark of an article of a site (see ``_marks``).
LINE_ROW, TAIL_ROW, SITE_ROW, MARK_ROW = 0, 1, 2, 3
#: An article's marks: its smallest sentence hashes of its own (see ``_marks``); and
#: how many keys of the articles holding a mark an index keeps (the smallest: copies of
#: an article hold its marks under its key, so most marks have one).
MARKS = 8
MARK_KEYS = 4
#: The most lines a short article marked by its lines (see ``_marks``) may have.
EDIT_MARK_LINES = 32
#: Marks read or written at a time (an index of a million articles holds some six million).
MARK_CHUNK = 1 << 16


@dataclass
class KeySets:
    """Per row, a few distinct cluster keys, the smallest first: ``counts`` of them a row,
    the rows' keys one after another in ``flat``. Most rows of an index (a line seen on
    one page) hold one key, so they are kept ragged, not as rows of ``EVIDENCE_KEYS``."""

    counts: np.ndarray
    flat: np.ndarray

    @classmethod
    def none(cls, n: int) -> KeySets:
        return cls(np.zeros(n, dtype=np.int64), np.zeros(0, dtype=np.uint64))

    @classmethod
    def smallest(
        cls, group: np.ndarray, keys: np.ndarray, n_groups: int, width: int = EVIDENCE_KEYS
    ) -> KeySets:
        """Per group, its smallest ``width`` distinct keys (``NO_KEY`` is none)."""
        if not len(group):
            return cls.none(n_groups)
        order = np.lexsort((keys, group))
        g, k = group[order], keys[order]
        new = np.ones(len(g), dtype=bool)
        new[1:] = (g[1:] != g[:-1]) | (k[1:] != k[:-1])
        g, k = g[new], k[new]
        rank = np.arange(len(g)) - np.searchsorted(g, g, side="left")
        keep = (rank < width) & (k != NO_KEY)
        counts = np.bincount(g[keep], minlength=n_groups).astype(np.int64)
        return cls(counts, k[keep].astype(np.uint64))

    @classmethod
    def of_blobs(cls, blobs: Sequence[bytes]) -> KeySets:
        """From little-endian uint64 bytes a row, as the index stores them."""
        width = 8 * EVIDENCE_KEYS
        blobs = [blob[:width] for blob in blobs]
        counts = np.fromiter((len(blob) // 8 for blob in blobs), dtype=np.int64, count=len(blobs))
        flat = np.frombuffer(b"".join(blobs), dtype="<u8").astype(np.uint64)
        return cls(counts, flat)

    @classmethod
    def concat(cls, parts: Sequence[KeySets]) -> KeySets:
        return cls(
            np.concatenate([part.counts for part in parts]),
            np.concatenate([part.flat for part in parts]),
        )

    def __len__(self) -> int:
        return len(self.counts)

    def starts(self) -> np.ndarray:
        """Where each row's keys begin in ``flat``."""
        starts: np.ndarray = np.cumsum(self.counts) - self.counts
        return starts

    def ranks(self) -> np.ndarray:
        """Each key's place in its row of ``flat`` (0: the smallest)."""
        ranks: np.ndarray = np.arange(len(self.flat)) - np.repeat(self.starts(), self.counts)
        return ranks

    def row_of_keys(self) -> np.ndarray:
        """The row of each key of ``flat``."""
        return np.repeat(np.arange(len(self.counts), dtype=np.int64), self.counts)

    def __getitem__(self, which: np.ndarray) -> KeySets:
        """The rows ``which`` (positions or a mask), in its order."""
        rows = np.flatnonzero(which) if which.dtype == bool else which.astype(np.int64)
        counts = self.counts[rows]
        # Each key taken: its place among those taken, moved to where its row begins.
        at = np.arange(int(counts.sum()), dtype=np.int64)
        at += np.repeat(self.starts()[rows] - (np.cumsum(counts) - counts), counts)
        return KeySets(counts, self.flat[at])

    def found(self, found: np.ndarray) -> KeySets:
        """Per position, the row ``found`` names (none where -1)."""
        has = found >= 0
        rows = self[found[has]]
        counts = np.zeros(len(found), dtype=np.int64)
        counts[has] = rows.counts
        return KeySets(counts, rows.flat)

    def first(self, k: int) -> KeySets:
        """Each row's ``k`` smallest keys."""
        return KeySets(np.minimum(self.counts, k), self.flat[self.ranks() < k])

    def dense(self, width: int) -> np.ndarray:
        """As rows of ``width`` keys, ``NO_KEY`` padded (at most ``width`` a row)."""
        out = np.full((len(self.counts), width), NO_KEY, dtype=np.uint64)
        out[self.row_of_keys(), self.ranks()] = self.flat
        return out

    def kth(self, k: int) -> np.ndarray:
        """Per row, its key ``k`` (from 0), ``NO_KEY`` where it holds fewer."""
        out = np.full(len(self.counts), NO_KEY, dtype=np.uint64)
        has = self.counts > k
        out[has] = self.flat[self.starts()[has] + k]
        return out

    def blobs(self) -> Iterator[bytes]:
        """Each row's keys as little-endian uint64 bytes (``of_blobs`` reads them)."""
        buffer = self.flat.astype("<u8").tobytes()
        for start, end in zip(
            (8 * self.starts()).tolist(), (8 * np.cumsum(self.counts)).tolist(), strict=True
        ):
            yield buffer[start:end]


@dataclass
class Evidence:
    """What runs saw of each recurring line and closing sentence of a site, and of each
    site, as an index keeps it between runs: per row, on how many copy clusters it stood
    (``pages``) and the smallest ``EVIDENCE_KEYS`` stable keys of those clusters (a copy
    of an article seen in an earlier run has the same key, so a repost still counts
    once), and for a line: on how many clusters it was anchored (with their keys),
    whether it stood between two lines that are not learned, and its length in bytes."""

    #: The sites, sorted; ``sites`` numbers a row's among them.
    names: np.ndarray
    sites: np.ndarray
    kinds: np.ndarray
    hashes: np.ndarray
    pages: np.ndarray
    keys: KeySets
    anchored: np.ndarray
    anchored_keys: KeySets
    inside: np.ndarray
    lengths: np.ndarray
    #: The articles' marks, kept apart: a few of them for every article (see ``Marks``).
    marks: Marks = field(default_factory=lambda: Marks.of_rows([]))

    @classmethod
    def empty(cls) -> Evidence:
        return cls.of_rows([])

    @classmethod
    def of_rows(
        cls,
        rows: Sequence[tuple[str, int, int, int, bytes, int, bytes, int, int]],
        marks: Marks | None = None,
    ) -> Evidence:
        """From rows (site, kind, hash as int64, pages, keys, anchored, anchored keys,
        inside, length), keys as little-endian uint64 bytes, as the index stores them;
        the marks among them, or given apart (``marks``: read a chunk at a time)."""
        if marks is None:
            marks = Marks.of_rows(
                (row[0], row[2], row[4], row[3]) for row in rows if row[1] == MARK_ROW
            )
        rows = [row for row in rows if row[1] != MARK_ROW]
        columns = list(zip(*rows, strict=True)) if rows else [()] * 9
        names, sites = _site_numbers(list(columns[0]))
        return cls(
            names=names,
            sites=sites,
            kinds=np.array(columns[1], dtype=np.int64),
            hashes=np.array(columns[2], dtype=np.int64).view(np.uint64),
            pages=np.array(columns[3], dtype=np.int64),
            keys=KeySets.of_blobs(columns[4]),
            anchored=np.array(columns[5], dtype=np.int64),
            anchored_keys=KeySets.of_blobs(columns[6]),
            inside=np.array(columns[7], dtype=np.int64),
            lengths=np.array(columns[8], dtype=np.int64),
            marks=marks,
        )

    def rows(self) -> Iterator[tuple[str, int, int, int, bytes, int, bytes, int, int]]:
        """The rows ``of_rows`` reads, in a stable order (the marks' last)."""
        yield from self._rows()
        for site, mark, keys, holders in self.marks.rows():
            yield (site, MARK_ROW, mark, holders, keys, 0, b"", 0, 0)

    def _rows(self) -> Iterator[tuple[str, int, int, int, bytes, int, bytes, int, int]]:
        names = self.names.tolist()
        yield from zip(
            (names[site] for site in self.sites.tolist()),
            self.kinds.tolist(),
            self.hashes.view(np.int64).tolist(),
            self.pages.tolist(),
            self.keys.blobs(),
            self.anchored.tolist(),
            self.anchored_keys.blobs(),
            self.inside.tolist(),
            self.lengths.tolist(),
            strict=True,
        )

    def __len__(self) -> int:
        return len(self.kinds)

    def select(self, which: np.ndarray) -> Evidence:
        """The rows ``which`` (the marks all)."""
        return Evidence(
            self.names,
            self.sites[which],
            self.kinds[which],
            self.hashes[which],
            self.pages[which],
            self.keys[which],
            self.anchored[which],
            self.anchored_keys[which],
            self.inside[which],
            self.lengths[which],
            self.marks,
        )


@dataclass
class Marks:
    """What an index keeps of each article's marks (``_marks``): per row a site (a number
    among ``names``), a mark and the keys of the articles holding it (``MARK_KEYS`` at
    most, the smallest first, ``NO_KEY`` padded). There are a few for every article, so
    they are kept narrow, not as ``Evidence`` rows of ``EVIDENCE_KEYS`` keys each."""

    names: np.ndarray
    sites: np.ndarray
    hashes: np.ndarray
    keys: np.ndarray
    #: Pages holding the mark, in all runs (a copy too); under mark 0 (no sentence's
    #: hash), the pages of the site.
    holders: np.ndarray

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[str, int, bytes, int]]) -> Marks:
        """From rows (site, mark as int64, keys as little-endian uint64 bytes, holders),
        taken ``MARK_CHUNK`` at a time."""
        number: dict[str, int] = {}
        sites, hashes, keys, holders = [], [], [], []
        width = 8 * MARK_KEYS
        rows = iter(rows)
        while chunk := list(itertools.islice(rows, MARK_CHUNK)):
            site_of = (number.setdefault(row[0], len(number)) for row in chunk)
            sites.append(np.fromiter(site_of, dtype=np.int64, count=len(chunk)))
            hashes.append(np.fromiter((row[1] for row in chunk), dtype=np.int64, count=len(chunk)))
            padded = b"".join(row[2][:width].ljust(width, b"\xff") for row in chunk)  # NO_KEY
            keys.append(np.frombuffer(padded, dtype="<u8").reshape(-1, MARK_KEYS))
            holders.append(np.fromiter((row[3] for row in chunk), dtype=np.int64, count=len(chunk)))
        # Sites numbered in name order, as ``rows`` writes them.
        names = np.array(list(number), dtype=str)
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return cls(
            names=names[order],
            sites=rank[np.concatenate(sites)] if sites else np.zeros(0, dtype=np.int64),
            hashes=np.concatenate(hashes).view(np.uint64) if hashes else np.zeros(0, np.uint64),
            keys=(
                np.concatenate(keys).astype(np.uint64)
                if keys
                else np.zeros((0, MARK_KEYS), dtype=np.uint64)
            ),
            holders=np.concatenate(holders) if holders else np.zeros(0, dtype=np.int64),
        )

    def rows(self) -> Iterator[tuple[str, int, bytes, int]]:
        """The rows ``of_rows`` reads, sorted by site and mark (as int64, as the index
        sorts them)."""
        signed = self.hashes.view(np.int64)
        order = np.lexsort((signed, self.sites))
        names = self.names.tolist()
        width = 8 * MARK_KEYS
        # ``MARK_CHUNK`` at a time, each row's keys a slice of the chunk's buffer: they
        # stand smallest first, with NO_KEY after them.
        for first in range(0, len(order), MARK_CHUNK):
            at = order[first : first + MARK_CHUNK]
            keys = self.keys[at]
            buffer = keys.astype("<u8").tobytes()
            for n, (site, mark, length, holders) in enumerate(
                zip(
                    self.sites[at].tolist(),
                    signed[at].tolist(),
                    (8 * (keys != NO_KEY).sum(axis=1)).tolist(),
                    self.holders[at].tolist(),
                    strict=True,
                )
            ):
                yield names[site], mark, buffer[n * width : n * width + length], holders

    def __len__(self) -> int:
        return len(self.hashes)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: uniform 64-bit keys from any 64-bit values (never NO_KEY)."""
    x = values.astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return np.minimum(x, NO_KEY - np.uint64(1))


def _cluster_keys(
    cluster: np.ndarray, own_min: np.ndarray, hashes: np.ndarray, record_of: np.ndarray
) -> np.ndarray:
    """A key per record that is the same for every copy of an article in any run: the
    smallest hash of the cluster's own long lines (copies share most of them), else (no
    long line of its own) the sum of the hashes of the cluster's first record's lines."""
    n = len(cluster)
    smallest = np.full(n, NO_KEY, dtype=np.uint64)
    np.minimum.at(smallest, cluster, own_min)
    summed = np.zeros(n, dtype=np.uint64)
    np.add.at(summed, record_of, hashes)
    chosen = np.where(smallest[cluster] != NO_KEY, smallest[cluster], summed[cluster])
    return _mix(chosen)


@dataclass
class _RecordMarks:
    """The records' marks (``_marks``), one after another: each one's record and hash;
    and per record whether its marks are the keys of its lines less one (``by_edits``)."""

    record: np.ndarray
    mark: np.ndarray
    by_edits: np.ndarray


def _marks(
    pieces: _Pieces,
    site_ids: np.ndarray,
    edits: tuple[np.ndarray, np.ndarray],
    options: LearnOptions,
) -> _RecordMarks:
    """Per record, its ``MARKS`` smallest hashes of the sentences of its long lines that
    are its own (not on most pages of its site: ``_ubiquitous``). A copy with a sentence
    edited keeps most of them, where the one smallest hash, an article's key in an
    earlier run, changes whenever the edit hits it. A record with none (a short article:
    ``edits`` gives, per line of each, the key of its lines less that one), of up to
    ``EDIT_MARK_LINES`` lines, is marked by those keys: a later copy with one line
    edited holds one of them."""
    n = len(site_ids)
    piece, record, _ = _once_per_record(pieces.hashes, pieces.record_of.astype(np.int64))
    own = ~_ubiquitous(site_ids[record].astype(np.int64), piece, site_ids, options)
    sentences = KeySets.smallest(record[own], piece[own], n, MARKS)
    edit_record, masked = edits
    lines = np.bincount(edit_record, minlength=n)
    by_edits = (sentences.counts == 0) & (lines > 0) & (lines <= EDIT_MARK_LINES)
    marked = by_edits[edit_record]
    edit_marks = KeySets.smallest(edit_record[marked], masked[marked], n, EDIT_MARK_LINES)
    records = np.arange(n, dtype=np.int64)
    return _RecordMarks(
        np.concatenate(
            [np.repeat(records, sentences.counts), np.repeat(records, edit_marks.counts)]
        ),
        np.concatenate([sentences.flat, edit_marks.flat]),
        by_edits,
    )


def _wanted(
    names: np.ndarray,
    site_ids: np.ndarray,
    hashes: np.ndarray,
    tails: np.ndarray,
    marks: _RecordMarks,
) -> Wanted:
    """What of an index the records' learning reads (see ``Wanted``)."""

    def site_pairs(site: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        signed = value.view(np.int64)
        order = np.lexsort((signed, site))
        site, signed = site[order], signed[order]
        new = np.ones(len(site), dtype=bool)
        new[1:] = (site[1:] != site[:-1]) | (signed[1:] != signed[:-1])
        return site[new], signed[new]

    every_site = np.arange(len(names), dtype=np.int64)
    mark_site = site_ids[marks.record].astype(np.int64)
    tail_site = np.repeat(site_ids.astype(np.int64), tails.shape[1])
    tail = tails.ravel()
    return Wanted(
        sites=names.tolist(),
        lines=np.unique(hashes.view(np.int64)),
        tails=site_pairs(tail_site[tail != 0], tail[tail != 0]),
        marks=site_pairs(
            np.concatenate([mark_site, every_site]),
            np.concatenate([marks.mark, np.zeros(len(names), dtype=np.uint64)]),
        ),
    )


def _merged(
    run_count: np.ndarray, run_keys: KeySets, prior_count: np.ndarray, prior_keys: KeySets
) -> tuple[np.ndarray, KeySets]:
    """Clusters seen by this run and earlier ones together, row by row, and their
    smallest keys. Exact while every key of both sides is known (fewer than
    ``EVIDENCE_KEYS``); beyond, estimated from the smallest keys (k minimum values)."""
    row = np.concatenate([run_keys.row_of_keys(), prior_keys.row_of_keys()])
    key = np.concatenate([run_keys.flat, prior_keys.flat])
    both = KeySets.smallest(row, key, len(run_count), 2 * EVIDENCE_KEYS)
    exact = run_count + both.counts - run_keys.counts
    both = both.first(EVIDENCE_KEYS)
    kth = both.kth(EVIDENCE_KEYS - 1).astype(np.float64)
    estimate = np.where(
        kth < float(NO_KEY), (EVIDENCE_KEYS - 1) * 2.0**64 / np.maximum(kth, 1.0), 0
    ).astype(np.int64)
    complete = (run_count < EVIDENCE_KEYS) & (prior_count < EVIDENCE_KEYS)
    beyond = np.maximum(np.maximum(run_count, prior_count), estimate)
    return np.where(complete, exact, beyond), both


def _match(
    run_site: np.ndarray, run_key: np.ndarray, prior_site: np.ndarray, prior_key: np.ndarray
) -> np.ndarray:
    """For each run pair (site, key), the prior row of the same pair, or -1."""
    site = np.concatenate([run_site, prior_site]).astype(np.int64)
    key = np.concatenate([run_key, prior_key]).astype(np.uint64)
    side = np.concatenate([np.zeros(len(run_site), np.int64), np.ones(len(prior_site), np.int64)])
    where = np.concatenate([np.arange(len(run_site)), np.arange(len(prior_site))])
    order = np.lexsort((side, key, site))
    site, key, side, where = site[order], key[order], side[order], where[order]
    same = (site[1:] == site[:-1]) & (key[1:] == key[:-1]) & (side[:-1] == 0) & (side[1:] == 1)
    found = np.full(len(run_site), -1, dtype=np.int64)
    found[where[:-1][same]] = where[1:][same]
    return found


class _Merger:
    """Counts what earlier runs saw (an index's ``Evidence``) with what this input holds,
    and gathers the merged evidence of the patterns this input holds to keep it."""

    def __init__(self, prior: Evidence, names: np.ndarray, record_keys: np.ndarray) -> None:
        self.prior = prior
        self.names = names
        self.record_keys = record_keys
        # The prior's sites as site numbers of this input (-1: not in it).
        self.prior_site = _renumbered(names, prior.names)[prior.sites]
        self.kept: list[Evidence] = []
        self.marks = Marks.of_rows([])

    def _prior_of(self, kind: int, site: np.ndarray, key: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero((self.prior.kinds == kind) & (self.prior_site >= 0))
        found = _match(site, key, self.prior_site[rows], self.prior.hashes[rows])
        if not len(rows):
            return found
        return np.where(found >= 0, rows[np.maximum(found, 0)], -1)

    def prior_rows(
        self, found: np.ndarray
    ) -> tuple[np.ndarray, KeySets, np.ndarray, KeySets, np.ndarray, np.ndarray]:
        """Per run pair, the prior's pages, keys, anchored, anchored keys, inside, length
        (zero and none where the prior lacks the pair)."""
        has = found >= 0
        at = np.maximum(found, 0)
        p = self.prior
        if not len(p):
            zero = np.zeros(len(found), dtype=np.int64)
            none = KeySets.none(len(found))
            return zero, none, zero, none, zero, zero
        return (
            np.where(has, p.pages[at], 0),
            p.keys.found(found),
            np.where(has, p.anchored[at], 0),
            p.anchored_keys.found(found),
            np.where(has, p.inside[at], 0),
            np.where(has, p.lengths[at], 0),
        )

    def adopt(
        self,
        site_ids: np.ndarray,
        cluster: np.ndarray,
        marks: _RecordMarks,
        options: LearnOptions,
    ) -> np.ndarray:
        """Give a copy of an article an earlier run saw that article's key, as copies in
        one run are told (``_copy_pairs``), by its marks (``_marks``): a record holding
        ``copy_share`` of its marks on one article the prior marked is a copy of it,
        unless the marks it holds are the site's chrome (on most of the site's pages, in
        all runs) and it has more marks of its own than a small edit. Its cluster takes
        that article's key; of several, the one whose marks it holds weigh most (a mark
        weighs one over the pages holding it: a sidebar on half the site's pages holds
        marks of many articles), then the one holding the most, then the smallest.
        A short article marked by the keys of its lines less one (``by_edits``) is a copy
        of an article that holds one of them, unless that one is on most of the site's
        pages (the chrome of pages under a headline each). A cluster that is no copy, but
        whose key is that of an article it shares marks with (a sidebar's long line, the
        smallest of both), gets a key of its own. Then every record's marks are kept, so
        that a later run finds copies of this run's articles. Returns the clusters, those
        that are copies of one earlier article joined: they count once, as they did
        then."""
        n = len(cluster)
        record, mark = marks.record, marks.mark
        site = site_ids[record].astype(np.int64)
        prior = self.prior.marks
        # The prior's sites as site numbers of this input (-1: not in it).
        prior_site = _renumbered(self.names, prior.names)[prior.sites]
        pair_site, pair_mark, _, pair_of = _recurrence(site, mark, cluster[record])
        pair_found = _match(pair_site, pair_mark, prior_site, prior.hashes)

        def prior_holders(found: np.ndarray) -> np.ndarray:
            if not len(prior):
                return np.zeros(len(found), dtype=np.int64)
            return np.where(found >= 0, prior.holders[np.maximum(found, 0)], 0)

        holders = np.bincount(pair_of, minlength=len(pair_site)) + prior_holders(pair_found)
        sites = np.arange(len(self.names), dtype=np.int64)
        site_found = _match(sites, np.zeros(len(sites), np.uint64), prior_site, prior.hashes)
        site_pages = np.bincount(site_ids, minlength=len(sites)) + prior_holders(site_found)
        pages = site_pages[pair_site]
        chrome = (pages >= options.ubiquitous_min_pages) & (
            holders >= options.ubiquitous_share * pages
        )
        found, own = pair_found[pair_of], ~chrome[pair_of]
        held = found >= 0
        joined = np.arange(n)
        if held.any():
            hit = np.repeat(record[held], MARK_KEYS)
            hit_own = np.repeat(own[held], MARK_KEYS)
            # A mark few articles hold tells more of which one a copy is than a sidebar's.
            rarity = np.repeat(1.0 / holders[pair_of[held]], MARK_KEYS)
            key = prior.keys[found[held]].ravel()
            valid = key != NO_KEY
            hit, hit_own, key, rarity = hit[valid], hit_own[valid], key[valid], rarity[valid]
            # Per (record, key): the record's marks the key holds, and of them its own.
            pair, which = np.unique(
                np.stack([hit, key.view(np.int64)]), axis=1, return_inverse=True
            )
            hit, key = pair[0], pair[1].view(np.uint64)
            shared = np.bincount(which)
            shared_own = np.bincount(which, weights=hit_own)
            rare = np.bincount(which, weights=rarity)
            total = np.bincount(record, minlength=n)[hit]
            owned = np.bincount(record[own], minlength=n)[hit]
            copy = (shared >= options.copy_share * total) & (
                (owned == 0)
                | (shared_own >= options.copy_share * owned)
                | (owned - shared_own <= options.small_edit * (shared - shared_own))
            )
            # A short article's lines less one, not on most of the site's pages.
            copy = np.where(marks.by_edits[hit], shared_own >= 1, copy)
            root = cluster[hit]
            # Per cluster, the key its records hold the rarest marks of, then the most.
            order = np.lexsort((key[copy], -shared[copy], -rare[copy], root[copy]))
            copy_root, copy_key = root[copy][order], key[copy][order]
            first = np.ones(len(copy_root), dtype=bool)
            first[1:] = copy_root[1:] != copy_root[:-1]
            taken = np.full(n, NO_KEY, dtype=np.uint64)
            taken[copy_root[first]] = copy_key[first]
            # Clusters that are copies of one earlier article are one article, as then.
            copies = np.flatnonzero(taken != NO_KEY)
            copies = copies[np.lexsort((copies, taken[copies]))]
            head = np.ones(len(copies), dtype=bool)
            head[1:] = taken[copies][1:] != taken[copies][:-1]
            joined[copies] = copies[head][np.cumsum(head) - 1]
            # No copy, but under the key of an article it shares marks with.
            collided = np.zeros(n, dtype=bool)
            collided[root[self.record_keys[hit] == key]] = True
            collided &= taken == NO_KEY
            own_min = np.full(n, NO_KEY, dtype=np.uint64)
            np.minimum.at(own_min, cluster[record[own]], mark[own])
            renamed = collided & (own_min != NO_KEY)
            taken[renamed] = _mix(self.record_keys[renamed] ^ own_min[renamed])
            adopted = taken[cluster]
            self.record_keys = np.where(adopted != NO_KEY, adopted, self.record_keys)
        # Kept: each (site, mark) of this input with the smallest keys holding it, its
        # records' and the prior's, and its holders; and each site's pages (under mark 0).
        group = np.concatenate([pair_of, np.repeat(pair_of[held], MARK_KEYS)])
        keys = np.concatenate([self.record_keys[record], prior.keys[found[held]].ravel()])
        none = np.full((len(sites), MARK_KEYS), NO_KEY, dtype=np.uint64)
        self.marks = Marks(
            self.names,
            np.concatenate([pair_site, sites]),
            np.concatenate([pair_mark, np.zeros(len(sites), dtype=np.uint64)]),
            np.concatenate(
                [KeySets.smallest(group, keys, len(pair_site), MARK_KEYS).dense(MARK_KEYS), none]
            ),
            np.concatenate([holders, site_pages]),
        )
        clusters: np.ndarray = joined[cluster]
        return clusters

    def site_clusters(self, site_ids: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        sites = np.arange(len(self.names), dtype=np.int64)
        zeros = np.zeros(len(sites), dtype=np.uint64)
        found = self._prior_of(SITE_ROW, sites, zeros)
        pages, keys, *_ = self.prior_rows(found)
        run_keys = KeySets.smallest(site_ids.astype(np.int64), self.record_keys, len(sites))
        merged, merged_keys = _merged(clusters, run_keys, pages, keys)
        self.keep(SITE_ROW, sites, zeros, merged, merged_keys)
        return merged

    def pairs(
        self,
        kind: int,
        site: np.ndarray,
        key: np.ndarray,
        pages: np.ndarray,
        pair_of: np.ndarray,
        occurrence_keys: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, KeySets]:
        """Merged pages of each (site, key) pair of this input; the prior's row of each
        (-1: none) and the merged keys, for ``keep_pairs``."""
        found = self._prior_of(kind, site, key)
        prior_pages, prior_keys, *_ = self.prior_rows(found)
        run_keys = KeySets.smallest(pair_of, occurrence_keys, len(site))
        merged, merged_keys = _merged(pages, run_keys, prior_pages, prior_keys)
        return merged, found, merged_keys

    def wide(
        self,
        wide_key: np.ndarray,
        wide_pages: np.ndarray,
        wide_pair: np.ndarray,
        occurrence_keys: np.ndarray,
        occurrence_sites: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merged pages and sites of each line of this input across sites (the prior's
        rows of any site count)."""
        p = self.prior
        rows = np.flatnonzero(p.kinds == LINE_ROW)
        n = len(wide_key)
        at = np.minimum(np.searchsorted(wide_key, p.hashes[rows]), max(n - 1, 0))
        hit = wide_key[at] == p.hashes[rows] if n else np.zeros(len(rows), dtype=bool)
        rows, at = rows[hit], at[hit]
        run_keys = KeySets.smallest(wide_pair, occurrence_keys, n)
        held = p.keys[rows]
        prior_keys = KeySets.smallest(np.repeat(at, held.counts), held.flat, n)
        full = np.zeros(n, dtype=bool)
        full[at[p.pages[rows] >= EVIDENCE_KEYS]] = True
        prior_count = np.where(full, EVIDENCE_KEYS, prior_keys.counts)
        pages, _ = _merged(wide_pages, run_keys, prior_count, prior_keys)
        # Sites by name, this input's and the prior's together.
        all_names = np.unique(np.concatenate([self.names, p.names]))
        self._wide = (n, rows, at, np.searchsorted(all_names, p.names)[p.sites[rows]])
        self._run_site = np.searchsorted(all_names, self.names)
        run_site = self._run_site[occurrence_sites]
        group = np.concatenate([wide_pair, at])
        sites = _distinct_per_pair(group, np.concatenate([run_site, self._wide[3]]), n)
        return pages, sites

    def wide_inside(self, wide_pair: np.ndarray, occurrence_sites: np.ndarray) -> np.ndarray:
        """Sites where each line stands between two that are not learned, with the
        prior's (after ``wide``)."""
        n, rows, at, prior_site = self._wide
        was_inside = self.prior.inside[rows] > 0
        group = np.concatenate([wide_pair, at[was_inside]])
        sites = np.concatenate([self._run_site[occurrence_sites], prior_site[was_inside]])
        return _distinct_per_pair(group, sites, n)

    def keep(
        self,
        kind: int,
        site: np.ndarray,
        key: np.ndarray,
        pages: np.ndarray,
        keys: KeySets,
        anchored: np.ndarray | None = None,
        anchored_keys: KeySets | None = None,
        inside: np.ndarray | None = None,
        lengths: np.ndarray | None = None,
    ) -> None:
        n = len(site)
        zero = np.zeros(n, dtype=np.int64)
        self.kept.append(
            Evidence(
                names=self.names,
                sites=site.astype(np.int64),
                kinds=np.full(n, kind, dtype=np.int64),
                hashes=key.astype(np.uint64),
                pages=pages.astype(np.int64),
                keys=keys,
                anchored=zero if anchored is None else anchored.astype(np.int64),
                anchored_keys=KeySets.none(n) if anchored_keys is None else anchored_keys,
                inside=zero if inside is None else inside.astype(np.int64),
                lengths=zero if lengths is None else lengths.astype(np.int64),
            )
        )

    def evidence(self) -> Evidence:
        """The merged evidence of this input's sites and recurring patterns, one row per
        (site, kind, hash) (the larger count where two passes saw one), sorted."""
        parts = self.kept or [Evidence.empty()]

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(part, name) for part in parts])

        def joined_keys(name: str) -> KeySets:
            return KeySets.concat([getattr(part, name) for part in parts])

        both = Evidence(
            self.names,
            joined("sites"),
            joined("kinds"),
            joined("hashes"),
            joined("pages"),
            joined_keys("keys"),
            joined("anchored"),
            joined_keys("anchored_keys"),
            joined("inside"),
            joined("lengths"),
            self.marks,
        )
        order = np.lexsort((-both.pages, both.hashes, both.kinds, both.sites))
        both = both.select(order)
        first = np.ones(len(both), dtype=bool)
        first[1:] = (
            (both.sites[1:] != both.sites[:-1])
            | (both.kinds[1:] != both.kinds[:-1])
            | (both.hashes[1:] != both.hashes[:-1])
        )
        return both.select(first)


@dataclass(frozen=True)
class _Pieces:
    """The pieces of every record's long lines (see ``Sketch``): stable hash, length in
    bytes and record of each (``uint32``), in record order."""

    hashes: np.ndarray
    lengths: np.ndarray
    record_of: np.ndarray


def _copy_clusters(
    hashes: np.ndarray,
    lengths: np.ndarray,
    record_of: np.ndarray,
    pieces: _Pieces,
    site_ids: np.ndarray,
    options: LearnOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A cluster number per record, the smallest hash of its own long lines (not on
    most pages of its site; ``NO_KEY``: none), the long lines that travel with an
    article (sorted; see below), and of the records without long lines of their own,
    per line the record and the key of its lines less that one. Records that share at
    least ``copy_share`` of the larger one's long-line characters, compared sentence by
    sentence (``pieces``), are copies of one article. Only records next to each other in
    a sentence's list of records are compared (no quadratic work).

    Sentences, not whole lines: a copy with a word changed, or under another site's
    promo appended to its last paragraph, shares all the other sentences of those
    paragraphs, where it would share none of their lines.

    Sentences on most pages of a site (``ubiquitous_share``: a sidebar's blurb, a long
    disclaimer, a promo) may be chrome, or an article the site holds on most of its
    pages. Records that share half of their long-line characters are copies, unless both
    have sentences of their own (not on most pages of the site) that they do not share
    and that are more than a small edit (``small_edit`` of what they share): two
    articles under a sidebar bigger than either. A repost must never count twice, so
    when in doubt the records are copies (and some chrome is not learned).

    A copy edited in many places, or above a long list of other articles' leads, may
    share too little to be found a copy, and an article reposted onto fifty pages would
    then count as several. But its long lines travel together: most pairs of records
    next to each other in such a line's list share another long line of their own too,
    which chrome (a promo, a disclaimer, stand-alone on the page) does not. Those lines
    are the article's, and never learned.

    Records without long lines of their own are copies when their lines differ in one
    line only (``_one_line_edits``), which those keys tell.
    """
    n = len(site_ids)
    long = lengths >= options.long_line
    line, record, _ = _once_per_record(hashes[long], record_of[long])
    site = site_ids[record].astype(np.int64)
    ubiquitous = _ubiquitous(site, line, site_ids, options)
    own_min = np.full(n, NO_KEY, dtype=np.uint64)
    np.minimum.at(own_min, record[~ubiquitous], line[~ubiquitous])
    travelling = _travelling(line, record, site, ubiquitous, options)
    del line, record, site, ubiquitous  # not held through _copy_pairs, the fit's peak
    a, b = _copy_pairs(pieces, site_ids, options)
    # Records of the very same lines are copies, long lines or not (a short article).
    mixed = _mix(hashes)
    summed = np.zeros(n, dtype=np.uint64)
    np.add.at(summed, record_of, mixed)
    line_counts = np.bincount(record_of, minlength=n)
    texts = _mix(summed ^ line_counts.astype(np.uint64))
    order = np.argsort(texts, kind="stable")
    same = (texts[order][1:] == texts[order][:-1]) & (line_counts[order][1:] > 0)
    short = own_min[record_of] == NO_KEY
    short_record = record_of[short]
    # Less one line: the same for two records whose lines differ in that line only.
    masked = _mix(
        (summed[short_record] - mixed[short]) ^ line_counts[short_record].astype(np.uint64)
    )
    edited_a, edited_b = _one_line_edits(hashes, record_of, site_ids, short, masked, options)
    a = np.concatenate([a, order[:-1][same], edited_a])
    b = np.concatenate([b, order[1:][same], edited_b])
    return _components(n, a, b), own_min, travelling, (short_record, masked)


def _one_line_edits(
    hashes: np.ndarray,
    record_of: np.ndarray,
    site_ids: np.ndarray,
    short: np.ndarray,
    masked: np.ndarray,
    options: LearnOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of records of three lines or more, without long lines of their own
    (``short``: their lines; ``_copy_pairs`` cannot tell them apart), whose lines differ
    in one line each (equal ``masked``: the key of a record's lines less one, of each
    line) and that share a line not on most pages of their site: a short article (a
    poem, a list) reposted with a word changed. Pages of chrome under one headline each
    share only the chrome, and are no copies."""
    n = len(site_ids)
    record, line = record_of[short], hashes[short]
    # Only the records in a pair are looked at further (few: most short records are in
    # none), the keys sorted once.
    order = np.lexsort((record, masked))
    order = order[np.bincount(record, minlength=n)[record[order]] >= 3]
    paired = (masked[order][1:] == masked[order][:-1]) & (record[order][1:] != record[order][:-1])
    in_pair = np.zeros(len(order), dtype=bool)
    in_pair[1:] = paired
    in_pair[:-1] |= paired
    order = order[in_pair]
    if not len(order):
        return record[:0], record[:0]
    candidate = np.zeros(n, dtype=bool)
    candidate[record[order]] = True
    # Whether each of their lines is on most pages of its site, counted on every record
    # holding it (found by a search among their lines, not by sorting all lines).
    theirs = candidate[record]
    looked_up = np.unique(line[theirs])
    wanted = looked_up[np.minimum(np.searchsorted(looked_up, hashes), len(looked_up) - 1)]
    wanted = wanted == hashes
    key, holder, _ = _once_per_record(hashes[wanted], record_of[wanted])
    chrome = _ubiquitous(site_ids[holder].astype(np.int64), key, site_ids, options)
    chrome_codes = _mix(key[chrome] ^ _mix(holder[chrome].astype(np.uint64)))
    own = np.zeros(len(record), dtype=bool)
    own[theirs] = ~np.isin(
        _mix(line[theirs] ^ _mix(record[theirs].astype(np.uint64))), chrome_codes
    )
    own_counts = np.bincount(record, weights=own, minlength=n)
    order = order[own_counts[record[order]] - own[order] >= 1]
    masked, record = masked[order], record[order]
    pair = (masked[1:] == masked[:-1]) & (record[1:] != record[:-1])
    return record[:-1][pair], record[1:][pair]


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per record, the smallest record joined to it by the pairs (``a[i]``, ``b[i]``):
    independent of the pairs' order. In rounds over all the pairs whose ends still
    differ: the larger of their two roots is hooked under the smaller, then every
    record points to its root."""
    parent = np.arange(n, dtype=np.int64)
    while len(a):
        low, high = np.minimum(parent[a], parent[b]), np.maximum(parent[a], parent[b])
        np.minimum.at(parent, high, low)
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
        apart = parent[a] != parent[b]
        a, b = a[apart], b[apart]
    return parent


def _once_per_record(
    key: np.ndarray, record: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (key, record) occurrences sorted by key then record, each pair once (a line
    twice in one record counts once), and where each stands in the arrays given (records
    in order, as sketches list them).

    As ``np.lexsort((record, key))`` but several times as fast: one sort (of values, not
    an argsort) of a code of the key's high bits and the position, which follows the
    record. Keys that share those bits (a few pairs in a run of a million articles) are
    put in order apart."""
    bits = np.uint64(max(1, (len(key) - 1).bit_length()))
    # In place where it can be: with a million articles' sentences, every array of them
    # held at once is another 100 MB at the fit's peak.
    code = key >> bits
    code <<= bits
    code |= np.arange(len(key), dtype=np.uint64)
    code.sort()
    at = (code & ((np.uint64(1) << bits) - np.uint64(1))).view(np.int64)
    key, record = key[at], record[at]
    code >>= bits  # the high bits
    mixed = (code[1:] == code[:-1]) & (key[1:] != key[:-1])
    if mixed.any():
        # The runs of those high bits (found in the sorted code, not by a pass over all).
        shared = np.unique(code[1:][mixed])
        ends = np.searchsorted(code, shared, side="right")
        starts = np.searchsorted(code, shared, side="left")
        which = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        # High bits follow the key, so sorting all such runs at once keeps each in place.
        again = which[np.lexsort((record[which], key[which]))]
        at[which], key[which], record[which] = at[again], key[again], record[again]
    del code
    first = np.ones(len(at), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    first[1:] |= record[1:] != record[:-1]
    at = at[first]
    key = key[first]
    return key, record[first], at


def _ubiquitous(
    site: np.ndarray, key: np.ndarray, site_ids: np.ndarray, options: LearnOptions
) -> np.ndarray:
    """Per occurrence (as ``_once_per_record`` gives them, ``site`` its record's), whether
    its key stands on most pages of the site (``ubiquitous_share``). Only keys on enough
    records in all are looked at: most stand on one."""
    out = np.zeros(len(key), dtype=bool)
    if not len(key):
        return out
    site_records = np.bincount(site_ids, minlength=int(site_ids.max()) + 1)
    new = np.ones(len(key), dtype=bool)
    new[1:] = key[1:] != key[:-1]
    run = np.cumsum(new) - 1
    needed = max(1, math.ceil(options.ubiquitous_share * options.ubiquitous_min_pages))
    look = np.flatnonzero(np.bincount(run)[run] >= needed)
    at = site[look]
    on_pages = _group_sizes(at, key[look])
    out[look] = (site_records[at] >= options.ubiquitous_min_pages) & (
        on_pages >= options.ubiquitous_share * site_records[at]
    )
    return out


def _copy_pairs(
    pieces: _Pieces, site_ids: np.ndarray, options: LearnOptions
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of records (two arrays) that share enough of their long lines'
    sentences to be copies (see ``_copy_clusters``)."""
    n = len(site_ids)
    piece, record, at = _once_per_record(pieces.hashes, pieces.record_of)
    size = pieces.lengths[at]
    del at  # one array of every sentence fewer at the fit's peak
    long_chars = np.bincount(record, weights=size, minlength=n)
    # Only pieces on two records or more tell anything (most stand on one).
    repeated = np.zeros(len(piece), dtype=bool)
    repeated[1:] = piece[1:] == piece[:-1]
    repeated[:-1] |= repeated[1:]
    piece = piece[repeated]
    record = record[repeated]
    size = size[repeated]
    ubiquitous = _ubiquitous(site_ids[record].astype(np.int64), piece, site_ids, options)
    own_chars = long_chars - np.bincount(record[ubiquitous], weights=size[ubiquitous], minlength=n)
    next_to = piece[1:] == piece[:-1]
    pairs = record[:-1][next_to].astype(np.int64) * n + record[1:][next_to]
    unique_pairs, which = np.unique(pairs, return_inverse=True)
    shared = np.bincount(which, weights=size[1:][next_to])
    either = (ubiquitous[:-1] | ubiquitous[1:])[next_to]
    shared_own = np.bincount(which, weights=np.where(either, 0, size[1:][next_to]))
    a, b = unique_pairs // n, unique_pairs % n
    largest_own = np.maximum(own_chars[a], own_chars[b])
    smallest_own = np.minimum(own_chars[a], own_chars[b])
    copies = (shared >= options.copy_share * np.maximum(long_chars[a], long_chars[b])) & (
        (smallest_own == 0)
        | (shared_own >= options.copy_share * largest_own)
        | (largest_own <= options.small_edit * (shared - shared_own))
    )
    # A copy under a long list of related articles' leads (or an edited one) holds
    # less than half of the larger's long lines, but most of the smaller's own.
    copies |= (smallest_own > 0) & (shared_own >= options.copy_share * smallest_own)
    return a[copies], b[copies]


def _travelling(
    line: np.ndarray,
    record: np.ndarray,
    site: np.ndarray,
    ubiquitous: np.ndarray,
    options: LearnOptions,
) -> np.ndarray:
    """The long lines on ``long_min_sites`` sites or more that travel with an article
    (see ``_copy_clusters``): most pairs of records next to each other in the line's list
    share another long line of their own. Given one position per (line, record), sorted
    by line then record; only such lines are looked at, so this costs little."""
    if len(line) < 2:
        return np.zeros(0, dtype=np.uint64)
    own = ~ubiquitous
    lines, line_of = np.unique(line, return_inverse=True)
    wide = _distinct_per_pair(line_of, site, len(lines))[line_of] >= options.long_min_sites
    at = np.flatnonzero(wide & own)
    if len(at) < 2:
        return np.zeros(0, dtype=np.uint64)
    next_to = line[at[1:]] == line[at[:-1]]
    pair_line = line[at[1:]][next_to]
    # Records next to each other in the list of every line they share (an article on
    # fifty sites): each pair is looked at once, not once a line.
    span = np.int64(record.max()) + 1
    both, pair_of = np.unique(
        record[at[:-1]][next_to] * span + record[at[1:]][next_to], return_inverse=True
    )
    a, b = both // span, both % span
    # Each record's own long lines, by record; then each of a's looked up among b's.
    by_record = np.lexsort((line[own], record[own]))
    own_record, own_line = record[own][by_record], line[own][by_record]
    first = np.searchsorted(own_record, a, side="left")
    count = np.searchsorted(own_record, a, side="right") - first
    pair = np.repeat(np.arange(len(a)), count)
    offset = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    candidate = own_line[np.repeat(first, count) + offset]
    known = _mix(own_line ^ _mix(own_record.astype(np.uint64)))
    looked_up = _mix(candidate ^ _mix(b[pair].astype(np.uint64)))
    shared = np.bincount(pair, weights=np.isin(looked_up, known), minlength=len(a))[pair_of]
    groups, group_of = np.unique(pair_line, return_inverse=True)
    with_other = np.bincount(group_of, weights=shared >= 2)
    return groups[with_other >= options.copy_share * np.bincount(group_of)]


def _group_sizes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """For each position, how many positions hold the same (first, second) pair."""
    if not len(first):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((second, first))
    new = np.ones(len(order), dtype=bool)
    new[1:] = (first[order][1:] != first[order][:-1]) | (second[order][1:] != second[order][:-1])
    group = np.cumsum(new) - 1
    sizes = np.bincount(group)
    out = np.empty(len(order), dtype=np.int64)
    out[order] = sizes[group]
    return out


def _recurrence(
    site: np.ndarray,
    key: np.ndarray,
    cluster: np.ndarray,
    ranks: tuple[np.ndarray, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (site, key) pairs, sorted, with the number of distinct clusters holding
    each, and the pair of each occurrence (in the order given). ``ranks``: the keys'
    ``_ranks``, where the caller has them already."""
    order = _lexsorted(site, key, cluster, ranks)
    site, key, cluster = site[order], key[order], cluster[order]
    new_pair = np.ones(len(site), dtype=bool)
    new_pair[1:] = (site[1:] != site[:-1]) | (key[1:] != key[:-1])
    new_triple = new_pair.copy()
    new_triple[1:] |= cluster[1:] != cluster[:-1]
    pair_of = np.cumsum(new_pair) - 1
    where = np.empty(len(order), dtype=np.int64)
    where[order] = pair_of
    return site[new_pair], key[new_pair], np.bincount(pair_of[new_triple]), where


def _renumbered(names: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Each of the sites ``other``: its number among ``names`` (sorted), or -1."""
    if not len(names):
        return np.full(len(other), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(names, other), len(names) - 1)
    return np.where(names[at] == other, at, -1).astype(np.int64)


def _site_numbers(sites: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct sites, sorted, and each record's number among them, as
    ``np.unique(..., return_inverse=True)`` gives them in six times the time (0.058 s
    against 0.009 s for 100,000 records): a set and a dict, no sort of every string."""
    names = sorted(set(sites))
    number = {name: n for n, name in enumerate(names)}
    ids = np.fromiter((number[site] for site in sites), dtype=np.int64, count=len(sites))
    return np.array(names, dtype=str), ids


def _ranks(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Each key's rank among the distinct keys, and how many distinct keys there are."""
    keys, rank = np.unique(key, return_inverse=True)
    return rank, len(keys)


def _lexsorted(
    site: np.ndarray,
    key: np.ndarray,
    cluster: np.ndarray,
    ranks: tuple[np.ndarray, int] | None = None,
) -> np.ndarray:
    """An order that sorts by site, key, then cluster (non-negative site and cluster
    numbers), as ``np.lexsort((cluster, key, site))`` but for the order among equal
    triples (which no caller sees): one sort of a code made of the three (the key as its
    ``_ranks``) where it fits in 63 bits, four times as fast."""
    if not len(key):
        return np.zeros(0, dtype=np.int64)
    key_of, distinct = ranks if ranks is not None else _ranks(key)
    sites, clusters = int(site.max()) + 1, int(cluster.max()) + 1
    if sites * distinct * clusters >= 2**63:
        return np.lexsort((cluster, key, site))
    code = (site.astype(np.int64) * distinct + key_of) * clusters + cluster.astype(np.int64)
    return np.argsort(code)


def _distinct_per_pair(pair: np.ndarray, values: np.ndarray, n_pairs: int) -> np.ndarray:
    """How many distinct values each pair number holds among the occurrences given."""
    if not len(pair):
        return np.zeros(n_pairs, dtype=np.int64)
    values = values.astype(np.int64)
    width = int(values.max()) + 1
    # Sorted, then each run once (np.unique hashes int64s, several times slower here).
    both = np.sort(pair.astype(np.int64) * width + values)
    first = np.ones(len(both), dtype=bool)
    first[1:] = both[1:] != both[:-1]
    return np.bincount(both[first] // width, minlength=n_pairs)


def _max_per_pair(pair: np.ndarray, values: np.ndarray, n_pairs: int) -> np.ndarray:
    out = np.zeros(n_pairs, dtype=np.int64)
    np.maximum.at(out, pair, values.astype(np.int64))
    return out


def _learn_lines(
    learned: Learned,
    names: np.ndarray,
    site_ids: np.ndarray,
    record_of: np.ndarray,
    hashes: np.ndarray,
    lengths: np.ndarray,
    cluster: np.ndarray,
    site_clusters: np.ndarray,
    options: LearnOptions,
    travelling: np.ndarray,
    merger: _Merger | None = None,
) -> None:
    """Lines on ``min_pages`` different articles of a site, or ``min_sites`` sites, are
    learned. Where a learned line stands next to a line that is not (the article, say), it
    is *anchored*: a line anchored on ``min_pages`` articles (sites) borders every article
    (a menu's last item, "Share this:") and goes wherever it stands; the others (a
    headline anchored on its own page only, listed among others elsewhere) go only where
    they are not anchored."""
    distinct, rank, times = np.unique(hashes, return_inverse=True, return_counts=True)
    # A line that stands once in the input is learned nowhere: most lines are, and only
    # the others are counted (the positions ``at``; ``[at]`` of a per-line array is
    # theirs). With an index, so are those shorter than prose (``prose_line``: a menu
    # item, a related list's headline on the one page of a site that a nightly scrape
    # holds: on the next night's page it recurs) and those that earlier runs saw. Prose
    # (most often an article's paragraph) is not.
    counted = times[rank] >= min(2, options.min_pages, options.min_sites)
    if merger is not None:
        counted |= lengths < options.prose_line
        counted |= np.isin(hashes, merger.prior.hashes[merger.prior.kinds == LINE_ROW])
    at = np.flatnonzero(counted)
    ranks = (rank[at], len(distinct))  # sorted once for the three
    line_site = site_ids[record_of[at]].astype(np.int64)
    line_cluster = cluster[record_of[at]]
    site, key, pages, site_pair = _recurrence(line_site, hashes[at], line_cluster, ranks)
    zeros = np.zeros(len(at), dtype=np.int64)
    _, wide_key, wide_pages, wide_pair = _recurrence(zeros, hashes[at], line_cluster, ranks)
    _, _, wide_sites, _ = _recurrence(zeros, hashes[at], line_site, ranks)
    pair_length = _max_per_pair(site_pair, lengths[at], len(site))
    if merger is not None:
        line_keys = merger.record_keys[record_of[at]]
        pages, found, page_keys = merger.pairs(LINE_ROW, site, key, pages, site_pair, line_keys)
        _, _, prior_anchored, prior_anchored_keys, prior_inside, prior_length = merger.prior_rows(
            found
        )
        pair_length = np.maximum(pair_length, prior_length)
        wide_pages, wide_sites = merger.wide(wide_key, wide_pages, wide_pair, line_keys, line_site)
    # A long line, unlike a menu item, is most often an article's paragraph: recurring
    # on a few articles that are not copies (edited reposts: a typo in every other
    # paragraph), it is still content. It is learned only when a share of the site's
    # articles hold it (a disclaimer, a sidebar's blurb), or across ``long_min_sites``.
    long_line = pair_length >= options.long_line
    needed = np.where(
        long_line,
        np.maximum(options.min_pages, options.long_share * site_clusters[site]),
        options.min_pages,
    )
    # A long line that travels with an article across sites (see _copy_clusters) is a
    # reposted article's paragraph: never learned.
    by_site = (pages >= needed) & ~(long_line & np.isin(key, travelling))
    wide_long = _max_per_pair(wide_pair, lengths[at], len(wide_key)) >= options.long_line
    wide_needed = np.where(
        wide_long, max(options.min_sites, options.long_min_sites), options.min_sites
    )
    wide = (wide_sites >= wide_needed) & (wide_pages >= wide_needed)
    wide &= ~(wide_long & np.isin(wide_key, travelling))
    learned_line = np.zeros(len(hashes), dtype=bool)
    learned_line[at] = by_site[site_pair] | wide[wide_pair]
    # Beyond either end of a text counts as boilerplate (a related list may end a page).
    same_record = record_of[1:] == record_of[:-1]
    plain_before = np.zeros(len(hashes), dtype=bool)
    plain_before[1:] = same_record & ~learned_line[:-1]
    plain_after = np.zeros(len(hashes), dtype=bool)
    plain_after[:-1] = same_record & ~learned_line[1:]
    anchored = (plain_before | plain_after)[at]
    inside = (plain_before & plain_after)[at]
    heads = np.ones(len(hashes), dtype=bool)
    heads[1:] = ~same_record
    heads = heads[at]
    site_heads = _distinct_per_pair(site_pair[heads], line_cluster[heads], len(site))
    wide_heads = _distinct_per_pair(wide_pair[heads], line_cluster[heads], len(wide_key))
    site_anchored = _distinct_per_pair(site_pair[anchored], line_cluster[anchored], len(site))
    wide_inside = _distinct_per_pair(wide_pair[inside], line_site[inside], len(wide_key))
    if merger is not None:
        run_anchored_keys = KeySets.smallest(site_pair[anchored], line_keys[anchored], len(site))
        site_anchored, anchored_keys = _merged(
            site_anchored, run_anchored_keys, prior_anchored, prior_anchored_keys
        )
        wide_inside = merger.wide_inside(wide_pair[inside], line_site[inside])
        pair_inside = (np.bincount(site_pair[inside], minlength=len(site)) > 0) | (prior_inside > 0)
        # Kept: what recurs on a site or across sites, and every line shorter than prose
        # (counted there next time).
        wide_recurs = wide_pages[np.searchsorted(wide_key, key)] >= 2
        keep = (pages >= 2) | wide_recurs | (pair_length < options.prose_line)
        merger.keep(
            LINE_ROW,
            site[keep],
            key[keep],
            pages[keep],
            page_keys[keep],
            site_anchored[keep],
            anchored_keys[keep],
            pair_inside[keep],
            pair_length[keep],
        )
    # Held by no other site: a byline or a date line may be, a phrase such as "Latest
    # News" (that sites share) is not.
    own_site = wide_sites[np.searchsorted(wide_key, key)] <= 1
    for s, h, p, a, t, o in zip(
        site[by_site].tolist(),
        key[by_site].tolist(),
        pages[by_site].tolist(),
        site_anchored[by_site].tolist(),
        site_heads[by_site].tolist(),
        own_site[by_site].tolist(),
        strict=True,
    ):
        if a >= max(options.min_pages, options.anchored_share * p) and (
            not o
            or p >= options.byline_share * site_clusters[s]
            or p < options.byline_min_share * site_clusters[s]
        ):
            strength = ANYWHERE
        else:  # anchored on its own page only, a headline; on a few, chrome near the text
            strength = BESIDE if a >= options.min_pages else IN_RUN
        lead = 0 < t < options.min_pages
        learned.lines.setdefault(str(names[s]), {})[h] = Pattern(strength, LEARNED_LINE, p, 1, lead)
    if wide.any():
        table = learned.lines.setdefault(None, {})
        for h, p, n, a, t in zip(
            wide_key[wide].tolist(),
            wide_pages[wide].tolist(),
            wide_sites[wide].tolist(),
            wide_inside[wide].tolist(),
            wide_heads[wide].tolist(),
            strict=True,
        ):
            strength = ANYWHERE if a <= options.inside_share * n else BESIDE
            table[h] = Pattern(strength, LEARNED_LINE, p, n, 0 < t < options.min_pages)


def _learn_tails(
    learned: Learned,
    names: np.ndarray,
    site_ids: np.ndarray,
    tails: np.ndarray,
    cluster: np.ndarray,
    site_clusters: np.ndarray,
    options: LearnOptions,
    merger: _Merger | None = None,
    records: np.ndarray | None = None,
) -> None:
    """A closing sentence on ``min_pages`` different articles of a site is its promo tail."""
    if not len(tails):
        return
    site, key, pages, pair_of = _recurrence(site_ids.astype(np.int64), tails, cluster)
    if merger is not None:
        assert records is not None
        pages, _, keys = merger.pairs(
            TAIL_ROW, site, key, pages, pair_of, merger.record_keys[records]
        )
        keep = pages >= 2
        merger.keep(TAIL_ROW, site[keep], key[keep], pages[keep], keys[keep])
    # As for long lines: a closing sentence of a few edited reposts is not a promo.
    enough = pages >= np.maximum(options.min_pages, options.long_share * site_clusters[site])
    for s, h, p in zip(
        site[enough].tolist(), key[enough].tolist(), pages[enough].tolist(), strict=True
    ):
        table = learned.tails.setdefault(str(names[s]), {})
        table.setdefault(h, Pattern(ANYWHERE, LEARNED_TAIL, p, 1))


def texts_of(learned: Learned, records: Iterable[Record], found: dict[TextKey, str]) -> None:
    """The folded text of every learned pattern, found in the records it was learned from
    (fit keeps hashes only), into ``found``; the first text seen of a hash stays."""
    for record in records:
        site = site_of(record)
        lines = paragraphs(record.text)
        for line in lines:
            folded = fold(line)
            key = stable_hash(folded)
            for where in (site, None):
                if key in learned.lines.get(where, {}):
                    found.setdefault(("line", where, key), folded)
        at, starts = last_paragraph(lines)
        for start in starts:
            folded = fold(lines[at][start:])
            key = stable_hash(folded)
            if key in learned.tails.get(site, {}):
                found.setdefault(("tail", site, key), folded)


_CONTEXT_NAMES = {strength: name for name, strength in CONTEXTS.items()}


def rules_toml(
    learned: Learned,
    texts: dict[TextKey, str],
    removed: Counter[tuple[str, str | None, str]],
    header: str,
) -> str:
    """What was learned as a rules file (``match = "folded"``, see rules.toml), one rule
    per site, kind and context, each pattern after a comment with its counts."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    groups: dict[tuple[Kind, str | None, int], list[tuple[str, Pattern]]] = {}
    tables: tuple[tuple[Kind, dict[str | None, dict[int, Pattern]]], ...] = (
        ("line", learned.lines),
        ("tail", learned.tails),
    )
    for kind, table in tables:
        for site, patterns in table.items():
            for key, pattern in patterns.items():
                text = texts.get((kind, site, key))
                if text is not None:
                    groups.setdefault((kind, site, pattern.strength), []).append((text, pattern))
    for kind, site, strength in sorted(groups, key=lambda g: (g[1] or "", g[1] is None, g)):
        context = _CONTEXT_NAMES[strength]
        name = f"learned {'*' if site is None else site} {kind} {context}"
        out += ["", "[[rule]]", f"name = {_toml(name)}"]
        if site is not None:
            out.append(f"site = {_toml(site)}")
        out += [f'action = "{kind}"', 'match = "folded"', f'context = "{context}"', "patterns = ["]
        entries = sorted(groups[kind, site, strength], key=lambda e: (-e[1].pages, e[0]))
        for text, pattern in entries:
            sites = f", {pattern.sites} sites" if site is None else ""
            times = removed.get((kind, site, text), 0)
            out.append(f"    # {pattern.pages} pages{sites}; removed {times} times")
            out.append(f"    {_toml(text)},")
        out.append("]")
    return "\n".join(out) + "\n"


def _toml(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, and TOML also wants DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
