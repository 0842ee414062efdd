"""corpus-clean on one machine against the same commands sharded on a local process
pool and on a two-node Ray cluster.

Usage: python benchmarks/ray_bench.py --articles 100000 [--repeats 1] [--keep-data DIR]

Generates the synthetic scrape (synth.py), starts a Ray cluster of two nodes with one
CPU each on 127.0.0.1 (the same two cores the local run gets; started as
tests/test_ray.py starts it, so nothing listens beyond loopback), then runs
``corpus-clean run`` on the pages and ``corpus-clean dedup`` on articles.jsonl, locally
(``--jobs 2``), with ``--engine processes --jobs 2`` and with ``--engine ray``, in an
order that turns round from one repeat to the next. Prints wall time and peak memory side
by side, checks that every engine wrote the same bytes, and states the cluster's start-up
cost apart.

Memory: "driver" is the peak RSS of the command's largest process (measure.py: the CLI
and, locally, its pool workers; Ray's workers are the cluster's children, not the CLI's);
"tree" is the peak of the summed RSS of the command's processes (sampled every 50 ms),
for Ray of every process this script started: the CLI and the whole cluster, whose idle
RSS is given apart. Shared pages count once per process, so "tree" overstates.

CPU: user and system seconds of the command's processes (measure.py), for Ray plus what
the cluster's processes spent meanwhile, its idle daemons included. On a machine shared
with other work, CPU seconds move less than wall seconds do.
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
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OBJECT_STORE = 256 << 20
COMMANDS = (("run", "pages"), ("dedup", "articles.jsonl"))


def processes() -> dict[int, tuple[int, int, float]]:
    """Parent, RSS bytes and CPU seconds (its own) of every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                pages = int((entry / "statm").read_text().split()[1])
            except OSError:  # gone meanwhile
                continue
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
            found[int(entry.name)] = (int(fields[1]), pages * PAGE_SIZE, cpu)
    return found


def descendants(table: dict[int, tuple[int, int, float]], root: int) -> set[int]:
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, row in table.items() if row[0] in frontier} - found
        found |= frontier
    return found


def tree_rss(root: int) -> int:
    """Summed RSS in bytes of ``root``'s descendants."""
    table = processes()
    return sum(table[pid][1] for pid in descendants(table, root))


