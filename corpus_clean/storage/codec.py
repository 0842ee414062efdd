"""How the index stores a shingle set (``encode_shingles``), identifies an article's
content (``content_hash``), and keeps text SQLite can hold."""

from __future__ import annotations

import numpy as np
import xxhash

from ..dedup.shingles import Shingles


def encode_shingles(values: Shingles) -> bytes:
    """A sorted shingle set as bytes: width, first value, then the gaps in ``width`` bytes.

    Gaps between sorted 32-bit hashes of a few hundred shingles fit in 3 bytes, so this
    stores a typical article in ~3 bytes per shingle instead of 4 (the set is most of the
    file). Gaps are taken modulo 2**32, so any array round-trips exactly.
    """
    if not len(values):
        return b""
    gaps = np.diff(values).astype("<u4", copy=False)
    width = max(1, (int(gaps.max()).bit_length() + 7) // 8) if len(gaps) else 1
    body = gaps.view(np.uint8).reshape(-1, 4)[:, :width]
    return bytes([width]) + int(values[0]).to_bytes(4, "little") + body.tobytes()


def decode_shingles(data: bytes) -> Shingles:
    """The inverse of ``encode_shingles``; ``ValueError`` if ``data`` cannot be one."""
    if not data:
        return np.zeros(0, dtype=np.uint32)
    width = data[0]
    body = np.frombuffer(data, dtype=np.uint8, offset=min(5, len(data)))
    if not 1 <= width <= 4 or len(data) < 5 or len(body) % width:
        raise ValueError(f"{len(data)} bytes of width {width} are not an encoded shingle set")
    gaps = np.zeros((len(body) // width, 4), dtype=np.uint8)
    gaps[:, :width] = body.reshape(-1, width)
    values = np.empty(len(gaps) + 1, dtype=np.uint32)
    values[0] = int.from_bytes(data[1:5], "little")
    np.cumsum(gaps.view("<u4").ravel(), out=values[1:])
    values[1:] += values[0]
    return values


def content_hash(values: Shingles) -> bytes:
    """What identifies an article's content in the index: 16 bytes of xxh3-128 over its
    sorted shingle set."""
    return xxhash.xxh3_128_digest(np.ascontiguousarray(values, dtype="<u4").tobytes())


def stored_content_hash(data: object) -> bytes:
    """``content_hash`` of an encoded shingle set (an SQL function for the migration)."""
    if not isinstance(data, bytes):
        raise ValueError("not an encoded shingle set")
    return content_hash(decode_shingles(data))


def storable(text: str) -> str:
    """Text SQLite can store: UTF-8 has no lone surrogates, which a ``\\udc80`` escape in
    JSON or an undecodable byte of a file name leaves in a ``str``; they are kept as
    their backslash escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
