"""The CI gate that speaks (--check names what recurs, the step summary says passed,
failed or broke), the report and its JSON Schema, the progress display, the install's
message without a compiler, and the habits: python -m, CORPUS_CLEAN_* variables,
completion, -v, the Python API and the datatrove example."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result
from rich.console import Console
from support import GOLDEN, REPO

import corpus_clean
from corpus_clean import cli as cli_module
from corpus_clean.cli import cli
from corpus_clean.stats import COUNTERS, DUPLICATE_KINDS

SCHEMA = json.loads((REPO / "corpus_clean" / "report.schema.json").read_text("utf-8"))
#: The 23 articles of the samples, 18 of them kept (5 are exact copies).
ARTICLES, KEPT = 23, 18


def invoke(*args: str | Path, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


@pytest.fixture
def indexed(tmp_path: Path, in_repo: None) -> Path:
    """An index that accepted the samples."""
    path = tmp_path / "accepted.db"
    seeded = invoke("run", "samples/", "--index", path, "-q")
    assert seeded.exit_code == 0, seeded.stderr
    return path


# ---- the CI gate -------------------------------------------------------------------------


def test_check_names_each_recurring_article_and_its_indexed_twin(
    indexed: Path, tmp_path: Path
) -> None:
    report = tmp_path / "check.json"
    check = invoke("run", "samples/", "--index", indexed, "--check", "--report", report)
    assert (check.exit_code, check.stdout) == (1, "")
    figures = json.loads(report.read_text("utf-8"))
    recurring = figures["check"]["recurring"]
    assert len(recurring) == ARTICLES
    first = recurring[0]
    assert first == {
        "id": "samples/000_27f52f622c7b214e.txt#1",
        "indexed_id": "samples/000_27f52f622c7b214e.txt#1",
        "indexed_source": "samples/000_27f52f622c7b214e.txt",
        "similarity": 1.0,
    }
    assert (
        "samples/000_27f52f622c7b214e.txt#1 recurs as samples/000_27f52f622c7b214e.txt#1 "
        "(samples/000_27f52f622c7b214e.txt), similarity 1.00"
    ) in check.stderr
    assert "... and 3 more (all are in --report)" in check.stderr
    assert f"{ARTICLES} input articles recur in the index" in check.stderr
    assert re.search(r"records it would write\s+│\s+0", check.stderr), check.stderr
    assert "records written" not in check.stderr


def test_check_with_q_is_silent_but_the_report_still_tells(indexed: Path, tmp_path: Path) -> None:
    report = tmp_path / "check.json"
    check = invoke("run", "samples/", "--index", indexed, "--check", "-q", "--report", report)
    assert (check.exit_code, check.stdout, check.stderr) == (1, "", "")
    assert len(json.loads(report.read_text("utf-8"))["check"]["recurring"]) == ARTICLES


def test_a_check_that_passes_says_would_write(indexed: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text(json.dumps({"id": "n1", "text": "an article nobody has seen " * 20}) + "\n")
    check = invoke("dedup", fresh, "--index", indexed, "--check")
    assert (check.exit_code, check.stdout) == (0, "")
    assert re.search(r"records it would write\s+│\s+1", check.stderr), check.stderr
    assert "recur" not in check.stderr


def test_step_summary_first_line_says_failed_and_why(
    indexed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    check = invoke("run", "samples/", "--index", indexed, "--check", "-q")
    assert check.exit_code == 1
    lines = summary.read_text("utf-8").splitlines()
    assert lines[0] == (
        f"### corpus-clean run: ❌ check failed: {ARTICLES} articles recur in the index"
    )
    assert lines[2].startswith("- samples/000_27f52f622c7b214e.txt#1 recurs as ")
    assert "| records it would write | 0 |" in lines


def test_step_summary_says_broke_with_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "fine"}\n{"id": "2", "text": \n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    broke = invoke("dedup", bad, "-o", out)
    assert (broke.exit_code, broke.stdout) == (2, "")
    assert not out.exists()
    text = summary.read_text("utf-8")
    assert text.startswith(f"### corpus-clean dedup: 💥 broke: {bad}:2: invalid JSON ")
    assert text.count("\n") == 1


# ---- the report ---------------------------------------------------------------------------


def test_every_report_the_commands_write_follows_the_schema(tmp_path: Path, in_repo: None) -> None:
    """A table of runs down many paths: each report validates, and has every counter."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    split = tmp_path / "split.jsonl"
    assert invoke("split", "samples/", "-o", split, "-q").exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(split.read_bytes() + b"{not json\n")
    db = tmp_path / "accepted.db"
    runs: list[tuple[int, list[str | Path]]] = [
        (0, ["run", "samples/"]),
        (
            0,
            [
                "run",
                "samples/",
                "--no-learn",
                "--keep",
                "longest",
                "--cluster-fields",
                "--no-glue-repair",
                "-o",
                tmp_path / "o.jsonl",
                "--duplicates",
                tmp_path / "d",
                "--explain",
                tmp_path / "e.jsonl",
            ],
        ),
        (0, ["split", "samples/"]),
        (0, ["clean", split, "--no-learn"]),
        (0, ["clean", split, "--learn-min-pages", "2"]),
        (0, ["dedup", split, "--containment", "0", "--threshold", "0.5"]),
        (0, ["dedup", bad, "--skip-invalid", "--rejects", tmp_path / "rejects.jsonl"]),
        (0, ["dedup", "-"]),
        (0, ["run", "samples/", "--index", db]),
        (0, ["run", "samples/", "--index", db]),
        (1, ["run", "samples/", "--index", db, "--check"]),
    ]
    seen: dict[str, int] = {}
    for n, (code, args) in enumerate(runs):
        report = tmp_path / f"report{n}.json"
        result = invoke(*args, "-q", "--report", report, input=split.read_bytes())
        assert result.exit_code == code, (args, result.stderr)
        figures = json.loads(report.read_text("utf-8"))
        jsonschema.validate(figures, SCHEMA)
        assert list(figures["counts"]) == sorted(COUNTERS), args
        for name, value in figures["counts"].items():
            seen[name] = seen.get(name, 0) + value
    reached = {name for name, value in seen.items() if value}
    assert {
        "pages_read",
        "records_read",
        "articles_split",
        "duplicates_exact",
        "duplicates_index",
        "invalid_lines_skipped",
        "written",
    } <= reached


