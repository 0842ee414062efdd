"""The spill store: items come back as they were given, from memory or disk, and spans
of an input file are read back from it, checked unchanged."""

from __future__ import annotations

import array
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import write

from corpus_clean.io import inputs, spill

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spool_reading_back(path: Path) -> spill.SpillStore:
    """A spill store whose every item is a line of ``path``, to be read back from there."""
    lines = path.read_bytes().splitlines(keepends=True)
    with open(path, "rb") as handle:
        stamp = inputs.FileStamp.of(handle.fileno())
    starts = [sum(map(len, lines[:n])) for n in range(len(lines))]
    spool = spill.SpillStore()
    spool.extend(
        [None] * len(lines),
        spill.FileSpans(
            str(path),
            stamp,
            array.array("q", starts),
            array.array("q", [len(line) for line in lines]),
            [b""] * len(lines),
        ),
    )
    return spool


def test_an_edit_that_restores_size_and_mtime_is_still_caught(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", '{"text": "one"}\n{"text": "two"}\n')
    spool = spool_reading_back(path)
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.write(b'{"text": "ONE"}')
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    with pytest.raises(spill.InputChangedError, match="changed while this run read it"):
        list(spool.read())


def test_a_change_while_lines_are_read_back_is_caught_after_the_last(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", '{"text": "one"}\n{"text": "two"}\n')
    spool = spool_reading_back(path)
    lines = spool.read()
    assert next(lines) == b'{"text": "one"}\n'
    with open(path, "r+b") as handle:
        handle.seek(16)
        handle.write(b'{"text": "TWO"}')
    with pytest.raises(spill.InputChangedError, match="changed while this run read it"):
        list(lines)


def test_an_unchanged_input_reads_back_as_it_was(tmp_path: Path) -> None:
    data = '{"text": "one"}\n{"text": "two"}\n'
    path = write(tmp_path / "in.jsonl", data)
    assert b"".join(spool_reading_back(path).read()) == data.encode()


@FAST
@given(
    st.lists(st.lists(st.one_of(st.binary(max_size=40), st.integers(0, 9)), max_size=5)),
    st.integers(0, 400),
    st.integers(1, 64),
)
def test_spool_gives_back_what_it_was_given_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[bytes | int]],
    memory: int,
    chunk: int,
) -> None:
    """Batches partly in memory, partly on disk; small chunks force items across chunk
    edges, and items larger than a chunk. An int n stands for line n of an input file,
    given to the spool to read back from there."""
    source = tmp_path_factory.mktemp("spool") / "in.jsonl"
    lines = [b'{"n": %d}\n' % n for n in range(10)]
    source.write_bytes(b"".join(lines))
    with open(source, "rb") as handle:
        stamp = inputs.FileStamp.of(handle.fileno())
    starts = [sum(map(len, lines[:n])) for n in range(10)]
    spool = spill.SpillStore(spill.MemoryBudget(memory), chunk=chunk)
    try:
        for batch in batches:
            numbers = [item for item in batch if isinstance(item, int)]
            reread = spill.FileSpans(
                str(source),
                stamp,
                array.array("q", [starts[n] for n in numbers]),
                array.array("q", [len(lines[n]) - 2 for n in numbers]),
                [lines[n][-2:] for n in numbers],
            )
            spool.extend([item if isinstance(item, bytes) else None for item in batch], reread)
        expected = [
            item if isinstance(item, bytes) else lines[item] for batch in batches for item in batch
        ]
        assert list(spool.read()) == expected
    finally:
        spool.close()


@FAST
@given(
    st.lists(st.tuples(st.booleans(), st.lists(st.binary(max_size=40), max_size=5)), max_size=6),
    st.integers(0, 200),
    st.integers(1, 64),
)
def test_items_come_back_by_number_from_lists_and_packed_arrays(
    batches: list[tuple[bool, list[bytes]]], memory: int, chunk: int
) -> None:
    """``get`` gives each item, from a batch given as a list or as one array and its
    ends, held in memory or read from the file (``read`` too, in order)."""
    store = spill.SpillStore(spill.MemoryBudget(memory), chunk=chunk)
    try:
        for packed, items in batches:
            if packed:
                data = np.frombuffer(b"".join(items), dtype=np.uint8)
                store.extend_packed(data, np.cumsum([len(item) for item in items], dtype=np.int64))
            else:
                store.extend(items)
        expected = [item for _, items in batches for item in items]
        assert store.count == len(expected)
        assert [bytes(store.get(n)) for n in range(len(expected))] == expected
        assert list(store.read()) == expected
    finally:
        store.close()


def test_lines_mostly_their_input_line_become_spans_of_the_input(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", '{"text": "one"}\n{"text": "two"}\n{"text": "3"}\n')
    with open(path, "rb") as handle:
        stamp = inputs.FileStamp.of(handle.fileno())
    lines = path.read_bytes().splitlines()
    items: list[bytes | None] = [
        lines[0] + b"\n",  # the line as it was
        lines[1][:-1] + b', "n": 2}\n',  # a field added at the end
        b'{"id": "3", "text": "three"}\n',  # little in common
    ]
    origins: list[tuple[bytes, int | None]] = [(lines[0], 0), (lines[1], 16), (lines[2], 32)]
    spans = spill.file_spans(str(path), stamp, items, origins)
    assert items[:2] == [None, None] and items[2] is not None
    assert list(spans.offsets) == [0, 16] and list(spans.lengths) == [15, 14]
    store = spill.SpillStore(spill.MemoryBudget(0))  # on disk: tails and all
    store.extend(items, spans)
    assert list(store.read()) == [
        b'{"text": "one"}\n',
        b'{"text": "two", "n": 2}\n',
        b'{"id": "3", "text": "three"}\n',
    ]
    store.close()


def test_a_run_folder_left_by_a_killed_run_is_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What kill -9 or the OOM killer left in $TMPDIR (kept batches as big as the input)
    goes when the next run makes a folder of that kind; a live run's folders stay."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f"corpus-clean-learn-{dead.pid}-k1ll3d"
        live = tmp_path / f"corpus-clean-learn-{sleeper.pid}-runn1ng"
        other_kind = tmp_path / f"corpus-clean-stdin-{dead.pid}-k1ll3d"
        for folder in (stale, live, other_kind):
            folder.mkdir()
            (folder / "batch.kept").write_bytes(b"records")
        with spill.temporary_folder("learn") as made:
            assert Path(made).parent == tmp_path
            assert Path(made).name.startswith(f"corpus-clean-learn-{os.getpid()}-")
            assert not stale.exists() and live.exists() and other_kind.exists()
        assert not Path(made).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_run_folder_of_this_process_stays_while_it_makes_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with spill.temporary_folder("learn") as first, spill.temporary_folder("learn") as second:
        assert first != second
        assert Path(first).is_dir() and Path(second).is_dir()
