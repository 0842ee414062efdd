"""Reading: raw pages and JSONL become records; errors name the file and line."""

from __future__ import annotations

import errno
import gzip
import json
import os
import pickle
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import read, split

from corpus_clean.io import codec, inputs, readers, sinks
from corpus_clean.io.inputs import InputError, resolve_inputs
from corpus_clean.io.readers import InvalidRecordError
from corpus_clean.io.sinks import atomic_output
from corpus_clean.options import ReadOptions
from corpus_clean.record import Record
from corpus_clean.stats import Stats


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def jsonl(*objects: object) -> str:
    return "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects)


# ---- raw pages ---------------------------------------------------------------------


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


# ---- JSONL -------------------------------------------------------------------------


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
        b'{"id": "a-1", "title": "T", "text": "Body", "source": "wire", "date": "2024-01-02", '
        b'"zeta": 1, "alpha": [1, {"x": null}], "mid": {"k": "v"}}\n'
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


# ---- empty and missing inputs ------------------------------------------------------


def test_empty_inputs_give_no_records(tmp_path: Path) -> None:
    empty_jsonl = write(tmp_path / "e.jsonl", "")
    blank_jsonl = write(tmp_path / "b.jsonl", "\n  \n\r\n")
    empty_page = write(tmp_path / "e.txt", "")
    blank_page = write(tmp_path / "b.txt", "\n \n\t\n")
    stats = Stats()
    assert split(read([empty_jsonl, blank_jsonl, empty_page, blank_page], stats), stats) == []
    assert stats["records_read"] == 0


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError, match=r"nope\.jsonl: no such file or folder"):
        resolve_inputs([str(missing)])


