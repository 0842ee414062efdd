"""The JSON codec: records written back as JSON lines."""

from __future__ import annotations

from pathlib import Path

from support import read

from corpus_clean.io import codec
from corpus_clean.stats import Stats


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_integers_beyond_64_bits_are_kept_exactly(tmp_path: Path) -> None:
    # orjson would read them as floats; such lines go to json instead.
    big = 123456789012345678901234567890
    path = write(tmp_path / "in.jsonl", f'{{"id": {big}, "text": "t", "n": [-{big}]}}\n')
    [record] = read([path], Stats())
    assert record.id == str(big)
    assert record.meta == {"n": [-big]}
    assert codec.encode(record).startswith(f'{{"id": "{big}"'.encode())
