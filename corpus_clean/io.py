"""Bytes in, records out, and back: page files, folders, JSONL (``-`` is stdin), ``.gz``,
``.zst`` and Parquet (through ``formats``).

The only module that touches the JSON codec and the file system for data (output files
are published by ``sinks``).
"""

from __future__ import annotations

import array
import contextlib
import errno
import functools
import gzip
import json
import math
import os
import queue
import re
import stat
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from . import _fast
from .errors import CorpusCleanError
from .formats import (
    JSONL_SUFFIXES,
    PARQUET_SUFFIX,
    FormatError,
    is_compressed,
    open_compressed,
    parquet_runs,
    require_pyarrow,
)
from .options import MEMORY_BUDGET, ReadOptions
from .record import Record
from .stats import Stats

STDIN = "-"
PAGE_SUFFIXES = (".txt",)

#: What ``surrogateescape`` makes of bytes that are not UTF-8.
_LONE_SURROGATES = re.compile("[\udc80-\udcff]")
#: Any surrogate: in decoded JSON, one that a ``\udXXX`` escape left without its pair.
_SURROGATES = re.compile("[\ud800-\udfff]")
#: A JSON escape of a surrogate, paired or not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class InputError(CorpusCleanError):
    """A path that cannot be read as input: missing, empty of matches, or of unknown kind."""


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


@dataclass(frozen=True)
class InputFile:
    """One file to read, with the name records will carry as their ``source``.

    ``special`` is a FIFO, socket or device met in a folder: skipped and counted, as
    ``grep -r`` does, since opening one could wait forever."""

    path: str
    kind: Literal["page", "jsonl", "parquet", "special"]

    @property
    def source(self) -> str:
        """The path as records name it: bytes of the name that are not UTF-8 (which the
        OS hands over as lone surrogates) become U+FFFD, so the output stays UTF-8."""
        return self.path if self.path.isascii() else _LONE_SURROGATES.sub("\ufffd", self.path)

    #: The name its records carry when it is not the path (stdin spooled to a file).
    name: str | None = None


def _kind_of(name: str) -> Literal["page", "jsonl", "parquet"] | None:
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIX):
        return "parquet"
    if name.endswith(PAGE_SUFFIXES):
        return "page"
    return None


#: Names of a stream the shell hands over: ``/dev/stdin``, and ``<(zcat x.gz)``'s ``/dev/fd/63``.
_STREAM_NAMES = re.compile(r"/dev/stdin|/dev/fd/\d+|/proc/self/fd/\d+")


def _names_a_stream(path: str) -> bool:
    """Whether ``path`` is read like stdin, once and in order: it cannot be read again."""
    return path == STDIN or _STREAM_NAMES.fullmatch(path) is not None


def resolve_inputs(paths: Iterable[str], *, skip: Iterable[str] = ()) -> list[InputFile]:
    """Expand the command-line paths into files, folders recursively and in sorted order.

    Files in ``skip`` (those the run itself writes) are left out of folders, so a rerun
    with its output inside an input folder does not read its own earlier output; named
    on their own, they are read. A FIFO or character device named on its own (or
    ``/dev/stdin``, ``/dev/fd/N``) is read as a stream, JSONL unless its name says
    otherwise; met in a folder, it is skipped (see ``InputFile``). Raises ``InputError``
    before anything is read, so a typo never costs a half run.
    """
    skipped = [Path(p) for p in skip if p != STDIN and os.path.isfile(p)]
    files: list[InputFile] = []
    for raw in paths:
        if raw == STDIN:
            files.append(InputFile(STDIN, "jsonl"))
            continue
        try:
            mode = os.stat(raw).st_mode
        except FileNotFoundError:
            raise InputError(f"{raw}: no such file or folder") from None
        except OSError as err:
            raise InputError(f"{raw}: {err.strerror}") from err
        if stat.S_ISDIR(mode):
            files.extend(_folder_inputs(raw, skipped))
        elif _names_a_stream(raw) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            files.append(InputFile(raw, _kind_of(raw) or "jsonl"))
        elif stat.S_ISREG(mode) and (kind := _kind_of(os.path.basename(raw))) is not None:
            files.append(InputFile(raw, kind))
        else:
            raise InputError(
                f"{raw}: unknown kind of file; name raw pages *.txt and records "
                "*.jsonl or *.ndjson (plain, .gz or .zst) or *.parquet, or pipe JSONL in "
                "with '-'"
            )
    if any(item.kind == "parquet" for item in files):
        try:
            require_pyarrow()
        except FormatError as err:
            raise InputError(str(err)) from None
    return files


