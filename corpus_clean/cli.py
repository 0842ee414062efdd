"""The command line: parse options, open streams, call the library, print the summary.

Stdout carries data only; everything for humans goes to one rich Console on stderr.
Exit codes: 0 success; 1 ``--check`` found duplicates of indexed articles; 2 any error
(bad usage, bad input, unusable rules or index); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from . import learn as learn_module
from . import pipeline
from .clean import RulesError, load_rules
from .dedup import Fingerprinter
from .index import IndexStore, IndexStoreError
from .io import (
    MEMORY_BUDGET,
    STDIN,
    InputChangedError,
    InputError,
    InvalidRecordError,
    atomic_output,
    dump_json,
    resolve_inputs,
    write_text,
)
from .options import (
    CleanOptions,
    DedupOptions,
    LearnOptions,
    ReadOptions,
    SplitOptions,
    default_jobs,
)
from .report import build_report, markdown_summary, summary_rows

console = Console(stderr=True)

EXIT_DUPLICATES_FOUND = 1
EXIT_ERROR = 2


class Failure(click.ClickException):
    """An error the user can fix; the message says how. Exits with 2."""

    exit_code = EXIT_ERROR


def _paths_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("paths", nargs=-1, metavar="[PATH]...")(f)


def _io_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "-o",
            "--output",
            metavar="FILE",
            help="Write records here (default: stdout; '-' is stdout).",
        ),
        click.option(
            "--text-field",
            default="text",
            show_default=True,
            metavar="KEY",
            help="JSON key holding the text of input records.",
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
        click.option("-q", "--quiet", is_flag=True, help="No summary or progress on stderr."),
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            default=default_jobs(),
            show_default="all cores",
            help="Worker processes for splitting, cleaning and fingerprinting.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _clean_options(f: Callable[..., Any]) -> Callable[..., Any]:
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


_LEARN_DEFAULTS = LearnOptions()


def _learn_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = _learn_thresholds(f)
    return click.option(
        "--no-learn",
        is_flag=True,
        help="Do not learn boilerplate from the input (only the rules remove lines).",
    )(f)


def _learn_thresholds(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
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
            "beside other boilerplate, or anywhere if it seldom stands inside a text.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _learn_plan(kw: dict[str, Any]) -> LearnOptions | None:
    if kw.get("no_learn"):
        return None
    return replace(
        _LEARN_DEFAULTS, min_pages=kw["learn_min_pages"], min_sites=kw["learn_min_sites"]
    )


#: Told in --help of run and dedup; a test checks it against options.lsh_bands.
DEDUP_HELP = f"""Near-duplicates: MinHash (datasketch's affine32 permutations) over word
5-gram shingles (character 5-grams for Chinese), LSH with 18 bands of 7 rows at the
defaults (--threshold 0.8, --num-perm 128): 98.6% of pairs with Jaccard similarity 0.8
become candidates, 99.99% at 0.9. Every candidate is verified with the exact Jaccard
similarity of the two shingle sets before it counts as a duplicate.

Records wait until every one is seen: in memory up to {MEMORY_BUDGET >> 20} MB, then in
temporary files. An output line that is mostly its line in a JSONL input file waits as a
place in that file, read again at the end: such a file must not change during the run
(if it does, the run stops and writes nothing)."""


def _dedup_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--threshold",
            type=click.FloatRange(0.05, 1.0),
            default=0.8,
            show_default=True,
            help="Verified Jaccard similarity at which two articles are duplicates.",
        ),
        click.option(
            "--num-perm",
            type=click.IntRange(16, 1024),
            default=128,
            show_default=True,
            help="MinHash permutations; bands and rows give >= 95% detection at the threshold.",
        ),
        click.option("--seed", type=int, default=1, show_default=True, help="MinHash seed."),
        click.option(
            "--keep",
            type=click.Choice(["first", "longest"]),
            default="first",
            show_default=True,
            help="Which record of a duplicate cluster to keep.",
        ),
        click.option(
            "--duplicates",
            metavar="FILE",
            help="Write removed records here, with duplicate_of, similarity and how they matched.",
        ),
        click.option(
            "--index",
            "index_path",
            metavar="PATH",
            help="SQLite index of articles accepted before: drop their duplicates, add the kept.",
        ),
        click.option(
            "--check",
            is_flag=True,
            help="With --index: write no records and leave the index unchanged (only --report "
            "is written); exit 1 if indexed articles recur.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version("corpus-clean"), prog_name="corpus-clean")
def cli() -> None:
    """Clean scraped news pages into a deduplicated JSONL corpus.

    A PATH is a page file (*.txt), a JSONL file (*.jsonl, *.ndjson, either .gz), a folder
    (read recursively, in sorted order; the files the command writes are skipped), or '-'
    for JSONL on stdin. Records go to stdout (or -o FILE); the summary goes to stderr.

    Exit codes: 0 success, 1 --check found duplicates of indexed articles, 2 error,
    130 interrupted (no output file written, index unchanged).

    Example:

        corpus-clean run samples/ -o corpus.jsonl --duplicates dups.jsonl
    """


@cli.command()
@_paths_argument
@_io_options
@_clean_options
@_learn_options
@_dedup_options
def run(**kwargs: Any) -> None:
    """The whole job: read, split pages, clean, deduplicate, write.

    Cleaning learns each site's boilerplate from the input first (see clean --help).

    Example:

    \b
        corpus-clean run samples/ -o corpus.jsonl --duplicates removed.jsonl
        corpus-clean run scrape/ --index accepted.db --report report.json > new.jsonl
    """
    _execute("run", kwargs, split=True, clean=True, dedup=True)


@cli.command()
@_paths_argument
@_io_options
def split(**kwargs: Any) -> None:
    """Split raw pages into article records (JSONL records pass through).

    Example:

    \b
        corpus-clean split samples/ | jq -r .title
    """
    _execute("split", kwargs, split=True)


@cli.command()
@_paths_argument
@_io_options
@_clean_options
@_learn_options
def clean(**kwargs: Any) -> None:
    """Remove boilerplate and normalize the layout of each record's text.

    Besides the rules, each site's boilerplate is learned from the input first (a site is
    the host of a record's url field, else the folder of its source); --no-learn: rules
    only.

    Example:

    \b
        corpus-clean split samples/ | corpus-clean clean --rules my-rules.toml
    """
    _execute("clean", kwargs, clean=True)


@cli.command()
@_paths_argument
@_io_options
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


def _execute(
    command: str,
    kw: dict[str, Any],
    *,
    split: bool = False,
    clean: bool = False,
    dedup: bool = False,
) -> None:
    with _errors(kw.get("index_path")):
        writes = (kw["output"], kw.get("duplicates"), kw["rejects"], kw["report"])
        inputs = resolve_inputs(_input_paths(kw["paths"]), skip=[p for p in writes if p])
        plan = pipeline.Plan(
            read=ReadOptions(text_field=kw["text_field"], skip_invalid=kw["skip_invalid"]),
            split=SplitOptions() if split else None,
            clean=CleanOptions(tuple(kw["rule_files"]), not kw["no_builtin_rules"])
            if clean
            else None,
            dedup=DedupOptions(kw["threshold"], kw["num_perm"], kw["seed"], kw["keep"])
            if dedup
            else None,
            learn=_learn_plan(kw) if clean else None,
            jobs=kw["jobs"],
        )
        if kw["rejects"] and not kw["skip_invalid"]:
            raise Failure("--rejects only makes sense with --skip-invalid")
        check = dedup and kw["check"]
        if check and not kw["index_path"]:
            raise Failure("--check compares the input with an index: add --index PATH")
        if plan.clean is not None:
            load_rules(plan.clean)  # fail on a bad rules file before reading anything
        settings = Fingerprinter(plan.dedup).settings() if plan.dedup is not None else None
        index = (
            IndexStore.open(kw["index_path"], settings, create=not check, readonly=check)
            if dedup and kw["index_path"]
            else None
        )
        with contextlib.ExitStack() as stack:
            if index is not None:
                stack.enter_context(index)
            report = _run_plan(command, plan, inputs, kw, index, check, settings)
        try:
            _finish(report, kw)
        except KeyboardInterrupt as interrupt:
            if check:
                raise
            updated = ", index updated" if index is not None else ""
            raise _Interrupted(f"output written{updated}") from interrupt
        if check and report["duplicates"]["index"]:
            sys.exit(EXIT_DUPLICATES_FOUND)


def _run_plan(
    command: str,
    plan: pipeline.Plan,
    inputs: list[Any],
    kw: dict[str, Any],
    index: IndexStore | None,
    check: bool,
    settings: dict[str, Any] | None,
) -> dict[str, Any]:
    """Run with outputs published atomically, then (only then) commit the index."""
    rejects: list[bytes] | None = [] if kw["rejects"] else None
    before = index.info()["articles"] if index is not None else 0
    with _progress(inputs, kw["quiet"]) as progress, contextlib.ExitStack() as outputs:
        out = None if check else outputs.enter_context(atomic_output(kw["output"]))
        dups_path = kw.get("duplicates")
        dups = outputs.enter_context(atomic_output(dups_path)) if dups_path and not check else None
        rejects_out = (
            outputs.enter_context(atomic_output(kw["rejects"]))
            if kw["rejects"] and not check
            else None
        )
        result = pipeline.run(
            plan,
            inputs,
            out,
            dups,
            index=index,
            collect_kept=index is not None and not check,
            rejects=rejects,
            progress=progress,
        )
        if rejects_out is not None:
            rejects_out.writelines(rejects or [])
    added = 0
    if index is not None and not check:
        try:
            added = index.accept(result.kept, run_label=_run_label())
        except KeyboardInterrupt as interrupt:  # the outputs are out; the index rolled back
            raise _Interrupted("output written, index unchanged") from interrupt
    index_figures = (
        {"path": str(kw["index_path"]), "articles_before": before, "articles_after": before + added}
        if index is not None
        else None
    )
    return build_report(
        result.stats,
        command=command,
        seconds=result.seconds,
        settings=settings,
        index=index_figures,
    )


def _finish(report: dict[str, Any], kw: dict[str, Any]) -> None:
    if kw["report"]:
        write_text(kw["report"], dump_json(report))
    if summary_path := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary_path, "a", encoding="utf-8") as handle:
            handle.write(markdown_summary(report))
    if not kw["quiet"]:
        table = Table(
            title=f"corpus-clean {report['command']}", show_header=False, title_justify="left"
        )
        table.add_column(style="bold")
        table.add_column(justify="right")
        for label, value in summary_rows(report):
            table.add_row(label, value)
        console.print(table)


def _input_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    if paths:
        return paths
    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("give a PATH (file or folder), or pipe JSONL in (or pass '-')")
    return (STDIN,)


def _run_label() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@contextlib.contextmanager
def _progress(inputs: list[Any], quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr, only when stderr is a terminal and the input is big."""
    total = sum(os.path.getsize(i.path) for i in inputs if i.path != STDIN)
    if quiet or not console.is_terminal or total < 32 << 20:
        yield None
        return
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("reading", total=total)
        yield lambda done: bar.update(task, completed=done)


@contextlib.contextmanager
def _errors(index_path: str | None = None) -> Iterator[None]:
    """Library errors become one-line messages; interrupts and closed pipes end quietly,
    saying what was left behind (the index at ``index_path``, if any, is never half
    changed: it commits in one transaction)."""
    index_left = ", index unchanged" if index_path else ""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    except InputError as err:
        raise click.UsageError(str(err)) from err
    except (InvalidRecordError, InputChangedError, RulesError, IndexStoreError) as err:
        raise Failure(str(err)) from err
    except BrokenPipeError:
        # The reader (head, less) has gone: stop quietly, and keep Python from
        # complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except OSError as err:  # a file we were told to read or write: say which and why
        raise Failure(f"{err.filename or 'output'}: {err.strerror or err}") from err
    except BrokenProcessPool as err:
        raise Failure(
            f"a worker process died (killed, or out of memory?): the run stopped{index_left}; "
            "run again, or with --jobs 1 to use a single process"
        ) from err
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, _Interrupted):
            left = str(interrupt)
        else:
            left = f"no output file written{index_left}"
        console.print(f"[yellow]interrupted: {left}[/]")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Interrupted(KeyboardInterrupt):
    """An interrupt that came after the outputs were published; says what is left."""


