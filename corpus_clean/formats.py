"""Record file formats chosen by the file name: JSONL plain, gzip or zstandard, and Parquet.

Readers hand on JSONL bytes (a Parquet file as one JSON line per row), so every format
goes through the one JSONL codec and its record rules; writers take the JSONL bytes the
run writes and compress them, or turn them into Parquet row groups, as they come.
zstandard and pyarrow are imported only when a file of theirs is used.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Iterator
from typing import IO, Any

import orjson

from .errors import CorpusCleanError

RECORD_SUFFIXES = (".jsonl", ".ndjson")
COMPRESSED_SUFFIXES = (".gz", ".zst")
#: Every name of a JSONL file: plain, gzip or zstandard.
JSONL_SUFFIXES = tuple(
    base + packed for base in RECORD_SUFFIXES for packed in ("", *COMPRESSED_SUFFIXES)
)
PARQUET_SUFFIX = ".parquet"
#: gzip's own default: level 9 costs several times the CPU for a few percent.
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
#: Rows of a Parquet file read at a time, and written per row group.
PARQUET_READ_ROWS = 4096
PARQUET_GROUP_ROWS = 16384
PARQUET_GROUP_BYTES = 64 << 20
#: Marks, in a Parquet column's field metadata, a column of JSON texts: values written as
#: JSON (objects, arrays, fields of more than one type), read back as JSON values.
JSON_COLUMN = {b"corpus_clean": b"json"}
_NEEDS_PYARROW = "install corpus-clean[parquet] to read/write Parquet (pip install pyarrow)"


class FormatError(CorpusCleanError):
    """A file that its format cannot take: a Parquet column of another type, no pyarrow."""


def is_compressed(path: str) -> bool:
    return path.endswith(COMPRESSED_SUFFIXES)


def is_parquet(path: str) -> bool:
    return path.endswith(PARQUET_SUFFIX)


def require_pyarrow() -> None:
    """Raise ``FormatError`` saying how to install it when pyarrow is missing."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError as err:
        raise FormatError(_NEEDS_PYARROW) from err


# Reading


