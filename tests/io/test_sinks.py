"""Outputs: published whole or not at all; the block writer writes everything, in order."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from corpus_clean.io import sinks
from corpus_clean.io.sinks import atomic_output


def test_atomic_output_replaces_the_file_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with atomic_output(str(target)) as out:
        out.write(b"first\n")
    assert target.read_bytes() == b"first\n"

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_output(str(target)) as out:
        out.write(b"half")
        raise Boom
    assert target.read_bytes() == b"first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_atomic_output_creates_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt), atomic_output(str(target)) as out:
        out.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        target = tmp_path / "new.jsonl"
        with atomic_output(str(target)) as out:
            out.write(b"x\n")
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        # Replacing a file keeps the mode it had.
        target.chmod(0o640)
        with atomic_output(str(target)) as out:
            out.write(b"y\n")
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    finally:
        os.umask(previous)


def test_atomic_output_that_cannot_set_the_mode_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(fd: int, mode: int) -> None:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "fchmod", refuse)
    target = tmp_path / "out.jsonl"
    with pytest.raises(PermissionError) as refused, atomic_output(str(target)):
        pass
    assert refused.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_names_its_file_when_the_last_writes_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    target = tmp_path / "report.json"
    with pytest.raises(OSError) as failed, atomic_output(str(target)) as out:
        out.write(b"{}\n")
    assert (failed.value.errno, failed.value.filename) == (errno.ENOSPC, str(target))
    assert list(tmp_path.iterdir()) == []


def test_a_big_write_to_a_pipe_whose_reader_goes_away_raises() -> None:
    """A plain big write() to stdout comes back short, silently, when the reader goes
    mid-write; write_all (and so BlockWriter) must end in BrokenPipeError instead."""
    code = (
        "import sys\n"
        "from corpus_clean.io.sinks import write_all\n"
        "try:\n"
        "    write_all(sys.stdout.buffer, bytes(4 << 20))\n"
        "except BrokenPipeError:\n"
        "    sys.exit(32)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert writer.stdout is not None
    assert writer.stdout.read(10) == bytes(10)
    writer.stdout.close()  # as `| head -c 10` does
    assert writer.wait(timeout=30) == 32


def test_block_writer_writes_everything_in_order(tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as stream, sinks.BlockWriter(stream, size=10) as writer:
        for n in range(100):
            writer.write(b"%d\n" % n)
    assert (tmp_path / "out").read_bytes() == b"".join(b"%d\n" % n for n in range(100))


def test_block_writer_raises_what_its_thread_met() -> None:
    """A closed pipe met by the writing thread is raised in the caller, and the caller
    can stop at once however much is queued."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "wb", buffering=0) as stream:
        writer = sinks.BlockWriter(stream, size=10, depth=1)
        with pytest.raises(BrokenPipeError), writer:
            for _ in range(1000):
                writer.write(b"0123456789\n")