def test_every_counter_the_package_adds_is_listed() -> None:
    """A counter missing from COUNTERS would be missing from reports where it is zero."""
    names: set[str] = set()
    for path in (REPO / "corpus_clean").rglob("*.py"):
        code = path.read_text("utf-8")
        names |= set(re.findall(r"\.add\(\s*\"(\w+)\"", code))
        names |= set(re.findall(r"counts\[\"(\w+)\"\]", code))
        if 'f"duplicates_{kind}"' in code:
            names |= {f"duplicates_{kind}" for kind in DUPLICATE_KINDS}
    assert {"pages_read", "glued_sentences_split", "duplicates_index"} <= names
    assert names <= set(COUNTERS), names - set(COUNTERS)


def test_report_histograms_and_settings(tmp_path: Path, in_repo: None) -> None:
    report = tmp_path / "r.json"
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\npatterns = ["^nothing like this$"]\n', encoding="utf-8")
    result = invoke("run", "samples/", "--report", report, "--rules", rules, "--seed", "3", "-q")
    assert result.exit_code == 0, result.stderr
    figures = json.loads(report.read_text("utf-8"))
    assert figures["settings"]["clean"]["rule_files"] == [str(rules)]
    assert figures["settings"]["dedup"]["seed"] == 3
    assert figures["settings"]["learn"]["min_pages"] == 2
    removed = [b["removed"] for b in figures["histograms"]["similarity"]]
    assert removed == [0] * 19 + [5]
    clusters = {c["size"]: c["clusters"] for c in figures["histograms"]["cluster_sizes"]}
    kept_in_clusters = sum(clusters.values())
    assert kept_in_clusters == KEPT
    assert clusters["1"] < KEPT  # the copies make clusters of more than one


# ---- progress ----------------------------------------------------------------------------


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal: the CLI's one Console, writing here, with no delay."""
    screen = io.StringIO()
    monkeypatch.setattr(cli_module, "console", Console(file=screen, force_terminal=True, width=160))
    monkeypatch.setattr(cli_module, "PROGRESS_DELAY", 0)
    return screen


@pytest.mark.usefixtures("in_repo")
def test_progress_on_a_terminal_names_the_phases_and_keeps_stdout_pure(
    terminal: io.StringIO,
) -> None:
    result = invoke("run", "samples/")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == (GOLDEN / "samples.jsonl").read_bytes()
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", terminal.getvalue())  # colours, cursor
    for phase in ("reading", "learning", "fingerprinting", "resolving", "writing"):
        assert phase in shown, phase
    assert "records read" in shown and "articles" in shown and "records/s" in shown
    assert "%" in shown  # the size of the input is known: a bar
    assert "similarity of removed records" in shown
    assert re.search(r"0\.95-1\.00\s+█+\s+5", shown), shown


def test_progress_on_stdin_counts_records_per_second(terminal: io.StringIO, tmp_path: Path) -> None:
    lines = b"".join(
        json.dumps({"id": str(n), "text": f"story {n} " * 30}).encode() + b"\n" for n in range(50)
    )
    result = invoke("dedup", input=lines)
    assert result.exit_code == 0, result.stderr
    shown = terminal.getvalue()
    assert "50 records read" in shown and "records/s" in shown
    assert "%" not in shown  # the size of stdin is unknown


def test_on_a_real_terminal_the_figures_show_and_stdout_stays_jsonl() -> None:
    """stderr on a pseudo-terminal, stdout a pipe: the bars go to the terminal only."""
    main, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "corpus_clean", "run", "samples/"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 1 << 16)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert done.returncode == 0
    assert done.stdout == (GOLDEN / "samples.jsonl").read_bytes()
    text = shown.decode("utf-8")
    assert "corpus-clean run" in text
    assert "similarity of removed records" in text and "█" in text