def test_missing_path_fails_before_anything_is_read(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", jsonl({"text": "a"}))
    with pytest.raises(InputError):
        resolve_inputs([str(good), str(tmp_path / "typo.jsonl")])


@pytest.mark.parametrize("names", [[], ["notes.md", "data.csv", "sub/x.json"]])
def test_folder_with_nothing_to_read_is_an_input_error(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        write(tmp_path / "in" / name, "x")
    (tmp_path / "in").mkdir(exist_ok=True)
    with pytest.raises(InputError, match="folder holds no"):
        resolve_inputs([str(tmp_path / "in")])


def test_file_of_unknown_kind_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a,b\n")
    with pytest.raises(InputError, match=r"data\.csv: unknown kind of file"):
        resolve_inputs([str(path)])


def test_folders_are_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for name in ["b/2.txt", "a.jsonl", "b/1.jsonl.gz", "c.ndjson", "skip.csv", "b/0/z.txt"]:
        write(root / name, "")
    files = resolve_inputs([str(root), "-"])
    assert [(f.path, f.kind) for f in files] == [
        (f"{root}/a.jsonl", "jsonl"),
        (f"{root}/b/0/z.txt", "page"),
        (f"{root}/b/1.jsonl.gz", "jsonl"),
        (f"{root}/b/2.txt", "page"),
        (f"{root}/c.ndjson", "jsonl"),
        ("-", "jsonl"),
    ]


def test_fifos_and_devices_in_folders_are_skipped_and_named_ones_are_streams(
    tmp_path: Path,
) -> None:
    root = tmp_path / "in"
    write(root / "a.jsonl", '{"text": "a"}\n')
    os.mkfifo(root / "pipe.jsonl")
    os.mkfifo(root / "pipe-without-suffix")
    os.mknod(root / "dev.txt", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (root / "link.jsonl").symlink_to(root / "pipe.jsonl")
    (root / "broken.jsonl").symlink_to(root / "nowhere")
    files = resolve_inputs([str(root), str(root / "pipe.jsonl"), str(root / "dev.txt")])
    assert [(f.path, f.kind) for f in files] == [
        (f"{root}/a.jsonl", "jsonl"),
        (f"{root}/broken.jsonl", "jsonl"),  # reading it says what is wrong
        (f"{root}/dev.txt", "special"),
        (f"{root}/link.jsonl", "special"),
        (f"{root}/pipe.jsonl", "special"),
        (f"{root}/pipe.jsonl", "jsonl"),
        (f"{root}/dev.txt", "page"),
    ]
    stats = Stats()
    units = list(readers.read_units(files[:1] + files[2:5] + files[6:], stats))
    assert [(u.kind, u.data) for u in units] == [("jsonl", b'{"text": "a"}\n'), ("page", b"")]
    assert stats["special_files_skipped"] == 3


def test_a_folder_of_only_fifos_has_nothing_to_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jsonl")
    with pytest.raises(InputError, match="folder holds no"):
        resolve_inputs([str(tmp_path)])


def test_a_fifo_without_a_suffix_is_jsonl_and_a_symlink_loop_is_named(tmp_path: Path) -> None:
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    assert resolve_inputs([fifo]) == [inputs.InputFile(fifo, "jsonl")]
    (tmp_path / "loop.jsonl").symlink_to(tmp_path / "loop.jsonl")
    with pytest.raises(InputError, match=r"loop\.jsonl: Too many levels of symbolic links"):
        resolve_inputs([str(tmp_path / "loop.jsonl")])


def test_files_the_run_writes_are_skipped_in_folders_but_read_when_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "scrape"
    for name in ["page.txt", "out.jsonl", "sub/dups.jsonl", "sub/more.jsonl"]:
        write(root / name, "")
    monkeypatch.chdir(tmp_path)
    # Spelled otherwise than the folder is: relative, through a link, not yet written.
    (tmp_path / "link").symlink_to(root / "sub")
    skip = ["scrape/out.jsonl", str(tmp_path / "link" / "dups.jsonl"), "new.jsonl", "-"]
    files = resolve_inputs([str(root), str(root / "out.jsonl")], skip=skip)
    assert [f.path for f in files] == [
        f"{root}/page.txt",
        f"{root}/sub/more.jsonl",
        f"{root}/out.jsonl",  # named on its own: read
    ]


# ---- atomic output -----------------------------------------------------------------


def test_atomic_output_replaces_the_file_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with atomic_output(str(target)) as out:
        out.write(b"first\n")
    assert target.read_bytes() == b"first\n"

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_output(str(target)) as out:
        out.write(b"half")
        raise Boom
    assert target.read_bytes() == b"first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_atomic_output_creates_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt), atomic_output(str(target)) as out:
        out.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        target = tmp_path / "new.jsonl"
        with atomic_output(str(target)) as out:
            out.write(b"x\n")
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        # Replacing a file keeps the mode it had.
        target.chmod(0o640)
        with atomic_output(str(target)) as out:
            out.write(b"y\n")
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    finally:
        os.umask(previous)


def test_atomic_output_that_cannot_set_the_mode_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(fd: int, mode: int) -> None:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "fchmod", refuse)
    target = tmp_path / "out.jsonl"
    with pytest.raises(PermissionError) as refused, atomic_output(str(target)):
        pass
    assert refused.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_names_its_file_when_the_last_writes_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    target = tmp_path / "report.json"
    with pytest.raises(OSError) as failed, atomic_output(str(target)) as out:
        out.write(b"{}\n")
    assert (failed.value.errno, failed.value.filename) == (errno.ENOSPC, str(target))
    assert list(tmp_path.iterdir()) == []


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


def test_a_big_write_to_a_pipe_whose_reader_goes_away_raises() -> None:
    """A plain big write() to stdout comes back short, silently, when the reader goes
    mid-write; write_all (and so BlockWriter) must end in BrokenPipeError instead."""
    code = (
        "import sys\n"
        "from corpus_clean.io.sinks import write_all\n"
        "try:\n"
        "    write_all(sys.stdout.buffer, bytes(4 << 20))\n"
        "except BrokenPipeError:\n"
        "    sys.exit(32)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert writer.stdout is not None
    assert writer.stdout.read(10) == bytes(10)
    writer.stdout.close()  # as `| head -c 10` does
    assert writer.wait(timeout=30) == 32


def test_block_writer_writes_everything_in_order(tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as stream, sinks.BlockWriter(stream, size=10) as writer:
        for n in range(100):
            writer.write(b"%d\n" % n)
    assert (tmp_path / "out").read_bytes() == b"".join(b"%d\n" % n for n in range(100))


def test_integers_beyond_64_bits_are_kept_exactly(tmp_path: Path) -> None:
    # orjson would read them as floats; such lines go to json instead.
    big = 123456789012345678901234567890
    path = write(tmp_path / "in.jsonl", f'{{"id": {big}, "text": "t", "n": [-{big}]}}\n')
    [record] = read([path], Stats())
    assert record.id == str(big)
    assert record.meta == {"n": [-big]}
    assert codec.encode(record).startswith(f'{{"id": "{big}"'.encode())


def test_block_writer_raises_what_its_thread_met() -> None:
    """A closed pipe met by the writing thread is raised in the caller, and the caller
    can stop at once however much is queued."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "wb", buffering=0) as stream:
        writer = sinks.BlockWriter(stream, size=10, depth=1)
        with pytest.raises(BrokenPipeError), writer:
            for _ in range(1000):
                writer.write(b"0123456789\n")
