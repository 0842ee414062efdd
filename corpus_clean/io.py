"""Bytes in, records out, and back: page files, folders, JSONL (``-`` is stdin), ``.gz``.

The only module that touches the JSON codec and the file system for data. Output files
are written atomically, so a failed or interrupted run never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import re
import stat
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from .options import ReadOptions
from .record import Record
from .stats import Stats

STDIN = "-"
PAGE_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")

_LONE_SURROGATES = re.compile("[\udc80-\udcff]")


class InputError(Exception):
    """A path that cannot be read as input: missing, empty of matches, or of unknown kind."""


class InvalidRecordError(Exception):
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
    """One file to read, with the name records will carry as their ``source``."""

    path: str
    kind: Literal["page", "jsonl"]


def _kind_of(name: str) -> Literal["page", "jsonl"] | None:
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PAGE_SUFFIXES):
        return "page"
    return None


def resolve_inputs(paths: Iterable[str], *, skip: Iterable[str] = ()) -> list[InputFile]:
    """Expand the command-line paths into files, folders recursively and in sorted order.

    Files in ``skip`` (those the run itself writes) are left out of folders, so a rerun
    with its output inside an input folder does not read its own earlier output; named
    on their own, they are read. Raises ``InputError`` before anything is read, so a typo
    never costs a half run.
    """
    skipped = [Path(p) for p in skip if p != STDIN and os.path.isfile(p)]
    files: list[InputFile] = []
    for raw in paths:
        if raw == STDIN:
            files.append(InputFile(STDIN, "jsonl"))
            continue
        path = Path(raw)
        if path.is_dir():
            found = [
                InputFile(file, kind)
                for file in (os.path.join(raw, rel) for rel in sorted(_walk(path)))
                if (kind := _kind_of(file)) is not None and not _is_one_of(file, skipped)
            ]
            if not found:
                raise InputError(
                    f"{raw}: folder holds no *.txt pages nor *.jsonl / *.ndjson records "
                    "(plain or .gz)"
                )
            files.extend(found)
        elif path.is_file():
            kind = _kind_of(path.name)
            if kind is None:
                raise InputError(
                    f"{raw}: unknown kind of file; name raw pages *.txt and records "
                    "*.jsonl or *.ndjson (plain or .gz), or pipe JSONL in with '-'"
                )
            files.append(InputFile(raw, kind))
        else:
            raise InputError(f"{raw}: no such file or folder")
    return files


def _is_one_of(path: str, files: list[Path]) -> bool:
    """Whether ``path`` is one of ``files``, however the folders on the way are spelled."""
    name = os.path.basename(path)
    return any(name == file.name and os.path.samefile(path, file) for file in files)


def _walk(root: Path) -> Iterator[str]:
    """Relative paths of the files under root, as POSIX strings (sorted by the caller)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            yield Path(dirpath, name).relative_to(root).as_posix()


