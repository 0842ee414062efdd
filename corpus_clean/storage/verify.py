"""``corpus-clean index verify``: reads the whole file, streaming, and lists what is not
as corpus-clean made it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .codec import content_hash, decode_shingles
from .schema import schema_problems, tables

#: Problems of one kind that ``verify`` lists before it only counts the rest.
_SHOWN_PROBLEMS = 5


@dataclass(frozen=True)
class IndexCheck:
    """The checks of one open index: its connection, format, settings and keys per article."""

    db: sqlite3.Connection
    format: int
    settings: dict[str, object]
    bands: int

    def problems(self) -> list[str]:
        """Problems found (empty: healthy): SQLite's own integrity check, the schema,
        then that every article has its band rows and a shingle set that decodes to
        sorted unique hashes matching its content hash, and that nothing refers to a
        missing row. A check that SQLite cannot even run (a malformed page) is a problem
        listed like the others."""
        checks: list[tuple[str, Callable[[], list[str]]]] = [
            ("SQLite integrity check", self._integrity_problems),
            ("schema", lambda: schema_problems(self.db, self.format)),
            ("settings", self._settings_problems),
            ("articles", self._article_problems),
            ("references", self._reference_problems),
        ]
        problems = []
        for what, check in checks:
            try:
                problems += check()
            except sqlite3.DatabaseError as err:
                problems.append(f"{what}: could not be read ({err})")
        return problems

    def _integrity_problems(self) -> list[str]:
        """SQLite's integrity check of the whole file; where a page is too damaged for it
        to run at all, of each table (with its indexes) alone, to say which are hit."""
        try:
            return self._integrity_check("PRAGMA integrity_check")
        except sqlite3.DatabaseError as err:
            problems = [f"SQLite integrity check: {err}"]
        for table in tables(self.format):
            try:
                problems += self._integrity_check(f"PRAGMA integrity_check({table})", table)
            except sqlite3.DatabaseError as err:
                problems.append(f"SQLite integrity check of {table}: {err}")
        return problems

    def _integrity_check(self, pragma: str, table: str | None = None) -> list[str]:
        of = f" of {table}" if table else ""
        return [
            f"SQLite integrity check{of}: {row[0]}"
            for row in self.db.execute(pragma)
            if row[0] != "ok"
        ]

    def _reference_problems(self) -> list[str]:
        problems = []
        orphans = {
            "shingle sets": "SELECT count(*) FROM shingles "
            "WHERE entry NOT IN (SELECT entry FROM articles)",
            "articles of unknown runs": "SELECT count(*) FROM articles "
            "WHERE run NOT IN (SELECT run FROM runs)",
        }
        for what, query in orphans.items():
            if count := self.db.execute(query).fetchone()[0]:
                problems.append(f"{count} {what} without their row")
        articles, added = self.db.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT coalesce(sum(added), 0) FROM runs)"
        ).fetchone()
        if articles != added:
            problems.append(f"{articles} articles, but the runs record {added} added")
        return problems

    def _settings_problems(self) -> list[str]:
        required = (
            "num_perm",
            "bands",
            "rows",
            "seed",
            "shingle",
            "shingle_size",
            "hashing",
            "tokenizer_version",
        )
        missing = [key for key in required if key not in self.settings]
        return [f"settings lack {', '.join(missing)}"] if missing else []

    def _article_problems(self) -> list[str]:
        """Walk articles (with their shingle sets) and band-row counts, both in entry order."""
        found: dict[str, list[str]] = {}

        def note(kind: str, detail: str) -> None:
            found.setdefault(kind, []).append(detail)

        counts = self.db.execute("SELECT entry, count(*) FROM bands GROUP BY entry ORDER BY entry")
        pending = next(counts, None)
        content = "a.content" if self.format >= 2 else "NULL"
        for entry, data, stored_hash in self.db.execute(
            f"SELECT a.entry, s.data, {content} FROM articles AS a "
            "LEFT JOIN shingles AS s ON s.entry = a.entry ORDER BY a.entry"
        ):
            while pending is not None and pending[0] < entry:
                note("band rows of no article", str(pending[0]))
                pending = next(counts, None)
            band_rows = 0
            if pending is not None and pending[0] == entry:
                band_rows = pending[1]
                pending = next(counts, None)
            if data is None:
                note("articles without a shingle set", str(entry))
                continue
            if not isinstance(data, bytes):
                note("shingle sets that are not blobs", str(entry))
                continue
            try:
                values = decode_shingles(data)
            except ValueError as err:
                note("shingle sets that do not decode", f"{entry} ({err})")
                continue
            if len(values) > 1 and not bool(np.all(values[1:] > values[:-1])):
                note("shingle sets not sorted and unique", str(entry))
            elif self.format >= 2 and stored_hash != content_hash(values):
                note("articles whose content hash is not their shingle set's", str(entry))
            expected = self.bands if len(values) else 0
            if band_rows != expected:
                note(f"articles without {expected} band rows", f"{entry} has {band_rows}")
        while pending is not None:
            note("band rows of no article", str(pending[0]))
            pending = next(counts, None)
        problems = []
        for kind, details in found.items():
            shown = ", ".join(details[:_SHOWN_PROBLEMS])
            more = (
                f" and {len(details) - _SHOWN_PROBLEMS} more"
                if len(details) > _SHOWN_PROBLEMS
                else ""
            )
            problems.append(f"{len(details)} {kind}: entry {shown}{more}")
        return problems
