"""An ordered map of tasks on a Ray cluster (``--engine ray``).

``--engine ray`` maps the sharded run's stage tasks (``shards``) over it: each task reads
its own shard and leaves what it made in the work folder, so only task descriptions and
small summaries travel. (``driver.run_plan`` can map its batches over it too: there the
driver reads the input and ships the units.) Ray is imported only when this executor
connects, so the rest of the library does not need it (``pip install
'corpus-clean[ray]'`` brings it).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from . import ExecutorError, Work

T = TypeVar("T")
R = TypeVar("R")

#: Attempts after the first for a task whose worker or node was lost (not for an error
#: the work itself raised, such as a malformed line: that stops the run).
MAX_RETRIES = 3
#: Test-only: ``N:DIR`` makes the first attempt of task N (0-based, in input order) kill
#: its worker process, leaving a marker in DIR so that the retry runs normally.
CRASH_TASK_VARIABLE = "CORPUS_CLEAN_TEST_CRASH_TASK"


@dataclass
class _Task:
    number: int
    item: Any
    ref: Any  # ray.ObjectRef
    attempt: int = 0


class RayExecutor:
    """Joins a running Ray cluster (``address``, or Ray's own ``auto`` rules:
    ``RAY_ADDRESS``, else the cluster started on this machine) and maps the work over
    it as tasks, two per CPU of the cluster in flight. ``spread`` places them across the
    nodes in turn; else Ray fills the driver's node first."""

    def __init__(self, address: str | None = None, *, spread: bool = True) -> None:
        self.address = address
        self.spread = spread
        self.nodes: set[str] = set()
        self.tasks = 0
        self.retries = 0
        self.connect_seconds = 0.0
        self.seconds = 0.0
        self.shares_files = False
        self.inline = False
        self.keeps_processes = False

    def __enter__(self) -> RayExecutor:
        started = time.perf_counter()
        try:
            import ray
        except ImportError as err:
            raise ExecutorError("--engine ray needs Ray: pip install 'corpus-clean[ray]'") from err
        given = self.address or os.environ.get("RAY_ADDRESS")
        if given and given != "auto":
            _check_reachable(given)
        # ray.init installs a SIGTERM handler of its own; the caller's (which unwinds
        # like Ctrl-C, leaving nothing half-written) stays in charge.
        previous = signal.getsignal(signal.SIGTERM)
        try:
            # "auto" joins a running cluster or fails; a bare ray.init() would start one.
            ray.init(
                address=self.address or "auto",
                log_to_driver=False,  # worker output would land on stdout, which is data
                logging_level=logging.WARNING,
            )
        except ConnectionError as err:
            raise _no_cluster(given or "this machine") from err
        finally:
            if threading.current_thread() is threading.main_thread() and previous is not None:
                signal.signal(signal.SIGTERM, previous)
        # A cluster of this one machine (as in the tests) sees this process's files.
        here = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        self.shares_files = all(
            node["NodeManagerAddress"] == here
            for node in ray.nodes()  # type: ignore[no-untyped-call]
            if node["Alive"]
        )
        self.connect_seconds = time.perf_counter() - started
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        import ray

        ray.shutdown()

    def map(self, work: Work[T, R], items: Iterable[T]) -> Generator[R, None, None]:
        import ray

        started = time.perf_counter()
        # Lost tasks are retried here rather than by Ray (max_retries), which would do
        # it unseen: counted here, the report can say how many were. For small tasks
        # (the pipeline's 2 MB batches) Ray's default placement, which fills the driver's
        # node and reuses its warm workers, did better: "SPREAD" placed every task anew,
        # and workers were busy 14-30% of the time against 43-70% (dedup, 100,000
        # articles, two one-CPU nodes). A shard's task runs for seconds, and by default
        # the driver's node could take every one of a stage's tasks before another
        # node's worker had started: spread, each node takes its turn.
        strategy = "SPREAD" if self.spread else "DEFAULT"
        task = ray.remote(_run_task).options(
            num_cpus=1, max_retries=0, scheduling_strategy=strategy
        )
        built = [ray.put(work.build)]  # in a list: tasks get the reference, not the value
        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        in_flight = 2 * max(1, int(cpus))
        crash = os.environ.get(CRASH_TASK_VARIABLE)

        def submit(number: int, item: T) -> Any:
            return task.remote(built, item, number, crash)

        pending: deque[_Task] = deque()
        try:
            for number, item in enumerate(items):
                pending.append(_Task(number, item, submit(number, item)))
                if len(pending) > in_flight:
                    yield self._result(pending.popleft(), submit)
            while pending:
                yield self._result(pending.popleft(), submit)
        finally:
            # The tasks still in flight when a run stops (an error, an interrupt) are
            # waited for, not cancelled: ray.cancel of a task that is just finishing
            # fails a check in Ray's core worker (ray 2.60, "Tried to complete task that
            # was not pending"), which aborts this process, the driver. Waited for, none
            # writes a file after the caller has removed its folder.
            if pending:
                refs = [task.ref for task in pending]
                ray.wait(refs, num_returns=len(refs))
            self.seconds = time.perf_counter() - started

    def _result(self, task: _Task, submit: Callable[[int, Any], Any]) -> Any:
        """The task's result; a task whose worker or node was lost runs again."""
        import ray
        from ray import exceptions

        lost = (
            exceptions.WorkerCrashedError,
            exceptions.NodeDiedError,
            exceptions.ObjectLostError,
            exceptions.OutOfMemoryError,
        )
        while True:
            try:
                node, payload = ray.get(task.ref)
            except exceptions.RayTaskError as err:
                # The work's own error (a malformed line): raised as it was raised, so
                # the run stops with the message the local run gives.
                if isinstance(err.cause, Exception) and not isinstance(
                    err.cause, exceptions.RayError
                ):
                    raise err.cause from None
                raise ExecutorError(f"a Ray task failed: {err}") from err
            except lost as err:
                if task.attempt >= MAX_RETRIES:
                    raise ExecutorError(
                        f"a Ray task was lost {task.attempt + 1} times ({type(err).__name__}): "
                        "the run stopped; check the cluster's nodes and memory, and run again"
                    ) from err
                task.attempt += 1
                self.retries += 1
                task.ref = submit(task.number, task.item)
                continue
            self.nodes.add(node)
            self.tasks += 1
            return pickle.loads(payload)

    def figures(self) -> dict[str, Any]:
        return {
            "name": "ray",
            "nodes": len(self.nodes),
            "tasks": self.tasks,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
            "connect_seconds": round(self.connect_seconds, 3),
        }


