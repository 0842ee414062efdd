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
  night is enough, and so are each article's marks (``copies.article_marks``: a few
  hashes of its own sentences; of a short article, the keys of its lines less one), by
  which a later run knows its copies, edited or not, as the same article.
- Lines are compared folded (``fold``): NFC, casefolded, whitespace runs as one space;
  lines longer than ``FOLD_MAX`` characters as they are (after cleaning: NFC and
  stripped), since folding is the costly part and a long line hardly ever recurs in
  another spelling. Digits are kept: folded, every comment's timestamp ("November 12,
  2012 at 7:40 pm") recurs, and the real pages lost three times the article lines.
  No word splitting: Chinese works as well.

The package, bottom up: ``text`` (folding, hashing, a record's site and words),
``sketch`` (what ``fit`` sees of an article), ``patterns`` (``Learned``: what was
learned, and its removal from a record), ``arrays`` (the fit's array helpers),
``evidence`` (what an index keeps), ``copies`` (which articles are copies), ``merge``
(this run's evidence with an index's), ``fit`` and ``rules`` (a rules file of it).
"""

from .evidence import (
    LINE_ROW,
    MARK_ROW,
    SITE_ROW,
    TAIL_ROW,
    Evidence,
    Marks,
    Prior,
    Wanted,
)
from .fit import Learning, fit, fit_with
from .patterns import Learned, TextKey
from .rules import rules_toml, texts_of
from .sketch import Sketch
from .text import fold, site_of, stable_hash

__all__ = [
    "LINE_ROW",
    "MARK_ROW",
    "SITE_ROW",
    "TAIL_ROW",
    "Evidence",
    "Learned",
    "Learning",
    "Marks",
    "Prior",
    "Sketch",
    "TextKey",
    "Wanted",
    "fit",
    "fit_with",
    "fold",
    "rules_toml",
    "site_of",
    "stable_hash",
    "texts_of",
]
