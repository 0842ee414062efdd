"""The JSON codec: records written back as compact JSON lines that hold only their bytes."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from support import read, write

from corpus_clean.io import codec
from corpus_clean.record import Record
from corpus_clean.stats import Stats


def test_integers_beyond_64_bits_are_kept_exactly(tmp_path: Path) -> None:
    # orjson would read them as floats; such lines go to json instead.
    big = 123456789012345678901234567890
    path = write(tmp_path / "in.jsonl", f'{{"id": {big}, "text": "t", "n": [-{big}]}}\n')
    [record] = read([path], Stats())
    assert record.id == str(big)
    assert record.meta == {"n": [-big]}
    assert codec.encode(record).startswith(f'{{"id":"{big}"'.encode())


def test_lines_are_compact_json_in_schema_order() -> None:
    record = Record(id="a", text='é\n"t"', source="s", title="T", meta={"n": [1, 2.5]})
    assert (
        codec.encode(record, {"duplicate_of": "b"})
        == (
            '{"id":"a","title":"T","text":"é\\n\\"t\\"","source":"s","n":[1,2.5],"duplicate_of":"b"}\n'
        ).encode()
    )
    assert codec.encode_object({"id": "a", "removed": []}) == b'{"id":"a","removed":[]}\n'


def test_a_line_holds_no_more_memory_than_its_bytes() -> None:
    """orjson hands back its whole buffer (about 16 KB for a line of 2 KB): parked lines
    must not keep it."""
    record = Record(id="a", text="word " * 400, source="s")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        lines = [codec.encode(record) for _ in range(200)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 1.5 * sum(len(line) for line in lines)