def _folder_inputs(folder: str, skipped: list[Path]) -> list[InputFile]:
    found: list[InputFile] = []
    for rel, special in sorted(_walk(folder)):
        file = os.path.join(folder, rel)
        kind = _kind_of(file)
        if kind is None or _is_one_of(file, skipped):
            continue
        found.append(InputFile(file, "special" if special else kind))
    if all(item.kind == "special" for item in found):
        raise InputError(
            f"{folder}: folder holds no *.txt pages nor *.jsonl / *.ndjson records "
            "(plain, .gz or .zst) nor *.parquet"
        )
    return found


def _is_one_of(path: str, files: list[Path]) -> bool:
    """Whether ``path`` is one of ``files``, however the folders on the way are spelled."""
    name = os.path.basename(path)
    return any(name == file.name and os.path.samefile(path, file) for file in files)


def _walk(root: str) -> Iterator[tuple[str, bool]]:
    """Each file under root as (relative POSIX path, whether it is a FIFO, socket or
    device), as ``os.walk`` finds them: links to folders are not followed, unreadable
    folders are passed over. Sorted by the caller."""
    folders = [""]
    while folders:
        folder = folders.pop()
        try:
            scan = os.scandir(os.path.join(root, folder))
        except OSError:
            continue
        with scan:
            for entry in scan:
                rel = folder + entry.name
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if not is_dir:
                    yield rel, _is_special(entry)
                elif not entry.is_symlink():
                    folders.append(rel + "/")


def _is_special(entry: os.DirEntry[str]) -> bool:
    """Whether a folder entry that is no folder is a FIFO, socket or device (or a link to
    one). Costs no system call for a plain file: the folder listing tells its type."""
    if entry.is_file():
        return False
    try:
        entry.stat()
    except OSError:
        return False  # a broken link: opening it will say what is wrong
    return True


def decode(data: bytes, stats: Stats) -> str:
    """UTF-8 text from bytes: BOM dropped, invalid bytes replaced by U+FFFD and counted."""
    text, invalid = _decoded(data)
    if invalid:
        stats.add("invalid_utf8_bytes", invalid)
    return text


def _decoded(data: bytes) -> tuple[str, int]:
    """``decode``'s text, and how many bytes were not UTF-8."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), 0
    except UnicodeDecodeError:
        text, invalid = _LONE_SURROGATES.subn("\ufffd", data.decode("utf-8", "surrogateescape"))
        return text.removeprefix("\ufeff"), invalid


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


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What tells a file apart from what it was when the run read it."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    #: Changes with every write too, and cannot be set back as mtime can (``touch -d``).
    ctime_ns: int

    @classmethod
    def of(cls, fd: int) -> FileStamp:
        return cls.of_info(os.fstat(fd))

    @classmethod
    def of_info(cls, info: os.stat_result) -> FileStamp:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@dataclass(frozen=True)
class InputLines:
    """Output lines that are mostly their input line as it stands (often all of it; or
    all but a field the output adds at the end): the run reads that much again from the
    input file at the end instead of carrying the whole line there. Among a batch's
    lines, ``None`` stands for each of these, in order."""

    path: str
    stamp: FileStamp
    offsets: array.array[int]  # where each input line starts in the file
    lengths: array.array[int]  # how much of it the output line begins with
    tails: list[bytes]  # what the output line goes on with


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
            yield RawUnit("page", item.source, 0, data)
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
                    if _names_a_stream(item.path) or is_compressed(item.path)
                    else os.fstat(stream.fileno())
                )
                # A FIFO or device named on its own cannot be read again either.
                stamp = (
                    FileStamp.of_info(info)
                    if info is not None and stat.S_ISREG(info.st_mode)
                    else None
                )
                plain = stamp is not None
                for lines in _line_runs(stream, chunk_bytes):
                    stats.add("bytes_read", len(lines))
                    yield RawUnit(
                        "jsonl", source, line_no, lines, offset if plain else None, stamp, item.path
                    )
                    line_no += lines.count(b"\n")
                    offset += len(lines)
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            # Not a gzip file, or cut short: name the input (the error itself names nothing).
            raise InputError(f"{item.path}: cannot decompress ({err})") from err


def _line_runs(stream: IO[bytes], size: int) -> Iterator[bytes]:
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
        text, invalid = _decoded(unit.data)
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
        obj = _load_json(line, stats)
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
        problem = _TOO_DEEP if isinstance(err, RecursionError) else str(err)
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


def _load_json(line: bytes, stats: Stats) -> Any:
    """The JSON value of a line, as ``json.loads`` gives it (and with its errors).

    orjson reads a typical line several times faster. It refuses what json is lenient
    about (invalid UTF-8, a BOM, lone surrogates) and reads an integer too big for 64
    bits as a float, so those lines go to json, which decides them as before. A lone
    surrogate (half of an escaped pair) becomes U+FFFD, counted: strict JSON readers
    (jq) refuse the line otherwise.
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _has_float_beyond(value, _INT64_LIMIT):
            return value
    value = _DECODER.decode(decode(line, stats))
    if _has_float_beyond(value, math.inf):
        raise ValueError("a number too large for a 64-bit float")
    if _SURROGATE_ESCAPE.search(line):
        value, replaced = _without_lone_surrogates(value)
        stats.add("lone_surrogates_replaced", replaced)
    return value


