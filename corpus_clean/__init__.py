"""corpus-clean as a library: ``run`` does what ``corpus-clean run`` does, through the
same driver, and returns the report the command's ``--report`` writes.

Example::

    import corpus_clean

    report = corpus_clean.run(["scrape/"], "corpus.jsonl", duplicates="removed.jsonl")
    print(report.written, report["duplicates"])

``datasketch_minhashes(texts)`` gives the MinHash signatures deduplication computes as
``datasketch.LeanMinHash`` objects, for datasketch's ``MinHashLSH`` and its relatives.

Names are imported on first use (this module imports nothing itself), so that
``corpus-clean`` and ``python -m corpus_clean`` set up their signal handlers first.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dedup.minhash import datasketch_minhashes
    from .errors import CorpusCleanError
    from .options import CleanOptions, DedupOptions, LearnOptions, ReadOptions, SplitOptions
    from .record import Record
    from .report import Report

__all__ = [
    "CleanOptions",
    "CorpusCleanError",
    "DedupOptions",
    "LearnOptions",
    "ReadOptions",
    "Record",
    "Report",
    "SplitOptions",
    "datasketch_minhashes",
    "run",
]

#: Where each public name lives.
_HOMES = {
    "CleanOptions": "options",
    "DedupOptions": "options",
    "LearnOptions": "options",
    "ReadOptions": "options",
    "SplitOptions": "options",
    "Record": "record",
    "Report": "report",
    "CorpusCleanError": "errors",
    "datasketch_minhashes": "dedup.minhash",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str] | None = None,
    *,
    duplicates: str | os.PathLike[str] | None = None,
    read: ReadOptions | None = None,
    split: SplitOptions | bool = True,
    clean: CleanOptions | bool = True,
    learn: LearnOptions | bool = True,
    dedup: DedupOptions | bool = True,
    index: str | os.PathLike[str] | None = None,
    check: bool = False,
    jobs: int = 1,
) -> Report:
    """Read, split, clean (learning each site's boilerplate first), deduplicate and
    write, as ``corpus-clean run`` does; return the run's report.

    ``paths``: page files, JSONL files, folders (``-`` is stdin). ``output``: the JSONL
    file of kept records (``-``: stdout; None: write none, only count). ``duplicates``:
    where removed records go, with their verdict. A stage is on with its defaults
    (True), on with the options given, or off (False); ``learn`` needs ``clean``.
    ``index``: the SQLite index of articles accepted before (created if missing): their
    duplicates are removed and the kept are added, unless ``check``, which changes
    nothing and lists the recurring articles in ``report.recurring``.

    Outputs appear together when the run succeeds, as the command's do. Errors a user
    can fix raise ``CorpusCleanError`` with a one-line message.
    """
    from . import pipeline
    from .dedup import Fingerprinter
    from .driver import Run, Targets, execute
    from .errors import CorpusCleanError
    from .io import resolve_inputs
    from .options import CleanOptions, DedupOptions, LearnOptions, ReadOptions, SplitOptions
    from .stages.clean import load_rules
    from .storage.sqlite import IndexStore

    names = (
        [os.fspath(paths)]
        if isinstance(paths, str | os.PathLike)
        else [os.fspath(p) for p in paths]
    )
    targets = Targets(
        None if check or output is None else os.fspath(output),
        None if check or duplicates is None else os.fspath(duplicates),
    )
    if check and index is None:
        raise CorpusCleanError("check compares the input with an index: give index=PATH")
    clean_options = _stage(clean, CleanOptions)
    dedup_options = _stage(dedup, DedupOptions)
    plan = pipeline.Plan(
        read=read or ReadOptions(),
        split=_stage(split, SplitOptions),
        clean=clean_options,
        learn=_stage(learn, LearnOptions) if clean_options is not None else None,
        dedup=dedup_options,
        jobs=jobs,
    )
    if clean_options is not None:
        load_rules(clean_options)  # a bad rules file fails before anything is read
    written = [p for p in (targets.records, targets.duplicates) if p is not None]
    inputs = resolve_inputs(names, skip=written)
    store = None
    if index is not None:
        if dedup_options is None:
            raise CorpusCleanError("an index serves deduplication: leave dedup on")
        settings = Fingerprinter(dedup_options).settings()
        store = IndexStore.open(os.fspath(index), settings, create=not check, readonly=check)
    with store if store is not None else contextlib.nullcontext():
        return execute(Run("run", plan, inputs, targets, store, check))


def _stage(value: Any, options: type[Any]) -> Any:
    """A stage's options: True for the defaults, False (or None) for none."""
    if value is True:
        return options()
    return value or None
