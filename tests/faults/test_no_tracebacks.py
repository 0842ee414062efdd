"""Every mistake a user can make ends the same way: exit 2, one line on stderr that says
what is wrong, never a traceback (campaign F5, F15). Bad option values, missing files,
bad rules, colliding outputs, damaged inputs, closed standard streams."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import REPO, SCRIPT

from corpus_clean.cli import cli

SAMPLES = str(REPO / "samples")


@dataclass(frozen=True)
class Case:
    args: str  # "{d}" stands for the test's folder of damaged files
    says: str  # part of the one-line message
    usage: bool = False  # a usage error: click's "Usage: ... Try --help" banner comes first

    def __str__(self) -> str:
        return self.args.replace("{d}/", "").replace("{s}", "samples")


CASES = [
    # bad numbers
    Case("run {s} --seed -1", "Invalid value for '--seed'", usage=True),
    Case("run {s} --seed 4294967296", "Invalid value for '--seed'", usage=True),
    Case("dedup {s} --seed abc", "'abc' is not a valid integer", usage=True),
    Case("run {s} --threshold 0.05 --num-perm 16", "use --num-perm 59 or more", usage=True),
    Case("run {s} --threshold 1.5", "Invalid value for '--threshold'", usage=True),
    Case("dedup {s} --num-perm 8", "Invalid value for '--num-perm'", usage=True),
    Case("split {s} --jobs 0", "Invalid value for '-j' / '--jobs'", usage=True),
    Case("index add {d}/acc.db {s} --seed -1", "Invalid value for '--seed'", usage=True),
    Case("index add {d}/acc.db {s} --threshold 0.05 --num-perm 16", "--num-perm 59", usage=True),
    # missing and unreadable paths
    Case("run {d}/nope", "{d}/nope: no such file or folder", usage=True),
    Case("index add {d}/acc.db {d}/nope.jsonl", "nope.jsonl: no such file or folder", usage=True),
    Case("dedup {d}/empty", "folder holds no *.txt pages", usage=True),
    Case("dedup {d}/table.csv", "unknown kind of file", usage=True),
    Case("index info {d}/nope.db", "no index at {d}/nope.db"),
    Case("index verify {d}/notes.db", "{d}/notes.db"),
    # bad rules
    Case("clean {s} --rules {d}/bad-regex.toml", "bad regular expression"),
    Case("run {s} --rules {d}/bad.toml", "{d}/bad.toml"),
    Case("clean {s} --rules {d}/nope.toml", "{d}/nope.toml"),
    # outputs that cannot be
    Case("run {s} -o {d}/x.jsonl --duplicates {d}/x.jsonl", "both name", usage=True),
    Case("run {s} -o {d}/x.jsonl --report {d}/x.jsonl", "both name", usage=True),
    Case("dedup {s} -o {d}/acc.db --index {d}/acc.db", "both name", usage=True),
    Case("dedup {s} -o {d}/empty", "is a folder; name a file to write", usage=True),
    Case("run {s} --report {d}/empty", "is a folder; name a file to write", usage=True),
    Case("run {s} --report {d}/no/r.json", "folder {d}/no does not exist", usage=True),
    Case("split {s} -o {d}/no/out.jsonl", "folder {d}/no does not exist", usage=True),
    Case("run {s} --rejects {d}/r.jsonl", "--rejects only makes sense with --skip-invalid"),
    Case("dedup {s} --check", "--check compares the input with an index"),
    # damaged inputs
    Case("dedup {d}/null.jsonl", "expected a JSON object, got null"),
    Case("dedup {d}/array.jsonl", "expected a JSON object, got array"),
    Case("dedup {d}/cut.jsonl", "{d}/cut.jsonl:2: invalid JSON"),
    Case("dedup {d}/nan.jsonl", "NaN is not a JSON value"),
    Case("dedup {d}/huge.jsonl", "a number too large for a 64-bit float"),
    Case("dedup {d}/number-text.jsonl", "no string field 'text'"),
    Case("dedup {d}/cut.jsonl.gz", "{d}/cut.jsonl.gz: cannot decompress"),
    Case("dedup {d}/garbage.jsonl.gz", "{d}/garbage.jsonl.gz: cannot decompress"),
]


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """A folder of the files the cases name."""
    d = tmp_path
    (d / "empty").mkdir()
    (d / "table.csv").write_text("a,b\n")
    (d / "notes.db").write_text("not a database, just some notes\n" * 200)
    (d / "bad-regex.toml").write_text("[[rule]]\nname = 'x'\nmatch = 'regex'\npatterns = ['(']\n")
    (d / "bad.toml").write_text("[[rule]\nname = \n")
    (d / "null.jsonl").write_text("null\n")
    (d / "array.jsonl").write_text("[1, 2]\n")
    (d / "cut.jsonl").write_text('{"text": "fine"}\n{"text": "cut off\n')
    (d / "nan.jsonl").write_text('{"text": "x", "score": NaN}\n')
    (d / "huge.jsonl").write_text('{"text": "x", "score": 1e400}\n')
    (d / "number-text.jsonl").write_text('{"text": 5}\n')
    packed = gzip.compress(
        b"".join(json.dumps({"text": f"story {n}"}).encode() + b"\n" for n in range(500))
    )
    (d / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    (d / "garbage.jsonl.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    return d


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_mistake_is_one_line_and_exit_2(damaged: Path, case: Case) -> None:
    args = case.args.format(d=damaged, s=SAMPLES).split()
    result = CliRunner().invoke(cli, [*args, "-q"] if args[0] != "index" else args)
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    if case.usage:
        assert lines[0].startswith("Usage: ") and lines[1].startswith("Try "), result.stderr
        lines = lines[3:]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert case.says.format(d=damaged) in lines[0]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25


# ---- closed standard streams, with real processes ----------------------------------------


def close(fd: int) -> None:
    os.close(fd)


@pytest.mark.parametrize(
    ("args", "closed", "says"),
    [
        ("run {s} -q", 1, "Error: cannot write to standard output: it is closed"),
        ("split {s} -q", 1, "Error: cannot write to standard output: it is closed"),
        ("dedup {s} --duplicates - -o {d}/out.jsonl -q", 1, "Error: cannot write to standard"),
        ("index info {d}/acc.db", 1, "Error: cannot write to standard output: it is closed"),
        ("dedup - -q", 0, "Error: cannot read standard input: it is closed"),
        ("index add {d}/acc.db -", 0, "Error: cannot read standard input: it is closed"),
        ("dedup -q", 0, "Error: give a PATH (file or folder), or pipe JSONL in"),
    ],
)
def test_a_closed_standard_stream_is_one_line_and_exit_2(
    tmp_path: Path, args: str, closed: int, says: str
) -> None:
    index, out = str(tmp_path / "acc.db"), str(tmp_path / "o.jsonl")
    seeded = CliRunner().invoke(cli, ["run", SAMPLES, "--index", index, "-q", "-o", out])
    assert seeded.exit_code == 0, seeded.stderr
    done = subprocess.run(
        [SCRIPT, *args.format(d=tmp_path, s=SAMPLES).split()],
        stdin=subprocess.DEVNULL if closed != 0 else None,
        stdout=subprocess.PIPE if closed != 1 else None,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: close(closed),
        timeout=120,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith(says), stderr
    assert not (tmp_path / "out.jsonl").exists()
