"""The run summary: one object, from the same counters, for the table, JSON and Markdown."""

from __future__ import annotations

import dataclasses
from typing import Any

from .stats import (
    CLUSTER_SIZE_RANGES,
    COUNTERS,
    DUPLICATE_KINDS,
    SIMILARITY_BIN,
    SIMILARITY_BINS,
    Stats,
)

#: Bumped when a key of the JSON report changes meaning or disappears (its JSON Schema:
#: ``report.schema.json`` in the package). 2: every counter, settings by stage, version,
#: input and outputs, seconds by phase, histograms, and what --check found.
REPORT_SCHEMA_VERSION = 2

#: Recurring articles named in the summary and on stderr (all are in the report).
RECURRING_SHOWN = 20


class Report(dict[str, Any]):
    """A run's report: the JSON object ``--report`` writes (see ``report.schema.json``),
    with a few names for what a caller asks most."""

    @property
    def written(self) -> int:
        """Records written (with ``check``: that would have been written)."""
        written: int = self["counts"]["written"]
        return written

    @property
    def recurring(self) -> list[dict[str, Any]]:
        """With ``check``: the input articles that recur in the index, in input order."""
        return list(self["check"]["recurring"]) if self["check"] is not None else []

    @property
    def passed(self) -> bool:
        """False when ``check`` found articles that recur in the index."""
        return not self.recurring


#: Learned patterns listed in the report (most removals first), and in the summary.
TOP_PATTERNS = 20
TOP_PATTERNS_SHOWN = 5

#: (counter, label) rows of the summary, in display order.
ROWS = (
    ("pages_read", "pages read"),
    ("records_read", "records read"),
    ("special_files_skipped", "FIFOs, sockets and devices skipped"),
    ("binary_pages_skipped", "binary pages skipped"),
    ("articles_split", "articles split"),
    ("invalid_utf8_bytes", "invalid UTF-8 bytes replaced"),
    ("lone_surrogates_replaced", "lone surrogates replaced (U+FFFD)"),
    ("invalid_lines_skipped", "invalid lines skipped"),
    ("page_headers_dropped", "page headers dropped"),
    ("empty_articles_dropped", "empty articles dropped"),
    ("glued_sentences_split", "glued sentences split"),
    ("boilerplate_removed", "boilerplate removed"),
    ("duplicates_exact", "exact duplicates"),
    ("duplicates_near", "near duplicates"),
    ("duplicates_contained", "excerpts of kept articles"),
    ("duplicates_index", "duplicates of indexed articles"),
    ("extends_indexed", "extended indexed articles (kept)"),
    ("written", "records written"),
)


