"""The per-record stages: split, clean, learned boilerplate.

Every stage has one shape (``Stage``): a stream of records in, a stream of records out,
and what it did counted into ``Stats`` by reason. A stage that must see the whole input
before it runs (learning) has a ``Fit`` as well: ``sketch`` sums up each batch where
the batch is processed, and ``fit`` turns every batch's sketch into the stage, once,
where the run is driven. A stage builds on the foundation alone (record, errors,
options, stats) and never on another stage; the pipeline lists them, in order, in one
place (``pipeline.STAGES``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from ..record import Record
from ..stats import Stats

S = TypeVar("S")
F_co = TypeVar("F_co", covariant=True, bound="Stage")


class Stage(Protocol):
    """Records in, records out (lazily, in order), counters by reason into ``stats``."""

    def run(self, records: Iterable[Record], stats: Stats) -> Iterable[Record]: ...


class Fit(Protocol[S, F_co]):
    """What a stage that must see the whole input first needs: a sketch of each batch
    (picklable; made in the worker that processes the batch), then the stage made from
    every sketch, in input order."""

    def sketch(self, records: Sequence[Record]) -> S: ...

    def fit(self, sketches: list[S]) -> F_co: ...
