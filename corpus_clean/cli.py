"""The command line: parse options, open streams, call the library, print the summary.

Stdout carries data only; everything for humans goes to one rich Console on stderr.
Exit codes: 0 success; 1 ``--check`` found duplicates of indexed articles; 2 any error
(bad usage, bad input, unusable rules or index); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, get_args

import click
from click.decorators import FC
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Table

from . import pipeline
from .dedup import Fingerprinter
from .driver import Left as _Left
from .driver import Run, Targets, execute, learn_rules
from .errors import CorpusCleanError, ExitCode
from .executors import Executor
from .executors.ray import RayExecutor
from .formats import is_parquet
from .io.codec import dump_json
from .io.inputs import STDIN, InputError, InputFile, resolve_inputs
from .io.sinks import STDOUT, OutputPathError, check_output, check_targets, write_text
from .options import (
    CONTAINMENT_MIN_RATIO,
    MEMORY_BUDGET,
    CleanOptions,
    DedupOptions,
    KeepPolicy,
    LearnOptions,
    ReadOptions,
    SplitOptions,
    default_jobs,
    detection_probability,
    lsh_bands,
)
from .report import (
    Report,
    build_report,
    markdown_failure,
    markdown_summary,
    recurring_lines,
    summary_rows,
)
from .shards import SHARD_BYTES, ShardOptions
from .stages import learn as learn_module
from .stages.clean import load_rules
from .stats import DUPLICATE_KINDS, Stats
from .storage.sqlite import IndexStore

console = Console(stderr=True)

#: The options' defaults, which options.py alone sets.
_READ_DEFAULTS = ReadOptions()
_DEDUP_DEFAULTS = DedupOptions()
_LEARN_DEFAULTS = LearnOptions()

#: Every option of every command can be set as CORPUS_CLEAN_<NAME>, NAME its parameter's
#: name in upper case (mostly the long flag: --index is INDEX_PATH, --rules RULE_FILES):
#: the command line wins over the environment, the environment over the default.
ENVIRONMENT = {"auto_envvar_prefix": "CORPUS_CLEAN"}

#: The MinHash seed is a 32-bit unsigned integer (numpy's RandomState refuses others).
SEED = click.IntRange(0, 2**32 - 1)


class Failure(click.ClickException):
    """An error the user can fix; the message says how. Exits with 2."""

    exit_code = ExitCode.ERROR


class _UnusableStepSummary(Failure):
    """GITHUB_STEP_SUMMARY names a file that cannot be written."""


def _paths_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("paths", nargs=-1, metavar="[PATH]...")(f)


def jobs_option(help_text: str) -> Callable[[FC], FC]:
    """``-j/--jobs``, said the same way by every command that has worker processes."""
    return click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        default=default_jobs(),
        show_default="all cores",
        help=help_text,
    )


def _options(*options: Callable[[FC], FC]) -> Callable[[FC], FC]:
    """Several options as one decorator, listed in ``--help`` in the order given."""

    def decorate(f: FC) -> FC:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


_text_field_option = click.option(
    "--text-field",
    default=_READ_DEFAULTS.text_field,
    show_default=True,
    metavar="KEY",
    help="JSON key holding the text of input records.",
)


_io_options = _options(
    click.option(
        "-o",
        "--output",
        metavar="FILE",
        help="Write records here (default: stdout; '-' is stdout). A file is replaced "
        "atomically when the run succeeds; a device or FIFO is written in place. A name "
        "ending in .gz or .zst is compressed, .parquet is Parquet (corpus-clean[parquet]).",
    ),
    _text_field_option,
    click.option(
        "--metadata-field",
        metavar="KEY",
        help="Put the fields corpus-clean adds (source, date, a title it found, dedup "
        "annotations) in this object (say 'metadata', as dolma does), not at the top.",
    ),
    click.option(
        "--skip-invalid",
        is_flag=True,
        help="Skip malformed JSONL lines (counted) instead of stopping at the first.",
    ),
    click.option(
        "--rejects", metavar="FILE", help="With --skip-invalid: save the skipped lines here."
    ),
    click.option("--report", metavar="FILE", help="Write the run's figures as JSON here."),
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help="No summary, progress or --check findings on stderr.",
    ),
    click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Also show the settings, the input and output files and the seconds by phase.",
    ),
    jobs_option("Worker processes for splitting, cleaning and fingerprinting."),
)


#: Suffixes of a size (powers of 1024).
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class _Size(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.2
    """A size in bytes: a number, or one with a k, M or G suffix (powers of 1024)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower().removesuffix("b")
        unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
        try:
            size = int(float(text[: len(text) - len(unit)]) * _SIZE_UNITS[unit])
        except ValueError:
            self.fail(f"{value!r} is not a size: give bytes, or say 64M, 256k, 1G", param, ctx)
        if size < 1:
            self.fail(f"{value!r}: a size must be at least one byte", param, ctx)
        return size