def build_report(
    stats: Stats,
    *,
    command: str,
    seconds: float,
    settings: dict[str, Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
    index: dict[str, Any] | None = None,
    check: bool = False,
    version: str | None = None,
    input_files: int | None = None,
    outputs: dict[str, dict[str, Any]] | None = None,
    phases: dict[str, float] | None = None,
    engine: dict[str, Any] | None = None,
) -> Report:
    """The JSON report: versioned, with every counter (zero or not) and the figures
    derived from them. ``settings`` come from ``settings_of``; ``fingerprint`` is what
    makes fingerprints comparable (an index keeps it)."""
    counts = dict.fromkeys(COUNTERS, 0) | dict(stats.counts)
    counts = dict(sorted(counts.items()))
    megabytes = stats["bytes_read"] / 1e6
    report = Report(
        {
            "schema_version": REPORT_SCHEMA_VERSION,
            "version": version,
            "command": command,
            "counts": counts,
            "boilerplate_removed": sum(stats.removed_by_rule.values()),
            "removed_by_rule": dict(sorted(stats.removed_by_rule.items())),
            "duplicates": {
                "exact": stats["duplicates_exact"],
                "near": stats["duplicates_near"],
                "contained": stats["duplicates_contained"],
                "index": stats["duplicates_index"],
            },
            "learned_patterns": [],
            "extends_indexed": stats.extended,
            "settings": settings,
            "fingerprint": fingerprint,
            "index": index,
            "check": {"recurring": stats.recurring} if check else None,
            "input": {"files": input_files, "bytes": stats["bytes_read"]},
            "outputs": outputs or {},
            "seconds": round(seconds, 3),
            "phases": {name: round(s, 3) for name, s in (phases or {}).items()},
            "mb_per_s": round(megabytes / seconds, 2) if seconds > 0 else None,
            "histograms": {
                "similarity": [
                    {
                        "from": round(i * SIMILARITY_BIN, 2),
                        "to": round((i + 1) * SIMILARITY_BIN, 2),
                        "removed": stats.similarity_bins[i],
                    }
                    for i in range(SIMILARITY_BINS)
                ],
                "cluster_sizes": [
                    {
                        "size": label,
                        "clusters": sum(
                            n
                            for size, n in stats.cluster_sizes.items()
                            if low <= size and (high is None or size <= high)
                        ),
                    }
                    for label, low, high in CLUSTER_SIZE_RANGES
                ],
            },
        }
    )
    if stats.removed_by_pattern:
        top = sorted(
            stats.removed_by_pattern.items(),
            key=lambda item: (-item[1], item[0][0], item[0][1] or "", item[0][2]),
        )
        report["learned_patterns"] = [
            {"kind": kind, "site": site, "text": text, "removed": n}
            for (kind, site, text), n in top[:TOP_PATTERNS]
        ]
    if engine is not None:  # only for an engine other than this machine
        report["engine"] = engine
    return report


def settings_of(plan: Any) -> dict[str, Any]:
    """Every option of a run's plan that changes its output, by stage (None: the stage
    did not run), as JSON."""

    def plain(options: Any) -> Any:
        if options is None:
            return None
        return {
            key: [str(v) for v in value] if key == "rule_files" else value
            for key, value in dataclasses.asdict(options).items()
        }

    return {
        "read": plain(plan.read),
        "split": plain(plan.split),
        "clean": plain(plan.clean),
        "learn": plain(plan.learn),
        "dedup": plain(plan.dedup),
    }


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows for humans: what happened, plus time and speed. A stage that ran
    shows its counts even when they are zero ("near duplicates 0" is news too)."""
    counts = report["counts"]
    shown_at_zero = {"written"}
    if (report.get("settings") or {}).get("dedup") is not None:  # deduplication ran
        shown_at_zero |= {"duplicates_exact", "duplicates_near"}
    if report.get("index") is not None:
        shown_at_zero.add("duplicates_index")
    rows = []
    for key, label in ROWS:
        if key == "written" and report.get("check") is not None:
            label = "records it would write"  # a check writes none
        value = (
            report["boilerplate_removed"] if key == "boilerplate_removed" else counts.get(key, 0)
        )
        if value or key in shown_at_zero:
            rows.append((label, f"{value:,}"))
        if key == "boilerplate_removed":
            rows.extend((f"  {rule}", f"{n:,}") for rule, n in report["removed_by_rule"].items())
            for pattern in report.get("learned_patterns", [])[:TOP_PATTERNS_SHOWN]:
                where = pattern["site"] if pattern["site"] is not None else "any site"
                text = pattern["text"]
                text = text if len(text) <= 40 else text[:39] + "…"
                label = f"    {pattern['kind']} {text!r} ({where})"
                rows.append((label, f"{pattern['removed']:,}"))
    if report.get("index") is not None:
        index = report["index"]
        rows.append(
            ("index articles", f"{index['articles_before']:,} -> {index['articles_after']:,}")
        )
        if index.get("ids_reused"):  # ids that now name two articles: worth a look
            rows.append(("index ids reused", f"{index['ids_reused']:,}"))
        if index.get("learned_lines_forgotten"):
            rows.append(("index lines forgotten", f"{index['learned_lines_forgotten']:,}"))
    rate = f", {report['mb_per_s']} MB/s" if report["mb_per_s"] is not None else ""
    rows.append(("time", f"{report['seconds']:.2f} s{rate}"))
    return rows


def verdict_line(report: dict[str, Any]) -> str:
    """Whether a run passed or failed its check, and why, in a line."""
    counts = report["counts"]
    recurring = report["check"]["recurring"] if report.get("check") is not None else []
    if recurring:
        n = len(recurring)
        return f"❌ check failed: {n:,} article{'s' if n != 1 else ''} recur in the index"
    written = "would write" if report.get("check") is not None else "written"
    removed = sum(counts[f"duplicates_{kind}"] for kind in DUPLICATE_KINDS)
    return f"✅ passed: {counts['written']:,} {written}, {removed:,} duplicates removed"


def recurring_lines(report: dict[str, Any], limit: int = RECURRING_SHOWN) -> list[str]:
    """One line per input article that recurs in the index (the first ``limit``)."""
    recurring = report["check"]["recurring"] if report.get("check") is not None else []
    lines = [
        f"{found['id']} recurs as {found['indexed_id']} ({found['indexed_source']}), "
        f"similarity {found['similarity']:.2f}"
        for found in recurring[:limit]
    ]
    if len(recurring) > limit:
        lines.append(f"... and {len(recurring) - limit:,} more (all are in --report)")
    return lines


def markdown_summary(report: dict[str, Any]) -> str:
    """A short Markdown summary for CI steps (GITHUB_STEP_SUMMARY): first line, the
    verdict; then the recurring articles, if any, and the table."""
    lines = [f"### corpus-clean {report['command']}: {verdict_line(report)}", ""]
    if found := recurring_lines(report):
        lines += [f"- {_md(line)}" for line in found] + [""]
    lines += ["| | |", "|---|---:|"]
    lines += [f"| {_md(label.strip())} | {value} |" for label, value in summary_rows(report)]
    return "\n".join(lines) + "\n"


def markdown_failure(command: str, message: str) -> str:
    """The step summary of a run that broke: nothing was published."""
    return f"### corpus-clean {command}: 💥 broke: {_md(message)}\n"


def _md(text: str) -> str:
    """Text in a Markdown table or list: pipes and newlines would break it."""
    return text.replace("|", "\\|").replace("\n", " ")
