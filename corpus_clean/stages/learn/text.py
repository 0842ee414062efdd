"""How lines are compared (folded, hashed), the words a headline is told by, and where a
record belongs (its site)."""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import SplitResult, unquote, urlsplit

import xxhash

from ..._fast import fold_lines, last_sentences, sentence_starts
from ...record import Record

#: Lines up to this many characters are folded before they are compared.
FOLD_MAX = 100
#: Characters a closing sentence needs to be learned as a promo tail, and the most
#: that the closing sentences learned as one may have.
MIN_TAIL = 4
TAIL_WINDOW = 240
#: Lines from the end of a text in which its last paragraph (of two or more sentences,
#: where a promo tail is looked for) is looked for.
TAIL_LINES = 12


def fold(line: str) -> str:
    """The form lines are compared in (see the package's docstring)."""
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
                folded[i] = folded_utf8(lines[i])
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
def learned_words(line: str) -> frozenset[str]:
    """``line_words`` of a learned line, worked out once: such lines recur on many pages (on
    the dragnet pages, 67,188 of the 90,760 times ``line_words`` was asked)."""
    return frozenset(line_words(line))


def line_words(line: str) -> set[str]:
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


def url_field(record: Record) -> str | None:
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
    """The host of the record's url (``url_field``) when it has one, else its source's
    folder."""
    url = _split_url(url_field(record))
    if url is not None and (host := url.hostname):
        return host.removeprefix("www.")
    return os.path.dirname(record.source)


@functools.lru_cache(maxsize=1024)
def slug_words(url: str) -> frozenset[str]:
    """The words (``line_words``) of a url's slug: most sites name an article's address
    after its headline. The slug is the segment of the url's path with the most words
    (some sites put dates and an id after it); a folder such as ``/category/`` is not
    the page's own. Asked only where a learned line would go; kept for the other
    articles of the page, which share its url."""
    parts = _split_url(url)
    if parts is None:
        return frozenset()
    slug = max((line_words(unquote(part)) for part in parts.path.split("/")), key=len)
    return frozenset(slug)


def sites_of(records: Iterable[Record]) -> list[str]:
    """``site_of`` of each record, worked out once per source and url (a page's articles
    share them). Keyed by the source alone where there is no url: no tuple per record."""
    known: dict[str | tuple[str, str], str] = {}
    sites = []
    for record in records:
        url = url_field(record)
        key = (url, record.source) if url is not None else record.source
        site = known.get(key)
        if site is None:
            site = known[key] = site_of(record)
        sites.append(site)
    return sites


def folded_utf8(line: str) -> bytes:
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
