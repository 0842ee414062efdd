"""Benchmark corpus-clean against MinHash baselines on a synthetic scrape with known reposts.

Generates the corpus (synth.py), runs every tool as its own subprocess through
measure.py, alternating the order between repeats, and reports median wall time,
throughput, peak RSS and precision/recall against the planted reposts.

``--run-speed 20000,100000`` instead times only ``corpus-clean run`` on the pages, with
one job and with ``--jobs`` (default 2) back to back: its MB/s at each size, and the
speed-up of the jobs over one.

``--learn-cost 100000`` times ``corpus-clean run`` with learning (the default) and with
``--no-learn``, with one job and with ``--jobs`` (default 2), back to back: what learning
adds to the run's time and CPU.

``--learn-instructions 20000`` counts instead of timing: the instructions ``corpus-clean
run`` executes with one job, with learning and with ``--no-learn``, under ``valgrind
--tool=callgrind`` (about 50 times slower, the two side by side). A machine whose speed
drifts between runs changes the times, not the count.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import synth

HERE = Path(__file__).resolve().parent
BASELINES = {
    "datasketch": "datasketch_typical.py",
    "rensa": "rensa_lsh.py",
    "datatrove": "datatrove_minhash.py",
}
PACKAGES = (
    "corpus-clean",
    "datasketch",
    "rensa",
    "datatrove",
    "spacy",
    "numpy",
    "orjson",
    "xxhash",
)
HIGH_JACCARD = 0.8


@dataclass
class Corpus:
    root: Path
    manifest: dict[str, int]

    @property
    def articles(self) -> int:
        return self.manifest["articles"]


@dataclass
class Truth:
    """Planted reposts, hard negatives, and how page articles map back to article ids."""

    original_of: dict[str, str]  # repost -> its original
    kind: dict[str, str]  # repost -> how it was edited (synth.EDIT_WEIGHTS)
    similar: set[str]  # reposts whose true shingle Jaccard is >= HIGH_JACCARD
    hard_negatives: set[str]  # articles sharing only a frame with others: never duplicates
    by_page: dict[tuple[str, int], str]
    lang: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Truth:
        truth = cls({}, {}, set(), set(), {}, {})
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                truth.by_page[row["page"], row["index"]] = row["id"]
                truth.lang[row["id"]] = row["lang"]
                if row["original"]:
                    truth.original_of[row["id"]] = row["original"]
                    truth.kind[row["id"]] = row["edit"]
                    if row["jaccard"] >= HIGH_JACCARD:
                        truth.similar.add(row["id"])
                if row.get("family") is not None:
                    truth.hard_negatives.add(row["id"])
        return truth

    def restricted(self, ids: set[str]) -> Truth:
        return Truth(
            {r: o for r, o in self.original_of.items() if r in ids},
            {r: k for r, k in self.kind.items() if r in ids},
            self.similar & ids,
            self.hard_negatives & ids,
            {},
            {},
        )

    def score(self, removed: frozenset[str]) -> dict[str, Any]:
        """A planted pair is found when either of its two records is removed (an original
        may rightly go when its repost holds it and more); a removed record is right when
        it is a repost or an original that was reposted."""
        grouped = set(self.original_of) | set(self.original_of.values())

        def found(reposts: Iterable[str]) -> float | None:
            pairs = [r in removed or self.original_of[r] in removed for r in reposts]
            return sum(pairs) / len(pairs) if pairs else None

        kinds = sorted(set(self.kind.values()))
        return {
            "precision": len(removed & grouped) / len(removed) if removed else None,
            "recall": found(self.original_of),
            "recall_jaccard_ge_0.8": found(self.similar),
            "recall_by_kind": {
                kind: found(r for r, k in self.kind.items() if k == kind) for kind in kinds
            },
            "hard_negatives": len(self.hard_negatives),
            "hard_negative_merges": len(removed & self.hard_negatives),
        }

    def score_by_language(self, removed: frozenset[str]) -> dict[str, dict[str, Any]]:
        scores = {}
        for lang in sorted(set(self.lang.values())):
            keep = {art_id for art_id, code in self.lang.items() if code == lang}
            scores[lang] = self.restricted(keep).score(removed & keep)
        return scores

    def page_article(self, record_id: str) -> str | None:
        """Truth id of a corpus-clean page article id "{source}#{k}", if it names one."""
        source, _, index = record_id.rpartition("#")
        if not index.isdigit():
            return None
        return self.by_page.get((Path(source).name, int(index)))


@dataclass
class Tool:
    name: str
    input_name: str  # "pages" or "articles.jsonl"
    argv: Callable[[Path, Path, Path], list[str]]  # (input, output dir, dups file) -> argv
    from_pages: bool = False
    skipped: str | None = None
    runs: list[dict[str, float | int]] = field(default_factory=list)
    removed: list[frozenset[str]] = field(default_factory=list)
    kept: int | None = None
    unmapped: int = 0
    failure: str | None = None


def corpus_clean_binary() -> Path | None:
    """The console script next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "corpus-clean"
    if beside.exists():
        return beside
    found = shutil.which("corpus-clean")
    return Path(found) if found else None