#: Seconds to wait for a cluster's head to answer: ray.init itself retries for minutes.
CONNECT_TIMEOUT = 5.0


def _check_reachable(address: str) -> None:
    """Fail at once when nothing answers at ``address`` (HOST:PORT)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"Ray address {address!r}: give it as HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT):
            pass
    except OSError as err:
        raise _no_cluster(f"{address} ({err.strerror or err})") from err


def _no_cluster(where: str) -> ExecutorError:
    return ExecutorError(
        f"no Ray cluster found at {where}: start one ('ray start --head' on the head node) "
        "or pass --ray-address HOST:PORT of a running cluster"
    )


#: The work function of the current run, built once per Ray worker process.
_built: dict[str, Callable[[Any], Any]] = {}


def _run_task(built: list[Any], item: Any, number: int, crash: str | None) -> tuple[str, bytes]:
    """One item through the work; returns the node it ran on and the pickled result.

    The result travels pickled so that the driver gets arrays of its own, not views
    pinning the object store for the rest of the run.
    """
    import ray

    if crash is not None:
        _crash_first_attempt(crash, number)
    key = built[0].hex()
    function = _built.get(key)
    if function is None:
        _built.clear()  # a worker process serves one run (one Ray job) at a time
        function = _built[key] = ray.get(built[0])()
    result = function(item)
    node = ray.get_runtime_context().get_node_id()
    return node, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


def _crash_first_attempt(crash: str, number: int) -> None:
    target, _, folder = crash.partition(":")
    marker = Path(folder) / f"crashed-{number}"
    if int(target) == number and not marker.exists():
        marker.touch()
        os._exit(1)
