"""--engine ray against a real two-node Ray cluster on this machine, on loopback only:
the same bytes as the local run and --engine processes, tasks on both nodes, a crashed
task retried, a node removed between stages (its work made again), the same exit 2 for a
malformed line, the index workflow, and an interrupt that leaves nothing.

Nothing may listen beyond 127.0.0.0/8 here, so the cluster is started with
``ray.cluster_utils.Cluster`` on 127.0.0.1 (``ray start`` and a bare ``ray.init()``
would take the machine's network address), and a test checks every socket it binds.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pickle
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import engines
import pytest
from click.testing import Result
from engines import (
    engine,
    files,
    index_runs,
    invoke,
    outputs,
    terminated_with_nothing_written,
    written_after_an_error,
)
from support import REPO, SAMPLES, SCRIPT, replicated_samples

from corpus_clean import pipeline
from corpus_clean.driver import Run, Targets, execute
from corpus_clean.executors.ray import CRASH_TASK_VARIABLE, RayExecutor
from corpus_clean.io.inputs import resolve_inputs
from corpus_clean.options import DedupOptions
from corpus_clean.shards import ShardOptions
from corpus_clean.stats import Stats

#: Keep Ray on loopback and quiet: no node address guessed from the network (Ray reads
#: this when it is imported, so it is set before), no usage report sent anywhere.
RAY_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(RAY_ENVIRONMENT)
pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

#: Shards this small give a few megabytes of input a dozen tasks a stage.
SHARD_SIZE = "256k"
OBJECT_STORE = 80 << 20
NODE: dict[str, Any] = {
    "num_cpus": 1,
    "node_ip_address": "127.0.0.1",
    "object_store_memory": OBJECT_STORE,
}


def descendants(root: int) -> set[int]:
    """Every process below ``root`` (Ray's node processes and their workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


#: /proc/net/tcp states: a listening socket, a connection.
LISTEN, ESTABLISHED = "0A", "01"


def sockets_of(pids: set[int]) -> list[tuple[str, str, str]]:
    """(protocol and state, local address, remote address) of every socket of ``pids``,
    read from /proc/net (IPv4 and IPv6); addresses as ``HOST:PORT``."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:  # gone meanwhile
            continue
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                found.append((f"{table}:{fields[3]}", _address(fields[1]), _address(fields[2])))
    return found


def _address(hex_address: str) -> str:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw[::-1])}:{int(port, 16)}"
    # IPv6: four 32-bit words, each in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return f"{socket.inet_ntop(socket.AF_INET6, words)}:{int(port, 16)}"


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node and a second node, one CPU each, on 127.0.0.1."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)
        Path("/tmp/ray").mkdir(exist_ok=True)
        started = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
        try:
            started.add_node(**NODE)
            started.wait_for_nodes()
            yield started
        finally:
            started.shutdown()  # type: ignore[no-untyped-call]
    assert _none_left(lambda: _ray_processes(b"")), "Ray processes left after the shutdown"


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Edited copies of the seed pages: about 2.5 MB, a dozen batches."""
    folder = tmp_path_factory.mktemp("pages")
    assert replicated_samples(folder, copies=8) > 8 * (256 << 10)
    return folder


@pytest.fixture(scope="module")
def articles(pages: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same pages split into JSONL articles, for dedup."""
    target = tmp_path_factory.mktemp("articles") / "articles.jsonl"
    result = invoke("split", str(pages), "-o", str(target), "-q")
    assert result.exit_code == 0, result.stderr
    return target


def on_ray(cluster: Cluster, *args: str, shard_size: str = SHARD_SIZE) -> Result:
    ray = ["--engine", "ray", "--ray-address", cluster.address, "--shard-size", shard_size]
    return invoke(*args, *ray)


# ---- the cluster ---------------------------------------------------------------------


def test_the_cluster_binds_and_talks_on_loopback_only(cluster: Cluster) -> None:
    found = sockets_of(descendants(os.getpid()) | {os.getpid()})
    bound = [local for kind, local, _ in found if kind.startswith("udp") or kind.endswith(LISTEN)]
    # The head's GCS listens at the cluster's address: the scan does see Ray's sockets.
    assert any(local.endswith(f":{cluster.address.rsplit(':', 1)[1]}") for local in bound)
    assert len(bound) >= 4, found  # GCS, and a raylet and an agent or two per node
    assert [local for local in bound if not is_loopback(local)] == []
    peers = [remote for kind, _, remote in found if kind.endswith(ESTABLISHED)]
    assert peers  # the nodes do talk to each other
    assert [remote for remote in peers if not is_loopback(remote)] == []


# ---- the same bytes ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "dedup"])
def test_ray_gives_the_bytes_of_the_local_run_and_of_processes(
    cluster: Cluster, command: str, pages: Path, articles: Path, tmp_path: Path
) -> None:
    source = str(articles if command == "dedup" else pages)
    local = invoke(command, source, "--jobs", "1", *files(tmp_path / "local"))
    processes = invoke(
        command, source, "--engine", "processes", "--shard-size", SHARD_SIZE,
        *files(tmp_path / "processes"),
    )  # fmt: skip
    remote = on_ray(cluster, command, source, *files(tmp_path / "ray"))
    assert outputs(remote, tmp_path / "ray") == outputs(local, tmp_path / "local")
    assert outputs(processes, tmp_path / "processes") == outputs(local, tmp_path / "local")
    assert remote.stdout_bytes == b""
    figures = engine(tmp_path / "ray")
    assert figures["name"] == "ray"
    assert figures["shards"] >= 8
    assert figures["tasks"] >= 2 * figures["shards"]  # map and write, at least
    assert figures["nodes"] == 2  # both nodes took tasks
    assert figures["retries"] == figures["skipped"] == figures["recomputed"] == 0
    assert set(figures["stages"]) >= {"map", "decide", "write"}
    assert "engine" not in json.loads((tmp_path / "local" / "report.json").read_text("utf-8"))


def test_ray_on_the_samples_equals_the_golden_run(cluster: Cluster, tmp_path: Path) -> None:
    local = invoke("run", str(SAMPLES), *files(tmp_path / "local"))
    remote = on_ray(cluster, "run", str(SAMPLES), *files(tmp_path / "ray"), shard_size="64M")
    assert outputs(remote, tmp_path / "ray") == outputs(local, tmp_path / "local")
    # One shard: fit, learn, map, decide, write.
    assert engine(tmp_path / "ray")["tasks"] == 5


def test_stdout_carries_only_the_records_of_paths_relative_to_the_driver(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs and rules files named from the driver's folder: the tasks run elsewhere."""
    shutil.copytree(SAMPLES, tmp_path / "samples")
    (tmp_path / "rules.toml").write_text(
        '[[rule]]\nname = "mine"\naction = "line"\nmatch = "regex"\npatterns = ["^Editor:"]\n'
    )
    monkeypatch.chdir(tmp_path)
    args = ["run", "samples", "--rules", "rules.toml", "-q"]
    local = invoke(*args)
    remote = on_ray(cluster, *args)
    assert (remote.exit_code, remote.stderr) == (0, "")
    assert remote.stdout_bytes == local.stdout_bytes
    assert b'"source":"samples/' in local.stdout_bytes


# ---- failures ------------------------------------------------------------------------


def test_a_crashed_task_is_retried_and_the_output_is_the_same(
    cluster: Cluster, pages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    local = invoke("run", str(pages), "--jobs", "1", *files(tmp_path / "local"))
    monkeypatch.setenv(CRASH_TASK_VARIABLE, f"3:{markers}")
    remote = on_ray(cluster, "run", str(pages), *files(tmp_path / "ray"))
    assert outputs(remote, tmp_path / "ray") == outputs(local, tmp_path / "local")
    assert [p.name for p in markers.iterdir()] == ["crashed-3"]  # the first attempt died
    assert engine(tmp_path / "ray")["retries"] == 1


def test_a_malformed_line_stops_the_run_as_the_local_run_does(
    cluster: Cluster, articles: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    lines = articles.read_bytes().splitlines(keepends=True)
    at = len(lines) * 3 // 4  # in a late task, not the first
    broken.write_bytes(b"".join([*lines[:at], b'{"text": "cut off\n', *lines[at:]]))
    out = tmp_path / "out.jsonl"
    local = invoke("dedup", str(broken), "-o", str(out))
    remote = on_ray(cluster, "dedup", str(broken), "-o", str(out))
    assert local.exit_code == remote.exit_code == 2
    assert f"{broken}:{at + 1}: invalid JSON" in remote.stderr
    assert remote.stderr == local.stderr
    assert "Traceback" not in remote.stderr
    assert not out.exists()


def test_a_map_left_on_an_error_leaves_none_of_its_tasks_running(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Ray's workers cannot import the helpers: their functions go by value.
    ray.cloudpickle.register_pickle_by_value(engines)  # type: ignore[no-untyped-call]
    try:
        with RayExecutor(cluster.address) as executor:
            written_after_an_error(executor, tmp_path)
    finally:
        ray.cloudpickle.unregister_pickle_by_value(engines)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("given", ["option", "RAY_ADDRESS"])
def test_no_cluster_at_the_address_is_an_error_that_says_what_to_do(
    given: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    args = ["run", str(SAMPLES), "--engine", "ray", "-o", str(tmp_path / "out")]
    if given == "option":
        args += ["--ray-address", address]
    else:
        monkeypatch.setenv("RAY_ADDRESS", address)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert f"no Ray cluster found at {address}" in result.stderr
    assert "--ray-address" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_ray_address_without_the_ray_engine_is_a_usage_mistake() -> None:
    result = invoke("run", str(SAMPLES), "--ray-address", "127.0.0.1:6379")
    assert result.exit_code == 2
    assert "--ray-address only makes sense with --engine ray" in result.stderr


def test_a_node_removed_between_stages_has_its_work_made_again(
    cluster: Cluster, articles: Path, tmp_path: Path
) -> None:
    """The second node goes after the map stage, and with it (as if they were on its own
    disk) the shards it mapped: the run maps them again on the node left, same bytes."""
    plan = pipeline.Plan(dedup=DedupOptions())
    inputs = resolve_inputs([str(articles)])
    local = tmp_path / "local.jsonl"
    execute(Run("dedup", plan, inputs, Targets(records=str(local))))
    work, out = tmp_path / "work", tmp_path / "out.jsonl"
    lost: list[Path] = []
    mapped_on: set[str] = set()
    removed_ids: list[str] = []

    def between_stages(phase: str, stats: Stats) -> None:
        if phase != "resolving" or lost:
            return
        nodes = cluster.list_all_nodes()  # type: ignore[no-untyped-call]
        node = next(node for node in nodes if node is not cluster.head_node)
        cluster.remove_node(node)
        removed_ids.append(node.node_id)
        mapped_on.update(pickle.loads(m.read_bytes()).node for m in work.glob("shard-*/map.done"))
        for marker in work.glob("shard-*/map.done"):
            if pickle.loads(marker.read_bytes()).node == node.node_id:
                for name in ("map.done", "records.jsonl", "prints.pickle"):
                    (marker.parent / name).unlink()
                lost.append(marker)

    options = ShardOptions(str(work), shard_bytes=64 << 10)  # tasks enough for both nodes
    try:
        with RayExecutor(cluster.address) as executor:
            run = Run("dedup", plan, inputs, Targets(records=str(out)), executor=executor)
            report = execute(replace(run, shards=options, engine="ray"), progress=between_stages)
    finally:
        if len(cluster.list_all_nodes()) < 2:  # type: ignore[no-untyped-call]
            cluster.add_node(**NODE)
            cluster.wait_for_nodes()
    assert out.read_bytes() == local.read_bytes()
    head = cluster.head_node
    assert head is not None
    assert lost, (mapped_on, removed_ids, head.node_id)  # the second node mapped
    assert report["engine"]["recomputed"] == len(lost)


# ---- the index -----------------------------------------------------------------------


def test_an_index_run_on_ray_equals_the_local_one(
    cluster: Cluster, pages: Path, tmp_path: Path
) -> None:
    figures = index_runs(
        pages,
        tmp_path,
        {"local": lambda *args: invoke(*args, "--jobs", "1"), "ray": partial(on_ray, cluster)},
    )
    assert figures["ray"] == figures["local"]
    assert figures["ray"][2]["duplicates"]["index"] > 0


# ---- interruption --------------------------------------------------------------------


def test_sigterm_leaves_no_task_running_and_exits_130(cluster: Cluster, tmp_path: Path) -> None:
    big = tmp_path / "big"
    replicated_samples(big, copies=40)
    out = tmp_path / "out.jsonl"
    command = [str(SCRIPT), "run", str(big), "-o", str(out)]
    command += ["--engine", "ray", "--ray-address", cluster.address]
    driver = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ
    )
    terminated_with_nothing_written(driver, tmp_path, lambda: _running_tasks(within=60))
    assert not out.exists()
    assert _none_left(lambda: _ray_processes(b"ray::_run_task")), "tasks ran on"


def _ray_processes(named: bytes) -> list[int]:
    """This process's descendants that are Ray's (a task shows its function's name)."""
    found = []
    for pid in descendants(os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"ray" in command and command.startswith(named):
            found.append(pid)
    return found


def _running_tasks(within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _ray_processes(b"ray::_run_task"):
            return True
        time.sleep(0.01)
    return False


def _none_left(processes: Callable[[], list[int]], within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not processes():
            return True
        time.sleep(0.05)
    return False