def build_tools(args: argparse.Namespace) -> list[Tool]:
    binary = corpus_clean_binary()
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    if args.containment is not None:
        jobs += ["--containment", str(args.containment)]

    def cli(command: str) -> Callable[[Path, Path, Path], list[str]]:
        def argv(source: Path, out: Path, dups: Path) -> list[str]:
            output = ["-o", str(out / "out.jsonl"), "--duplicates", str(dups)]
            return [str(binary), command, str(source), *output, "--quiet", *jobs]

        return argv

    def script(name: str) -> Callable[[Path, Path, Path], list[str]]:
        def argv(source: Path, out: Path, dups: Path) -> list[str]:
            return [sys.executable, str(HERE / "baselines" / name), str(source), str(dups)]

        return argv

    missing = None if binary else "skipped: corpus-clean not installed"
    tools = [
        Tool("corpus-clean run", "pages", cli("run"), from_pages=True, skipped=missing),
        Tool("corpus-clean dedup", "articles.jsonl", cli("dedup"), skipped=missing),
    ]
    wanted = [name.strip() for name in args.baselines.split(",") if name.strip()]
    for name in wanted:
        if name not in BASELINES:
            sys.exit(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    for name, file in BASELINES.items():
        skipped = None
        if name not in wanted:
            skipped = "skipped: not selected"
        elif args.articles > args.max_baseline_articles:
            skipped = f"skipped: over --max-baseline-articles {args.max_baseline_articles}"
        tools.append(Tool(name, "articles.jsonl", script(file), skipped=skipped))
    return tools


@contextlib.contextmanager
def corpus(args: argparse.Namespace) -> Iterator[Corpus]:
    """Generate the corpus in a temporary folder, or reuse/keep it in --keep-data."""
    expected = {"format": synth.FORMAT_VERSION, "articles": args.articles, "seed": args.seed}
    if args.keep_data:
        root = args.keep_data.resolve()
        manifest_path = root / "manifest.json"
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            if {key: manifest.get(key) for key in expected} != expected:
                sys.exit(f"{root} holds a different corpus ({manifest}); remove it first")
            print(f"reusing corpus in {root}", file=sys.stderr)
        elif root.exists() and any(root.iterdir()):
            sys.exit(f"{root} is not empty and has no manifest.json; refusing to write there")
        else:
            manifest = generate(root, args)
        yield Corpus(root, manifest)
        return
    with tempfile.TemporaryDirectory(prefix="corpus-clean-bench-") as tmp:
        root = Path(tmp)
        yield Corpus(root, generate(root, args))


def generate(root: Path, args: argparse.Namespace) -> dict[str, int]:
    print(f"generating {args.articles} articles (seed {args.seed}) in {root}", file=sys.stderr)
    began = time.perf_counter()
    manifest = synth.generate(root, args.articles, args.seed)
    print(f"generated in {time.perf_counter() - began:.1f}s", file=sys.stderr)
    return manifest


def run_once(tool: Tool, data: Corpus, truth: Truth, scratch: Path) -> None:
    """One measured run of one tool; its outputs are scored, then deleted."""
    out = scratch / tool.name.replace(" ", "_")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    dups = out / "removed.jsonl"
    result = out / "measure.json"
    argv = tool.argv(data.root / tool.input_name, out, dups)
    wrapper = [sys.executable, str(HERE / "measure.py"), str(result), "--", *argv]
    proc = subprocess.run(wrapper, capture_output=True, text=True, check=False)
    measured = json.loads(result.read_text()) if result.exists() else {"returncode": -1}
    if proc.returncode != 0 or measured["returncode"] != 0 or not dups.exists():
        said = (proc.stderr or proc.stdout).strip().splitlines()
        tool.failure = f"exit {measured['returncode']}: " + (said[-1] if said else "no output")
        shutil.rmtree(out, ignore_errors=True)
        return
    removed, unmapped = set(), 0
    with dups.open(encoding="utf-8") as lines:
        for line in lines:
            record_id = json.loads(line)["id"]
            mapped = truth.page_article(record_id) if tool.from_pages else record_id
            if mapped is None:
                unmapped += 1
            else:
                removed.add(mapped)
    if (out / "out.jsonl").exists():
        with (out / "out.jsonl").open("rb") as kept:
            tool.kept = sum(1 for _ in kept)
    tool.unmapped = unmapped
    tool.runs.append(measured)
    tool.removed.append(frozenset(removed))
    shutil.rmtree(out, ignore_errors=True)


def summarize(tool: Tool, data: Corpus, truth: Truth) -> dict[str, Any]:
    if tool.skipped or (tool.failure and not tool.runs):
        return {"tool": tool.name, "status": tool.skipped or f"failed ({tool.failure})"}
    seconds = statistics.median(float(run["seconds"]) for run in tool.runs)
    input_bytes = data.manifest["page_bytes" if tool.from_pages else "articles_jsonl_bytes"]
    removed = tool.removed[0]
    return {
        "tool": tool.name,
        "status": "ok" if not tool.failure else f"ok, then failed ({tool.failure})",
        "input": tool.input_name,
        "input_mb": input_bytes / 1e6,
        "seconds": seconds,
        "seconds_all": [run["seconds"] for run in tool.runs],
        "cpu_seconds": statistics.median(float(run["cpu_seconds"]) for run in tool.runs),
        "mb_per_s": input_bytes / 1e6 / seconds,
        "articles_per_s": data.articles / seconds,
        "peak_rss_mib": max(int(run["max_rss_kib"]) for run in tool.runs) / 1024,
        "duplicates": len(removed) + tool.unmapped,
        "unmapped_ids": tool.unmapped,
        "same_result_every_repeat": len(set(tool.removed)) == 1,
        "kept": tool.kept,
        "measured_whole_process_tree": all(run["whole_tree"] for run in tool.runs),
        **truth.score(removed),
        "by_language": truth.score_by_language(removed),
    }


def speedups(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """corpus-clean's articles/s over each baseline's, for every pair that ran."""
    done = {row["tool"]: row["articles_per_s"] for row in rows if "articles_per_s" in row}
    ours = [name for name in done if name.startswith("corpus-clean")]
    return {
        name: {base: done[name] / done[base] for base in done if base in BASELINES} for name in ours
    }


def machine() -> dict[str, object]:
    def cpuinfo(key: str) -> str | None:
        with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        return None

    mem_kib = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        mem_kib = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    git = ["git", "-C", str(HERE), "describe", "--always", "--dirty"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpu": cpuinfo("model name"),
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1) if mem_kib else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "git": commit or None,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "load_average_at_start": os.getloadavg(),
    }


COLUMNS = (  # header, width, summary key, format
    ("tool", 20, "tool", "s"),
    ("input", 14, "input", "s"),
    ("sec", 8, "seconds", ".2f"),
    ("cpu s", 8, "cpu_seconds", ".2f"),
    ("MB/s", 7, "mb_per_s", ".2f"),
    ("art/s", 8, "articles_per_s", ".0f"),
    ("RSS MiB", 8, "peak_rss_mib", ".0f"),
    ("dups", 7, "duplicates", "d"),
    ("prec", 6, "precision", ".3f"),
    ("recall", 6, "recall", ".3f"),
    ("rec J>=.8", 9, "recall_jaccard_ge_0.8", ".3f"),
    ("HN merged", 9, "hard_negative_merges", "d"),
)


def table_line(cells: list[str]) -> str:
    return "  ".join(
        cell.ljust(width) if i < 2 else cell.rjust(width)
        for i, (cell, (_, width, _, _)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


def print_report(report: dict[str, Any]) -> None:
    print(table_line([header for header, *_ in COLUMNS]))
    for row in report["results"]:
        if "seconds" not in row:
            print(f"{row['tool']:<20}  {row['status']}")
            continue
        cells = ["-" if row[key] is None else format(row[key], spec) for _, _, key, spec in COLUMNS]
        print(table_line(cells))
        by_kind = row["recall_by_kind"].items()
        kinds = ", ".join(f"{kind} {value:.3f}" for kind, value in by_kind if value is not None)
        print(f"  recall by kind: {kinds}")
        if row["status"] != "ok":
            print(f"  {row['status']}")
    for ours, ratios in report["speedup_articles_per_s"].items():
        for base, ratio in ratios.items():
            print(f"{ours}: {ratio:.1f}x the articles/s of {base}")
    truth = report["truth"]
    print(
        f"truth: {truth['reposts']} planted reposts among {truth['articles']} articles, "
        f"{truth['pairs_below_0.8']} of them with true Jaccard < 0.8; "
        f"{truth['hard_negatives']} hard negatives (frame-sharing articles, containment "
        f"at most {truth['hard_negative_max_containment']})"
    )


def measured(argv: list[str], scratch: Path) -> dict[str, Any]:
    """One command timed by measure.py (wall, CPU of the whole process tree, peak RSS)."""
    result = scratch / "measure.json"
    subprocess.run(
        [sys.executable, str(HERE / "measure.py"), str(result), "--", *argv],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    measure: dict[str, Any] = json.loads(result.read_text())
    return measure


def alternated(
    variants: dict[str, list[str]], repeats: int, scratch: Path, label: str
) -> dict[str, list[dict[str, Any]]]:
    """Each variant's command timed ``repeats`` times, the variants back to back in each
    repeat and in reverse order every other one, so that a shared machine's load falls
    on all alike. Each run keeps the ``--report`` corpus-clean wrote of it (``report``)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    report = scratch / "report.json"
    for repeat in range(repeats):
        order = list(variants) if repeat % 2 == 0 else list(variants)[::-1]
        for name in order:
            print(f"{label}, repeat {repeat + 1}: {name}", file=sys.stderr)
            run = measured([*variants[name], "--report", str(report)], scratch)
            run["report"] = json.loads(report.read_text())
            runs[name].append(run)
    return runs


def paired_ratios(first: list[float], second: list[float]) -> tuple[float, list[float]]:
    """Each repeat's own ratio first / second (the two ran back to back, under the same
    load), and their median."""
    ratios = [a / b for a, b in zip(first, second, strict=True)]
    return statistics.median(ratios), ratios


def serial_seconds(run: dict[str, Any]) -> float:
    """What of a one-job run only the main process can do, whatever the jobs: all but
    the run's own phases (start-up, finding the input, publishing, exit), learning's fit,
    resolving, writing and committing."""
    report = run["report"]
    phases = report["phases"]
    outside = float(run["seconds"]) - float(report["seconds"])
    return outside + sum(
        phases.get(p, 0.0) for p in ("learning", "resolving", "writing", "committing")
    )


def runs_on_pages(
    args: argparse.Namespace, sizes: str
) -> Iterator[tuple[int, Corpus, Path, list[str]]]:
    """For each of the comma-separated sizes: the generated pages of that many articles
    (``--keep-data`` holds a folder per size), a scratch folder, and the ``corpus-clean
    run`` command line on the pages, quiet, its output in the scratch folder."""
    binary = corpus_clean_binary()
    if binary is None:
        sys.exit("corpus-clean is not installed")
    for size in (int(size) for size in sizes.split(",")):
        sized = argparse.Namespace(**{**vars(args), "articles": size})
        if args.keep_data:
            sized.keep_data = args.keep_data / str(size)
        with (
            corpus(sized) as data,
            tempfile.TemporaryDirectory(prefix="corpus-clean-out-") as folder,
        ):
            scratch = Path(folder)
            out = scratch / "out.jsonl"
            yield (
                size,
                data,
                scratch,
                [str(binary), "run", str(data.root / "pages"), "-o", str(out), "-q"],
            )


def learn_cost(args: argparse.Namespace) -> dict[str, Any]:
    """What learning adds to ``corpus-clean run`` on the generated pages at each of
    ``--learn-cost``'s sizes, with one job and with ``--jobs``: the median wall time and
    CPU seconds with and without ``--no-learn``, and the median of the repeats' own
    ratios."""
    jobs = args.jobs or 2
    rows = []
    for size, _, scratch, argv in runs_on_pages(args, args.learn_cost):
        for j in (1, jobs):
            variants = {
                "learning": [*argv, "--jobs", str(j)],
                "--no-learn": [*argv, "--jobs", str(j), "--no-learn"],
            }
            runs = alternated(variants, args.repeats, scratch, f"{size:,}, -j {j}")
            row: dict[str, Any] = {"articles": size, "jobs": j}
            for measure in ("seconds", "cpu_seconds"):
                with_, without = ([float(run[measure]) for run in runs[name]] for name in variants)
                row[measure] = [statistics.median(with_), statistics.median(without)]
                ratio, ratios = paired_ratios(with_, without)
                row[f"{measure}_extra_pct"] = 100 * (ratio - 1)
                row[f"{measure}_extra_pct_all"] = [round(100 * (r - 1), 1) for r in ratios]
                # The fastest run of each: what the load of a drifting machine adds least to.
                row[f"{measure}_extra_pct_fastest"] = 100 * (min(with_) / min(without) - 1)
            rows.append(row)
    return {"learn_cost": rows, "machine": machine(), "load_average_at_end": os.getloadavg()}


def learn_instructions(args: argparse.Namespace) -> dict[str, Any]:
    """The instructions ``corpus-clean run -j 1`` executes on the generated pages at each
    of ``--learn-instructions``'s sizes, with learning and with ``--no-learn`` (both at
    once, each under callgrind; the hash seed fixed, so that a rerun counts the same)."""
    if shutil.which("valgrind") is None:
        sys.exit("--learn-instructions needs valgrind (Debian's package valgrind)")
    rows = []
    for size, _, scratch, argv in runs_on_pages(args, args.learn_instructions):
        pages = argv[2]
        started = {}
        for n, (name, extra) in enumerate((("learning", []), ("--no-learn", ["--no-learn"]))):
            profile, out = scratch / f"callgrind-{n}.out", scratch / f"out-{n}.jsonl"
            command = [sys.executable, "-m", "corpus_clean", "run", pages, "-q", "-j", "1"]
            started[name] = subprocess.Popen(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={profile}",
                    *command,
                    "-o",
                    str(out),
                    *extra,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
        counts = {}
        for name, process in started.items():
            _, log = process.communicate()
            found = re.search(r"Collected\s*:\s*(\d+)", log)
            if process.returncode != 0 or found is None:
                sys.exit(f"callgrind of {name} failed:\n{log[-2000:]}")
            counts[name] = int(found.group(1))
        rows.append(
            {
                "articles": size,
                "instructions": [counts["learning"], counts["--no-learn"]],
                "extra_pct": 100 * (counts["learning"] / counts["--no-learn"] - 1),
            }
        )
    return {
        "learn_instructions": rows,
        "machine": machine(),
        "load_average_at_end": os.getloadavg(),
    }


def print_learn_instructions(report: dict[str, Any]) -> None:
    for row in report["learn_instructions"]:
        with_, without = (n / 1e9 for n in row["instructions"])
        print(
            f"run on {row['articles']:,} articles, --jobs 1: {with_:.2f} billion instructions "
            f"with learning, {without:.2f} billion without ({row['extra_pct']:+.1f}%)"
        )


def print_load(report: dict[str, Any]) -> None:
    load = report["machine"]["load_average_at_start"]
    print(f"load average at start {load[0]:.2f}, at end {report['load_average_at_end'][0]:.2f}")


def print_learn_cost(report: dict[str, Any]) -> None:
    for row in report["learn_cost"]:
        print(
            f"run on {row['articles']:,} articles, --jobs {row['jobs']}: "
            f"{row['seconds'][0]:.2f} s with learning, {row['seconds'][1]:.2f} s without "
            f"({row['seconds_extra_pct']:+.1f}%; repeats: "
            f"{', '.join(f'{x:+.1f}' for x in row['seconds_extra_pct_all'])}; fastest "
            f"against fastest {row['seconds_extra_pct_fastest']:+.1f}%); CPU "
            f"{row['cpu_seconds'][0]:.2f} s against {row['cpu_seconds'][1]:.2f} s "
            f"({row['cpu_seconds_extra_pct']:+.1f}%; repeats: "
            f"{', '.join(f'{x:+.1f}' for x in row['cpu_seconds_extra_pct_all'])}; fastest "
            f"against fastest {row['cpu_seconds_extra_pct_fastest']:+.1f}%)"
        )
    print_load(report)


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    """``corpus-clean run``'s MB/s on the generated pages at each of ``--run-speed``'s
    sizes, with one job and with ``--jobs`` (default 2), the two back to back in each
    repeat (alternating which goes first), so that a shared machine's load falls on both
    alike; the speed-up is the median of the repeats' own ratios."""
    jobs = args.jobs or 2
    rows = []
    for size, data, scratch, argv in runs_on_pages(args, args.run_speed):
        mb = data.manifest["page_bytes"] / 1e6
        variants = {f"--jobs {j}": [*argv, "--jobs", str(j)] for j in (1, jobs)}
        by_name = alternated(variants, args.repeats, scratch, f"{size:,} articles")
        runs = {j: by_name[f"--jobs {j}"] for j in (1, jobs)}
        one, many = ([float(run["seconds"]) for run in runs[j]] for j in (1, jobs))
        serial = statistics.median(serial_seconds(run) for run in runs[1])
        rows.append(
            {
                "articles": size,
                "page_mb": mb,
                "jobs": jobs,
                "seconds_1": statistics.median(one),
                "seconds_jobs": statistics.median(many),
                "mb_per_s_1": mb / statistics.median(one),
                "mb_per_s_jobs": mb / statistics.median(many),
                "speedup": paired_ratios(one, many)[0],
                "speedups_all": [round(r, 3) for r in paired_ratios(one, many)[1]],
                "cpu_seconds_jobs": statistics.median(float(r["cpu_seconds"]) for r in runs[jobs]),
                "serial_seconds_1": serial,
                # Amdahl: the one-job run with all but its serial part on every job at once.
                "speedup_bound": statistics.median(one)
                / (serial + (statistics.median(one) - serial) / jobs),
            }
        )
    return {"run_speed": rows, "machine": machine(), "load_average_at_end": os.getloadavg()}


def print_run_speed(report: dict[str, Any]) -> None:
    for row in report["run_speed"]:
        print(
            f"run on {row['articles']:,} articles of pages ({row['page_mb']:.1f} MB): "
            f"{row['mb_per_s_1']:.1f} MB/s with 1 job ({row['seconds_1']:.2f} s), "
            f"{row['mb_per_s_jobs']:.1f} MB/s with {row['jobs']} ({row['seconds_jobs']:.2f} s, "
            f"{row['cpu_seconds_jobs']:.2f} CPU s): {row['speedup']:.2f}x "
            f"(repeats: {', '.join(f'{x:.2f}' for x in row['speedups_all'])}); the one-job "
            f"run spent {row['serial_seconds_1']:.2f} s where only the main process works "
            f"(start-up, learning's fit, resolving, writing): {row['speedup_bound']:.2f}x "
            f"at most with {row['jobs']} jobs"
        )
    print_load(report)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated")
    parser.add_argument("--max-baseline-articles", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, help="pass --jobs N to corpus-clean")
    parser.add_argument(
        "--containment", type=float, help="pass --containment C to corpus-clean (0: off)"
    )
    parser.add_argument("--seed", type=int, default=synth.DEFAULT_SEED)
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument("--keep-data", type=Path, help="generate into (or reuse) this folder")
    parser.add_argument(
        "--run-speed",
        metavar="N,N",
        help="only time 'corpus-clean run' on pages of these many articles (say "
        "20000,100000), with one job and with --jobs (default 2); --keep-data holds a "
        "folder per size",
    )
    parser.add_argument(
        "--learn-cost",
        metavar="N,N",
        help="only time 'corpus-clean run' with learning and with --no-learn on pages of "
        "these many articles (say 100000), with one job and with --jobs (default 2)",
    )
    parser.add_argument(
        "--learn-instructions",
        metavar="N,N",
        help="only count the instructions of 'corpus-clean run --jobs 1' with learning and "
        "with --no-learn on pages of these many articles (say 20000), under valgrind's "
        "callgrind",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # The narrower modes: each measures, prints, and writes its report with --out.
    modes = [
        (args.learn_instructions, learn_instructions, print_learn_instructions),
        (args.learn_cost, learn_cost, print_learn_cost),
        (args.run_speed, run_speed, print_run_speed),
    ]
    for wanted, measure_mode, show in modes:
        if wanted:
            report = measure_mode(args)
            show(report)
            if args.out:
                args.out.write_text(json.dumps(report, indent=2) + "\n")
            return
    tools = build_tools(args)
    active = [tool for tool in tools if not tool.skipped]
    info = machine()
    with corpus(args) as data, tempfile.TemporaryDirectory(prefix="corpus-clean-out-") as scratch:
        truth = Truth.load(data.root / "truth.jsonl")
        for repeat in range(args.repeats):
            order = active if repeat % 2 == 0 else active[::-1]
            for tool in order:
                if tool.failure:
                    continue
                print(f"repeat {repeat + 1}/{args.repeats}: {tool.name}", file=sys.stderr)
                run_once(tool, data, truth, Path(scratch))
        rows = [summarize(tool, data, truth) for tool in tools]
        report = {
            "articles": data.articles,
            "seed": args.seed,
            "repeats": args.repeats,
            "containment": args.containment,
            "corpus": data.manifest,
            "truth": synth.truth_stats(data.root / "truth.jsonl"),
            "machine": info,
            "load_average_at_end": os.getloadavg(),
            "results": rows,
            "speedup_articles_per_s": speedups(rows),
        }
    print_report(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
