"""Reading: raw pages and JSONL become records; errors name the file and line."""

from __future__ import annotations

import gzip
import json
import pickle
import re
from pathlib import Path

import pytest
from support import jsonl, read, split, write

from corpus_clean.io import codec, readers
from corpus_clean.io.inputs import InputError, resolve_inputs
from corpus_clean.io.readers import InvalidRecordError
from corpus_clean.options import ReadOptions
from corpus_clean.record import Record
from corpus_clean.stats import Stats


def test_page_is_one_record_with_its_path_as_id_and_source(tmp_path: Path) -> None:
    page = write(tmp_path / "p.txt", "Title\n\nBody.\n")
    stats = Stats()
    [record] = read([page], stats)
    assert record == Record(id=str(page), text="Title\n\nBody.\n", source=str(page), is_page=True)
    assert stats["pages_read"] == 1
    assert stats["bytes_read"] == len("Title\n\nBody.\n")


def test_page_bom_is_dropped_and_crlf_and_lone_cr_become_newlines(tmp_path: Path) -> None:
    page = write(tmp_path / "p.txt", b"\xef\xbb\xbfTitle\r\n\r\nFirst.\rSecond.\r\n")
    [record] = read([page])
    assert record.text == "Title\n\nFirst.\nSecond.\n"


def test_page_invalid_utf8_bytes_are_replaced_and_counted(tmp_path: Path) -> None:
    page = write(tmp_path / "p.txt", b"\xef\xbb\xbfcaf\xe9 ok \xff\xfe end \xe6\xad\n")
    stats = Stats()
    [record] = read([page], stats)
    assert record.text == "caf\ufffd ok \ufffd\ufffd end \ufffd\ufffd\n"
    assert stats["invalid_utf8_bytes"] == 5


def test_binary_pages_are_skipped_and_counted(tmp_path: Path) -> None:
    nul = write(tmp_path / "nul.txt", b"Title\n\nText \x00 here.\n")
    noise = write(tmp_path / "noise.txt", b"ab\xff\xfe\xfd" * 100)  # 60% not UTF-8
    text = "Caf\u00e9 cr\u00e8me, d\u00e9j\u00e0.\n"
    latin1 = write(tmp_path / "latin1.txt", text.encode("latin-1"))
    stats = Stats()
    [record] = read([nul, noise, latin1], stats)
    assert record.source == str(latin1)
    assert record.text == "Caf\ufffd cr\ufffdme, d\ufffdj\ufffd.\n"
    assert (stats["binary_pages_skipped"], stats["invalid_utf8_bytes"]) == (2, 4)
    assert stats["pages_read"] == 3


def test_valid_utf8_counts_no_invalid_bytes(tmp_path: Path) -> None:
    page = write(tmp_path / "p.txt", "首页\n通过admin\n标题\n正文。\n")
    stats = Stats()
    [record] = read([page], stats)
    assert record.text == "首页\n通过admin\n标题\n正文。\n"
    assert stats["invalid_utf8_bytes"] == 0


def test_jsonl_keeps_id_and_unknown_fields_in_input_order(tmp_path: Path) -> None:
    line = (
        '{"zeta": 1, "id": "a-1", "alpha": [1, {"x": null}], "title": "T", '
        '"text": "Body", "mid": {"k": "v"}, "date": "2024-01-02", "source": "wire"}\n'
    )
    path = write(tmp_path / "in.jsonl", line)
    [record] = read([path])
    assert record == Record(
        id="a-1",
        text="Body",
        source="wire",
        title="T",
        date="2024-01-02",
        meta={"zeta": 1, "alpha": [1, {"x": None}], "mid": {"k": "v"}},
    )
    assert list(record.meta) == ["zeta", "alpha", "mid"]
    # Our keys first, in schema order, then the preserved ones in input order.
    assert codec.encode(record) == (
        b'{"id":"a-1","title":"T","text":"Body","source":"wire","date":"2024-01-02",'
        b'"zeta":1,"alpha":[1,{"x":null}],"mid":{"k":"v"}}\n'
    )


def test_jsonl_without_id_or_source_gets_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", "\n" + jsonl({"text": "one"}, {"text": "two"}))
    records = read([path])
    assert [(r.id, r.source, r.title, r.date) for r in records] == [
        (f"{path}:2", str(path), None, None),
        (f"{path}:3", str(path), None, None),
    ]


