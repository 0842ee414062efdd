"""The JSON codec: UTF-8 text from bytes, JSON lines read as ``json`` reads them (orjson
where it agrees), records and ``--explain`` entries written as compact JSON lines (by
orjson), reports as indented JSON. Records become JSON lines here only (``formats`` turns
Parquet rows into such lines, and back)."""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

import orjson

from ..record import Record
from ..stats import Stats

#: What ``surrogateescape`` makes of bytes that are not UTF-8.
LONE_SURROGATES = re.compile("[\udc80-\udcff]")
#: Any surrogate: in decoded JSON, one that a ``\udXXX`` escape left without its pair.
_SURROGATES = re.compile("[\ud800-\udfff]")
#: A JSON escape of a surrogate, paired or not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def decode(data: bytes, stats: Stats) -> str:
    """UTF-8 text from bytes: BOM dropped, invalid bytes replaced by U+FFFD and counted."""
    text, invalid = decoded(data)
    if invalid:
        stats.add("invalid_utf8_bytes", invalid)
    return text


def decoded(data: bytes) -> tuple[str, int]:
    """``decode``'s text, and how many bytes were not UTF-8."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), 0
    except UnicodeDecodeError:
        text, invalid = LONE_SURROGATES.subn("\ufffd", data.decode("utf-8", "surrogateescape"))
        return text.removeprefix("\ufeff"), invalid


def load_json(line: bytes, stats: Stats) -> Any:
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
TOO_DEEP = f"arrays and objects nested deeper than {MAX_NESTING} levels"


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
                    raise ValueError(TOO_DEEP)
                stack.append(iter(item.values() if isinstance(item, dict) else item))
                break
        else:
            stack.pop()
    return False


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


#: Built once: json.loads and json.dumps with options build a new one on every call,
#: which costs more than decoding or encoding a typical record. Compact, as orjson writes.
_DECODER = json.JSONDecoder(parse_constant=_not_json)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json_bytes(value: Any) -> bytes:
    """JSON as UTF-8, compact, no ASCII escaping, by json. A lone surrogate (read from a
    JSON ``\\udXXX`` escape) can only stand inside a JSON string, where
    ``backslashreplace`` writes it back as that same escape."""
    return _ENCODER.encode(value).encode("utf-8", "backslashreplace")


def encode(
    record: Record, extra: dict[str, Any] | None = None, metadata_field: str | None = None
) -> bytes:
    """One JSONL line for a record: UTF-8, compact, keys in schema order, no ASCII
    escaping (``metadata_field``: see ``Record.to_dict``)."""
    return _json_line(record.to_dict(extra, metadata_field))


def encode_object(obj: dict[str, Any]) -> bytes:
    """Any JSON object as one JSONL line, spelled as records are (``--explain`` entries)."""
    return _json_line(obj)


def _json_line(obj: dict[str, Any]) -> bytes:
    """``obj`` as one compact JSONL line, written by orjson; by json where orjson declines
    (a lone surrogate, an integer beyond 64 bits), spelled alike but for floats (orjson
    writes ``0.00001`` where json writes ``1e-05``).

    Adding the newline copies orjson's bytes into an object of their own size: orjson
    hands back its whole buffer, which holds about 16 KB for a line of 2 KB
    (tracemalloc), and parked lines would keep it."""
    try:
        return orjson.dumps(obj) + b"\n"
    except orjson.JSONEncodeError:
        return _json_bytes(obj) + b"\n"


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
    return line[: line.rindex(b"}")] + b"," + extra + b"}\n"


@functools.cache
def _json_keys(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(_json_bytes(key) for key in keys)


def dump_json(obj: Any) -> str:
    """Human-readable JSON for reports (stable key order as given)."""
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"