_engine_options = _options(
    click.option(
        "--engine",
        type=click.Choice(["local", "processes", "ray"]),
        default="local",
        show_default=True,
        help="Where the per-record work runs: this machine's pipeline (--jobs processes); "
        "'processes': the sharded run (tasks over shards of the input, intermediates "
        "in --work-dir) on --jobs local processes; 'ray': the sharded run as tasks on a "
        "running Ray cluster (pip install 'corpus-clean[ray]'). The same output either way.",
    ),
    click.option(
        "--ray-address",
        metavar="HOST:PORT",
        help="With --engine ray: the cluster to join (default: $RAY_ADDRESS, else the "
        "cluster running on this machine; none is ever started).",
    ),
    click.option(
        "--work-dir",
        metavar="DIR",
        help="With --engine processes or ray: keep the tasks' intermediates and completion "
        "markers here (default: a temporary folder); on a cluster of several machines, a "
        "folder every node sees. Emptied when the run succeeds.",
    ),
    click.option(
        "--resume",
        is_flag=True,
        help="With --work-dir: skip the tasks a killed run of the same command finished.",
    ),
    click.option(
        "--shard-size",
        type=_Size(),
        default=SHARD_BYTES,
        show_default=f"{SHARD_BYTES >> 20}M",
        help="With --engine processes or ray: bytes of input per shard (a task).",
    ),
    click.option(
        "--output-dir",
        metavar="DIR",
        help="With --engine processes or ray: write the records as numbered parts "
        "(part-00000.jsonl, ...) plus manifest.json (records, bytes and SHA-256 of each "
        "part) in DIR, published together when the run succeeds; instead of -o.",
    ),
)


def _clean_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--explain",
        metavar="FILE",
        help="Write, per record that lost anything, each removed line or tail and its rule "
        "(one JSON line per record).",
    )(f)
    f = click.option(
        "--no-glue-repair",
        is_flag=True,
        help="Leave glued sentences ('layout.At the meeting') as they are.",
    )(f)
    f = click.option(
        "--no-builtin-rules", is_flag=True, help="Use only the rules given with --rules."
    )(f)
    return click.option(
        "--rules",
        "rule_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="Add boilerplate rules from a TOML file (format: see README). Repeatable.",
    )(f)


def _learn_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = _learn_thresholds(f)
    return click.option(
        "--no-learn",
        is_flag=True,
        help="Do not learn boilerplate from the input (only the rules remove lines).",
    )(f)


_learn_thresholds = _options(
    click.option(
        "--learn-min-pages",
        type=click.IntRange(min=2),
        default=_LEARN_DEFAULTS.min_pages,
        show_default=True,
        metavar="N",
        help="A line (or closing sentence) on N different articles of a site is learned "
        "(copies of one article count once); it goes where it is not next to the article, "
        "or anywhere if it borders most articles it is on.",
    ),
    click.option(
        "--learn-min-sites",
        type=click.IntRange(min=2),
        default=_LEARN_DEFAULTS.min_sites,
        show_default=True,
        metavar="N",
        help="A line on N different sites is learned across the whole input; it goes "
        "beside other boilerplate, or anywhere unless it stands inside a text on most "
        "of its sites.",
    ),
)


def _learn_plan(kw: dict[str, Any]) -> LearnOptions | None:
    if kw.get("no_learn"):
        return None
    return replace(
        _LEARN_DEFAULTS,
        min_pages=kw["learn_min_pages"],
        min_sites=kw["learn_min_sites"],
        forget_runs=kw.get("learn_forget_runs", _LEARN_DEFAULTS.forget_runs),
    )


#: Told in --help of run and dedup, from the defaults of options.py.
_BANDS, _ROWS = _DEDUP_DEFAULTS.bands_rows
DEDUP_HELP = f"""Near-duplicates: MinHash (datasketch's affine32 permutations) over word
{_DEDUP_DEFAULTS.shingles.size}-gram shingles (character {_DEDUP_DEFAULTS.shingles.size}-grams
for Chinese), LSH with {_BANDS} bands of {_ROWS} rows at the defaults (--threshold
{_DEDUP_DEFAULTS.threshold}, --num-perm {_DEDUP_DEFAULTS.num_perm}):
{detection_probability(_DEDUP_DEFAULTS.threshold, _BANDS, _ROWS):.1%} of pairs with Jaccard
similarity {_DEDUP_DEFAULTS.threshold} become candidates,
{math.floor(detection_probability(0.9, _BANDS, _ROWS) * 1e4) / 100}% at 0.9. Every candidate
is verified with the exact Jaccard similarity of the two shingle sets before it counts as
a duplicate. Records are walked in --keep order; each is a duplicate of the kept record it
is most similar to, if any. With --containment ({_DEDUP_DEFAULTS.containment} by default),
each text is also indexed under its smallest shingle hashes
({_DEDUP_DEFAULTS.containment_keys} at the default): 95% of texts lying that much inside a
longer one, at size ratios down to {CONTAINMENT_MIN_RATIO}, become candidates; the longer
is kept.

Records wait until every one is seen: in memory up to --memory MB, then in temporary
files in $TMPDIR. An output line that is mostly its line in a plain (not compressed)
JSONL input file waits as a place in that file, read again at the end: such a file must
not change during the run (if it does, the run stops and writes nothing)."""