def _without_lone_surrogates(value: Any) -> tuple[Any, int]:
    """``value`` with every surrogate in its strings, keys included, replaced by U+FFFD
    (in place), and how many there were. An explicit stack, as ``_has_float_beyond``."""
    if isinstance(value, str):
        return _SURROGATES.subn("\ufffd", value)
    replaced = 0
    stack = [value] if isinstance(value, (dict, list)) else []
    while stack:
        container = stack.pop()
        if isinstance(container, dict):
            items = list(container.items())
            container.clear()
            for key, item in items:
                key, n = _SURROGATES.subn("\ufffd", key)
                replaced += n
                if isinstance(item, str):
                    item, n = _SURROGATES.subn("\ufffd", item)
                    replaced += n
                elif isinstance(item, (dict, list)):
                    stack.append(item)
                container[key] = item
        else:
            for i, item in enumerate(container):
                if isinstance(item, str):
                    container[i], n = _SURROGATES.subn("\ufffd", item)
                    replaced += n
                elif isinstance(item, (dict, list)):
                    stack.append(item)
    return value, replaced


_INT64_LIMIT = float(1 << 63)


#: Types of JSON values that hold no number.
_NUMBERLESS = frozenset((str, type(None), bool))
#: Deepest nesting of arrays and objects a line may hold. json and orjson read about a
#: thousand levels, but json's reading and writing of them count against the recursion
#: limit, which a worker process has less of left: below this, every process reads and
#: writes them alike.
MAX_NESTING = 800
_TOO_DEEP = f"arrays and objects nested deeper than {MAX_NESTING} levels"


def _has_float_beyond(value: Any, limit: float) -> bool:
    """Whether a float at least ``limit`` in size (or NaN) is anywhere in ``value``.

    Raises ``ValueError`` if arrays and objects nest deeper than ``MAX_NESTING``. An
    explicit stack, not recursion: how deep Python may recurse depends on the process.
    """
    if isinstance(value, dict):
        # Typical records hold strings only: one set operation in C settles those.
        if _NUMBERLESS.issuperset(map(type, value.values())):
            return False
        stack = [iter(value.values())]
    elif isinstance(value, list):
        stack = [iter(value)]
    else:
        return isinstance(value, float) and not abs(value) < limit
    while stack:
        for item in stack[-1]:
            if isinstance(item, float):
                if not abs(item) < limit:
                    return True
            elif isinstance(item, (dict, list)):
                if len(stack) >= MAX_NESTING:
                    raise ValueError(_TOO_DEEP)
                stack.append(iter(item.values() if isinstance(item, dict) else item))
                break
        else:
            stack.pop()
    return False


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


