"""What was learned, written out as a rules file a user can review and pin."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from ...record import Record
from .patterns import CONTEXTS, Kind, Learned, Pattern, TextKey
from .text import fold, last_paragraph, paragraphs, site_of, stable_hash


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
