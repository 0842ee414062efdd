"""Run one command as this process's only child; record its wall time, CPU and peak RSS.

Usage: python measure.py RESULT.json -- COMMAND [ARGS...]

getrusage(RUSAGE_CHILDREN) only counts descendants that were waited for, and pool
workers (datatrove's forkserver, for one) can outlive their parent and be reparented
away. So this process becomes a Linux child subreaper, reaps every orphan once the
command exits, and only then reads the usage: CPU time is then the whole process tree's,
and ru_maxrss is the largest single process in it (not a sum). Wall time stops when the
command itself exits. Exits with the command's return code after writing RESULT.json.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
ORPHAN_GRACE_SECONDS = 60.0


def become_subreaper() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def reap_orphans() -> bool:
    """Wait for descendants the command left behind; False if some outlived the grace."""
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            time.sleep(0.01)
    return False


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__.split("\n\n")[1])
    result, command = Path(sys.argv[1]), sys.argv[3:]
    subreaper = become_subreaper()
    began = time.perf_counter()
    returncode = subprocess.call(command)
    seconds = time.perf_counter() - began
    all_reaped = reap_orphans()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.write_text(
        json.dumps(
            {
                "returncode": returncode,
                "seconds": seconds,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "max_rss_kib": usage.ru_maxrss,
                "whole_tree": subreaper and all_reaped,
            }
        )
    )
    sys.exit(returncode)


if __name__ == "__main__":
    main()
