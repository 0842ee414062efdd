"""The run summary: one object, from the same counters, for the table, JSON and Markdown."""

from __future__ import annotations

from typing import Any

from .stats import Stats

#: Bumped when a key of the JSON report changes meaning or disappears.
REPORT_SCHEMA_VERSION = 1

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
    index: dict[str, Any] | None = None,
    engine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON report: versioned, with every counter and the figures derived from them."""
    counts = dict(sorted(stats.counts.items()))
    megabytes = stats["bytes_read"] / 1e6
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "command": command,
        "counts": counts,
        "boilerplate_removed": sum(stats.removed_by_rule.values()),
        "removed_by_rule": dict(sorted(stats.removed_by_rule.items())),
        "duplicates": {
            "exact": stats["duplicates_exact"],
            "near": stats["duplicates_near"],
            "index": stats["duplicates_index"],
        },
        "seconds": round(seconds, 3),
        "mb_per_s": round(megabytes / seconds, 2) if seconds > 0 else None,
    }
    if stats.removed_by_pattern:
        top = sorted(
            stats.removed_by_pattern.items(),
            key=lambda item: (-item[1], item[0][0], item[0][1] or "", item[0][2]),
        )
        report["learned_patterns"] = [
            {"kind": kind, "site": site, "text": text, "removed": n}
            for (kind, site, text), n in top[:TOP_PATTERNS]
        ]
    if settings is not None:
        report["settings"] = settings
    if index is not None:
        report["index"] = index
    if stats.extended:
        report["extends_indexed"] = stats.extended
    if engine is not None:  # only for an engine other than this machine
        report["engine"] = engine
    return report


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows for humans: what happened, plus time and speed. A stage that ran
    shows its counts even when they are zero ("near duplicates 0" is news too)."""
    counts = report["counts"]
    shown_at_zero = {"written"}
    if "settings" in report:  # deduplication ran
        shown_at_zero |= {"duplicates_exact", "duplicates_near"}
    if "index" in report:
        shown_at_zero.add("duplicates_index")
    rows = []
    for key, label in ROWS:
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
    if "index" in report:
        index = report["index"]
        rows.append(
            ("index articles", f"{index['articles_before']:,} -> {index['articles_after']:,}")
        )
        if index.get("ids_reused"):  # ids that now name two articles: worth a look
            rows.append(("index ids reused", f"{index['ids_reused']:,}"))
    rate = f", {report['mb_per_s']} MB/s" if report["mb_per_s"] is not None else ""
    rows.append(("time", f"{report['seconds']:.2f} s{rate}"))
    return rows


def markdown_summary(report: dict[str, Any]) -> str:
    """A short Markdown table for CI step summaries (GITHUB_STEP_SUMMARY)."""
    lines = [f"### corpus-clean {report['command']}", "", "| | |", "|---|---:|"]
    lines += [f"| {label.strip()} | {value} |" for label, value in summary_rows(report)]
    return "\n".join(lines) + "\n"