def test_jsonl_null_id_and_source_count_as_absent(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", jsonl({"id": None, "source": None, "text": "a"}) * 2)
    records = read([path])
    assert [(r.id, r.source) for r in records] == [
        (f"{path}:1", str(path)),
        (f"{path}:2", str(path)),
    ]


def test_jsonl_integer_ids_and_sources_keep_their_json_spelling(tmp_path: Path) -> None:
    path = write(
        tmp_path / "in.jsonl",
        '{"id": 1, "source": -2, "text": "a"}\n'
        '{"id": 123456789012345678901234567890, "text": "b"}\n',
    )
    records = read([path])
    assert [(r.id, r.source) for r in records] == [
        ("1", "-2"),
        ("123456789012345678901234567890", str(path)),
    ]


@pytest.mark.parametrize("field", ["id", "source"])
@pytest.mark.parametrize("value", ['{"n": 1}', "[1]", "true", "false", "1.50", "1e3"])
def test_jsonl_id_or_source_of_another_type_is_refused(
    tmp_path: Path, field: str, value: str
) -> None:
    path = write(tmp_path / "in.jsonl", f'{{"{field}": {value}, "text": "a"}}\n')
    with pytest.raises(InvalidRecordError) as caught:
        read([path])
    assert str(caught.value) == f"{path}:1: field '{field}' must be a string or an integer"


def test_jsonl_text_field_names_the_text_key(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", jsonl({"id": "x", "body": "Hello", "lang": "en"}))
    [record] = read([path], text_field="body")
    assert (record.text, record.meta) == ("Hello", {"lang": "en"})
    assert json.loads(codec.encode(record)) == {
        "id": "x",
        "text": "Hello",
        "source": str(path),
        "lang": "en",
    }


def test_jsonl_missing_text_field_says_to_use_text_field(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", jsonl({"id": "x", "body": "Hello"}))
    with pytest.raises(InvalidRecordError) as caught:
        read([path])
    assert str(caught.value).startswith(f"{path}:1: ")
    assert "'text'" in str(caught.value)
    assert "--text-field" in str(caught.value)


def test_jsonl_bom_and_crlf_and_gzip(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.jsonl", b'\xef\xbb\xbf{"text": "one"}\r\n{"text": "two"}\r\n')
    packed = tmp_path / "b.jsonl.gz"
    packed.write_bytes(gzip.compress(jsonl({"text": "three"}).encode()))
    assert [r.text for r in read([plain, packed])] == ["one", "two", "three"]


def test_ndjson_is_jsonl_plain_or_gzipped_in_a_folder_or_named(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "a.ndjson", jsonl({"text": "one"}))
    write(folder / "b.ndjson.gz", gzip.compress(jsonl({"text": "two"}).encode()))
    files = resolve_inputs([str(folder), str(folder / "b.ndjson.gz")])
    assert [(f.path, f.kind) for f in files] == [
        (f"{folder}/a.ndjson", "jsonl"),
        (f"{folder}/b.ndjson.gz", "jsonl"),
        (f"{folder}/b.ndjson.gz", "jsonl"),
    ]
    assert [r.text for r in read([folder])] == ["one", "two"]


def test_jsonl_invalid_utf8_in_a_line_is_replaced_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b'{"text": "caf\xe9"}\n')
    stats = Stats()
    [record] = read([path], stats)
    assert record.text == "caf\ufffd"
    assert stats["invalid_utf8_bytes"] == 1


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"text": "unterminated', "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got array"),
        ('"just a string"', "expected a JSON object, got string"),
        ('{"id": "x"}', "no string field 'text'"),
        ('{"text": 5}', "no string field 'text'"),
        ('{"text": "t", "title": 5}', "'title' must be a string or null"),
        ('{"text": "t", "date": ["2020"]}', "'date' must be a string or null"),
        # Python's decoder accepts these, but the output would not be JSON any more.
        ('{"text": "t", "score": NaN}', "NaN is not a JSON value"),
        ('{"text": "t", "score": -Infinity}', "-Infinity is not a JSON value"),
        ('{"text": "t", "score": 1e400}', "a number too large for a 64-bit float"),
        # Too big or too deep to decode: an error about the line, not a crash.
        ('{"text": "t", "n": ' + "7" * 5000 + "}", "invalid JSON"),
        ('{"text": "t", "n": ' + "[" * 100_000 + "]" * 100_000 + "}", "invalid JSON"),
    ],
    ids=lambda value: value[:40],
)
def test_malformed_line_raises_naming_file_and_line(
    tmp_path: Path, bad_line: str, problem: str
) -> None:
    path = write(tmp_path / "in.jsonl", jsonl({"text": "ok"}, {"text": "ok too"}) + bad_line + "\n")
    records = readers.read_records(resolve_inputs([str(path)]), ReadOptions(), Stats())
    # Lazy: the good lines come out before the bad one stops the stream.
    assert [next(records).text, next(records).text] == ["ok", "ok too"]
    with pytest.raises(InvalidRecordError) as caught:
        next(records)
    assert caught.value.where == f"{path}:3"
    assert str(caught.value).startswith(f"{path}:3: ")
    assert problem in str(caught.value)


def test_invalid_record_error_survives_pickling() -> None:
    # Worker processes raise it; the pool pickles it back to the parent.
    error = InvalidRecordError("in.jsonl:3", "invalid JSON")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.where, again.problem) == (
        InvalidRecordError,
        "in.jsonl:3: invalid JSON",
        "in.jsonl:3",
        "invalid JSON",
    )


