"""The command line, through click's CliRunner: stdout is data, stderr is for humans,
exit codes 0 / 2, atomic output files, and stage commands that pipe into each other."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from support import GOLDEN, REPO, SAMPLE_FILES, replicated_samples

from corpus_clean import driver, pipeline
from corpus_clean.cli import DEDUP_HELP, cli
from corpus_clean.dedup import DuplicateFinder
from corpus_clean.options import (
    MEMORY_BUDGET,
    DedupOptions,
    LearnOptions,
    ReadOptions,
    lsh_bands,
)

STAGES = ["run", "split", "clean", "dedup"]


def invoke(*args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, as the golden files were made."""
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="module")
def golden() -> bytes:
    return (GOLDEN / "samples.jsonl").read_bytes()


def lines_of(data: bytes) -> list[dict[str, object]]:
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- run ------------------------------------------------------------------------------


@pytest.mark.usefixtures("in_repo")
def test_run_writes_jsonl_on_stdout_and_the_summary_on_stderr(golden: bytes) -> None:
    result = invoke("run", "samples/")
    assert result.exit_code == 0, result.stderr
    records = lines_of(result.stdout_bytes)
    assert len(records) == 18
    assert result.stdout_bytes == golden
    assert "corpus-clean run" in result.stderr
    for label, value in [
        ("pages read", "5"),
        ("articles split", "23"),
        ("exact duplicates", "5"),
        ("near duplicates", "0"),
        ("records written", "18"),
    ]:
        assert any(
            label in row and row.rstrip(" │|").endswith(value) for row in result.stderr.splitlines()
        ), (label, result.stderr)
    assert "{" not in result.stderr


@pytest.mark.usefixtures("in_repo")
def test_stage_commands_piped_equal_run(golden: bytes) -> None:
    split = invoke("split", "samples/", "-q")
    assert split.exit_code == 0, split.stderr
    assert len(lines_of(split.stdout_bytes)) == 23
    cleaned = invoke("clean", "-q", input=split.stdout_bytes)
    assert cleaned.exit_code == 0, cleaned.stderr
    deduped = invoke("dedup", "-", "-q", input=cleaned.stdout_bytes)
    assert deduped.exit_code == 0, deduped.stderr
    assert deduped.stdout_bytes == golden


@pytest.mark.usefixtures("in_repo")
def test_quiet_leaves_stderr_empty(golden: bytes) -> None:
    result = invoke("run", "samples/", "--quiet")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout_bytes == golden


