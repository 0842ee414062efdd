"""Faults on the reading side, each reproduced as the campaign found it
(/work/shared/reliability/campaign.md): real processes, real files, FIFOs and mounts."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SAMPLE_FILES, SCRIPT

WORDS = [f"w{n}" for n in range(5000)]


def corpus_clean(
    *args: str | Path, timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [SCRIPT, *map(str, args)], capture_output=True, timeout=timeout, check=False, **kwargs
    )


def docs(size: int, seed: int = 0) -> bytes:
    """Distinct records of random words, already in the output's spelling, about ``size`` bytes."""
    rng = random.Random(seed)
    lines, total, n = [], 0, 0
    while total < size:
        text = " ".join(rng.choice(WORDS) for _ in range(60))
        record = {"id": f"d{n}", "title": None, "text": text, "source": "gen"}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        lines.append(line)
        total += len(line)
        n += 1
    return b"".join(lines)


def strict_json_lines(data: bytes) -> list[dict[str, object]]:
    """The lines as jq reads them: a lone surrogate escape is an error."""
    out = []
    for line in data.splitlines():
        value = json.loads(line)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # strict: refuses surrogates
        out.append(value)
    return out


# ---- F6, F15i: an input changed while its lines are read back ------------------------


def test_an_input_changed_during_the_read_back_publishes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "spelled.jsonl"
    source.write_bytes(docs(40 << 20))
    target = tmp_path / "out.jsonl"
    running = subprocess.Popen(
        [SCRIPT, "dedup", source, "-o", target, "-j", "1", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while not any(p.stat().st_size for p in tmp_path.glob(".out.jsonl.*.tmp")):
            assert running.poll() is None, running.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.001)
        # Hold the run still while the file changes: it is reading lines back now.
        running.send_signal(signal.SIGSTOP)
        written = sum(p.stat().st_size for p in tmp_path.glob(".out.jsonl.*.tmp"))
        if written > source.stat().st_size // 2:
            pytest.skip("the run was past the middle of its read-back before it could be stopped")
        with open(source, "r+b") as handle:
            handle.seek(-2000, os.SEEK_END)
            tail = handle.read()
            handle.seek(-2000 + tail.rindex(b'"text":"') + 8, os.SEEK_END)
            handle.write(b"TAMPERED")
        running.send_signal(signal.SIGCONT)
        _, stderr = running.communicate(timeout=300)
    finally:
        running.kill()
        running.wait()
    assert running.returncode == 2, stderr
    assert f"{source}: changed while this run read it".encode() in stderr
    assert not target.exists()
    assert not list(tmp_path.glob(".out.jsonl.*"))


# ---- F9: FIFOs, sockets and devices -------------------------------------------------


def test_a_fifo_in_an_input_folder_is_skipped_and_counted(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for page in SAMPLE_FILES:
        (folder / page.name).write_bytes(page.read_bytes())
    os.mkfifo(folder / "pipe.jsonl")
    os.mknod(folder / "null.txt", 0o600 | 0o020000, os.makedev(1, 3))  # a character device
    alone = corpus_clean("run", *(folder / p.name for p in SAMPLE_FILES), "-q", timeout=60)
    done = corpus_clean("run", folder, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == alone.stdout != b""
    assert b"FIFOs, sockets and devices skipped" in done.stderr
    assert b"2" in done.stderr.split(b"FIFOs, sockets and devices skipped")[1].split(b"\n")[0]


@pytest.fixture
def fifo_with_writer(tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    """A FIFO and a thread that writes JSONL into it once a reader opens it."""
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    data = b"".join(
        json.dumps({"id": f"s{n}", "text": f"streamed story {n} about the river"}).encode() + b"\n"
        for n in range(50)
    )

    def feed() -> None:
        with open(fifo, "wb") as handle:  # waits for the reader
            handle.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    yield fifo, data
    if writer.is_alive():  # unblock it if the run never opened the FIFO
        with open(fifo, "rb") as handle:
            handle.read()
    writer.join(10)


def test_a_fifo_named_directly_is_read_as_a_jsonl_stream(
    fifo_with_writer: tuple[Path, bytes],
) -> None:
    fifo, data = fifo_with_writer
    from_fifo = corpus_clean("dedup", fifo, "-q", timeout=60)
    piped = corpus_clean("dedup", "-", "-q", input=data, timeout=60)
    assert from_fifo.returncode == 0, from_fifo.stderr
    records = strict_json_lines(from_fifo.stdout)
    assert {r.pop("source") for r in records} == {str(fifo)}
    assert records == [
        {k: v for k, v in r.items() if k != "source"} for r in strict_json_lines(piped.stdout)
    ]
    assert len(records) == 50


def test_dev_stdin_and_process_substitution_are_read_as_jsonl_streams(tmp_path: Path) -> None:
    data = b'{"id": "a", "text": "one two three four five six"}\n'
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    piped = corpus_clean("dedup", "/dev/stdin", "-q", input=data)
    with open(source, "rb") as stdin:
        redirected = corpus_clean("dedup", "/dev/stdin", "-q", stdin=stdin)
    substituted = subprocess.run(
        ["bash", "-c", f'"{SCRIPT}" dedup <(cat "{source}") -q'],
        capture_output=True,
        timeout=60,
        check=False,
    )
    for done in (piped, redirected, substituted):
        assert (done.returncode, done.stderr) == (0, b"")
        assert [r["id"] for r in strict_json_lines(done.stdout)] == ["a"]


# ---- F12: deep nesting, alike whatever the jobs ---------------------------------------


@pytest.mark.parametrize("depth", [325, 800])
def test_deep_nesting_is_read_alike_whatever_the_jobs(tmp_path: Path, depth: int) -> None:
    source = tmp_path / "deep.jsonl"
    inner = depth - 1  # the record itself is the first level
    deep = (
        '{"id": "deep", "text": "deep nested record words one two three four five", "x": '
        + "[" * inner
        + "]" * inner
        + ', "y": '
        + '{"a": ' * inner
        + "1.5"
        + "}" * inner
        + "}\n"
    )
    source.write_bytes(docs(3 << 20) + deep.encode())  # > 2 MB: two batches
    one = corpus_clean("dedup", source, "-j", "1", "-q")
    two = corpus_clean("dedup", source, "-j", "2", "-q")
    assert (one.returncode, one.stderr) == (0, b"")
    assert (two.returncode, two.stderr) == (0, b"")
    assert one.stdout == two.stdout
    last = one.stdout.splitlines()[-1]
    assert last.startswith(b'{"id":"deep"') and b"[" * inner + b"]" * inner in last


def test_nesting_beyond_the_limit_is_refused_alike_whatever_the_jobs(tmp_path: Path) -> None:
    source = tmp_path / "deep.jsonl"
    deep = '{"id": "deep", "text": "t", "x": ' + "[" * 2000 + "]" * 2000 + "}\n"
    source.write_bytes(docs(3 << 20) + deep.encode())
    one = corpus_clean("dedup", source, "-j", "1", "-q")
    two = corpus_clean("dedup", source, "-j", "2", "-q")
    assert one.returncode == two.returncode == 2
    assert one.stderr == two.stderr
    assert b"deep.jsonl:" in one.stderr and b"Traceback" not in one.stderr


# ---- F13: lone surrogates -----------------------------------------------------------


def test_lone_surrogates_do_not_reach_the_output(tmp_path: Path) -> None:
    source = tmp_path / "s.jsonl"
    source.write_text(
        '{"id":"a\\udc80","text":"lone \\ud800 surrogate words here now ok","title":"t\\udfff",'
        '"source":"s\\ud83d","m\\udc00":["\\ud800",{"k\\ud801":"v\\udc01"}]}\n'
    )
    done = corpus_clean("run", source)
    assert done.returncode == 0, done.stderr
    [record] = strict_json_lines(done.stdout)
    assert record["text"] == "lone \ufffd surrogate words here now ok"
    assert (record["id"], record["title"], record["source"]) == ("a\ufffd", "t\ufffd", "s\ufffd")
    assert record["m\ufffd"] == ["\ufffd", {"k\ufffd": "v\ufffd"}]
    assert b"lone surrogates replaced" in done.stderr


def test_a_file_name_that_is_not_utf8_becomes_u_fffd_in_the_output(tmp_path: Path) -> None:
    folder = tmp_path / "legacy"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.txt")
    (folder / name).write_bytes(SAMPLE_FILES[0].read_bytes())
    (folder / os.fsdecode(b"caf\xe9.jsonl")).write_text('{"text": "a record without an id"}\n')
    done = corpus_clean("run", folder)
    assert done.returncode == 0, done.stderr
    records = strict_json_lines(done.stdout)
    assert len(records) > 1
    for record in records:
        assert "caf\ufffd." in str(record["source"]) and "caf\ufffd." in str(record["id"])
    # Lines in the output's spelling are read back from the file by its real name.
    spelled = folder / os.fsdecode(b"d\xe9j\xe0.jsonl")
    spelled.write_bytes(docs(1000))
    again = corpus_clean("dedup", spelled, "-j", "1")
    assert again.returncode == 0, again.stderr
    assert again.stdout == spelled.read_bytes()


# ---- F14: full TMPDIR ---------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (needs root)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_full_tmpdir_is_named_with_what_to_do(
    tmp_path: Path, small_tmpfs: Path, jobs: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(docs(6 << 20).replace(b'"title": null, ', b""))  # not read back
    target = tmp_path / "out.jsonl"
    done = corpus_clean(
        "run",
        source,
        "--memory",
        "0",
        "-o",
        target,
        "-j",
        jobs,
        "-q",
        env={**os.environ, "TMPDIR": str(small_tmpfs)},
    )
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        f"Error: temporary files in $TMPDIR ({small_tmpfs}): No space left on device; "
        "point TMPDIR at a folder with more room"
    )
    assert not target.exists()
    assert not list(small_tmpfs.iterdir())


def test_the_memory_budget_changes_where_records_wait_not_the_output(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    data = docs(3 << 20)
    lines = data.splitlines(keepends=True)
    source.write_bytes(data + b"".join(lines[:300]).replace(b'"title": null, ', b""))
    default = corpus_clean("run", source, "--duplicates", tmp_path / "d1", "-q")
    spilled = corpus_clean("run", source, "--memory", "0", "--duplicates", tmp_path / "d2", "-q")
    from_env = corpus_clean("run", source, "-q", env={**os.environ, "CORPUS_CLEAN_MEMORY_MB": "1"})
    assert default.returncode == spilled.returncode == from_env.returncode == 0
    assert default.stdout == spilled.stdout == from_env.stdout
    assert (tmp_path / "d1").read_bytes() == (tmp_path / "d2").read_bytes() != b""


# ---- F15j: ids and sources that are not strings ---------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        '{"id": {"n": 1}, "text": "t"}',
        '{"id": true, "text": "t"}',
        '{"id": 1.50, "text": "t"}',
        '{"id": [1], "text": "t"}',
        '{"source": {"s": 1}, "text": "t"}',
        '{"source": false, "text": "t"}',
    ],
)
def test_an_id_or_source_that_is_not_a_string_or_integer_is_refused(
    tmp_path: Path, line: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fine"}\n' + line + "\n")
    field = "id" if line.startswith('{"id"') else "source"
    done = corpus_clean("dedup", source, "-q")
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode().strip() == (
        f"Error: {source}:2: field '{field}' must be a string or an integer"
    )
    skipped = corpus_clean("dedup", source, "-q", "--skip-invalid")
    assert skipped.returncode == 0
    assert [r["text"] for r in strict_json_lines(skipped.stdout)] == ["fine"]


def test_an_integer_id_is_kept_in_its_json_spelling(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": 7, "text": "t"}\n{"id": 123456789012345678901234567890, "text": "u", "source": 5}\n'
    )
    done = corpus_clean("dedup", source, "-q")
    assert done.returncode == 0, done.stderr
    records = strict_json_lines(done.stdout)
    assert [(r["id"], r["source"]) for r in records] == [
        ("7", str(source)),
        ("123456789012345678901234567890", "5"),
    ]


# ---- F15m: binary pages -------------------------------------------------------------


def test_a_binary_page_is_skipped_and_counted(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_bytes(SAMPLE_FILES[0].read_bytes())
    (folder / "random.txt").write_bytes(random.Random(1).randbytes(100_000))
    (folder / "nul.txt").write_bytes(b"Title\n\nSome text\x00 with a NUL byte in it.\n")
    alone = corpus_clean("run", folder / "a.txt", "-q")
    done = corpus_clean("run", folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout == alone.stdout
    row = done.stderr.split(b"binary pages skipped")[1].split(b"\n")[0]
    assert b"2" in row
    assert b"invalid UTF-8" not in done.stderr