class ZstdReader:
    """A zstandard file decompressed as it is read, frame after frame; a file that ends
    inside a frame raises ``EOFError`` (zstandard's own stream reader says nothing)."""

    def __init__(self, path: str, chunk: int = 1 << 20) -> None:
        import zstandard

        self._zstd = zstandard
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close)
        self._chunk = chunk
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._in_frame = False  # bytes of an unfinished frame were fed

    def read1(self, size: int = -1) -> bytes:
        while True:
            data = self._file.read(self._chunk)
            if not data:
                if self._in_frame:
                    raise EOFError("compressed file ended before the end of a frame")
                return b""
            out = self._feed(data)
            if out:
                return out

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            try:
                out.append(self._frame.decompress(data))
            except self._zstd.ZstdError as err:
                raise EOFError(str(err)) from err
            self._in_frame = not self._frame.eof
            if not self._frame.eof:
                break
            data = self._frame.unused_data
            self._frame = self._zstd.ZstdDecompressor().decompressobj()
        return b"".join(out)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ZstdReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_compressed(path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return ZstdReader(path)  # type: ignore[return-value]


def parquet_runs(path: str) -> Iterator[bytes]:
    """A Parquet file's rows as JSONL, a batch of rows at a time (never the whole table):
    a null ``title``, ``source`` or ``date`` is left out (as a missing column is), and a
    column of JSON texts (``JSON_COLUMN``) is read as the values they spell."""
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        json_columns = [f.name for f in schema if _is_json_column(f.metadata)]
        for batch in parquet.iter_batches(batch_size=PARQUET_READ_ROWS):
            lines = []
            for row in batch.to_pylist():
                for key in ("title", "source", "date"):
                    if key in row and row[key] is None:
                        del row[key]
                for key in json_columns:
                    if row.get(key) is not None:
                        row[key] = json.loads(row[key])
                lines.append(orjson.dumps(row, default=_json_default))
            yield b"\n".join(lines) + b"\n"
    except (pa.ArrowException, OSError, ValueError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise
        raise FormatError(f"{path}: cannot read as Parquet ({err})") from err


def _is_json_column(metadata: dict[bytes, bytes] | None) -> bool:
    return metadata is not None and all(metadata.get(k) == v for k, v in JSON_COLUMN.items())


def _json_default(value: Any) -> Any:
    """Parquet values JSON has no type for: bytes as text, the rest (decimals, times)
    as their string."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# Writing


def encoder_for(path: str, raw: IO[bytes]) -> IO[bytes] | None:
    """The stream that writes JSONL into ``raw`` in the format ``path`` names (None:
    plain JSONL, ``raw`` itself). Closing it finishes the format (the last compressed
    block, the gzip trailer or zstandard frame end, the Parquet footer) but leaves
    ``raw`` open, to be synced."""
    if path.endswith(".gz"):
        return gzip.GzipFile(  # type: ignore[return-value]
            filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
        )
    if path.endswith(".zst"):
        return ZstdEncoder(raw)  # type: ignore[return-value]
    if is_parquet(path):
        return ParquetEncoder(path, raw)  # type: ignore[return-value]
    return None


class ZstdEncoder:
    """zstandard's stream writer, with ``writelines`` (which it refuses) and without
    closing the file it writes to."""

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._writer: Any = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(
            raw, closefd=False
        )

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._writer.write(data)
        return len(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self._writer.write(line)

    def flush(self) -> None:
        """Nothing is flushed before ``close``: a flushed block compresses worse."""

    def close(self) -> None:
        self._writer.close()


#: Types of the columns corpus-clean itself writes, whatever their first values are.
_OWN_TYPES = {
    "id": "string",
    "title": "string",
    "text": "string",
    "source": "string",
    "date": "string",
    "duplicate_of": "string",
    "matched_id": "string",
    "duplicate_kind": "string",
    "cluster_id": "string",
    "similarity": "double",
    "jaccard": "double",
    "cluster_size": "int64",
}
_ALWAYS = ("id", "title", "text", "source", "date")


class ParquetEncoder:
    """JSONL lines in, Parquet row groups out, as the lines come.

    The schema is fixed by the first row group: ``id``, ``title``, ``text``, ``source``
    and ``date`` are string columns (null where a record has none), corpus-clean's
    annotations have their own types (``similarity`` double, ``cluster_size`` int64), and
    any other field is a column of its JSON type (string, int64, double for numbers with
    a fraction, bool) where all its values there have that one type, else of JSON texts
    (objects, arrays, mixed types, all null), marked so corpus-clean reads them back as
    JSON. A later record with a field the schema has no room for is a ``FormatError``."""

    def __init__(self, path: str, raw: IO[bytes]) -> None:
        require_pyarrow()
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa, self._pq = pa, pq
        self._path = path
        self._raw = raw
        self._pending = bytearray()
        self._rows: list[dict[str, Any]] = []
        self._bytes = 0
        self._writer: Any = None
        self._types: dict[str, str] = {}
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._pending += data
        end = self._pending.rfind(b"\n") + 1
        if end:
            for line in bytes(self._pending[: end - 1]).split(b"\n"):
                self._rows.append(_loads(line))
            self._bytes += end
            del self._pending[:end]
            while len(self._rows) >= PARQUET_GROUP_ROWS:
                self._write_group(PARQUET_GROUP_ROWS)
            if self._bytes >= PARQUET_GROUP_BYTES:
                self._write_group(len(self._rows))
        return len(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Row groups are written whole: nothing to flush before ``close``."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._pending.strip():
            self._rows.append(_loads(bytes(self._pending)))
        if self._rows or self._writer is None:
            self._write_group(len(self._rows))
        self._writer.close()

    def abandon(self) -> None:
        """Stop without finishing the file (the run failed): pyarrow's finalizer would
        otherwise write the footer to a file closed by then."""
        self.closed = True
        self._rows.clear()
        if self._writer is not None:
            self._writer.is_open = False

    def _write_group(self, size: int) -> None:
        """The first ``size`` rows waiting, as a row group."""
        pa = self._pa
        rows = self._rows[:size]
        if self._writer is None:
            self._types = _column_types(rows)
            fields = [
                pa.field(
                    name,
                    kind if kind != "json" else "string",
                    metadata=JSON_COLUMN if kind == "json" else None,
                )
                for name, kind in self._types.items()
            ]
            self._writer = self._pq.ParquetWriter(self._raw, pa.schema(fields))
        columns = {name: [] for name in self._types}  # type: dict[str, list[Any]]
        for row in rows:
            extra = row.keys() - self._types.keys()
            if extra:
                self._refuse(row, sorted(extra)[0], "a field the first records did not have")
            for name, kind in self._types.items():
                value = row.get(name)
                if kind == "json":
                    value = None if value is None else _dumps(value)
                elif (
                    value is not None
                    and _json_type(value) != kind
                    and not (kind == "double" and _json_type(value) == "int64")
                ):
                    self._refuse(row, name, f"of another type than its column ({kind})")
                columns[name].append(value)
        table = pa.table(columns, schema=self._writer.schema)
        self._writer.write_table(table)
        del self._rows[:size]
        self._bytes = 0

    def _refuse(self, row: dict[str, Any], name: str, problem: str) -> None:
        raise FormatError(
            f"{self._path}: record {row.get('id')!r} has {name!r}, {problem}: a Parquet "
            f"schema is fixed by the first {PARQUET_GROUP_ROWS} records; write JSONL instead"
        )


def _loads(line: bytes) -> dict[str, Any]:
    try:
        return orjson.loads(line)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:  # what only json reads: lone surrogates, big integers
        return json.loads(line)  # type: ignore[no-any-return]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64" if -(1 << 63) <= value < 1 << 63 else "json"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return "json"


def _column_types(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each column's type (see ``ParquetEncoder``), in the order the fields first come."""
    seen: dict[str, set[str]] = {name: set() for name in _ALWAYS}
    for row in rows:
        for name, value in row.items():
            kinds = seen.setdefault(name, set())
            if value is not None:
                kinds.add(_json_type(value))
    if "similarity" in seen:
        seen.setdefault("jaccard", set())  # comes with contained duplicates only
    types = {}
    for name, kinds in seen.items():
        if name in _OWN_TYPES:
            types[name] = _OWN_TYPES[name]
        elif kinds == {"int64", "double"}:
            types[name] = "double"
        elif len(kinds) == 1 and "json" not in kinds:
            types[name] = next(iter(kinds))
        else:
            types[name] = "json"
    return types
