"""One run, as the command line and the Python API (``corpus_clean.run``) both make it:
outputs opened before anything is read and published together, then (only then) the
index committed, and the report built from everything the run counted and timed."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass, field
from importlib.metadata import version

from . import pipeline
from .dedup import Fingerprinter
from .executors import Executor
from .executors.local import LocalPool
from .io import STDIN, InputFile, encode_object
from .report import Report, build_report, settings_of
from .sinks import STDOUT, Outputs
from .storage.sqlite import IndexStore


@dataclass(frozen=True)
class Targets:
    """Where a run writes: ``records`` None writes no records (``--check``; the API's
    default), ``-`` is stdout; the others are written only when given."""

    records: str | None = None
    duplicates: str | None = None
    rejects: str | None = None
    explain: str | None = None


@dataclass
class Left:
    """What a run has left behind so far, for the message of an error or interrupt that
    ends it: which output files are out, and whether the index (if any) changed."""

    index: bool
    outputs: Outputs | None = None
    index_updated: bool = False

    @property
    def published(self) -> bool:
        return self.outputs is not None and bool(self.outputs.published)

    def __str__(self) -> str:
        index = ""
        if self.index:
            index = ", index updated" if self.index_updated else ", index unchanged"
        if self.outputs is None or not self.outputs.published:
            return f"no output file written{index}"
        if self.outputs.unpublished:
            out, rest = (
                ", ".join("stdout" if p == STDOUT else p for p in paths)
                for paths in (self.outputs.published, self.outputs.unpublished)
            )
            return f"only {out} written, not {rest}{index}"
        return f"output written{index}"


@dataclass
class Run:
    """A run to make: the plan, its inputs, where it writes, and the index it consults
    (committed to unless ``check``)."""

    command: str
    plan: pipeline.Plan
    inputs: list[InputFile]
    targets: Targets = field(default_factory=Targets)
    index: IndexStore | None = None
    check: bool = False
    #: Where the per-record work runs (None: this machine, ``plan.jobs`` processes).
    executor: Executor | None = None
    #: The run's label in the index (None: when it ran, see ``run_label``).
    label: str | None = None


def execute(
    run: Run,
    left: Left | None = None,
    progress: pipeline.ProgressCallback | None = None,
) -> Report:
    """Make the run and return its report. ``left`` is kept up to date for the message
    of an error that stops it."""
    left = left if left is not None else Left(index=run.index is not None)
    targets, index = run.targets, run.index
    rejects: list[bytes] | None = [] if targets.rejects else None
    before = index.info()["articles"] if index is not None else 0
    local = LocalPool(run.plan.jobs) if run.executor is None else None
    with Outputs() as outputs, local if local is not None else contextlib.nullcontext():
        left.outputs = outputs
        out = outputs.open(targets.records) if targets.records is not None else None
        dups = outputs.open(targets.duplicates) if targets.duplicates else None
        rejects_out = outputs.open(targets.rejects) if targets.rejects else None
        explain = outputs.open(targets.explain) if targets.explain else None
        result = pipeline.run(
            run.plan,
            run.inputs,
            out,
            dups,
            index=index,
            collect_kept=index is not None and not run.check,
            rejects=rejects,
            progress=progress,
            executor=run.executor or local,
            prior=index.learned_evidence() if index is not None and run.plan.learn else None,
        )
        if rejects_out is not None:
            rejects_out.writelines(rejects or [])
        if explain is not None:
            explain.writelines(map(encode_object, result.stats.explained))
        outputs.publish()
    added = reused = 0
    phases = dict.fromkeys(pipeline.PHASES, 0.0) | result.phases
    if index is not None and not run.check:
        if progress is not None:
            progress("committing", result.stats)
        committing = time.perf_counter()
        added = index.accept(
            result.kept, run_label=run.label or run_label(), learned=result.evidence
        )
        phases["committing"] = time.perf_counter() - committing
        left.index_updated = True
        reused = index.accepted["id_reused"] if index.accepted is not None else 0
    if index is not None:
        for finding in result.stats.recurring:
            entry = finding.pop("indexed_entry")
            finding["indexed_source"] = index.article(entry)["source"]
    return build_report(
        result.stats,
        command=run.command,
        seconds=result.seconds + phases["committing"],
        settings=settings_of(run.plan),
        fingerprint=(
            Fingerprinter(run.plan.dedup).settings() if run.plan.dedup is not None else None
        ),
        index=(
            {
                "path": str(index.path),
                "articles_before": before,
                "articles_after": before + added,
                "ids_reused": reused,
            }
            if index is not None
            else None
        ),
        check=run.check,
        version=version("corpus-clean"),
        input_files=sum(1 for item in run.inputs if item.kind != "special"),
        outputs={
            name: {"path": path, "bytes": _size(path)}
            for name, path in vars(targets).items()
            if path is not None
        },
        phases=phases,
        engine=run.executor.figures() if run.executor is not None else None,
    )


def _size(path: str) -> int | None:
    """The bytes of a published output file; None for stdout, a device or a FIFO."""
    if path in (STDOUT, STDIN):
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def run_label() -> str:
    """The label of a run in the index: when it ran, in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
