"""Where the per-batch work runs: this process, a local pool of processes (``local``), or
a cluster (``ray``).

An executor is an ordered map: every item through the same work, results in input
order, a bounded number of items in flight so that memory does not grow with the input.
Every executor runs the same work function, so the results are the same bytes wherever
they were computed; only the time and the place differ.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..errors import CorpusCleanError

T = TypeVar("T")
R = TypeVar("R")


class ExecutorError(CorpusCleanError):
    """The executor cannot run the work (no cluster to join, a task lost too often).
    ``str()`` says what to do."""


@dataclass(frozen=True)
class Work(Generic[T, R]):
    """The per-item work; picklable. ``build()`` makes the function that does it, once
    per process that runs it (the executor sets that process up first)."""

    build: Callable[[], Callable[[T], R]]


class Executor(Protocol):
    """An ordered map of ``work`` over ``items``: results in input order, a bounded
    number of items in flight. Closing the returned generator early cancels the items not
    started and waits for those running: once it is closed, none of its items runs."""

    #: Whether the workers read and write this process's files (temporary files too).
    shares_files: bool
    #: Whether the work runs in this process, its results handed back as they are (not
    #: copied): then a result may hold what is costly to copy.
    inline: bool
    #: Whether item ``i`` of every map runs in the same process as item ``i`` of the maps
    #: before: then what an item's work keeps in its process is there for the next map.
    keeps_processes: bool

    def map(self, work: Work[T, R], items: Iterable[T]) -> Generator[R, None, None]: ...

    def figures(self) -> dict[str, Any] | None:
        """What the run's report says about the executor (None: nothing)."""
        ...
