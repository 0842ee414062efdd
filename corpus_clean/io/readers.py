"""Bytes in, records out: page files, JSONL (``-`` is stdin), ``.gz``, ``.zst`` and
Parquet (through ``formats``), read as raw units in the main process and parsed into
records in the workers."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

from ..errors import CorpusCleanError
from ..formats import is_compressed, open_compressed, parquet_runs
from ..options import ReadOptions
from ..record import Record
from ..stats import Stats
from .codec import TOO_DEEP, decoded, load_json
from .inputs import STDIN, FileStamp, InputError, InputFile, names_a_stream


class InvalidRecordError(CorpusCleanError):
    """A JSONL line that is not a valid record. ``str()`` is ``FILE:LINE: what is wrong``."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem

    def __reduce__(self) -> tuple[type[InvalidRecordError], tuple[str, str]]:
        # Raised in worker processes: the pool pickles it back, and the default
        # (one argument, the message) could not rebuild it, which hung the pool.
        return type(self), (self.where, self.problem)


#: A page with more of its bytes not UTF-8 than this is binary, not text in some other
#: encoding (a Latin-1 page has a few percent: its accented letters).
BINARY_INVALID_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class RawUnit:
    """Bytes that become records: a whole page file, or whole JSONL lines of one input.

    Reading units is cheap I/O done in the main process; parsing them (``parse_unit``)
    is CPU work the pipeline hands to worker processes.
    """

    kind: Literal["page", "jsonl"]
    source: str
    #: Number of the unit's first line in its input (0 for a page).
    line_no: int
    data: bytes
    #: Where ``data`` starts in a JSONL file that can be read again (not stdin, not
    #: compressed, not Parquet).
    offset: int | None = None
    stamp: FileStamp | None = None
    #: The file to read again (``source`` is how records name it).
    path: str = ""


#: Bytes of JSONL lines a unit gathers, by default.
CHUNK_BYTES = 1 << 20