def decode(data: bytes, stats: Stats) -> str:
    """UTF-8 text from bytes: BOM dropped, invalid bytes replaced by U+FFFD and counted."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
        stats.add("invalid_utf8_bytes", len(_LONE_SURROGATES.findall(text)))
        text = _LONE_SURROGATES.sub("\ufffd", text)
    return text.removeprefix("\ufeff")


@dataclass(frozen=True, slots=True)
class RawUnit:
    """Bytes that become one record: a whole page file or one JSONL line.

    Reading units is cheap I/O done in the main process; parsing them (``parse_unit``)
    is CPU work the pipeline hands to worker processes.
    """

    kind: Literal["page", "jsonl"]
    source: str
    line_no: int
    data: bytes


def read_units(files: Iterable[InputFile], stats: Stats) -> Iterator[RawUnit]:
    """The raw units of every input, lazily, in input order (blank JSONL lines skipped)."""
    for item in files:
        if item.kind == "page":
            with open(item.path, "rb") as handle:
                data = handle.read()
            stats.add("pages_read")
            stats.add("bytes_read", len(data))
            yield RawUnit("page", item.path, 0, data)
            continue
        source = "<stdin>" if item.path == STDIN else item.path
        try:
            with _open_binary(item.path) as stream:
                for line_no, line in enumerate(stream, start=1):
                    stats.add("bytes_read", len(line))
                    if line.strip():
                        yield RawUnit("jsonl", source, line_no, line)
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            # Not a gzip file, or cut short: name the input (the error itself names nothing).
            raise InputError(f"{item.path}: cannot decompress ({err})") from err


def parse_unit(
    unit: RawUnit, options: ReadOptions, stats: Stats, rejects: list[bytes] | None = None
) -> Record | None:
    """The record in a raw unit; None for a malformed JSONL line skipped by
    ``options.skip_invalid`` (counted, and appended verbatim to ``rejects`` if given).

    Otherwise a malformed line raises ``InvalidRecordError`` naming ``FILE:LINE``.
    """
    if unit.kind == "page":
        text = decode(unit.data, stats).replace("\r\n", "\n").replace("\r", "\n")
        return Record(id=unit.source, text=text, source=unit.source, is_page=True)
    try:
        record = parse_record(
            unit.data, stats, options, source=unit.source, line_no=unit.line_no
        )
    except InvalidRecordError:
        if not options.skip_invalid:
            raise
        stats.add("invalid_lines_skipped")
        if rejects is not None:
            line = unit.data
            rejects.append(line if line.endswith(b"\n") else line + b"\n")
        return None
    stats.add("records_read")
    return record


def read_records(
    files: Iterable[InputFile],
    options: ReadOptions,
    stats: Stats,
    rejects: list[bytes] | None = None,
) -> Iterator[Record]:
    """Every record of every input, lazily, in input order (see ``parse_unit``)."""
    for unit in read_units(files, stats):
        record = parse_unit(unit, options, stats, rejects)
        if record is not None:
            yield record


def _open_binary(path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    if path == STDIN:
        return contextlib.nullcontext(sys.stdin.buffer)
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def parse_record(
    line: bytes, stats: Stats, options: ReadOptions, *, source: str, line_no: int
) -> Record:
    """One JSONL line as a record; raises ``InvalidRecordError`` naming ``source:line``."""
    where = f"{source}:{line_no}"
    try:
        obj = _DECODER.decode(decode(line, stats))
    except json.JSONDecodeError as err:
        raise InvalidRecordError(
            where, f"invalid JSON ({err.msg} at column {err.colno}); "
            "each line must hold one JSON object (use --skip-invalid to skip such lines)"
        ) from err
    except (ValueError, RecursionError) as err:
        # NaN / Infinity (which would make the output invalid JSON too), integers of
        # thousands of digits, nesting too deep to decode.
        raise InvalidRecordError(
            where, f"invalid JSON ({err}) (use --skip-invalid to skip such lines)"
        ) from err
    if not isinstance(obj, dict):
        raise InvalidRecordError(
            where, f"expected a JSON object, got {type(obj).__name__} "
            "(use --skip-invalid to skip such lines)"
        )
    try:
        return Record.from_dict(
            obj, default_id=where, source=source, text_field=options.text_field
        )
    except ValueError as err:
        raise InvalidRecordError(where, str(err)) from err


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


def encode(record: Record, extra: dict[str, Any] | None = None) -> bytes:
    """One JSONL line for a record: UTF-8, keys in schema order, no ASCII escaping."""
    return _json_bytes(record.to_dict(extra)) + b"\n"


def add_fields(line: bytes, fields: dict[str, Any]) -> bytes:
    """An encoded record line with ``fields`` appended, exactly as ``encode(record, fields)``
    would write it: saves decoding a spooled line just to annotate it."""
    if any(_json_key(key) in line for key in fields):
        # The record already has such a key (say, a duplicates file fed back in):
        # overwrite it in place, as encode() does.
        obj = json.loads(line)
        obj.update(fields)
        return _json_bytes(obj) + b"\n"
    extra = _json_bytes(fields)[1:-1]
    return line[: line.rindex(b"}")] + b", " + extra + b"}\n"


@functools.cache
def _json_key(key: str) -> bytes:
    return _json_bytes(key)


def dump_json(obj: Any) -> str:
    """Human-readable JSON for reports (stable key order as given)."""
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


@contextlib.contextmanager
def atomic_output(path: str | None) -> Iterator[IO[bytes]]:
    """A binary stream for ``path``: stdout for None or ``-``; otherwise a temporary file
    beside the target, renamed over it only if the block finishes without error."""
    if path is None or path == STDIN:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    with _naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    handle = os.fdopen(fd, "wb")
    try:
        with _naming(path):
            # mkstemp makes the file private (0600); give it the mode an ordinary open() would.
            os.fchmod(fd, _mode_for(target))
        yield handle
        with _naming(path):  # a full disk may show only now, as the last writes go out
            handle.flush()
            os.fsync(fd)
            handle.close()
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):  # the data it still buffers is thrown away anyway
            handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """An OSError inside names ``path``, the file the user asked for, rather than our
    temporary file or nothing at all."""
    try:
        yield
    except OSError as err:
        raise OSError(err.errno, err.strerror, path) from err


def _mode_for(target: Path) -> int:
    """The permissions of the file being replaced, or what the umask gives a new file."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # read by setting it, then putting it back
        os.umask(umask)
        return 0o666 & ~umask


def write_text(path: str, text: str) -> None:
    """Write a small text file (a report) atomically."""
    with atomic_output(path) as out:
        out.write(text.encode("utf-8"))


#: Bytes a Spool gathers before writing, and reads at a time.
SPOOL_CHUNK = 4 << 20


class Spool:
    """Encoded items parked on disk while a stage that must see everything first makes up
    its mind; read back once, in the order they were appended.

    Items gather in memory and go to the file a few megabytes at a time: one write call
    per item would cost more than the copying.
    """

    def __init__(self, chunk: int = SPOOL_CHUNK) -> None:
        self._file = tempfile.TemporaryFile(prefix="corpus-clean-spool-")  # noqa: SIM115
        self._chunk = chunk
        self._pending = bytearray()
        self.count = 0

    def append(self, data: bytes) -> None:
        self.extend((data,))

    def extend(self, items: Iterable[bytes]) -> None:
        pending = self._pending
        for data in items:
            pending += len(data).to_bytes(4, "little")
            pending += data
            self.count += 1
        if len(pending) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        self._file.write(self._pending)
        self._pending.clear()

    def read(self) -> Iterator[bytes]:
        self._flush()
        self._file.flush()
        self._file.seek(0)
        buffer, start = b"", 0
        for _ in range(self.count):
            if len(buffer) - start < 4:
                buffer, start = buffer[start:] + self._file.read(self._chunk), 0
            end = start + 4 + int.from_bytes(buffer[start : start + 4], "little")
            if end > len(buffer):
                rest = self._file.read(max(self._chunk, end - len(buffer)))
                buffer, end, start = buffer[start:] + rest, end - start, 0
            yield buffer[start + 4 : end]
            start = end

    def close(self) -> None:
        self._file.close()

