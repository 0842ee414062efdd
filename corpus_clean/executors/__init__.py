"""Where the per-batch work runs: this process, a local pool of processes, or a cluster.

An executor is an ordered map: every item through the same work, results in input
order, a bounded number of items in flight so that memory does not grow with the input.
Every executor runs the same work function, so the results are the same bytes wherever
they were computed; only the time and the place differ.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any, Generic, Protocol, TypeVar

from ..errors import CorpusCleanError
from ..signals import interrupts_held

T = TypeVar("T")
R = TypeVar("R")

#: fork starts workers in milliseconds with the library already imported; where there is
#: no fork, spawn imports it afresh in each worker.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


class ExecutorError(CorpusCleanError):
    """The executor cannot run the work (no cluster to join, a task lost too often).
    ``str()`` says what to do."""


@dataclass(frozen=True)
class Work(Generic[T, R]):
    """The per-item work in the forms executors need; everything in it is picklable.

    ``build()`` makes the function that does the work, once per process that runs it.
    A local pool's worker process is prepared by ``init(*init_args)`` instead (which
    builds that function too, and sets the process up), then runs ``call``.
    """

    build: Callable[[], Callable[[T], R]]
    init: Callable[..., None]
    init_args: tuple[Any, ...]
    call: Callable[[T], R]


class Executor(Protocol):
    """An ordered map of ``work`` over ``items``: results in input order, a bounded
    number of items in flight. Closing the returned generator early cancels the rest."""

    #: Whether the workers read and write this process's files (temporary files too).
    shares_files: bool

    def map(self, work: Work[T, R], items: Iterable[T]) -> Generator[R, None, None]: ...

    def figures(self) -> dict[str, Any] | None:
        """What the run's report says about the executor (None: nothing)."""
        ...


class LocalPool:
    """This machine: inline for one job or a single item, else a pool of ``jobs``
    worker processes with ``2 * jobs`` items in flight."""

    shares_files = True

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, work: Work[T, R], items: Iterable[T]) -> Generator[R, None, None]:
        items = iter(items)
        first = next(items, None)
        if first is None:
            return
        second = next(items, None)
        if self.jobs <= 1 or second is None:
            function = work.build()
            yield function(first)
            for item in chain([second] if second is not None else [], items):
                yield function(item)
            return
        # A process pool that notices a worker dying (killed, out of memory): the run then
        # fails with BrokenProcessPool instead of waiting forever for its item.
        with ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context(_START_METHOD),
            initializer=work.init,
            initargs=work.init_args,
        ) as pool:
            pending: deque[Future[R]] = deque()
            try:
                # The first submit forks the workers: an interrupt inside it was swallowed
                # by a fork hook, or left the pool without its manager, hanging the exit.
                with interrupts_held():
                    pending.append(pool.submit(work.call, first))
                for item in chain([second], items):
                    pending.append(pool.submit(work.call, item))
                    # A few items in flight per worker: enough to keep it busy, few
                    # enough that memory does not grow with the input.
                    if len(pending) > 2 * self.jobs:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def figures(self) -> dict[str, Any] | None:
        return None
