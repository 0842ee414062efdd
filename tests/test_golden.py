"""Golden files: the whole pipeline over the seed pages, byte for byte.

Regenerate with the command in tests/golden/README.md (and read the diff).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import GOLDEN, REPO

from corpus_clean.cli import cli


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    out = tmp_path_factory.mktemp("golden")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)  # ids and sources are the paths as given: samples/...
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "samples/",
                "-o",
                str(out / "samples.jsonl"),
                "--duplicates",
                str(out / "samples.duplicates.jsonl"),
            ],
        )
    assert result.exit_code == 0, result.output
    return (out / "samples.jsonl").read_bytes(), (out / "samples.duplicates.jsonl").read_bytes()


def test_kept_articles_match_the_golden_file(golden_run: tuple[bytes, bytes]) -> None:
    assert golden_run[0] == (GOLDEN / "samples.jsonl").read_bytes()


def test_removed_articles_match_the_golden_file(golden_run: tuple[bytes, bytes]) -> None:
    assert golden_run[1] == (GOLDEN / "samples.duplicates.jsonl").read_bytes()


def test_golden_files_hold_what_was_checked_by_eye() -> None:
    kept = _lines(GOLDEN / "samples.jsonl")
    removed = _lines(GOLDEN / "samples.duplicates.jsonl")
    assert (len(kept), len(removed)) == (18, 5)
    assert [r["id"].removeprefix("samples/") for r in removed] == [
        "001_ad5554182b99526e.txt#1",
        "002_75b1cbe0efa3536a.txt#7",
        "002_75b1cbe0efa3536a.txt#8",
        "002_75b1cbe0efa3536a.txt#9",
        "002_75b1cbe0efa3536a.txt#10",
    ]
    kept_ids = {r["id"] for r in kept}
    assert all(r["duplicate_of"] in kept_ids for r in removed)
    assert {r["title"] for r in removed} <= {r["title"] for r in kept}
    dated = {r["id"].removeprefix("samples/"): r["date"] for r in kept if "date" in r}
    assert dated == {
        "003_d562b866f99e4e4a.txt#1": "2022-05-25",
        "004_377303c4f75a8b3e.txt#1": "2022-06-09",
    }


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def test_regenerating_command_is_documented() -> None:
    readme = (GOLDEN / "README.md").read_text("utf-8")
    command = (
        "corpus-clean run samples/ -o tests/golden/samples.jsonl "
        "--duplicates tests/golden/samples.duplicates.jsonl"
    )
    assert command in readme
    assert Path(REPO / "samples").is_dir()