#: Built once: json.loads and json.dumps with options build a new one on every call,
#: which costs more than decoding or encoding a typical record.
_DECODER = json.JSONDecoder(parse_constant=_not_json)
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def _json_bytes(value: Any) -> bytes:
    """JSON as UTF-8, no ASCII escaping. A lone surrogate (read from a JSON ``\\udXXX``
    escape) can only stand inside a JSON string, where ``backslashreplace`` writes it
    back as that same escape."""
    return _ENCODER.encode(value).encode("utf-8", "backslashreplace")


def encode(
    record: Record, extra: dict[str, Any] | None = None, metadata_field: str | None = None
) -> bytes:
    """One JSONL line for a record: UTF-8, keys in schema order, no ASCII escaping
    (``metadata_field``: see ``Record.to_dict``).

    Written by ``_fast.encode_object`` (the JSON codec's job, without its extra str), or
    by the codec itself where that declines (a lone surrogate)."""
    return _json_line(record.to_dict(extra, metadata_field))


def encode_object(obj: dict[str, Any]) -> bytes:
    """Any JSON object as one JSONL line, spelled as records are (``--explain`` entries)."""
    return _json_line(obj)


def _json_line(obj: dict[str, Any]) -> bytes:
    """``obj`` as one JSONL line, in the codec's spelling (see ``_json_bytes``)."""
    line = _fast.encode_object(obj, _json_bytes)
    return line if line is not None else _json_bytes(obj) + b"\n"


def add_fields(line: bytes, fields: dict[str, Any], metadata_field: str | None = None) -> bytes:
    """An encoded record line with ``fields`` appended, exactly as ``encode(record, fields,
    metadata_field)`` would write it: saves decoding a spooled line just to annotate it
    (but for ``metadata_field``, whose object is within the line)."""
    if metadata_field is not None:
        obj = json.loads(line)
        obj[metadata_field] = {**obj.get(metadata_field, {}), **fields}
        return _json_line(obj)
    for key in _json_keys(tuple(fields)):
        if key in line:
            # The record already has such a key (say, a duplicates file fed back in):
            # overwrite it in place, as encode() does.
            obj = json.loads(line)
            obj.update(fields)
            return _json_line(obj)
    extra = _json_line(fields)[1:-2]
    return line[: line.rindex(b"}")] + b", " + extra + b"}\n"