def read_units(
    files: Iterable[InputFile], stats: Stats, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[RawUnit]:
    """The raw units of every input, lazily, in input order: a unit per page file, and
    JSONL in runs of whole lines of about ``chunk_bytes`` (one line per unit when it is
    longer), so the main process never looks at a line on its own."""
    for item in files:
        if item.kind == "special":
            stats.add("special_files_skipped")
            continue
        if item.kind == "page":
            with open(item.path, "rb") as handle:
                data = handle.read()
            stats.add("pages_read")
            stats.add("bytes_read", len(data))
            yield RawUnit("page", item.name or item.source, 0, data)
            continue
        source = item.name or ("<stdin>" if item.path == STDIN else item.source)
        if item.kind == "parquet":
            # One JSON line per row, so that FILE:LINE names the row.
            row = 1
            for lines in parquet_runs(item.path):
                stats.add("bytes_read", len(lines))
                yield RawUnit("jsonl", source, row, lines, path=item.path)
                row += lines.count(b"\n")
            continue
        line_no, offset = 1, 0
        try:
            with _open_binary(item.path) as stream:
                info = (
                    None
                    if names_a_stream(item.path) or is_compressed(item.path)
                    else os.fstat(stream.fileno())
                )
                # A FIFO or device named on its own cannot be read again either.
                stamp = (
                    FileStamp.of_info(info)
                    if info is not None and stat.S_ISREG(info.st_mode)
                    else None
                )
                plain = stamp is not None
                for lines in line_runs(stream, chunk_bytes):
                    stats.add("bytes_read", len(lines))
                    yield RawUnit(
                        "jsonl", source, line_no, lines, offset if plain else None, stamp, item.path
                    )
                    line_no += lines.count(b"\n")
                    offset += len(lines)
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            # Not a gzip file, or cut short: name the input (the error itself names nothing).
            raise InputError(f"{item.path}: cannot decompress ({err})") from err


def line_runs(stream: IO[bytes], size: int) -> Iterator[bytes]:
    """The stream in pieces that end at a line end (the last piece may not), each about
    ``size`` bytes. ``read1`` hands on what a pipe has now rather than wait for more."""
    pending = b""
    while block := stream.read1(size):  # type: ignore[attr-defined]
        pending += block
        if len(pending) < size:
            continue
        end = pending.rfind(b"\n") + 1
        if end:
            yield pending[:end]
            pending = pending[end:]
    if pending:
        yield pending


def parse_unit(
    unit: RawUnit,
    options: ReadOptions,
    stats: Stats,
    rejects: list[bytes] | None = None,
    origins: list[tuple[bytes, int | None]] | None = None,
) -> Iterator[Record]:
    """The records in a raw unit, lazily (blank JSONL lines are skipped). A malformed
    JSONL line skipped by ``options.skip_invalid`` is counted, and appended verbatim to
    ``rejects`` if given; otherwise it raises ``InvalidRecordError`` naming ``FILE:LINE``.

    ``origins`` gets, for each record, its line and where the line starts in its file
    (None if the file cannot be read again, or the line has no newline after it)."""
    if unit.kind == "page":
        text, invalid = decoded(unit.data)
        if b"\0" in unit.data or invalid > BINARY_INVALID_SHARE * len(unit.data):
            # As grep's "binary file": its "articles" would be garbage.
            stats.add("binary_pages_skipped")
            return
        if invalid:
            stats.add("invalid_utf8_bytes", invalid)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if origins is not None:
            origins.append((b"", None))
        yield Record(id=unit.source, text=text, source=unit.source, is_page=True)
        return
    lines = unit.data.split(b"\n")
    start = unit.offset or 0
    for k, line in enumerate(lines):
        line_start, start = start, start + len(line) + 1
        if not line.strip():
            continue
        line_no = unit.line_no + k
        try:
            record = parse_record(line, stats, options, source=unit.source, line_no=line_no)
        except InvalidRecordError:
            if not options.skip_invalid:
                raise
            stats.add("invalid_lines_skipped")
            if rejects is not None:
                rejects.append(line + b"\n")
            continue
        stats.add("records_read")
        if origins is not None:
            # The last piece has no newline after it.
            rereadable = unit.offset is not None and k < len(lines) - 1
            origins.append((line, line_start if rereadable else None))
        yield record


def read_records(
    files: Iterable[InputFile],
    options: ReadOptions,
    stats: Stats,
    rejects: list[bytes] | None = None,
) -> Iterator[Record]:
    """Every record of every input, lazily, in input order (see ``parse_unit``)."""
    for unit in read_units(files, stats):
        yield from parse_unit(unit, options, stats, rejects)


def _open_binary(path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    if path == STDIN:
        return contextlib.nullcontext(sys.stdin.buffer)
    if is_compressed(path):
        return open_compressed(path)
    return open(path, "rb")


def parse_record(
    line: bytes, stats: Stats, options: ReadOptions, *, source: str, line_no: int
) -> Record:
    """One JSONL line as a record; raises ``InvalidRecordError`` naming ``source:line``."""
    where = f"{source}:{line_no}"
    try:
        obj = load_json(line, stats)
    except json.JSONDecodeError as err:
        raise InvalidRecordError(
            # json's messages may end in "at" ("Invalid control character at").
            where,
            f"invalid JSON ({err.msg.removesuffix(' at')} at column {err.colno}); "
            "each line must hold one JSON object (use --skip-invalid to skip such lines)",
        ) from err
    except (ValueError, RecursionError) as err:
        # NaN / Infinity (which would make the output invalid JSON too), integers of
        # thousands of digits, nesting too deep. How deep json gets before its
        # RecursionError depends on the process, so that is told as the limit it broke.
        problem = TOO_DEEP if isinstance(err, RecursionError) else str(err)
        raise InvalidRecordError(
            where, f"invalid JSON ({problem}) (use --skip-invalid to skip such lines)"
        ) from err
    if not isinstance(obj, dict):
        raise InvalidRecordError(
            where,
            f"expected a JSON object, got {_json_kind(obj)} "
            "(use --skip-invalid to skip such lines)",
        )
    try:
        return Record.from_dict(
            obj,
            default_id=where,
            source=source,
            text_field=options.text_field,
            metadata_field=options.metadata_field,
        )
    except ValueError as err:
        raise InvalidRecordError(where, str(err)) from err


def _json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type (null, not NoneType)."""
    if isinstance(value, bool):
        return "boolean"
    kinds = {type(None): "null", list: "array", str: "string", int: "number", float: "number"}
    return kinds.get(type(value), type(value).__name__)