@pytest.mark.usefixtures("in_repo")
def test_output_duplicates_and_report_files(tmp_path: Path, golden: bytes) -> None:
    out, dups, report = tmp_path / "out.jsonl", tmp_path / "dups.jsonl", tmp_path / "r.json"
    result = invoke(
        "run", "samples/", "-o", str(out), "--duplicates", str(dups), "--report", str(report)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b""
    assert out.read_bytes() == golden
    assert dups.read_bytes() == (GOLDEN / "samples.duplicates.jsonl").read_bytes()
    removed = lines_of(dups.read_bytes())
    assert len(removed) == 5
    for record in removed:
        assert str(record["duplicate_of"]).startswith("samples/000_27f52f622c7b214e.txt#")
        assert record["similarity"] == 1.0
    figures = json.loads(report.read_text("utf-8"))
    assert figures["schema_version"] == 2
    assert figures["command"] == "run"
    assert figures["version"] == version("corpus-clean")
    counts = figures["counts"]
    assert (counts["pages_read"], counts["articles_split"], counts["written"]) == (5, 23, 18)
    assert figures["duplicates"] == {"exact": 5, "near": 0, "contained": 0, "index": 0}
    assert figures["removed_by_rule"] == {
        "author_footer": 2,
        "call_to_action": 3,
        "promo_tail": 1,
        "whitespace_only_line": 4,
    }
    assert figures["boilerplate_removed"] == 10
    assert figures["settings"]["dedup"]["num_perm"] == 128
    assert figures["fingerprint"]["bands"] == 18
    assert figures["outputs"]["records"] == {"path": str(out), "bytes": len(golden)}
    assert figures["input"] == {"files": 5, "bytes": sum(p.stat().st_size for p in SAMPLE_FILES)}
    assert figures["histograms"]["similarity"][-1] == {"from": 0.95, "to": 1.0, "removed": 5}
    clusters = {c["size"]: c["clusters"] for c in figures["histograms"]["cluster_sizes"]}
    assert clusters["1"] + 2 * clusters["2"] < 23  # the copies make bigger clusters
    assert set(figures["phases"]) >= {
        "reading",
        "learning",
        "fingerprinting",
        "resolving",
        "writing",
        "committing",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dups.jsonl", "out.jsonl", "r.json"]


def test_jsonl_in_with_text_field_and_keep_longest(tmp_path: Path) -> None:
    body = (
        "Export to domestic sales has become an important measure for many foreign trade"
        " enterprises to cope with the current challenges. The reporter recently learned from"
        " the tax departments in many places that products with wide export to the domestic"
        " market are popular, and the sales of household appliances, furniture and textiles"
        " have grown markedly since the beginning of the year. "
    )
    longer = body + "Officials expect it to reopen on Monday."
    source = write(
        tmp_path / "in.jsonl",
        "".join(
            json.dumps(o) + "\n"
            for o in [
                {"zeta": 1, "id": "short", "body": body, "lang": "en"},
                {"zeta": 2, "id": "long", "body": longer, "lang": "en", "tags": ["trade"]},
            ]
        ),
    )
    result = invoke("run", str(source), "--text-field", "body", "--keep", "longest", "-q")
    assert result.exit_code == 0, result.stderr
    [kept] = lines_of(result.stdout_bytes)
    assert kept == {
        "id": "long",
        "text": longer.strip(),
        "source": str(source),
        "zeta": 2,
        "lang": "en",
        "tags": ["trade"],
    }
    # Our keys first, then the unknown ones in their input order.
    assert list(kept) == ["id", "text", "source", "zeta", "lang", "tags"]


def test_a_url_field_that_is_no_url_is_taken_as_none(tmp_path: Path) -> None:
    # Scraped metadata holds anything; urlsplit refuses an unclosed "[" (an IPv6 host).
    records = [
        {"id": str(n), "url": f"http://[broken/{n}", "text": f"Home\n\nPage {n} of its own."}
        for n in range(3)
    ]
    source = write(tmp_path / "in.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    result = invoke("run", str(source), "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    # One site (the file's folder): its "Home" on three different pages is learned.
    assert [(r["id"], r["text"], r["url"]) for r in lines_of(result.stdout_bytes)] == [
        (str(n), f"Page {n} of its own.", f"http://[broken/{n}") for n in range(3)
    ]


def test_the_site_of_a_datatrove_document_is_its_metadata_urls_host(tmp_path: Path) -> None:
    # One file, two hosts; one line on a page of each. As one site (the file's folder),
    # that line would be on two different articles of it, and learned.
    shared = "Quoted by both: the bridge opens on Monday."
    documents: list[dict[str, Any]] = [
        {
            "id": f"{host}-{n}",
            "text": f"Page {n} of {host} has words of its own.\n\n{shared if n == 0 else 'Bye.'}",
            "metadata": {"url": f"https://{host}/story-{n}", "dump": "CC-MAIN-2024-10"},
        }
        for host in ("a.example", "b.example")
        for n in range(2)
    ]
    source = write(tmp_path / "in.jsonl", "".join(json.dumps(d) + "\n" for d in documents))
    result = invoke("clean", str(source), "-q")
    assert result.exit_code == 0, result.stderr
    kept = {r["id"]: str(r["text"]) for r in lines_of(result.stdout_bytes)}
    assert shared in kept["a.example-0"] and shared in kept["b.example-0"]
    # Without its url, the same line goes from both.
    for d in documents:
        del d["metadata"]["url"]
    write(source, "".join(json.dumps(d) + "\n" for d in documents))
    again = invoke("clean", str(source), "-q")
    kept = {r["id"]: str(r["text"]) for r in lines_of(again.stdout_bytes)}
    assert shared not in kept["a.example-0"] and shared not in kept["b.example-0"]


def test_user_rules_on_the_command_line(tmp_path: Path) -> None:
    rules = write(tmp_path / "r.toml", "[[rule]]\nname = 'share'\npatterns = ['Share this']\n")
    source = write(tmp_path / "in.jsonl", json.dumps({"text": "Body.\nShare this\n"}) + "\n")
    report = tmp_path / "report.json"
    result = invoke("clean", str(source), "--rules", str(rules), "--report", str(report), "-q")
    assert result.exit_code == 0, result.stderr
    assert [r["text"] for r in lines_of(result.stdout_bytes)] == ["Body."]
    assert json.loads(report.read_text("utf-8"))["removed_by_rule"] == {"share": 1}


def test_bad_rules_file_exits_2_before_reading(tmp_path: Path) -> None:
    rules = write(tmp_path / "r.toml", "[[rule]]\nname = 'x'\nmatch = 'regex'\npatterns = ['(']\n")
    result = invoke("run", "-", "--rules", str(rules), input=b'{"text": "a"}\n')
    assert result.exit_code == 2
    assert f"{rules}: rule 1 (x): bad regular expression" in result.stderr
    assert result.stdout_bytes == b""


# ---- errors and edge inputs, for every stage command -----------------------------------


@pytest.mark.parametrize("command", STAGES)
def test_missing_path_exits_2_with_a_message(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = invoke(command, str(missing))
    assert result.exit_code == 2
    assert f"{missing}: no such file or folder" in result.stderr
    assert result.stdout_bytes == b""


@pytest.mark.parametrize("command", STAGES)
def test_malformed_jsonl_exits_2_naming_file_and_line(command: str, tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", '{"text": "fine"}\n\n{"text": "cut off\n')
    result = invoke(command, str(source))
    assert result.exit_code == 2
    assert f"{source}:3: invalid JSON" in result.stderr
    assert "--skip-invalid" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout_bytes == b""


@pytest.mark.parametrize("command", STAGES)
def test_skip_invalid_with_rejects(command: str, tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", '{"text": "one"}\nnot json\n{"text": "two"}\n[3]\n')
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(command, str(source), "--skip-invalid", "--rejects", str(rejects))
    assert result.exit_code == 0, result.stderr
    assert [r["text"] for r in lines_of(result.stdout_bytes)] == ["one", "two"]
    assert rejects.read_bytes() == b"not json\n[3]\n"
    assert "invalid lines skipped" in result.stderr


def test_rejects_without_skip_invalid_is_a_usage_mistake(tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", '{"text": "one"}\n')
    result = invoke("run", str(source), "--rejects", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 2
    assert "--rejects only makes sense with --skip-invalid" in result.stderr


@pytest.mark.parametrize("command", STAGES)
def test_empty_input_gives_empty_output(command: str, tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.jsonl", "")
    from_file = invoke(command, str(empty), "-q")
    from_stdin = invoke(command, "-", "-q", input=b"")
    for result in (from_file, from_stdin):
        assert (result.exit_code, result.stdout_bytes, result.stderr) == (0, b"", "")


@pytest.mark.parametrize("command", STAGES)
def test_failed_run_leaves_no_output_file(command: str, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    stories = "".join(json.dumps({"text": f"Story {n}."}) + "\n" for n in range(50))
    write(inputs / "a.jsonl", stories)
    write(inputs / "b.jsonl", '{"text": "fine"}\n{"text": "broken at the end\n')
    out = tmp_path / "out"
    out.mkdir()
    target = out / "corpus.jsonl"
    args = [command, str(inputs), "-o", str(target), "--report", str(out / "r.json")]
    if command in ("run", "dedup"):
        args += ["--duplicates", str(out / "dups.jsonl")]

    result = invoke(*args)
    assert result.exit_code == 2
    assert f"{inputs}/b.jsonl:2:" in result.stderr
    assert list(out.iterdir()) == []  # no target, no temporary file

    target.write_bytes(b"old content\n")
    result = invoke(*args)
    assert result.exit_code == 2
    assert target.read_bytes() == b"old content\n"
    assert [p.name for p in out.iterdir()] == ["corpus.jsonl"]


@pytest.mark.usefixtures("in_repo")
def test_output_file_replaces_the_old_one_and_leaves_nothing_else(
    tmp_path: Path, golden: bytes
) -> None:
    target = tmp_path / "corpus.jsonl"
    target.write_bytes(b"old content\n")
    result = invoke("run", "samples/", "-o", str(target), "-q")
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == golden
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.jsonl"]


def test_jobs_give_byte_identical_output(tmp_path: Path) -> None:
    size = replicated_samples(tmp_path / "in", copies=8)
    # More than one batch, so that --jobs 2 really runs in worker processes.
    assert size > pipeline.BATCH_BYTES
    runs = {}
    for jobs in ("1", "2"):
        out, dups, report = (tmp_path / f"{name}{jobs}" for name in ("out", "dups", "report"))
        result = invoke(
            "run",
            str(tmp_path / "in"),
            "--jobs",
            jobs,
            "-o",
            str(out),
            "--duplicates",
            str(dups),
            "--report",
            str(report),
            "-q",
        )
        assert result.exit_code == 0, result.stderr
        runs[jobs] = (
            out.read_bytes(),
            dups.read_bytes(),
            json.loads(report.read_text("utf-8"))["counts"],
        )
    assert runs["1"] == runs["2"]
    kept, removed, counts = runs["1"]
    assert counts["articles_split"] == 8 * 23
    assert counts["duplicates_near"] > 0
    assert len(lines_of(kept)) + len(lines_of(removed)) == 8 * 23


# ---- version and help ------------------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"corpus-clean, version {version('corpus-clean')}\n"


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


COMMANDS = list(_command_paths(cli))


def test_every_expected_command_exists() -> None:
    assert {
        (),
        ("run",),
        ("split",),
        ("clean",),
        ("dedup",),
        ("index",),
        ("index", "info"),
        ("index", "add"),
        ("index", "verify"),
    } <= set(COMMANDS)


#: Command-line parameters whose defaults are the options' (options.py sets them alone).
OPTION_DEFAULTS = {
    "text_field": ReadOptions().text_field,
    "threshold": DedupOptions().threshold,
    "num_perm": DedupOptions().num_perm,
    "seed": DedupOptions().seed,
    "keep": DedupOptions().keep,
    "containment": DedupOptions().containment,
    "learn_min_pages": LearnOptions().min_pages,
    "learn_min_sites": LearnOptions().min_sites,
    "memory_mb": MEMORY_BUDGET >> 20,
}


def test_the_dedup_help_states_the_band_layout_and_keys_of_the_defaults() -> None:
    defaults = DedupOptions()
    bands, rows = lsh_bands(defaults.threshold, defaults.num_perm)
    help_text = " ".join(DEDUP_HELP.split())
    assert f"{bands} bands of {rows} rows at the defaults" in help_text
    assert f"(--threshold {defaults.threshold}, --num-perm {defaults.num_perm})" in help_text
    assert f"({defaults.containment_keys} at the default)" in help_text
    assert f"--containment ({defaults.containment} by default)" in help_text


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "corpus-clean")
def test_every_default_of_the_command_line_is_the_options_default(path: tuple[str, ...]) -> None:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    for param in command.params:
        if param.name in OPTION_DEFAULTS:
            assert param.default == OPTION_DEFAULTS[param.name], (path, param.name)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "corpus-clean")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command_has_an_example(path: tuple[str, ...], flag: str) -> None:
    result = invoke(*path, flag)
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"corpus-clean {' '.join(path)}".rstrip() in result.stdout
    assert result.stderr == ""


@pytest.mark.usefixtures("in_repo")
def test_ci_step_summary_gets_a_markdown_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, golden: bytes
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = invoke("run", "samples/", "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == golden
    text = summary.read_text("utf-8")
    assert text.startswith(
        "earlier step\n### corpus-clean run: ✅ passed: 18 written, 5 duplicates removed\n"
    )
    assert "| records written | 18 |" in text
    assert "| exact duplicates | 5 |" in text


def test_output_may_replace_its_own_input(tmp_path: Path) -> None:
    footer = "\u5173\u4e8e\u4f5c\u8005"  # an author footer line, removed by cleaning
    corpus = write(
        tmp_path / "corpus.jsonl",
        "".join(
            json.dumps({"id": str(n), "text": f"  Story number {n}.\n{footer}\n"}) + "\n"
            for n in range(3)
        ),
    )
    result = invoke("clean", str(corpus), "-o", str(corpus), "-q")
    assert result.exit_code == 0, result.stderr
    assert [r["text"] for r in lines_of(corpus.read_bytes())] == [
        "Story number 0.",
        "Story number 1.",
        "Story number 2.",
    ]


def test_output_into_a_missing_folder_is_an_error_message(tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", '{"text": "a"}\n')
    result = invoke("split", str(source), "-o", str(tmp_path / "no" / "out.jsonl"))
    assert result.exit_code == 2
    assert "no/out.jsonl" in result.stderr


def test_rerun_with_its_output_inside_the_input_folder_reads_only_the_input(
    tmp_path: Path,
) -> None:
    scrape = tmp_path / "scrape"
    scrape.mkdir()
    for page in SAMPLE_FILES:
        shutil.copy(page, scrape)
    written = {name: scrape / f"{name}.jsonl" for name in ("out", "dups", "rejects")}
    report = scrape / "report.jsonl"  # an unlucky name, but still this command's own
    args = [
        "run",
        str(scrape),
        "-o",
        str(written["out"]),
        "--duplicates",
        str(written["dups"]),
        "--skip-invalid",
        "--rejects",
        str(written["rejects"]),
        "--report",
        str(report),
        "-q",
    ]
    runs = []
    for _ in range(2):
        result = invoke(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
        runs.append(
            (
                {name: path.read_bytes() for name, path in written.items()},
                json.loads(report.read_text("utf-8"))["counts"],
            )
        )
    assert runs[0] == runs[1]
    outputs, counts = runs[1]
    assert (counts["pages_read"], counts["written"]) == (5, 18)
    assert counts["records_read"] == 0  # not one JSONL line: the pages alone were read
    assert len(lines_of(outputs["out"])) == 18


def test_an_output_the_disk_cannot_take_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    source = write(tmp_path / "in.jsonl", '{"text": "a"}\n')
    report = tmp_path / "report.json"
    monkeypatch.setattr(os, "fsync", disk_full)
    result = invoke("split", str(source), "--report", str(report), "-q")
    assert result.exit_code == 2
    # The records went to stdout before the report failed: say the run is done.
    assert result.stderr.strip() == (
        f"Error: {report}: No space left on device: no report written, but the run is done "
        "(output written); nothing needs re-running"
    )
    assert not report.exists()


def test_an_error_of_no_known_file_is_labelled_output(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(driver, "run_plan", broken_disk)
    result = invoke("run", str(REPO / "samples"), "-q")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.strip() == "Error: output: Input/output error"


@pytest.mark.usefixtures("in_repo")
def test_dedup_of_a_file_equals_dedup_of_the_same_lines_piped(tmp_path: Path) -> None:
    """A file's lines already in the output's spelling are read back from the file at the
    end (stdin's cannot be): both ways give the same bytes, whatever the spelling."""
    split = invoke("split", "samples/", "-q").stdout_bytes
    cleaned = invoke("clean", "-q", input=split).stdout_bytes
    lines = cleaned.splitlines(keepends=True)
    # Other tools' spellings too: compact JSON, CRLF, no newline at the very end.
    lines[1] = json.dumps(json.loads(lines[1]), separators=(",", ":")).encode() + b"\n"
    lines[2] = lines[2].rstrip(b"\n") + b"\r\n"
    data = b"".join(lines).rstrip(b"\n")
    source = tmp_path / "cleaned.jsonl"
    source.write_bytes(data)
    from_file = invoke("dedup", str(source), "--duplicates", str(tmp_path / "d1"), "-q")
    piped = invoke("dedup", "-", "--duplicates", str(tmp_path / "d2"), "-q", input=data)
    assert from_file.exit_code == piped.exit_code == 0, from_file.stderr + piped.stderr
    assert from_file.stdout_bytes == piped.stdout_bytes
    assert (tmp_path / "d1").read_bytes() == (tmp_path / "d2").read_bytes()
    assert len(lines_of(from_file.stdout_bytes)) == 18


def test_an_input_changed_during_the_run_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(
        tmp_path / "in.jsonl",
        "".join(
            json.dumps(
                {
                    "id": f"r{n}",
                    "title": None,
                    "text": f"story {n} of the old bridge",
                    "source": "x",
                },
                ensure_ascii=False,
                separators=(",", ":"),  # the output's spelling: lines are read back
            )
            + "\n"
            for n in range(5)
        ),
    )
    resolve = DuplicateFinder.resolve

    def resolve_then_edit(self: DuplicateFinder, stats: object) -> object:
        source.write_text(source.read_text().replace("old", "new"))
        return resolve(self, stats)  # type: ignore[arg-type]

    monkeypatch.setattr(DuplicateFinder, "resolve", resolve_then_edit)
    target = tmp_path / "out.jsonl"
    result = invoke("dedup", str(source), "-o", str(target), "--jobs", "1", "-q")
    assert result.exit_code == 2
    assert f"{source}: changed while this run read it" in result.stderr
    assert not target.exists()