@functools.cache
def _json_keys(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(_json_bytes(key) for key in keys)


def dump_json(obj: Any) -> str:
    """Human-readable JSON for reports (stable key order as given)."""
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


class BlockWriter:
    """Gathers a stream's small writes into blocks, and writes the blocks from a thread
    of its own: a line at a time through an 8 KB buffer costs a system call every few
    lines, and once the kernel holds as much unwritten data as it allows, every write
    waits for the disk while the lines to come could be in the making.

    Use it as a context manager: leaving the block normally writes out what is left and
    waits for it. An error in writing (a full disk, a closed pipe) is raised by the next
    ``write`` or on leaving; leaving on an error drops what is not yet written.
    """

    def __init__(self, stream: IO[bytes], size: int = 1 << 20, depth: int = 4) -> None:
        self._stream = stream
        self._size = size
        self._pending = bytearray()
        self._blocks: queue.Queue[bytearray | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._dropped = False
        self._thread = threading.Thread(target=self._drain, name="corpus-clean-writer", daemon=True)
        self._thread.start()

    def __enter__(self) -> BlockWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self._drop()
            return
        if self._pending:
            self._hand_over()
        self._blocks.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= self._size:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._error is not None:
            raise self._error
        self._blocks.put(self._pending)
        self._pending = bytearray()

    def _drain(self) -> None:
        while (block := self._blocks.get()) is not None:
            if self._error is None and not self._dropped:
                try:
                    write_all(self._stream, block)
                except BaseException as err:  # handed to the writing thread
                    self._error = err

    def _drop(self) -> None:
        """Stop without waiting: the thread may be stuck writing to a stalled pipe."""
        self._dropped = True
        with contextlib.suppress(queue.Empty):
            while True:
                self._blocks.get_nowait()
        self._blocks.put(None)


def write_all(stream: IO[bytes], data: bytes | bytearray) -> None:
    """Write all of ``data``: a big write to a pipe whose reader has gone can come back
    short without an error (``BrokenPipeError`` comes with the next write)."""
    view = memoryview(data)
    while view:
        view = view[stream.write(view) :]


class MemoryBudget:
    """Bytes the stores of one run may still keep in memory, first come, first served;
    what does not fit goes to temporary files. Shared, so that a run whose records are
    read back from its input leaves the room to its shingle sets."""

    def __init__(self, size: int = MEMORY_BUDGET) -> None:
        self.room = size

    def take(self, size: int) -> bool:
        if size > self.room:
            return False
        self.room -= size
        return True


class TemporaryFileError(OSError):
    """A temporary file of records or shingle sets waiting for dedup failed. Its
    ``filename`` and ``strerror`` name the folder and what to do (``TMPDIR``), so it
    reads right wherever an OSError is told as ``FILENAME: STRERROR``."""

    @classmethod
    def of(cls, err: OSError) -> TemporaryFileError:
        full = err.errno in (errno.ENOSPC, errno.EDQUOT)
        hint = "a folder with more room" if full else "a folder this run can write to"
        return cls(
            err.errno,
            f"{err.strerror or err}; point TMPDIR at {hint}",
            f"temporary files in $TMPDIR ({tempfile.gettempdir()})",
        )


def temporary_file(prefix: str) -> IO[bytes]:
    """A nameless temporary file in $TMPDIR (gone when closed, or when the run dies)."""
    with temporary_errors():
        return tempfile.TemporaryFile(prefix=prefix)


@contextlib.contextmanager
def temporary_errors() -> Iterator[None]:
    """An OSError inside, from a file of $TMPDIR, becomes a ``TemporaryFileError``."""
    try:
        yield
    except TemporaryFileError:
        raise
    except OSError as err:
        raise TemporaryFileError.of(err) from err


def close_temporary_file(file: IO[bytes]) -> None:
    """Close a temporary file that holds nothing still wanted: what it fails to write
    out as it closes (a full disk) no longer matters, and must not hide the error the
    run is stopping for."""
    with contextlib.suppress(OSError):
        file.close()


#: Bytes a Spool gathers before writing to disk, and reads at a time.
SPOOL_CHUNK = 4 << 20


class Spool:
    """Encoded items parked while a stage that must see everything first makes up its
    mind; read back once, in the order they were appended.

    The first items stay in memory as they are, as far as the ``memory`` budget goes:
    writing them to a file costs more than the rest of a typical run. The rest gather
    into chunks of a few megabytes for a temporary file: one write call per item would
    cost more than the copying. An item may also be ``None``, standing for the next of
    the ``InputLines`` given with it, which is read back from its input file.
    """

    def __init__(self, memory: MemoryBudget | None = None, chunk: int = SPOOL_CHUNK) -> None:
        self._held: list[bytes | None] = []
        # Lines to read back (see InputLines), and the file of each run of them as
        # (number of the first, path, stamp).
        self._reread_offsets = array.array("q")
        self._reread_lengths = array.array("q")
        self._reread_tails: list[bytes] = []
        self._reread_files: list[tuple[int, str, FileStamp]] = []
        self._memory = memory if memory is not None else MemoryBudget()
        self._file: IO[bytes] | None = None
        self._chunk = chunk
        self._pending = bytearray()
        self.count = 0

    def append(self, data: bytes) -> None:
        self.extend((data,))

    def extend(self, items: Sequence[bytes | None], reread: InputLines | None = None) -> None:
        """Park a batch of items: in memory while the whole batch fits, else on disk
        (and every batch after it, so memory always holds the first items)."""
        if reread is not None and len(reread.offsets):
            file = (reread.path, reread.stamp)
            if not self._reread_files or self._reread_files[-1][1:] != file:
                self._reread_files.append((len(self._reread_offsets), *file))
            self._reread_offsets.extend(reread.offsets)
            self._reread_lengths.extend(reread.lengths)
            self._reread_tails.extend(reread.tails)
        self.count += len(items)
        size = sum(len(item) if item is not None else _REREAD_COST for item in items)
        if self._file is None and self._memory.take(size):
            self._held.extend(items)
            return
        if self._file is None:
            self._file = temporary_file("corpus-clean-spool-")
        pending = self._pending
        for item in items:
            if item is None:
                pending += _REREAD_MARK
                continue
            pending += len(item).to_bytes(4, "little")
            pending += item
        if len(pending) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        assert self._file is not None
        try:
            self._file.write(self._pending)
        except OSError as err:
            raise TemporaryFileError.of(err) from err
        self._pending.clear()

    def read(self) -> Iterator[bytes]:
        reread = (self._reread_offsets, self._reread_lengths, self._reread_tails)
        with _LineReader(*reread, self._reread_files) as lines:
            for item in self._held:
                yield lines.next() if item is None else item
            if self._file is None:
                return
            self._flush()
            try:
                self._file.flush()
                self._file.seek(0)
            except OSError as err:
                raise TemporaryFileError.of(err) from err
            buffer, start = b"", 0
            for _ in range(self.count - len(self._held)):
                if len(buffer) - start < 4:
                    buffer, start = buffer[start:] + self._read(max(self._chunk, 4)), 0
                if buffer[start : start + 4] == _REREAD_MARK:
                    yield lines.next()
                    start += 4
                    continue
                end = start + 4 + int.from_bytes(buffer[start : start + 4], "little")
                if end > len(buffer):
                    rest = self._read(max(self._chunk, end - len(buffer)))
                    buffer, end, start = buffer[start:] + rest, end - start, 0
                yield buffer[start + 4 : end]
                start = end

    def _read(self, size: int) -> bytes:
        assert self._file is not None
        try:
            return self._file.read(size)
        except OSError as err:  # an I/O error of the disk under $TMPDIR
            raise TemporaryFileError.of(err) from err

    def close(self) -> None:
        self._held.clear()
        if self._file is not None:
            close_temporary_file(self._file)


#: Stands on disk for a line to read back (no item is 4 GiB long).
_REREAD_MARK = b"\xff\xff\xff\xff"
#: Bytes of memory a line to read back is counted as: its place in two lists and two
#: arrays (tails are shared between lines).
_REREAD_COST = 32


class InputChangedError(CorpusCleanError):
    """An input file changed while the run still had to read lines back from it."""


class _LineReader:
    """Reads output lines back from their input files, in order, each file opened once
    and checked, when opened and again once its last line is read, to be the file the
    run read: a change while its lines are read back would go out unseen otherwise."""

    def __init__(
        self,
        offsets: array.array[int],
        lengths: array.array[int],
        tails: list[bytes],
        files: list[tuple[int, str, FileStamp]],
    ) -> None:
        self._offsets, self._lengths, self._tails, self._files = offsets, lengths, tails, files
        self._done = 0  # lines read so far
        self._next_file = 0  # in files
        self._handle: IO[bytes] | None = None
        self._reading: tuple[str, FileStamp] | None = None  # the open file's path and stamp

    def __enter__(self) -> _LineReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._check()
        finally:
            if self._handle is not None:
                self._handle.close()

    def next(self) -> bytes:
        n = self._done
        self._done += 1
        if self._next_file < len(self._files) and self._files[self._next_file][0] == n:
            self._open(*self._files[self._next_file][1:])
            self._next_file += 1
        handle = self._handle
        assert handle is not None
        offset = self._offsets[n]
        if handle.tell() != offset:
            handle.seek(offset)
        return handle.read(self._lengths[n]) + self._tails[n]

    def _open(self, path: str, stamp: FileStamp) -> None:
        if self._handle is not None:
            self._check()
            self._handle.close()
        self._handle = open(path, "rb", buffering=1 << 20)  # noqa: SIM115
        self._reading = (path, stamp)
        self._check()

    def _check(self) -> None:
        """Raise ``InputChangedError`` if the open file is not as the run first read it."""
        if self._handle is None or self._reading is None:
            return
        path, stamp = self._reading
        if FileStamp.of(self._handle.fileno()) != stamp:
            raise InputChangedError(
                f"{path}: changed while this run read it; run again on a copy that stays put"
            )
