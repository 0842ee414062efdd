"""Page -> articles.

A scraped page holds many articles, each announced by a byline separator line
(``通过admin``). What stands before the first separator is page chrome (site name,
breadcrumb, archive title) or a repeat of the first title, never an article: it is
dropped whatever it says. A page without separators is a single article with an
optional date byline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ..options import SplitOptions
from ..record import Record
from ..stats import Stats


class PageSplitter:
    """Cuts raw page records into article records; other records pass through unchanged."""

    def __init__(self, options: SplitOptions | None = None) -> None:
        options = options or SplitOptions()
        self._separator = re.compile(options.separator, re.IGNORECASE)
        self._byline = re.compile(options.byline)

    def run(self, records: Iterable[Record], stats: Stats) -> Iterator[Record]:
        for record in records:
            if not record.is_page:
                yield record
                continue
            articles = self.split_page(record, stats)
            stats.add("articles_split", len(articles))
            yield from articles

    def split_page(self, page: Record, stats: Stats) -> list[Record]:
        lines = page.text.split("\n")
        cuts = [i for i, line in enumerate(lines) if self._separator.fullmatch(line.strip())]
        if not cuts:
            segments = [lines]
        else:
            ends = [*cuts[1:], len(lines)]
            segments = [lines[start + 1 : end] for start, end in zip(cuts, ends, strict=True)]
            if any(line.strip() for line in lines[: cuts[0]]):
                stats.add("page_headers_dropped")
        articles: list[Record] = []
        for segment in segments:
            article = self._article(segment, page, len(articles) + 1)
            if article is None:
                stats.add("empty_articles_dropped")
            else:
                articles.append(article)
        return articles

    def _article(self, lines: list[str], page: Record, number: int) -> Record | None:
        body = list(lines)
        while body and not body[0].strip():
            body.pop(0)
        if not body:
            return None
        title = body.pop(0).strip()
        date = None
        first = next((i for i, line in enumerate(body) if line.strip()), None)
        if first is not None and (byline := self._byline.fullmatch(body[first].strip())):
            date = byline.group(1)
            del body[: first + 1]
        return Record(
            id=f"{page.source}#{number}",
            title=title,
            text="\n".join(body).strip("\n"),
            source=page.source,
            date=date or page.date,
            meta=page.meta,
        )