def _containment(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """0 (off) or a containment from 0.3: lower ones need ever more keys per text."""
    if 0 < value < 0.3:
        raise click.BadParameter("use 0 to switch containment off, or a value from 0.3 to 1")
    return value


def _signature_options(threshold_help: str, num_perm_help: str) -> list[Callable[[FC], FC]]:
    """``--threshold``, ``--num-perm`` and ``--seed``: what an index's signatures are
    made with, the same for every command that makes them."""
    return [
        click.option(
            "--threshold",
            type=click.FloatRange(0.05, 1.0),
            default=_DEDUP_DEFAULTS.threshold,
            show_default=True,
            help=threshold_help,
        ),
        click.option(
            "--num-perm",
            type=click.IntRange(16, 1024),
            default=_DEDUP_DEFAULTS.num_perm,
            show_default=True,
            help=num_perm_help,
        ),
        click.option(
            "--seed",
            type=SEED,
            default=_DEDUP_DEFAULTS.seed,
            show_default=True,
            help="MinHash seed.",
        ),
    ]


def _containment_option(help_text: str) -> Callable[[FC], FC]:
    return click.option(
        "--containment",
        type=click.FloatRange(0.0, 1.0),
        default=_DEDUP_DEFAULTS.containment,
        show_default=True,
        callback=_containment,
        help=help_text,
    )


_dedup_options = _options(
    *_signature_options(
        "Verified Jaccard similarity at which two articles are duplicates.",
        "MinHash permutations; bands and rows give >= 95% detection at the threshold.",
    ),
    click.option(
        "--keep",
        type=click.Choice(get_args(KeepPolicy)),
        default=_DEDUP_DEFAULTS.keep,
        show_default=True,
        help="Walk records in input order, longest text first, or earliest date first "
        "(undated last); each is kept unless similar to one kept before it.",
    ),
    click.option(
        "--memory",
        "memory_mb",
        type=click.IntRange(min=0),
        default=MEMORY_BUDGET >> 20,
        show_default=True,
        metavar="MB",
        envvar="CORPUS_CLEAN_MEMORY_MB",
        show_envvar=True,
        help="Memory for records and shingle sets waiting to be deduplicated, and for "
        "the batches learning's first pass keeps (each job keeps its share); the rest "
        "wait in temporary files in $TMPDIR.",
    ),
    click.option(
        "--duplicates",
        metavar="FILE",
        help="Write removed records here, with duplicate_of, similarity and how they "
        "matched (in the format the name says, as -o).",
    ),
    _containment_option(
        "A record at least this much inside a longer kept one (shared shingles over "
        "its own) is its duplicate, however short; 0 switches it off, else 0.3 to 1."
    ),
    click.option(
        "--cluster-fields",
        is_flag=True,
        help="Add cluster_id (the kept record's id) and cluster_size to kept records, "
        "to join them with --duplicates.",
    ),
    click.option(
        "--index",
        "index_path",
        metavar="PATH",
        help=(
            "SQLite index of articles accepted before: drop their duplicates, add the "
            "kept. Learning counts what earlier runs saw there too, and keeps what this "
            "run saw: a menu on one page of a site a night is learned from the second."
        ),
    ),
    click.option(
        "--check",
        is_flag=True,
        help="With --index: write no records and leave the index unchanged (only --report "
        "is written); name the input articles that recur in the index on stderr, and "
        "exit 1 if any do.",
    ),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version("corpus-clean"), prog_name="corpus-clean")
def cli() -> None:
    """Clean scraped news pages into a deduplicated JSONL corpus.

    A PATH is a page file (*.txt), a JSONL file (*.jsonl, *.ndjson, either .gz or .zst), a
    Parquet file (*.parquet, with corpus-clean[parquet]), a folder
    (read recursively, in sorted order; the files the command writes, FIFOs and devices are
    skipped), or '-' for JSONL on stdin (a FIFO or <(zcat x.jsonl.gz) is read as stdin is).
    Records go to stdout (or -o FILE); the summary goes to stderr.

    Exit codes: 0 success, 1 --check found duplicates of indexed articles, 2 error,
    130 interrupted (no output file written, index unchanged).

    Every option can also be set as CORPUS_CLEAN_<NAME> (CORPUS_CLEAN_THRESHOLD=0.9);
    the command line wins. Completion: eval "$(_CORPUS_CLEAN_COMPLETE=bash_source
    corpus-clean)".

    Example:

        corpus-clean run samples/ -o corpus.jsonl --duplicates dups.jsonl
    """


@cli.command(context_settings=ENVIRONMENT)
@_paths_argument
@_io_options
@_engine_options
@_clean_options
@_learn_options
@_dedup_options
@click.option(
    "--learn-forget-after",
    "learn_forget_runs",
    type=click.IntRange(min=0),
    default=_LEARN_DEFAULTS.forget_runs,
    show_default=True,
    metavar="RUNS",
    help="With --index: a line learning saw on one article only, and on none in the RUNS "
    "runs that learned since, is dropped from the index within RUNS more such runs (0: "
    "kept for ever; --no-learn and 'index add' runs do not count).",
)
def run(**kwargs: Any) -> None:
    """The whole job: read, split pages, clean, deduplicate, write.

    Cleaning learns each site's boilerplate from the input first (see clean --help).

    Example:

    \b
        corpus-clean run samples/ -o corpus.jsonl --duplicates removed.jsonl
        corpus-clean run scrape/ --index accepted.db --report report.json > new.jsonl
    """
    _execute("run", kwargs, split=True, clean=True, dedup=True)


@cli.command(context_settings=ENVIRONMENT)
@_paths_argument
@_io_options
@_engine_options
def split(**kwargs: Any) -> None:
    """Split raw pages into article records (JSONL records pass through).

    Example:

    \b
        corpus-clean split samples/ | jq -r .title
    """
    _execute("split", kwargs, split=True)


@cli.command(context_settings=ENVIRONMENT)
@_paths_argument
@_io_options
@_engine_options
@_clean_options
@_learn_options
def clean(**kwargs: Any) -> None:
    """Remove boilerplate and normalize the layout of each record's text.

    Besides the rules, each site's boilerplate is learned from the input first (a site is
    the host of a record's url field, or of metadata.url or meta.url, else the folder of
    its source; a learned line that the url's slug names is the page's own headline: it
    stays once); --no-learn: rules only.

    An article split from a page whose text is empty once cleaned is dropped (counted);
    records you give are always written.

    Example:

    \b
        corpus-clean split samples/ | corpus-clean clean --rules my-rules.toml
        corpus-clean split samples/ | corpus-clean clean --explain removed.jsonl
    """
    _execute("clean", kwargs, clean=True)


@cli.command(context_settings=ENVIRONMENT)
@_paths_argument
@_io_options
@_engine_options
@_dedup_options
def dedup(**kwargs: Any) -> None:
    """Remove exact and near-duplicate records.

    Example:

    \b
        corpus-clean split samples/ | corpus-clean clean | corpus-clean dedup --duplicates d.jsonl
    """
    _execute("dedup", kwargs, dedup=True)


for _command in (run, dedup):
    _command.help = f"{inspect.cleandoc(_command.help or '')}\n\n{DEDUP_HELP}"


def _execute(command: str, kw: dict[str, Any], **stages: bool) -> None:
    """Run a command; one that breaks says so in the CI step summary too."""
    try:
        _execute_run(command, kw, **stages)
    except _UnusableStepSummary:
        raise  # nowhere to say it
    except click.ClickException as err:
        _append_step_summary(markdown_failure(command, err.format_message()))
        raise


def _execute_run(
    command: str,
    kw: dict[str, Any],
    *,
    split: bool = False,
    clean: bool = False,
    dedup: bool = False,
) -> None:
    check = dedup and kw["check"]
    left = _Left(index=dedup and bool(kw["index_path"]))
    with _errors(left):
        paths = _input_paths(kw["paths"])
        if kw["rejects"] and not kw["skip_invalid"]:
            raise Failure("--rejects only makes sense with --skip-invalid")
        if kw["rejects"] and is_parquet(kw["rejects"]):
            raise Failure(
                "--rejects holds the skipped lines verbatim: name it *.jsonl (or .gz, .zst)"
            )
        if check and not kw["index_path"]:
            raise Failure("--check compares the input with an index: add --index PATH")
        _check_outputs(kw, check)
        if dedup:
            _check_band_layout(kw["threshold"], kw["num_perm"])
        writes = (
            kw["output"],
            kw.get("duplicates"),
            kw["rejects"],
            kw["report"],
            kw.get("explain"),
        )
        inputs = _resolve(paths, skip=[p for p in writes if p])
        plan = pipeline.Plan(
            read=ReadOptions(
                text_field=kw["text_field"],
                skip_invalid=kw["skip_invalid"],
                metadata_field=kw["metadata_field"],
            ),
            split=SplitOptions() if split else None,
            clean=CleanOptions(
                tuple(kw["rule_files"]),
                not kw["no_builtin_rules"],
                glue_repair=not kw["no_glue_repair"],
                explain=bool(kw["explain"]),
            )
            if clean
            else None,
            dedup=DedupOptions(
                kw["threshold"],
                kw["num_perm"],
                kw["seed"],
                kw["keep"],
                containment=kw["containment"],
                cluster_fields=kw["cluster_fields"],
            )
            if dedup
            else None,
            learn=_learn_plan(kw) if clean else None,
            jobs=kw["jobs"],
            memory=kw["memory_mb"] << 20 if dedup else MEMORY_BUDGET,
        )
        if kw["ray_address"] and kw["engine"] != "ray":
            raise Failure("--ray-address only makes sense with --engine ray")
        sharded = _shard_options(kw)
        if plan.clean is not None:
            load_rules(plan.clean)  # fail on a bad rules file before reading anything
        settings = Fingerprinter(plan.dedup).settings() if plan.dedup is not None else None
        index = (
            IndexStore.open(kw["index_path"], settings, create=not check, readonly=check)
            if dedup and kw["index_path"]
            else None
        )
        targets = (
            Targets()
            if check
            else Targets(
                None if kw["output_dir"] else kw["output"] or STDOUT,
                kw.get("duplicates"),
                kw["rejects"],
                kw.get("explain"),
            )
        )
        with contextlib.ExitStack() as stack:
            if index is not None:
                stack.enter_context(index)
            executor: Executor | None = (
                stack.enter_context(RayExecutor(kw["ray_address"]))
                if kw["engine"] == "ray"
                else None
            )
            progress = stack.enter_context(_progress(inputs, kw["quiet"], console))
            run = Run(
                command,
                plan,
                inputs,
                targets,
                index,
                check,
                executor,
                shards=sharded,
                engine=kw["engine"],
            )
            report = execute(run, left, progress)
        try:
            _finish(report, kw)
        except OSError as err:  # the report: everything else is out
            # A report bigger than a write buffer meets a full device in its write,
            # before the sink can name the file: name it here.
            raise Failure(
                f"{err.filename or kw['report']}: {err.strerror or err}: no report written, "
                f"but the run is done ({left}); nothing needs re-running"
            ) from err
        if not report.passed:
            sys.exit(ExitCode.DUPLICATES_FOUND)


def _shard_options(kw: dict[str, Any]) -> ShardOptions | None:
    """The sharded run's options (None for --engine local, which takes none of them)."""
    given = [
        flag
        for flag, value in (
            ("--work-dir", kw["work_dir"]),
            ("--resume", kw["resume"]),
            ("--output-dir", kw["output_dir"]),
        )
        if value
    ]
    if kw["engine"] == "local":
        if given:
            raise Failure(f"{given[0]} only makes sense with --engine processes or ray")
        return None
    if kw["resume"] and not kw["work_dir"]:
        raise Failure("--resume resumes from a --work-dir: pass the one the killed run had")
    if kw["output_dir"] and kw["output"]:
        raise Failure("-o and --output-dir both say where the records go: give one")
    return ShardOptions(kw["work_dir"], kw["resume"], kw["shard_size"], kw["output_dir"])


def _check_outputs(kw: dict[str, Any], check: bool) -> None:
    """Refuse outputs that cannot be written before anything is read: two options naming
    one file, a folder, a folder that is not there; and a bad GITHUB_STEP_SUMMARY."""
    written = {"--report": kw["report"]}
    if not check:
        written |= {
            "-o": None if kw.get("output_dir") else kw["output"] or STDOUT,
            "--duplicates": kw.get("duplicates"),
            "--rejects": kw["rejects"],
            "--explain": kw.get("explain"),
        }
    with _usage_errors():
        check_targets({**written, "--index": kw.get("index_path")})
        for path in written.values():
            if path is not None:
                check_output(path)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        try:
            check_output(summary)
        except OutputPathError as err:
            raise _UnusableStepSummary(
                f"GITHUB_STEP_SUMMARY: {err} (or unset GITHUB_STEP_SUMMARY)"
            ) from err


def _check_band_layout(threshold: float, num_perm: int) -> None:
    """Refuse, as a usage error, a threshold that the permutations cannot serve."""
    try:
        lsh_bands(threshold, num_perm)
    except ValueError as err:
        enough = next(n for n in range(num_perm, 1025) if _has_band_layout(threshold, n))
        raise click.UsageError(
            f"--threshold {threshold:g} with --num-perm {num_perm}: no LSH band layout of "
            f"{num_perm} permutations finds 95% of pairs at that similarity; use --num-perm "
            f"{enough} or more, or a higher --threshold"
        ) from err


def _has_band_layout(threshold: float, num_perm: int) -> bool:
    try:
        lsh_bands(threshold, num_perm)
    except ValueError:
        return False
    return True


def _resolve(paths: tuple[str, ...], skip: list[str] | None = None) -> list[InputFile]:
    with _usage_errors():
        return resolve_inputs(paths, skip=skip or [])


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """A path the command line names that cannot be used (missing, of no known kind, a
    folder as output, named twice) is a usage error; an error met in reading is not."""
    try:
        yield
    except (InputError, OutputPathError) as err:
        raise click.UsageError(str(err)) from err


def _finish(report: Report, kw: dict[str, Any]) -> None:
    """The report, the CI step summary and what the user reads, once the run's work is
    out: what --check found (also with -q? no: -q asks for silence, and the exit code and
    the report still tell), the table, with -v the settings, inputs and seconds by phase,
    and on a terminal the figures as bars."""
    if kw["report"]:
        write_text(kw["report"], dump_json(report))
    _append_step_summary(markdown_summary(report))
    if kw["quiet"]:
        return
    if report.recurring:
        for line in recurring_lines(report):
            _say(line)
        n = len(report.recurring)
        _say(f"{n:,} input article{'s' if n != 1 else ''} recur in the index")
    console.print(_table(f"corpus-clean {report['command']}", summary_rows(report)))
    if kw.get("verbose"):
        console.print(_table("settings", _settings_rows(report)))
    if console.is_terminal:
        _print_histograms(report)


def _append_step_summary(text: str) -> None:
    """Best effort, as GitHub treats the step summary: a failure is a warning."""
    if summary_path := os.environ.get("GITHUB_STEP_SUMMARY"):
        try:
            with open(summary_path, "a", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as err:
            _say(
                f"warning: GITHUB_STEP_SUMMARY {summary_path}: {err.strerror or err}; "
                "no summary appended"
            )


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in rows:
        table.add_row(label, value, style=None)
    return table


def _settings_rows(report: Report) -> list[tuple[str, str]]:
    """For -v: what the run was told (every option that changes its output), what it
    read, and where its time went."""
    rows = [("corpus-clean", str(report["version"]))]
    for stage, options in report["settings"].items():
        if options is not None:
            rows += [(f"{stage} {key}", str(value)) for key, value in options.items()]
    rows.append(("input files", f"{report['input']['files']:,}"))
    rows.append(("input bytes", f"{report['input']['bytes']:,}"))
    for name, output in report["outputs"].items():
        size = f"{output['bytes']:,} bytes" if output["bytes"] is not None else "-"
        rows.append((f"{name} {output['path']}", size))
    rows += [(f"{phase} s", f"{s:.3f}") for phase, s in report["phases"].items() if s]
    return rows


def _print_histograms(report: Report) -> None:
    """The similarity of removed records and the sizes of clusters, as bars."""
    figures = report["histograms"]
    similarity = [(f"{b['from']:.2f}-{b['to']:.2f}", b["removed"]) for b in figures["similarity"]]
    clusters = [(f"size {c['size']}", c["clusters"]) for c in figures["cluster_sizes"]]
    for title, bars in (("similarity of removed records", similarity), ("clusters", clusters)):
        shown = [(label, n) for label, n in bars if n]
        if not shown or (title == "clusters" and len(shown) == 1):
            continue  # nothing removed: no figure worth a look
        top = max(n for _, n in shown)
        table = Table(title=title, show_header=False, title_justify="left", box=None)
        table.add_column(style="bold")
        table.add_column(style="cyan")
        table.add_column(justify="right")
        for label, n in shown:
            table.add_row(label, "█" * max(1, round(HISTOGRAM_WIDTH * n / top)), f"{n:,}")
        console.print(table)


#: Characters of the longest bar in the end-of-run figures.
HISTOGRAM_WIDTH = 40


def _input_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    if sys.stdin is None and STDIN in paths:
        raise Failure("cannot read standard input: it is closed; give a PATH, or pipe JSONL in")
    if paths:
        return paths
    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("give a PATH (file or folder), or pipe JSONL in (or pass '-')")
    return (STDIN,)


#: Progress shows once a run has worked this long: short runs stay clean.
PROGRESS_DELAY = 1.0


@contextlib.contextmanager
def _progress(
    inputs: list[InputFile], quiet: bool, out: Console
) -> Iterator[pipeline.ProgressCallback | None]:
    """Progress on ``out`` (stderr), only when it is a terminal: see ``_Watch``."""
    if quiet or not out.is_terminal:
        yield None
        return
    sized = all(item.path != STDIN and os.path.isfile(item.path) for item in inputs)
    total = sum(os.path.getsize(item.path) for item in inputs) if sized else None
    watch = _Watch(out, total)
    try:
        yield watch
    finally:
        watch.stop()


class _Watch:
    """The phase a run is in, the records read, articles split and duplicates found so
    far, and the throughput; a bar when the input's size is known (not stdin). It shows
    once the run has worked ``PROGRESS_DELAY`` seconds, and goes when the run ends."""

    def __init__(self, out: Console, total: int | None) -> None:
        columns: list[str | ProgressColumn] = [TextColumn("[bold]{task.description:<14}")]
        if total is not None:
            columns += [BarColumn(bar_width=20), TaskProgressColumn()]
        columns.append(TextColumn("{task.fields[figures]}"))
        self.started = time.monotonic()
        self.display = Progress(*columns, console=out, transient=True)
        self.task = self.display.add_task("reading", total=total, figures="")
        self.phase = ""
        self.timer = threading.Timer(PROGRESS_DELAY, self.display.start)
        self.timer.daemon = True
        if PROGRESS_DELAY > 0:
            self.timer.start()
        else:
            self.display.start()

    def __call__(self, phase: str, stats: Stats) -> None:
        records = stats["records_read"] + stats["pages_read"]
        duplicates = sum(stats[f"duplicates_{kind}"] for kind in DUPLICATE_KINDS)
        elapsed = max(time.monotonic() - self.started, 1e-3)
        # Records per second while they are read; after, the time the run has taken.
        pace = f"{records / elapsed:,.0f} records/s" if phase == "reading" else f"{elapsed:.0f} s"
        figures = (
            f"{records:,} records read · {stats['articles_split']:,} articles · "
            f"{duplicates:,} duplicates · {pace}"
        )
        self.display.update(
            self.task,
            description=phase,
            completed=stats["bytes_read"],
            figures=figures,
            refresh=phase != self.phase,  # every phase shows, however short
        )
        self.phase = phase

    def stop(self) -> None:
        self.timer.cancel()
        if self.timer.is_alive():
            self.timer.join()
        self.display.stop()


@contextlib.contextmanager
def _errors(left: _Left) -> Iterator[None]:
    """Library errors become one-line messages; interrupts and closed pipes end quietly.
    Once outputs are out, every message says what was left behind (the index is never
    half changed: it commits in one transaction)."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    previous_sigint = signal.getsignal(signal.SIGINT)
    if previous_sigint is not signal.SIG_IGN:  # ignored in a background job: leave it so
        signal.signal(signal.SIGINT, _terminate)
    previous_hangup = signal.signal(signal.SIGHUP, _terminate)  # a closed terminal or ssh
    try:
        yield
    except CorpusCleanError as err:
        raise Failure(f"{err}{_after(left)}") from err
    except BrokenPipeError:
        # The reader (head, less) has gone: stop quietly, and keep Python from
        # complaining when it flushes stdout at exit.
        if sys.stdout is not None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitCode.OK)
    except OSError as err:  # a file we were told to read or write: say which and why
        raise Failure(f"{err.filename or 'output'}: {err.strerror or err}{_after(left)}") from err
    except BrokenProcessPool as err:
        raise Failure(
            f"a worker process died (killed, or out of memory?): the run stopped "
            f"({left}); run again, or with --jobs 1 to use a single process"
        ) from err
    except KeyboardInterrupt:
        _say(f"interrupted: {left}")
        sys.exit(ExitCode.INTERRUPTED)
    finally:
        if _finished_program_ignores_signals:
            previous = previous_sigint = previous_hangup = signal.SIG_IGN  # see main()
        signal.signal(signal.SIGTERM, previous)
        if previous_sigint is not None:
            signal.signal(signal.SIGINT, previous_sigint)
        signal.signal(signal.SIGHUP, previous_hangup)


def _say(message: str) -> None:
    """A one-line note on stderr: not wrapped, and paths in it are not read as markup."""
    console.print(message, style="yellow", markup=False, highlight=False, soft_wrap=True)


def _after(left: _Left) -> str:
    """What an error message adds once outputs are out."""
    return f" ({left})" if left.published else ""


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (a CI runner cancelling the step) and SIGHUP (a closed terminal or ssh
    session) unwind like Ctrl-C: nothing half-written.
    A signal that comes while the run already unwinds from one is ignored: a second
    Ctrl-C that broke off the cleanup left the worker processes, and the exit waiting for
    them, hung forever. (One that Python swallowed, raised in a fork hook or a finalizer,
    leaves nothing to unwind: the next is raised again.)"""
    if not _unwinding_from_interrupt():
        raise KeyboardInterrupt


def _unwinding_from_interrupt() -> bool:
    """Whether the code running now handles or cleans up after a KeyboardInterrupt."""
    handled = sys.exc_info()[1]
    while handled is not None:
        if isinstance(handled, KeyboardInterrupt):
            return True
        handled = handled.__context__
    return False


@cli.command(context_settings=ENVIRONMENT)
@_paths_argument
@click.option("-o", "--output", metavar="FILE", help="Write the rules here (default: stdout).")
@_text_field_option
@_clean_options
@_learn_thresholds
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@jobs_option("Worker processes for the fit pass.")
def learn(**kw: Any) -> None:
    """Learn each site's boilerplate from the input and write it as a rules file.

    Pages are split and cleaned by the rules as `run` does; what `run` would then learn
    is written in the rules format (match = "folded", one rule per site and context),
    each pattern after a comment with its counts. Review it, edit it, and pin it with
    --rules FILE --no-learn.

    Example:

    \b
        corpus-clean learn scrape/ -o site-rules.toml
        corpus-clean run scrape/ --rules site-rules.toml --no-learn -o corpus.jsonl
    """
    with _errors(_Left(index=False)):
        if kw["output"]:
            _check_outputs({"output": kw["output"], "report": None, "rejects": None}, check=False)
        skip = [kw["output"]] if kw["output"] else []
        inputs = _resolve(_input_paths(kw["paths"]), skip=skip)
        options = _learn_plan(kw)
        clean = CleanOptions(tuple(kw["rule_files"]), not kw["no_builtin_rules"])
        load_rules(clean)  # fail on a bad rules file before reading anything
        plan = pipeline.Plan(
            read=ReadOptions(text_field=kw["text_field"]),
            split=SplitOptions(),
            clean=clean,
            learn=options,
            jobs=kw["jobs"],
        )
        learned, texts, stats = learn_rules(plan, inputs)
        assert options is not None
        header = (
            f"Boilerplate learned by corpus-clean {version('corpus-clean')} from: "
            f"{' '.join(kw['paths']) or '<stdin>'}\n"
            f"(--learn-min-pages {options.min_pages} --learn-min-sites {options.min_sites}).\n"
            "Review and edit it, then pin it: corpus-clean run ... --rules FILE --no-learn\n"
            "Counts: pages = different articles (copies count once), sites = different sites."
        )
        rules = learn_module.rules_toml(learned, texts, stats.removed_by_pattern, header)
        write_text(kw["output"] or STDOUT, rules)
    if not kw["quiet"]:
        _print_learned(stats)


def _print_learned(stats: Any) -> None:
    table = Table(title="corpus-clean learn", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in summary_rows(build_report(stats, command="learn", seconds=0.0))[:-1]:
        if label != "records written":  # learn writes rules, not records
            table.add_row(label, value)
    console.print(table)


# ---- index maintenance -------------------------------------------------------------


@cli.group()
def index() -> None:
    """Inspect, seed and check a persistent index of accepted articles.

    Example:

    \b
        corpus-clean index add accepted.db corpus.jsonl
        corpus-clean index info accepted.db
    """


@index.command("info", context_settings=ENVIRONMENT)
@click.argument("path")
def index_info(path: str) -> None:
    """Articles, runs, settings, learned evidence and size of an index (JSON on stdout).

    Does not wait for a run holding the index: it shows the last committed state. Says
    on stderr when it rolled back the journal of a run killed while committing.

    Example:

    \b
        corpus-clean index info accepted.db | jq .articles
    """
    # A look at the figures does not queue behind a run: SQLite's own locks give it the
    # last committed state (see IndexStore.open).
    with _errors(_Left(index=True)):
        with IndexStore.open(path, None, create=False, readonly=True, take_turn=False) as store:
            _say_rolled_back(store)
            info = store.info()
        write_text(STDOUT, dump_json(info))


def _say_rolled_back(store: IndexStore) -> None:
    if store.rolled_back:
        console.print(
            f"[yellow]{store.path}-journal, left by a run killed while committing, was rolled "
            "back: the index is as its last finished run left it[/]"
        )


@index.command("add", context_settings=ENVIRONMENT)
@click.argument("path")
@click.argument("files", nargs=-1, required=True)
@_text_field_option
@_options(
    *_signature_options(
        "The threshold the index will be used with (it sets the LSH bands).",
        "MinHash permutations.",
    ),
    _containment_option("The --containment the index will be used with (0: no containment keys)."),
)
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@jobs_option("Worker processes for reading and fingerprinting.")
def index_add(
    path: str,
    files: tuple[str, ...],
    text_field: str,
    threshold: float,
    num_perm: int,
    seed: int,
    containment: float,
    quiet: bool,
    jobs: int,
) -> None:
    """Seed an index from an existing clean corpus of JSONL records; writes no records.

    Every record is added as it is (no cleaning, no deduplication among them). Page
    files are refused: run them through 'corpus-clean run ... --index PATH'.

    Example:

    \b
        corpus-clean index add accepted.db corpus-2024.jsonl corpus-2025.jsonl.gz
    """
    left = _Left(index=True)
    with _errors(left):
        _check_band_layout(threshold, num_perm)
        inputs = _resolve(_input_paths(files))
        if pages := [i.path for i in inputs if i.kind == "page"]:
            raise Failure(
                f"{pages[0]} is a page file: index add takes clean JSONL records; run "
                f"'corpus-clean run ... --index {path}' to split and clean pages first"
            )
        options = DedupOptions(threshold, num_perm, seed, containment=containment)
        plan = pipeline.Plan(
            read=ReadOptions(text_field=text_field), dedup=options, keep_all=True, jobs=jobs
        )
        with IndexStore.open(path, Fingerprinter(options).settings()) as store:
            report = execute(Run("index add", plan, inputs, Targets(), store), left)
        if not quiet:
            after = report["index"]["articles_after"]
            added = after - report["index"]["articles_before"]
            console.print(f"added {added:,} articles to {path} ({after:,} in all)")


@index.command("verify", context_settings=ENVIRONMENT)
@click.argument("path")
def index_verify(path: str) -> None:
    """Check an index's integrity; exit 2 and list the problems if it is damaged.

    Example:

    \b
        corpus-clean index verify accepted.db && echo healthy
    """
    with (
        _errors(_Left(index=True)),
        IndexStore.open(path, None, create=False, readonly=True) as store,
    ):
        _say_rolled_back(store)
        problems = store.verify()
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/]")
        raise Failure(
            f"{path}: {len(problems)} problem(s); rebuild it with 'corpus-clean index add'"
        )
    console.print(f"{path}: ok")


#: Whether SIGINT and SIGTERM are ignored once a command's work is over (in the program;
#: a test that calls the CLI in-process gets its own handlers back).
_finished_program_ignores_signals = False


def main() -> None:
    """The program. Until a command starts its work, a signal ends it quietly with 130
    (``__main__`` sets that up); once the work is over, including any message about it,
    a late signal has nothing left to stop: it is ignored, so it cannot turn a finished
    run into a traceback, a death by signal or an exit code that says "interrupted"."""
    global _finished_program_ignores_signals
    _finished_program_ignores_signals = True
    cli(prog_name="corpus-clean")
