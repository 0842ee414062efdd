"""Counters with a reason: the summary table and the JSON report both read these."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Everything a run counted. Stages add to it; worker processes send theirs back to merge."""

    #: Plain counts by name: pages_read, records_read, bytes_read, articles_split, ...
    counts: Counter[str] = field(default_factory=Counter)
    #: Boilerplate lines or fragments removed, by rule name.
    removed_by_rule: Counter[str] = field(default_factory=Counter)
    #: With ``--explain``: one JSONL line per record that lost anything, in input order.
    explained: list[bytes] = field(default_factory=list)
    #: Kept records that extend an indexed article: {"id": ..., "extends": indexed id}.
    extended: list[dict[str, str]] = field(default_factory=list)
    #: Removals by learned pattern: (kind "line" or "tail", site or None, folded text).
    removed_by_pattern: Counter[tuple[str, str | None, str]] = field(default_factory=Counter)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def merge(self, other: Stats) -> None:
        self.counts.update(other.counts)
        self.removed_by_rule.update(other.removed_by_rule)
        self.explained.extend(other.explained)
        self.extended.extend(other.extended)
        self.removed_by_pattern.update(other.removed_by_pattern)

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "removed_by_rule": dict(sorted(self.removed_by_rule.items())),
        }
