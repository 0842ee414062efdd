"""The installed command as a real process: same bytes whatever PYTHONHASHSEED is, quiet
when the reader of its output goes away (| head), and errors in worker processes that
end the run instead of hanging it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from support import GOLDEN, REPO, SCRIPT

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="corpus-clean is not installed")


def run_script(*args: str, hash_seed: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, timeout=120, check=False
    )


def test_output_does_not_depend_on_the_hash_seed() -> None:
    first = run_script("run", "samples/", hash_seed="1")
    second = run_script("run", "samples/", hash_seed="2")
    assert first.returncode == second.returncode == 0, first.stderr.decode()
    assert first.stdout == second.stdout
    assert first.stdout == (GOLDEN / "samples.jsonl").read_bytes()


@pytest.mark.parametrize("command", ["run", "split"])
def test_closed_pipe_ends_quietly(command: str, tmp_path: Path) -> None:
    errors = tmp_path / "stderr.txt"
    status = tmp_path / "status.txt"
    # Bash, for PIPESTATUS: the exit status of corpus-clean itself, not of head.
    script = (
        f"{shlex.quote(str(SCRIPT))} {command} samples/ 2>{shlex.quote(str(errors))}"
        f" | head -n 1; echo ${{PIPESTATUS[0]}} >{shlex.quote(str(status))}"
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=REPO, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0
    assert done.stdout.count(b"\n") == 1
    assert done.stdout.startswith(b'{"id":"samples/000_27f52f622c7b214e.txt#1"')
    stderr = errors.read_text("utf-8")
    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr
    assert "Exception ignored" not in stderr
    assert status.read_text().strip() == "0"


def test_malformed_line_in_a_worker_process_ends_the_run(tmp_path: Path) -> None:
    source = tmp_path / "big.jsonl"
    stories = [json.dumps({"text": f"Story {n} about the river."}) for n in range(5000)]
    source.write_text("\n".join([*stories, '{"text": broken', *stories[:10]]) + "\n")
    out = tmp_path / "out.jsonl"
    # Several batches, so parsing happens in the worker processes of --jobs 2.
    done = run_script("run", str(source), "--jobs", "2", "-o", str(out), hash_seed="0")
    assert done.returncode == 2
    stderr = done.stderr.decode()
    assert f"{source}:5001: invalid JSON" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()
