"""Output files under faults (campaign F3, F4, F5, F8, F15): devices, FIFOs and symlinks
as outputs, outputs that collide, interrupts and errors between the renames, late report
and step-summary failures, bad option values, closed standard streams, start-up signals,
temporary files of killed runs."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support import GOLDEN, REPO, SCRIPT, child_processes, stop_with_workers

from corpus_clean.cli import cli
from corpus_clean.storage.sqlite import IndexStore

SAMPLES = "samples/"  # run from the repository root, as the golden files were made
GOLDEN_KEPT = (GOLDEN / "samples.jsonl").read_bytes()
GOLDEN_REMOVED = (GOLDEN / "samples.duplicates.jsonl").read_bytes()
#: A line that fails the run as soon as it is read: an option refused after reading
#: anything would show this line's error instead of its own.
BROKEN = b'{"text": "cut off\n'


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def invoke(*args: str | Path, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def shell(command: str) -> subprocess.CompletedProcess[str]:
    """The installed command run by a real shell (for closed standard streams)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jsonl(tmp_path: Path, name: str = "in.jsonl", n: int = 3) -> Path:
    path = tmp_path / name
    path.write_text(
        "".join(
            json.dumps({"id": f"s{k}", "text": f"Story {k} about the river and its bridges."})
            + "\n"
            for k in range(n)
        )
    )
    return path