def _terminate(signum: int, frame: Any) -> NoReturn:
    """SIGTERM (a CI runner cancelling the step) unwinds like Ctrl-C: nothing half-written."""
    raise KeyboardInterrupt


@cli.command()
@_paths_argument
@click.option("-o", "--output", metavar="FILE", help="Write the rules here (default: stdout).")
@click.option(
    "--text-field",
    default="text",
    show_default=True,
    metavar="KEY",
    help="JSON key holding the text of input records.",
)
@_clean_options
@_learn_thresholds
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=default_jobs(),
    show_default="all cores",
    help="Worker processes for the fit pass.",
)
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
    with _errors():
        skip = [kw["output"]] if kw["output"] else []
        inputs = resolve_inputs(_input_paths(kw["paths"]), skip=skip)
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
        learned, texts, stats = pipeline.learn_rules(plan, inputs)
        assert options is not None
        header = (
            f"Boilerplate learned by corpus-clean {version('corpus-clean')} from: "
            f"{' '.join(kw['paths']) or '<stdin>'}\n"
            f"(--learn-min-pages {options.min_pages} --learn-min-sites {options.min_sites}).\n"
            "Review and edit it, then pin it: corpus-clean run ... --rules FILE --no-learn\n"
            "Counts: pages = different articles (copies count once), sites = different sites."
        )
        rules = learn_module.rules_toml(learned, texts, stats.removed_by_pattern, header)
        if kw["output"] and kw["output"] != "-":
            write_text(kw["output"], rules)
        else:
            click.echo(rules, nl=False)
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


