"""This machine as an executor: inline for one job, else a pool of worker processes.

Process-wide tuning belongs here, not in the library: the pool sets up its workers
(they die with the main process and leave interruption to it), and entering a
``LocalPool`` tunes this process for a run (malloc keeps freed memory, the cycle
collector pauses); forked workers inherit both.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from itertools import chain
from types import TracebackType
from typing import Any, TypeVar

from ..heap import reuse_freed_memory
from ..signals import interrupts_held
from . import Work

T = TypeVar("T")
R = TypeVar("R")

#: fork starts workers in milliseconds with the library already imported; where there is
#: no fork, spawn imports it afresh in each worker.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


class LocalPool:
    """This machine: inline for one job or a single item, else ``jobs`` worker
    processes with ``2 * jobs`` items in flight. Item ``i`` of every map runs in worker
    ``i % jobs``, and the workers live from the first map until the pool is left, so what
    a fit pass keeps in a worker's memory is there for the second pass (no temporary
    file). As a context manager, it tunes this process for the run (see ``tuned``)."""

    shares_files = True

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.inline = jobs <= 1
        self.keeps_processes = jobs > 1
        self._workers: list[ProcessPoolExecutor] = []
        self._tuning = contextlib.ExitStack()

    def __enter__(self) -> LocalPool:
        self._tuning.enter_context(tuned())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            # Whole, or not at all: a signal that broke off a shutdown left its pool's
            # manager thread closing its wakeup pipe while the interpreter's exit wrote
            # to it ("Exception ignored ... Bad file descriptor" after the run's message).
            with interrupts_held():
                for worker in self._workers:
                    worker.shutdown(wait=True, cancel_futures=True)
        finally:
            self._workers = []
            self._tuning.close()

    def map(self, work: Work[T, R], items: Iterable[T]) -> Generator[R, None, None]:
        items = iter(items)
        first = next(items, None)
        if first is None:
            return
        second = next(items, None)
        # One item runs inline too, unless earlier maps started the workers (an item
        # may need what one of them kept).
        if self.jobs <= 1 or (second is None and not self._workers):
            function = work.build()
            yield function(first)
            for item in chain([second] if second is not None else [], items):
                yield function(item)
            return
        workers = self._installed(work)
        pending: deque[Future[R]] = deque()
        try:
            rest = [second] if second is not None else []
            for position, item in enumerate(chain([first], rest, items)):
                pending.append(workers[position % self.jobs].submit(_in_worker, item))
                # A few items in flight per worker: enough to keep it busy, few
                # enough that memory does not grow with the input.
                if len(pending) > 2 * self.jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            # Left early (an error, an interrupt): the items not started are dropped, and
            # those a worker already runs are waited for, so that none writes a file
            # after the caller has removed its folder (a full disk's error reaches this
            # process while the other worker still writes its temporary file).
            for future in pending:
                future.cancel()
            wait(pending)

    def _installed(self, work: Work[Any, Any]) -> list[ProcessPoolExecutor]:
        """The workers (started on the first map), each with this map's work built.
        Each is a pool of one process that notices it dying (killed, out of memory): the
        run then fails with BrokenProcessPool instead of waiting forever for its item."""
        if self._workers:
            # A worker runs its items in order: the work is built before this map's first.
            built = [worker.submit(_install, work.build) for worker in self._workers]
        else:
            # The first submit forks a worker: an interrupt inside it was swallowed by
            # a fork hook, or left the pool without its manager, hanging the exit.
            with interrupts_held():
                context = multiprocessing.get_context(_START_METHOD)
                for _ in range(self.jobs):
                    self._workers.append(
                        ProcessPoolExecutor(
                            1,
                            mp_context=context,
                            initializer=_start_worker,
                            initargs=(os.getpid(),),
                        )
                    )
                built = [worker.submit(_install, work.build) for worker in self._workers]
        for done in built:
            done.result()
        return self._workers

    def figures(self) -> dict[str, Any] | None:
        return None


@contextlib.contextmanager
def tuned() -> Iterator[None]:
    """This process tuned for a run's work while inside (a ``LocalPool`` entered, or a
    task run where nothing set its process up, such as a Ray worker): glibc keeps freed
    memory (``heap.reuse_freed_memory``), and the cycle collector pauses. Records and
    batches hold no reference cycles, yet as a run allocates millions of objects the
    collector walks every live one again and again: 4% of a run. Forked workers inherit
    both."""
    reuse_freed_memory()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: The work function of this worker process, for the items of the current map (see
#: ``_install``).
_work: Callable[[Any], Any] | None = None


def _start_worker(parent: int) -> None:
    """Leave interruption to the main process: a forked worker would otherwise inherit
    the CLI's handlers, answer the pool's own SIGTERM (sent when it is torn down) with a
    traceback, and each catch Ctrl-C (or the SIGHUP of a closed terminal) sent to the
    process group."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _install(build: Callable[[], Callable[[Any], Any]]) -> None:
    """Build the work function of a map, once in each worker, before its items."""
    global _work
    _work = None  # the last map's, with what it holds, goes first
    _work = build()


def _in_worker(item: Any) -> Any:
    assert _work is not None, "no work was installed in this worker"
    return _work(item)


#: prctl option of linux/prctl.h: a signal the kernel sends when the parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when the main process dies, however it dies.

    A main process killed by SIGKILL (or the OOM killer) cannot tear its pool down: the
    workers would wait on the pool's queue forever, holding the caller's pipes open. The
    signal follows the thread that forked the worker, which is the run's own thread.
    Where there is no prctl (not Linux), this does nothing.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl took effect: nobody will ask
        os._exit(1)