def test_skip_invalid_counts_and_collects_rejects_verbatim(tmp_path: Path) -> None:
    content = b'{"text": "a"}\nnot json\n{"text": "b"}\n[1]\r\n{"text": "c"}\n{"text": '
    path = write(tmp_path / "in.jsonl", content)
    stats = Stats()
    rejects: list[bytes] = []
    inputs = resolve_inputs([str(path)])
    records = list(readers.read_records(inputs, ReadOptions(skip_invalid=True), stats, rejects))
    assert [r.text for r in records] == ["a", "b", "c"]
    assert [r.id for r in records] == [f"{path}:1", f"{path}:3", f"{path}:5"]
    assert stats["invalid_lines_skipped"] == 3
    assert stats["records_read"] == 3
    # The last line had no newline: one is added so the rejects file stays JSONL-shaped.
    assert rejects == [b"not json\n", b"[1]\r\n", b'{"text": \n']


def test_skip_invalid_without_a_rejects_list_still_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", b'nope\n{"text": "a"}\n')
    stats = Stats()
    assert [r.text for r in read([path], stats, skip_invalid=True)] == ["a"]
    assert stats["invalid_lines_skipped"] == 1


def test_lone_surrogate_escapes_become_u_fffd_and_are_counted(tmp_path: Path) -> None:
    # Scraped JSON sometimes holds half of an escaped surrogate pair; jq refuses it.
    path = write(
        tmp_path / "in.jsonl",
        '{"text": "broken \\ud83d emoji \\ud83d\\ude00", "note": ["\\udc00", {"\\uDFFF": 1}]}\n',
    )
    stats = Stats()
    [record] = read([path], stats)
    assert record.text == "broken \ufffd emoji \U0001f600"
    assert record.meta == {"note": ["\ufffd", {"\ufffd": 1}]}
    assert stats["lone_surrogates_replaced"] == 3
    line = codec.encode(record)
    assert b"\\ud" not in line.lower()
    again = readers.parse_record(line, Stats(), ReadOptions(), source=str(path), line_no=1)
    assert again == record


def test_empty_inputs_give_no_records(tmp_path: Path) -> None:
    empty_jsonl = write(tmp_path / "e.jsonl", "")
    blank_jsonl = write(tmp_path / "b.jsonl", "\n  \n\r\n")
    empty_page = write(tmp_path / "e.txt", "")
    blank_page = write(tmp_path / "b.txt", "\n \n\t\n")
    stats = Stats()
    assert split(read([empty_jsonl, blank_jsonl, empty_page, blank_page], stats), stats) == []
    assert stats["records_read"] == 0


@pytest.mark.parametrize("damage", ["not gzip", "truncated", "corrupt"])
def test_damaged_gzip_input_is_an_input_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    lines = jsonl(*({"text": f"story {n}"} for n in range(500)))
    packed = bytearray(gzip.compress(lines.encode()))
    if damage == "not gzip":
        packed = bytearray(b"plain text, not gzip\n")
    elif damage == "truncated":
        packed = packed[: len(packed) // 2]
    else:
        packed[-8] ^= 0xFF  # the CRC of the trailer: noticed only at the end
    path = write(tmp_path / "in.jsonl.gz", bytes(packed))
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: cannot decompress"):
        read([path])
