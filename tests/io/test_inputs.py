"""Input discovery: paths become files to read; what cannot be read is refused first."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support import jsonl, write

from corpus_clean.io import inputs, readers
from corpus_clean.io.inputs import InputError, resolve_inputs
from corpus_clean.stats import Stats


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError, match=r"nope\.jsonl: no such file or folder"):
        resolve_inputs([str(missing)])


def test_missing_path_fails_before_anything_is_read(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", jsonl({"text": "a"}))
    with pytest.raises(InputError):
        resolve_inputs([str(good), str(tmp_path / "typo.jsonl")])


@pytest.mark.parametrize("names", [[], ["notes.md", "data.csv", "sub/x.json"]])
def test_folder_with_nothing_to_read_is_an_input_error(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        write(tmp_path / "in" / name, "x")
    (tmp_path / "in").mkdir(exist_ok=True)
    with pytest.raises(InputError, match="folder holds no"):
        resolve_inputs([str(tmp_path / "in")])


def test_file_of_unknown_kind_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a,b\n")
    with pytest.raises(InputError, match=r"data\.csv: unknown kind of file"):
        resolve_inputs([str(path)])


def test_folders_are_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for name in ["b/2.txt", "a.jsonl", "b/1.jsonl.gz", "c.ndjson", "skip.csv", "b/0/z.txt"]:
        write(root / name, "")
    files = resolve_inputs([str(root), "-"])
    assert [(f.path, f.kind) for f in files] == [
        (f"{root}/a.jsonl", "jsonl"),
        (f"{root}/b/0/z.txt", "page"),
        (f"{root}/b/1.jsonl.gz", "jsonl"),
        (f"{root}/b/2.txt", "page"),
        (f"{root}/c.ndjson", "jsonl"),
        ("-", "jsonl"),
    ]


def test_fifos_and_devices_in_folders_are_skipped_and_named_ones_are_streams(
    tmp_path: Path,
) -> None:
    root = tmp_path / "in"
    write(root / "a.jsonl", '{"text": "a"}\n')
    os.mkfifo(root / "pipe.jsonl")
    os.mkfifo(root / "pipe-without-suffix")
    os.mknod(root / "dev.txt", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (root / "link.jsonl").symlink_to(root / "pipe.jsonl")
    (root / "broken.jsonl").symlink_to(root / "nowhere")
    files = resolve_inputs([str(root), str(root / "pipe.jsonl"), str(root / "dev.txt")])
    assert [(f.path, f.kind) for f in files] == [
        (f"{root}/a.jsonl", "jsonl"),
        (f"{root}/broken.jsonl", "jsonl"),  # reading it says what is wrong
        (f"{root}/dev.txt", "special"),
        (f"{root}/link.jsonl", "special"),
        (f"{root}/pipe.jsonl", "special"),
        (f"{root}/pipe.jsonl", "jsonl"),
        (f"{root}/dev.txt", "page"),
    ]
    stats = Stats()
    units = list(readers.read_units(files[:1] + files[2:5] + files[6:], stats))
    assert [(u.kind, u.data) for u in units] == [("jsonl", b'{"text": "a"}\n'), ("page", b"")]
    assert stats["special_files_skipped"] == 3


def test_a_folder_of_only_fifos_has_nothing_to_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jsonl")
    with pytest.raises(InputError, match="folder holds no"):
        resolve_inputs([str(tmp_path)])


def test_a_fifo_without_a_suffix_is_jsonl_and_a_symlink_loop_is_named(tmp_path: Path) -> None:
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    assert resolve_inputs([fifo]) == [inputs.InputFile(fifo, "jsonl")]
    (tmp_path / "loop.jsonl").symlink_to(tmp_path / "loop.jsonl")
    with pytest.raises(InputError, match=r"loop\.jsonl: Too many levels of symbolic links"):
        resolve_inputs([str(tmp_path / "loop.jsonl")])


def test_files_the_run_writes_are_skipped_in_folders_but_read_when_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "scrape"
    for name in ["page.txt", "out.jsonl", "sub/dups.jsonl", "sub/more.jsonl"]:
        write(root / name, "")
    monkeypatch.chdir(tmp_path)
    # Spelled otherwise than the folder is: relative, through a link, not yet written.
    (tmp_path / "link").symlink_to(root / "sub")
    skip = ["scrape/out.jsonl", str(tmp_path / "link" / "dups.jsonl"), "new.jsonl", "-"]
    files = resolve_inputs([str(root), str(root / "out.jsonl")], skip=skip)
    assert [f.path for f in files] == [
        f"{root}/page.txt",
        f"{root}/sub/more.jsonl",
        f"{root}/out.jsonl",  # named on its own: read
    ]