def test_no_progress_and_no_figures_when_stderr_is_no_terminal(in_repo: None) -> None:
    result = invoke("run", "samples/")
    assert result.exit_code == 0
    assert "reading" not in result.stderr
    assert "█" not in result.stderr


# ---- install -----------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="no setuptools")
def test_a_build_without_a_compiler_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "corpus_clean").mkdir()
    shutil.copy(REPO / "setup.py", tmp_path)
    shutil.copy(REPO / "corpus_clean" / "_fast.c", tmp_path / "corpus_clean")
    env = {**os.environ, "CC": str(tmp_path / "no-such-compiler")}
    built = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-temp", "t", "--build-lib", "l"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode != 0
    assert (
        "corpus-clean needs a C compiler and Python headers to build corpus_clean._fast: "
        "apt-get install gcc python3-dev (Debian/Ubuntu)"
    ) in built.stderr
    assert "Traceback" not in built.stderr


# ---- habits ------------------------------------------------------------------------------


def test_python_dash_m_corpus_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "corpus_clean", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"corpus-clean, version {version('corpus-clean')}\n"


def test_environment_sets_options_and_the_command_line_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: None
) -> None:
    monkeypatch.setenv("CORPUS_CLEAN_KEEP", "longest")
    monkeypatch.setenv("CORPUS_CLEAN_SEED", "7")
    monkeypatch.setenv("CORPUS_CLEAN_QUIET", "1")
    report = tmp_path / "r.json"
    result = invoke("run", "samples/", "--seed", "3", "--report", report)
    assert (result.exit_code, result.stderr) == (0, "")
    dedup = json.loads(report.read_text("utf-8"))["settings"]["dedup"]
    assert (dedup["keep"], dedup["seed"]) == ("longest", 3)


def test_shell_completion_script() -> None:
    program = Path(sys.executable).with_name("corpus-clean")
    done = subprocess.run(
        [str(program)],
        env={**os.environ, "_CORPUS_CLEAN_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "_corpus_clean_completion" in done.stdout


def test_verbose_adds_settings_files_and_phases(in_repo: None) -> None:
    result = invoke("run", "samples/", "-v")
    assert result.exit_code == 0
    for shown in ("dedup threshold", "0.8", "input files", "reading s", "resolving s"):
        assert shown in result.stderr, shown
    quiet = invoke("run", "samples/")
    assert "dedup threshold" not in quiet.stderr


def test_importing_the_package_imports_nothing_heavy() -> None:
    """``python -m corpus_clean`` sets its signal handlers once the package is imported:
    the API's names wait until they are used."""
    code = "import sys, corpus_clean; print(sorted(m for m in sys.modules if 'corpus_clean.' in m))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_api_writes_what_the_cli_writes(tmp_path: Path, in_repo: None) -> None:
    out, dups = tmp_path / "out.jsonl", tmp_path / "dups.jsonl"
    report = corpus_clean.run(["samples/"], out, duplicates=dups)
    assert out.read_bytes() == (GOLDEN / "samples.jsonl").read_bytes()
    assert dups.read_bytes() == (GOLDEN / "samples.duplicates.jsonl").read_bytes()
    assert (report.written, report.passed, report["command"]) == (KEPT, True, "run")
    jsonschema.validate(report, SCHEMA)
    only_counted = corpus_clean.run("samples/", dedup=corpus_clean.DedupOptions(seed=1))
    assert only_counted.written == KEPT
    with pytest.raises(corpus_clean.CorpusCleanError, match="no-such-folder"):
        corpus_clean.run("no-such-folder/")


def test_the_api_check(tmp_path: Path, indexed: Path) -> None:
    report = corpus_clean.run("samples/", index=indexed, check=True)
    assert not report.passed
    assert len(report.recurring) == ARTICLES


def test_the_datatrove_example_round_trips_parts(tmp_path: Path) -> None:
    """A folder of datatrove JsonlWriter parts in, a part JsonlReader reads back out."""
    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    stage1.mkdir()
    documents: list[dict[str, Any]] = [
        {
            "text": f"Document {n} tells its own long story about item {n}. " * 8,
            "id": f"d{n}",
            "metadata": {"url": f"https://example.com/{n}", "dump": "CC-MAIN-2024-10"},
        }
        for n in range(4)
    ]
    documents.append({**documents[0], "id": "copy-of-d0"})
    for part, chunk in enumerate((documents[:3], documents[3:])):
        with gzip.open(stage1 / f"{part:05d}.jsonl.gz", "wt", encoding="utf-8") as handle:
            handle.writelines(json.dumps(d) + "\n" for d in chunk)
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "datatrove_step.py"), str(stage1), str(stage2)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "4 documents written" in done.stderr
    written = [json.loads(line) for line in (stage2 / "00000.jsonl").read_text().splitlines()]
    assert [d["id"] for d in written] == ["d0", "d1", "d2", "d3"]
    assert written[1]["metadata"] == documents[1]["metadata"]
    removed = (tmp_path / "stage2-removed.jsonl").read_text().splitlines()
    assert json.loads(removed[0])["duplicate_of"] == "d0"