@index.command("info")
@click.argument("path")
def index_info(path: str) -> None:
    """Articles, runs, settings and size of an index (JSON on stdout).

    Example:

    \b
        corpus-clean index info accepted.db | jq .articles
    """
    with _errors(path), IndexStore.open(path, None, create=False, readonly=True) as store:
        click.echo(dump_json(store.info()), nl=False)


@index.command("add")
@click.argument("path")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--text-field",
    default="text",
    show_default=True,
    metavar="KEY",
    help="JSON key holding the text of input records.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.05, 1.0),
    default=0.8,
    show_default=True,
    help="The threshold the index will be used with (it sets the LSH bands).",
)
@click.option(
    "--num-perm",
    type=click.IntRange(16, 1024),
    default=128,
    show_default=True,
    help="MinHash permutations.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="MinHash seed.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def index_add(
    path: str,
    files: tuple[str, ...],
    text_field: str,
    threshold: float,
    num_perm: int,
    seed: int,
    quiet: bool,
) -> None:
    """Seed an index from an existing clean corpus; writes no records.

    Every record is added as it is (no cleaning, no deduplication among them).

    Example:

    \b
        corpus-clean index add accepted.db corpus-2024.jsonl corpus-2025.jsonl.gz
    """
    with _errors(path):
        inputs = resolve_inputs(files)
        options = DedupOptions(threshold, num_perm, seed)
        fingerprinter = Fingerprinter(options)
        with IndexStore.open(path, fingerprinter.settings()) as store:
            added = pipeline.index_corpus(
                store, inputs, ReadOptions(text_field=text_field), fingerprinter, _run_label()
            )
            if not quiet:
                console.print(
                    f"added {added:,} articles to {path} ({store.info()['articles']:,} in all)"
                )


@index.command("verify")
@click.argument("path")
def index_verify(path: str) -> None:
    """Check an index's integrity; exit 2 and list the problems if it is damaged.

    Example:

    \b
        corpus-clean index verify accepted.db && echo healthy
    """
    with _errors(path), IndexStore.open(path, None, create=False, readonly=True) as store:
        problems = store.verify()
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/]")
        raise Failure(
            f"{path}: {len(problems)} problem(s); rebuild it with 'corpus-clean index add'"
        )
    console.print(f"{path}: ok")


def main() -> None:
    cli(prog_name="corpus-clean")