def measure(argv: list[str], scratch: Path, whole_tree: bool) -> dict[str, Any]:
    """Run one command under measure.py: its wall seconds, CPU seconds, its largest
    process's peak RSS, and the peak summed RSS of its processes meanwhile
    (``whole_tree``: of all this script's, the cluster's too)."""
    result = scratch / "measure.json"
    wrapper = [sys.executable, str(HERE / "measure.py"), str(result), "--", *argv]
    table = processes()
    before = {pid: table[pid][2] for pid in descendants(table, os.getpid())}
    child = subprocess.Popen(wrapper, stderr=subprocess.PIPE, text=True)
    peak = [0]
    # CPU seconds last seen of each cluster process: Ray's workers end with the run, and
    # their raylet does not collect their figures, so they are sampled while they live.
    seen: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            table = processes()
            command = descendants(table, child.pid) | ({child.pid} & table.keys())
            everything = descendants(table, os.getpid())
            counted = everything if whole_tree else command
            peak[0] = max(peak[0], sum(table[pid][1] for pid in counted))
            seen.update((pid, table[pid][2]) for pid in everything - command)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, stderr = child.communicate()
    finally:
        done.set()
        sampler.join()
    if child.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed with exit {child.returncode}:\n{stderr}")
    measured = json.loads(result.read_text())
    cluster = sum(cpu - before.get(pid, 0.0) for pid, cpu in seen.items())
    cpu = measured["cpu_seconds"] + (cluster if whole_tree else 0.0)
    return {
        "seconds": measured["seconds"],
        "cpu_seconds": cpu,
        "driver_kib": measured["max_rss_kib"],
        "tree_bytes": peak[0],
    }


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
        began = time.perf_counter()
        node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": OBJECT_STORE}
        cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
        try:
            cluster.add_node(**node)
            cluster.wait_for_nodes()
            startup = time.perf_counter() - began
            time.sleep(1.0)  # let the nodes' agents settle before taking the idle RSS
            idle = tree_rss(os.getpid()) / 2**20
            print(f"cluster up in {startup:.1f} s, {idle:.0f} MiB idle", file=sys.stderr)
            engines = {
                "local": [],
                "processes": ["--engine", "processes"],
                "ray": ["--engine", "ray", "--ray-address", cluster.address],
            }
            runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
            # Alternating the order, so that the other load on the machine falls on both.
            for repeat in range(args.repeats):
                for command, source in COMMANDS:
                    order = list(engines)
                    for label in order[repeat % 3 :] + order[: repeat % 3]:
                        argv = [str(binary), command, str(data.root / source), "-q", "--jobs", "2"]
                        argv += ["-o", str(scratch / f"{command}-{label}.jsonl")]
                        argv += ["--duplicates", str(scratch / f"{command}-{label}-dups.jsonl")]
                        run = measure([*argv, *engines[label]], scratch, label == "ray")
                        runs.setdefault((command, label), []).append(run)
                        print(f"  {command:6} {label:6} {run['seconds']:7.2f} s", file=sys.stderr)
        finally:
            cluster.shutdown()
        identical = {
            command: all(
                (scratch / f"{command}-local{tail}").read_bytes()
                == (scratch / f"{command}-{label}{tail}").read_bytes()
                for tail in (".jsonl", "-dups.jsonl")
                for label in ("processes", "ray")
            )
            for command, _ in COMMANDS
        }
    figures = {
        key: {
            "seconds": statistics.median(run["seconds"] for run in measured),
            "cpu_seconds": statistics.median(run["cpu_seconds"] for run in measured),
            "driver_mib": max(run["driver_kib"] for run in measured) / 1024,
            "tree_mib": max(run["tree_bytes"] for run in measured) / 2**20,
        }
        for key, measured in runs.items()
    }
    report(args, data.manifest, figures, identical, startup, idle)
    if not all(identical.values()):
        sys.exit("the engines wrote different bytes")


def report(
    args: argparse.Namespace,
    manifest: dict[str, int],
    figures: dict[tuple[str, str], dict[str, float]],
    identical: dict[str, bool],
    startup: float,
    idle: float,
) -> None:
    print(
        f"\n{args.articles:,} articles ({manifest['page_bytes'] / 1e6:.0f} MB of pages, "
        f"{manifest['articles_jsonl_bytes'] / 1e6:.0f} MB of JSONL), "
        f"median of {args.repeats}; 2 cores both ways\n"
    )
    header = f"{'command':8} {'engine':9} {'sec':>8} {'x local':>8} {'cpu s':>8} {'x local':>8}"
    header += f" {'driver MiB':>11}"
    print(header + f" {'tree MiB':>9} {'same bytes':>11}")
    for command, _ in COMMANDS:
        for label in ("local", "processes", "ray"):
            row = figures[command, label]
            ratio = row["seconds"] / figures[command, "local"]["seconds"]
            cpu_ratio = row["cpu_seconds"] / figures[command, "local"]["cpu_seconds"]
            print(
                f"{command:8} {label:9} {row['seconds']:8.2f} {ratio:8.2f} "
                f"{row['cpu_seconds']:8.2f} {cpu_ratio:8.2f} "
                f"{row['driver_mib']:11.0f} {row['tree_mib']:9.0f} "
                f"{'yes' if identical[command] else 'NO':>11}"
            )
    print(
        f"\ncluster start-up (two nodes, not in the times above): {startup:.1f} s; "
        f"idle cluster RSS (in 'tree' for ray): {idle:.0f} MiB"
    )
    if args.out:
        summary = {
            "articles": args.articles,
            "repeats": args.repeats,
            "cluster_startup_seconds": round(startup, 2),
            "idle_cluster_mib": round(idle),
            "runs": {f"{command} {label}": row for (command, label), row in figures.items()},
            "identical": identical,
        }
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