def char_device(path: Path, minor: int) -> Path:
    """A twin of /dev/null (minor 3) or /dev/full (minor 7) in the test's own folder."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return path


def temporaries(*folders: Path) -> list[str]:
    return sorted(p.name for folder in folders for p in folder.iterdir() if p.suffix == ".tmp")


# ---- F3: what -o names is written to, not replaced --------------------------------------


def test_a_character_device_is_written_through_and_stays_a_device(tmp_path: Path) -> None:
    null = char_device(tmp_path / "null", 3)
    result = invoke("run", SAMPLES, "-o", null, "--duplicates", null.with_name("d"), "-q")
    assert (result.exit_code, result.stderr) == (0, "")
    info = null.stat()
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    assert (tmp_path / "d").read_bytes() == GOLDEN_REMOVED
    assert temporaries(tmp_path) == []


def test_a_fifo_gets_the_records_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = invoke("run", SAMPLES, "-o", fifo, "-q")
    reader.join(timeout=60)
    assert (result.exit_code, result.stderr) == (0, "")
    assert received == [GOLDEN_KEPT]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert temporaries(tmp_path) == []


def test_a_symlink_keeps_pointing_at_its_target_which_is_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    target = real / "t.jsonl"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    result = invoke("run", SAMPLES, "-o", link, "-q")
    assert (result.exit_code, result.stderr) == (0, "")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == GOLDEN_KEPT
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert temporaries(tmp_path, real) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")
def test_a_replaced_file_keeps_its_owner(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    os.chown(target, 1234, 4321)
    result = invoke("run", SAMPLES, "-o", target, "-q")
    assert result.exit_code == 0, result.stderr
    info = target.stat()
    assert (info.st_uid, info.st_gid) == (1234, 4321)
    assert target.read_bytes() == GOLDEN_KEPT


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "new.jsonl")
    result = invoke("run", SAMPLES, "-o", link, "-q")
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and (tmp_path / "new.jsonl").read_bytes() == GOLDEN_KEPT


def test_a_descriptor_path_is_written_through(tmp_path: Path) -> None:
    # /proc/self/fd/1 is what /dev/stdout points to (never name /dev itself in a test).
    done = shell(f"corpus-clean run {SAMPLES} -o /proc/self/fd/1 -q")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.encode() == GOLDEN_KEPT


@pytest.mark.parametrize(
    "options",
    [
        "-o {d}/x.jsonl --duplicates {d}/x.jsonl",
        "-o {d}/x.jsonl --report {d}/x.jsonl",
        "-o {d}/x.jsonl --skip-invalid --rejects {d}/./x.jsonl",
        "--duplicates {d}/sub/../x.jsonl --report {d}/x.jsonl",
        "-o {d}/link.jsonl --duplicates {d}/x.jsonl",  # a symlink to x.jsonl
        "-o {d}/hard.jsonl --duplicates {d}/x.jsonl",  # a hard link to x.jsonl
        "-o {d}/acc.db --index {d}/acc.db",
        "--index {d}/acc.db --report {d}/link.db",  # a symlink to acc.db
        "--duplicates -",  # stdout, where -o writes by default
    ],
)
def test_two_options_naming_one_file_are_refused_before_reading(
    tmp_path: Path, options: str
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "x.jsonl").write_bytes(b"old\n")
    (tmp_path / "link.jsonl").symlink_to("x.jsonl")
    (tmp_path / "link.db").symlink_to("acc.db")
    os.link(tmp_path / "x.jsonl", tmp_path / "hard.jsonl")
    index = tmp_path / "acc.db"
    assert invoke("run", SAMPLES, "--index", index, "-o", tmp_path / "first.jsonl").exit_code == 0
    index_before = digest(index)
    source = tmp_path / "in.jsonl"
    source.write_bytes(BROKEN)
    files_before = sorted(os.listdir(tmp_path))

    result = invoke("dedup", source, *options.format(d=tmp_path).split(), "-q")
    assert result.exit_code == 2
    assert "both name" in result.stderr and "give each its own file" in result.stderr
    assert "invalid JSON" not in result.stderr  # refused before reading
    assert (tmp_path / "x.jsonl").read_bytes() == b"old\n"
    assert digest(index) == index_before
    assert sorted(os.listdir(tmp_path)) == files_before


def test_explain_naming_the_output_is_refused_before_reading(tmp_path: Path) -> None:
    target = tmp_path / "x.jsonl"
    result = invoke("run", SAMPLES, "-o", target, "--explain", target, "-q")
    assert result.exit_code == 2
    assert "-o and --explain both name" in result.stderr
    assert not target.exists()


def test_a_folder_as_output_is_refused_before_reading(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(BROKEN)
    for option in ("-o", "--duplicates", "--report"):
        result = invoke("dedup", source, option, tmp_path, "-q")
        assert result.exit_code == 2
        assert f"{tmp_path}: is a folder; name a file to write" in result.stderr, option
        assert "invalid JSON" not in result.stderr


def test_a_block_device_or_socket_as_output_is_refused(tmp_path: Path) -> None:
    import socket

    block = tmp_path / "disk"
    os.mknod(block, 0o600 | stat.S_IFBLK, os.makedev(7, 200))  # a loop device's number
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "sock"))
    try:
        for target in (block, tmp_path / "sock"):
            result = invoke("split", SAMPLES, "-o", target, "-q")
            assert result.exit_code == 2
            assert f"{target}: not a regular file, character device or FIFO" in result.stderr
    finally:
        listening.close()
    assert stat.S_ISBLK(block.stat().st_mode)
    assert temporaries(tmp_path) == []


def test_dedup_may_replace_its_own_input_while_reading_lines_back(tmp_path: Path) -> None:
    # The kept lines are read back from the input at the end, before it is replaced.
    corpus = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps(
            {
                "id": f"s{k % 4}-{k}",
                "title": None,
                "text": f"story {k % 4} of the old bridge and the river",
                "source": "x",
            },
            separators=(",", ":"),  # the output's spelling: lines are read back
        )
        for k in range(12)
    ]
    corpus.write_text("\n".join(lines) + "\n")
    result = invoke("dedup", corpus, "-o", corpus, "--jobs", "1", "-q")
    assert result.exit_code == 0, result.stderr
    assert corpus.read_text() == "\n".join(lines[:4]) + "\n"


# ---- F8: all outputs come out together ---------------------------------------------------


def test_an_interrupt_between_renames_waits_until_all_are_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    renamed: list[str] = []

    def replace_then_interrupt(src: str, dst: str) -> None:
        real_replace(src, dst)
        renamed.append(dst)
        if len(renamed) == 1:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C right after the first rename

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    out, dups = tmp_path / "out.jsonl", tmp_path / "dups.jsonl"
    out.write_bytes(b"earlier run\n")
    result = invoke("run", SAMPLES, "-o", out, "--duplicates", dups, "-q")
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted: output written"
    assert (out.read_bytes(), dups.read_bytes()) == (GOLDEN_KEPT, GOLDEN_REMOVED)
    assert temporaries(tmp_path) == []


def test_an_error_between_renames_says_which_files_are_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls: list[str] = []

    def second_fails(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    out, dups = tmp_path / "out.jsonl", tmp_path / "dups.jsonl"
    result = invoke("run", SAMPLES, "-o", out, "--duplicates", dups, "-q")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {dups}: Input/output error (only {out} written, not {dups})"
    )
    assert out.read_bytes() == GOLDEN_KEPT and not dups.exists()
    assert temporaries(tmp_path) == []


def test_every_output_is_synced_before_the_first_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"text": "one"}\nnot json\n')
    result = invoke(
        "run",
        source,
        "-o",
        tmp_path / "o",
        "--duplicates",
        tmp_path / "d",
        "--skip-invalid",
        "--rejects",
        tmp_path / "r",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    assert events == ["fsync"] * 3 + ["rename"] * 3
    assert (tmp_path / "r").read_bytes() == b"not json\n"


# ---- F4: nothing fails after the outputs are out, unless the report ---------------------


@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_an_unusable_step_summary_path_fails_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    summary = tmp_path / "no" / "summary.md" if where == "missing folder" else tmp_path
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out, index = tmp_path / "out.jsonl", tmp_path / "acc.db"
    result = invoke("run", SAMPLES, "--index", index, "-o", out, "-q")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: GITHUB_STEP_SUMMARY: ")
    assert not out.exists() and not index.exists()


def test_a_step_summary_that_cannot_be_appended_to_is_only_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = char_device(tmp_path / "full", 7)  # every write: No space left on device
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(full))
    out = tmp_path / "out.jsonl"
    result = invoke("run", SAMPLES, "--index", tmp_path / "acc.db", "-o", out, "-q")
    assert result.exit_code == 0
    assert result.stderr.strip() == (
        f"warning: GITHUB_STEP_SUMMARY {full}: No space left on device; no summary appended"
    )
    assert out.read_bytes() == GOLDEN_KEPT


def test_a_report_folder_that_is_not_there_fails_before_reading(tmp_path: Path) -> None:
    out, index = tmp_path / "out.jsonl", tmp_path / "acc.db"
    report = tmp_path / "no" / "r.json"
    result = invoke("run", SAMPLES, "--index", index, "-o", out, "--report", report, "-q")
    assert result.exit_code == 2
    assert f"{report}: folder {report.parent} does not exist" in result.stderr
    assert not out.exists() and not index.exists()


def test_a_report_failing_after_the_commit_says_nothing_needs_rerunning(tmp_path: Path) -> None:
    full = char_device(tmp_path / "full", 7)
    out, index = tmp_path / "out.jsonl", tmp_path / "acc.db"
    result = invoke("run", SAMPLES, "--index", index, "-o", out, "--report", full, "-q")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {full}: No space left on device: no report written, but the run is done "
        "(output written, index updated); nothing needs re-running"
    )
    assert out.read_bytes() == GOLDEN_KEPT
    with IndexStore.open(str(index), None, readonly=True) as store:
        assert store.info()["articles"] == 18


def test_an_index_failing_at_commit_says_the_output_is_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corpus_clean.storage import IndexStoreError

    def refuse(*args: object, **kwargs: object) -> int:
        raise IndexStoreError("could not add this run's articles to acc.db (disk full)")

    monkeypatch.setattr(IndexStore, "accept", refuse)
    out = tmp_path / "out.jsonl"
    result = invoke("run", SAMPLES, "--index", tmp_path / "acc.db", "-o", out, "-q")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("(output written, index unchanged)")


# ---- F5: option values and closed standard streams ---------------------------------------


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
@pytest.mark.parametrize("command", ["run", "dedup"])
def test_a_seed_out_of_range_is_a_usage_error(command: str, seed: str) -> None:
    result = invoke(command, SAMPLES, "--seed", seed, "-q")
    assert result.exit_code == 2
    assert "Invalid value for '--seed'" in result.stderr
    assert "0<=x<=4294967295" in result.stderr
    assert isinstance(result.exception, SystemExit)


def test_the_largest_seed_is_accepted() -> None:
    assert invoke("dedup", SAMPLES, "--seed", "4294967295", "-q").exit_code == 0


def test_a_threshold_the_permutations_cannot_serve_is_a_usage_error(tmp_path: Path) -> None:
    for args in (["run", SAMPLES], ["index", "add", tmp_path / "acc.db", SAMPLES]):
        result = invoke(*args, "--threshold", "0.05", "--num-perm", "16", "-q")
        assert result.exit_code == 2, args
        assert (
            "--threshold 0.05 with --num-perm 16: no LSH band layout of 16 permutations finds "
            "95% of pairs at that similarity; use --num-perm 59 or more, or a higher --threshold"
        ) in result.stderr
        assert isinstance(result.exception, SystemExit)
    assert not (tmp_path / "acc.db").exists()
    assert invoke("dedup", SAMPLES, "--threshold", "0.05", "--num-perm", "59", "-q").exit_code == 0


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (f"corpus-clean run {SAMPLES} -q >&-", "Error: cannot write to standard output"),
        ("corpus-clean dedup - -q <&-", "Error: cannot read standard input: it is closed"),
        ("corpus-clean index info {d}/acc.db >&-", "Error: cannot write to standard output"),
    ],
)
def test_a_closed_standard_stream_is_a_one_line_error(
    tmp_path: Path, command: str, message: str
) -> None:
    assert invoke("run", SAMPLES, "--index", tmp_path / "acc.db", "-q").exit_code == 0
    done = shell(command.format(d=tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr


def test_a_closed_stdout_does_not_matter_with_an_output_file(tmp_path: Path) -> None:
    done = shell(f"corpus-clean run {SAMPLES} -o {tmp_path}/out.jsonl -q >&-")
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "out.jsonl").read_bytes() == GOLDEN_KEPT


# ---- F15a: signals while the command starts ----------------------------------------------

#: Runs the command as its console script does, but stalls in the middle of importing
#: the library (where a signal used to kill it, or end in a traceback) until signalled.
STALLED_START = textwrap.dedent("""
    import sys, time
    from importlib.abc import MetaPathFinder

    ready = sys.argv[1]

    class Stall(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "corpus_clean.pipeline":
                open(ready, "w").close()
                time.sleep(60)
            return None

    sys.meta_path.insert(0, Stall())
    sys.argv = ["corpus-clean", "run", sys.argv[2], "-q"]
    from corpus_clean.__main__ import main
    main()
""")


def wait_for(condition: Callable[[], bool], running: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_starting_ends_as_interrupted(tmp_path: Path, signum: int) -> None:
    ready = tmp_path / "importing"
    running = subprocess.Popen(
        [sys.executable, "-c", STALLED_START, str(ready), REPO / SAMPLES],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        wait_for(ready.exists, running)
        running.send_signal(signum)
        stdout, stderr = running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert (running.returncode, stdout, stderr) == (130, b"", b"")


# ---- F15h: temporary files of killed runs -------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_removes_the_temporary_files_killed_runs_left(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    stale = tmp_path / f".out.jsonl.corpus-clean-{dead_pid()}.tmp"
    other = tmp_path / f".other.jsonl.corpus-clean-{dead_pid()}.tmp"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".out.jsonl.corpus-clean-{sleeper.pid}.tmp"  # a run still going
        for path in (stale, live, other):
            path.write_bytes(b"half")
        result = invoke("run", SAMPLES, "-o", out, "-q")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert result.exit_code == 0, result.stderr
    assert temporaries(tmp_path) == sorted([live.name, other.name])  # another run's, another file's


def test_a_killed_run_leaves_a_temporary_file_named_by_its_pid(tmp_path: Path) -> None:
    source = jsonl(tmp_path, n=200)
    out = tmp_path / "out.jsonl"
    # Stdin left open and unread: the run waits there with its output file open.
    running = subprocess.Popen(
        [
            SCRIPT,
            "dedup",
            source,
            "-",
            "-o",
            out,
            "--jobs",
            "1",
            "-q",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        tmp = tmp_path / f".out.jsonl.corpus-clean-{running.pid}.tmp"
        wait_for(tmp.exists, running)
    finally:
        running.kill()  # as kill -9 does
        running.communicate()
    assert temporaries(tmp_path) == [tmp.name]
    assert invoke("dedup", source, "-o", out, "-q").exit_code == 0
    assert temporaries(tmp_path) == []


def test_the_learning_folder_of_a_killed_run_goes_with_the_next_run(tmp_path: Path) -> None:
    """kill -9 in the middle of learning leaves its folder of kept batches in $TMPDIR
    (nothing can remove it then); the next run that learns removes it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    out = tmp_path / "out.jsonl"
    running = subprocess.Popen(
        [SCRIPT, "run", "-", "-o", out, "--jobs", "1", "-q"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert running.stdin is not None
        running.stdin.write(jsonl(tmp_path, n=50).read_bytes())
        running.stdin.flush()  # and left open: the fit pass waits for more
        wait_for(lambda: any(tmp.glob(f"corpus-clean-learn-{running.pid}-*")), running)
    finally:
        running.kill()  # as kill -9 does
        running.communicate()
    assert [p.name.split("-")[2:4] for p in tmp.iterdir()] == [["learn", str(running.pid)]]
    again = subprocess.run(
        [SCRIPT, "run", jsonl(tmp_path, n=50), "-o", out, "-q"], env=env, capture_output=True
    )
    assert again.returncode == 0, again.stderr
    assert list(tmp.iterdir()) == []


# ---- F15k, F15l: wording of input errors -------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("null", "null"),
        ("[1]", "array"),
        ('"s"', "string"),
        ("1", "number"),
        ("2.5", "number"),
        ("true", "boolean"),
    ],
)
def test_a_line_that_is_not_an_object_is_named_in_json_terms(
    tmp_path: Path, line: str, kind: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(line + "\n")
    result = invoke("dedup", source, "-q")
    assert result.exit_code == 2
    assert f"{source}:1: expected a JSON object, got {kind} (" in result.stderr


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"text": "a\x00b"}', "Invalid control character at column 12"),
        (b'{"text": "cut', "Unterminated string starting at column 10"),
    ],
)
def test_json_errors_do_not_double_words(tmp_path: Path, line: bytes, problem: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(line + b"\n")
    result = invoke("dedup", source, "-q")
    assert result.exit_code == 2
    assert f"invalid JSON ({problem})" in result.stderr
    assert "at at" not in result.stderr


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_gzip_input_is_an_error_not_a_usage_error(tmp_path: Path, damage: str) -> None:
    packed = gzip.compress(jsonl(tmp_path, n=500).read_bytes())
    data = packed[: len(packed) // 2] if damage == "truncated" else b"\x1f\x8b" + os.urandom(300)
    source = tmp_path / "cut.jsonl.gz"
    source.write_bytes(data)
    result = invoke("dedup", source, "-q")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {source}: cannot decompress")
    assert "Usage:" not in result.stderr and "--help" not in result.stderr


def many_stories(path: Path, count: int = 40000) -> Path:
    """A JSONL input big enough to keep worker processes and the writer busy a while."""
    path.write_text(
        "".join(
            json.dumps(
                {"id": f"d{k}", "text": f"Story {k % 30000} of the river {k * 7919 % 30011}"}
            )
            + "\n"
            for k in range(count)
        )
    )
    return path


def test_sigterm_as_the_first_output_appears_leaves_a_matching_pair(tmp_path: Path) -> None:
    """The campaign's F8 race with a real signal: SIGTERM the moment either output file
    appears. Whenever it lands, the pair is whole or absent, and the message says which."""
    source = many_stories(tmp_path / "docs.jsonl")
    out, dups = tmp_path / "out.jsonl", tmp_path / "dups.jsonl"
    running = subprocess.Popen(
        [
            SCRIPT,
            "dedup",
            source,
            "-o",
            out,
            "--duplicates",
            dups,
            "-q",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        while running.poll() is None and not (out.exists() or dups.exists()):
            time.sleep(0.0005)
        running.send_signal(signal.SIGTERM)
        _, stderr = running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert out.exists() and dups.exists()  # the poll saw one, so both are out
    assert (running.returncode, stderr) in {(0, b""), (130, b"interrupted: output written\n")}
    assert temporaries(tmp_path) == []


def read_so_far(pid: int, path: Path) -> int:
    """How far process ``pid`` has read into ``path`` (0 if it has not opened it)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if fd.readlink() == path:
                info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
                return int(info.split()[1])  # "pos:\t<offset>"
        except FileNotFoundError:  # closed meanwhile
            continue
    return 0


def test_ctrl_c_twice_while_workers_run_still_ends_cleanly(tmp_path: Path) -> None:
    """A second Ctrl-C used to break off the cleanup of the first: the workers were left
    waiting, and the exit waiting for them, forever."""
    source = many_stories(tmp_path / "docs.jsonl", 150000)
    out = tmp_path / "out.jsonl"
    running = subprocess.Popen(
        [
            SCRIPT,
            "dedup",
            source,
            "-o",
            out,
            "--jobs",
            "2",
            "-q",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        # Well into the run (a few batches handed out), not while the pool starts.
        wait_for(lambda: read_so_far(running.pid, source) > 4 << 20, running)
        workers = child_processes(running.pid)
        assert len(workers) == 2
        running.send_signal(signal.SIGINT)
        time.sleep(0.01)  # two signals at once are one: let the first be taken
        running.send_signal(signal.SIGINT)
        _, stderr = running.communicate(timeout=60)
    finally:
        stop_with_workers(running)
    assert (running.returncode, stderr) == (130, b"interrupted: no output file written\n")
    assert not out.exists() and temporaries(tmp_path) == []
    for worker in workers:
        assert (
            not Path(f"/proc/{worker}").exists()
            or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]
        )


#: Runs the command as its console script does, but stalls in the main process right
#: after it forks the first pool worker (in a fork hook, where an interrupt used to be
#: swallowed, or to leave the pool without its manager) until the test has signalled.
STALLED_FORK = textwrap.dedent("""
    import os, sys, time

    ready, sent = sys.argv[1], sys.argv[2]

    def stall():
        if not os.path.exists(ready):
            open(ready, "w").close()
            while not os.path.exists(sent):
                time.sleep(0.01)

    os.register_at_fork(after_in_parent=stall)
    sys.argv = ["corpus-clean", *sys.argv[3:]]
    from corpus_clean.__main__ import main
    main()
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_while_the_pool_forks_its_workers_ends_the_run(
    tmp_path: Path, signum: int
) -> None:
    source = many_stories(tmp_path / "docs.jsonl")  # batches enough for a pool
    out = tmp_path / "out.jsonl"
    ready, sent = tmp_path / "forked", tmp_path / "signalled"
    running = subprocess.Popen(
        [
            sys.executable,
            "-c",
            STALLED_FORK,
            ready,
            sent,
            "dedup",
            source,
            "-o",
            out,
            "--jobs",
            "2",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        wait_for(ready.exists, running)
        running.send_signal(signum)
        sent.touch()
        stdout, stderr = running.communicate(timeout=60)
    finally:
        stop_with_workers(running)
    assert (running.returncode, stdout) == (130, b"")
    assert stderr == b"interrupted: no output file written\n"
    assert not out.exists() and temporaries(tmp_path) == []
