"""corpus-clean on one machine against the same commands on a two-node Ray cluster.

Usage: python benchmarks/ray_bench.py --articles 100000 [--repeats 1] [--keep-data DIR]

Generates the synthetic scrape (synth.py), runs ``corpus-clean run`` on its pages and
``corpus-clean dedup`` on its articles.jsonl locally (``--jobs 2``), then starts a Ray
cluster of two nodes with one CPU each on 127.0.0.1 (the same two cores; the way
tests/test_ray.py starts it: nothing listens beyond loopback) and runs the same commands
with ``--engine ray``. Prints wall time and peak memory side by side, checks that both
engines wrote the same bytes, and states the cluster's start-up cost apart.

Memory: "driver" is the peak RSS of the command's largest process (measure.py: the CLI
and, locally, its pool workers; Ray's workers are the cluster's children, not the CLI's);
"tree" is the peak of the summed RSS of every process this script started (sampled every
50 ms: the CLI, its workers, and for Ray the whole cluster), the idle cluster's own RSS
given apart. Shared pages count once per process, so "tree" overstates the machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from run import corpus, corpus_clean_binary

#: Ray reads these when it is imported: keep it on loopback, send no usage report.
os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"})

HERE = Path(__file__).resolve().parent
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
OBJECT_STORE = 256 << 20
COMMANDS = (("run", "pages"), ("dedup", "articles.jsonl"))


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def tree_rss() -> int:
    """Summed RSS in bytes of every process below this one."""
    total = 0
    for pid in descendants(os.getpid()):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        except OSError:
            continue
    return total


def measure(argv: list[str], scratch: Path) -> dict[str, Any]:
    """Run one command under measure.py; its wall seconds, its largest process's peak
    RSS, and the peak summed RSS of this script's process tree meanwhile."""
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_rss())

    sampler = threading.Thread(target=sample, daemon=True)
    result = scratch / "measure.json"
    wrapper = [sys.executable, str(HERE / "measure.py"), str(result), "--", *argv]
    sampler.start()
    try:
        done_run = subprocess.run(wrapper, capture_output=True, text=True, check=False)
    finally:
        done.set()
        sampler.join()
    if done_run.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed with exit {done_run.returncode}:\n{done_run.stderr}")
    measured = json.loads(result.read_text())
    return {
        "seconds": measured["seconds"],
        "driver_kib": measured["max_rss_kib"],
        "tree_bytes": peak[0],
    }


def run_all(
    binary: Path, data: Path, scratch: Path, engine: list[str], label: str, repeats: int
) -> dict[str, dict[str, Any]]:
    results = {}
    for command, source in COMMANDS:
        out = scratch / f"{command}-{label}.jsonl"
        dups = scratch / f"{command}-{label}-dups.jsonl"
        argv = [str(binary), command, str(data / source), "-o", str(out)]
        argv += ["--duplicates", str(dups), "--jobs", "2", "-q", *engine]
        runs = [measure(argv, scratch) for _ in range(repeats)]
        results[command] = {
            "seconds": statistics.median(run["seconds"] for run in runs),
            "driver_mib": max(run["driver_kib"] for run in runs) / 1024,
            "tree_mib": max(run["tree_bytes"] for run in runs) / 2**20,
            "outputs": (out, dups),
        }
        print(f"  {command:6} {label:6} {results[command]['seconds']:7.2f} s", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--repeats", type=int, default=1, help="median of this many runs")
    parser.add_argument("--keep-data", type=Path, help="generate the corpus here, or reuse it")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    binary = corpus_clean_binary()
    if binary is None:
        sys.exit("corpus-clean is not installed: pip install -e '.[ray]'")
    Path("/tmp/ray").mkdir(exist_ok=True)
    from ray.cluster_utils import Cluster  # imported after the environment is set

    with corpus(args) as data, tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        scratch = Path(tmp)
        print("local:", file=sys.stderr)
        local = run_all(binary, data.root, scratch, [], "local", args.repeats)
        began = time.perf_counter()
        node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": OBJECT_STORE}
        cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
        try:
            cluster.add_node(**node)
            cluster.wait_for_nodes()
            startup = time.perf_counter() - began
            time.sleep(1.0)  # let the nodes' agents settle before taking the idle RSS
            idle = tree_rss() / 2**20
            print(f"cluster up in {startup:.1f} s ({idle:.0f} MiB idle); ray:", file=sys.stderr)
            engine = ["--engine", "ray", "--ray-address", cluster.address]
            remote = run_all(binary, data.root, scratch, engine, "ray", args.repeats)
        finally:
            cluster.shutdown()
        identical = {
            command: all(
                a.read_bytes() == b.read_bytes()
                for a, b in zip(local[command]["outputs"], remote[command]["outputs"], strict=True)
            )
            for command, _ in COMMANDS
        }
    report(args, data.manifest, local, remote, identical, startup, idle)
    if not all(identical.values()):
        sys.exit("the engines wrote different bytes")


def report(
    args: argparse.Namespace,
    manifest: dict[str, int],
    local: dict[str, dict[str, Any]],
    remote: dict[str, dict[str, Any]],
    identical: dict[str, bool],
    startup: float,
    idle: float,
) -> None:
    print(
        f"\n{args.articles:,} articles ({manifest['page_bytes'] / 1e6:.0f} MB of pages, "
        f"{manifest['articles_jsonl_bytes'] / 1e6:.0f} MB of JSONL), "
        f"median of {args.repeats}; 2 cores both ways\n"
    )
    header = f"{'command':8} {'engine':7} {'sec':>8} {'x local':>8} {'driver MiB':>11}"
    print(header + f" {'tree MiB':>9} {'same bytes':>11}")
    for command, _ in COMMANDS:
        for label, results in (("local", local), ("ray", remote)):
            row = results[command]
            ratio = row["seconds"] / local[command]["seconds"]
            print(
                f"{command:8} {label:7} {row['seconds']:8.2f} {ratio:8.2f} "
                f"{row['driver_mib']:11.0f} {row['tree_mib']:9.0f} "
                f"{'yes' if identical[command] else 'NO':>11}"
            )
    print(
        f"\ncluster start-up (two nodes, not in the times above): {startup:.1f} s; "
        f"idle cluster RSS (in 'tree' for ray): {idle:.0f} MiB"
    )
    if args.out:
        figures = {
            "articles": args.articles,
            "repeats": args.repeats,
            "cluster_startup_seconds": round(startup, 2),
            "idle_cluster_mib": round(idle),
            "runs": {
                engine: {
                    command: {k: v for k, v in row.items() if k != "outputs"}
                    for command, row in results.items()
                }
                for engine, results in (("local", local), ("ray", remote))
            },
            "identical": identical,
        }
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
