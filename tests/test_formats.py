"""Record formats by file name, through the CLI on real files: JSONL plain, gzip and
zstandard in and out, Parquet through pyarrow, and dolma-style records (--metadata-field)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from click.testing import CliRunner, Result
from support import GOLDEN, REPO

from corpus_clean import formats
from corpus_clean.cli import cli
from corpus_clean.io.inputs import resolve_inputs
from corpus_clean.io.readers import read_units
from corpus_clean.stats import Stats

SAMPLES = REPO / "samples"
GOLDEN_KEPT = (GOLDEN / "samples.jsonl").read_bytes()
SUFFIXES = [".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".jsonl.zst", ".ndjson.zst"]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # as the golden files were made: sources named samples/...


def invoke(*args: str | Path, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def unpacked(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def lines_of(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines()]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---- compressed JSONL ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_outputs_are_written_in_the_format_their_name_says_and_read_back(
    tmp_path: Path, suffix: str
) -> None:
    out, dups = tmp_path / f"out{suffix}", tmp_path / f"dups{suffix}"
    result = invoke("run", "samples/", "-q", "-o", out, "--duplicates", dups)
    assert (result.exit_code, result.stderr) == (0, "")
    assert unpacked(out) == GOLDEN_KEPT
    assert unpacked(dups) == (GOLDEN / "samples.duplicates.jsonl").read_bytes()
    if suffix.endswith((".gz", ".zst")):
        assert out.read_bytes() != GOLDEN_KEPT
    again = invoke("dedup", out, "-q")
    assert (again.exit_code, again.stderr) == (0, "")
    assert again.stdout_bytes == GOLDEN_KEPT
    assert leftovers(tmp_path) == []


def test_compressed_output_is_the_same_bytes_every_run(tmp_path: Path) -> None:
    for name in ("a.jsonl.gz", "b.jsonl.gz", "a.jsonl.zst", "b.jsonl.zst"):
        assert invoke("run", "samples/", "-q", "-o", tmp_path / name).exit_code == 0
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert (tmp_path / "a.jsonl.zst").read_bytes() == (tmp_path / "b.jsonl.zst").read_bytes()


def test_rejects_and_explain_are_compressed_and_the_report_is_not(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "A story of the old bridge"}\nnot json\n')
    result = invoke(
        "dedup",
        source,
        "-q",
        "--skip-invalid",
        "--rejects",
        tmp_path / "r.jsonl.zst",
        "--report",
        tmp_path / "report.json.gz",
        "-o",
        tmp_path / "out.jsonl.gz",
    )
    assert (result.exit_code, result.stderr) == (0, "")
    assert unpacked(tmp_path / "r.jsonl.zst") == b"not json\n"
    assert json.loads((tmp_path / "report.json.gz").read_text())["command"] == "dedup"
    plain = invoke("run", "samples/", "-q", "--explain", tmp_path / "e.jsonl")
    packed = invoke("run", "samples/", "-q", "--explain", tmp_path / "e.jsonl.gz")
    assert (plain.exit_code, packed.exit_code) == (0, 0)
    assert (tmp_path / "e.jsonl").read_bytes()  # something was removed
    assert unpacked(tmp_path / "e.jsonl.gz") == (tmp_path / "e.jsonl").read_bytes()


def test_a_fifo_named_gz_gets_compressed_records(tmp_path: Path) -> None:
    fifo = tmp_path / "out.jsonl.gz"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = invoke("run", "samples/", "-o", fifo, "-q")
    reader.join(timeout=60)
    assert (result.exit_code, result.stderr) == (0, "")
    assert gzip.decompress(received[0]) == GOLDEN_KEPT
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_failed_run_leaves_no_half_compressed_file(tmp_path: Path) -> None:
    # clean writes as it goes: the compressor has written blocks before the bad line.
    source = tmp_path / "in.jsonl"
    with source.open("w") as handle:
        for n in range(30000):
            handle.write(json.dumps({"id": str(n), "text": f"story {n} " * 20}) + "\n")
        handle.write("not json\n")
    for suffix in (".jsonl.gz", ".jsonl.zst", ".parquet"):
        out = tmp_path / f"out{suffix}"
        result = invoke("clean", source, "-q", "-o", out)
        assert result.exit_code == 2
        assert f"{source}:30001: invalid JSON" in result.stderr
        assert not out.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".parquet"])
def test_an_interrupt_while_compressing_leaves_no_file(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / "in.jsonl"
    with source.open("w") as handle:
        for n in range(150000):
            handle.write(json.dumps({"id": str(n), "text": f"story {n} " * 20}) + "\n")
    out = tmp_path / f"out{suffix}"
    running = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corpus_clean",
            "clean",
            str(source),
            "-q",
            "-j",
            "1",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        # Wait until the encoder has written into the temporary file.
        while not any(p.stat().st_size for p in tmp_path.glob(".*.tmp")):
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)
        running.send_signal(signal.SIGINT)
        _, stderr = running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert running.returncode == 130, stderr
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_multi_frame_zstd_and_concatenated_gzip_members_are_read_whole(tmp_path: Path) -> None:
    first, second = GOLDEN_KEPT[:1000], GOLDEN_KEPT[1000:]  # a frame ends inside a line
    (tmp_path / "a.jsonl.zst").write_bytes(zst(first) + zst(second))
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(first) + gzip.compress(second))
    for name in ("a.jsonl.zst", "a.jsonl.gz"):
        result = invoke("dedup", tmp_path / name, "-q")
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout_bytes == GOLDEN_KEPT


@pytest.mark.parametrize("damage", ["not zstd", "truncated", "corrupt"])
def test_damaged_zstd_input_is_exit_2_naming_the_file(tmp_path: Path, damage: str) -> None:
    packed = bytearray(zst(GOLDEN_KEPT))
    if damage == "not zstd":
        packed = bytearray(b"plain text, not zstd\n")
    elif damage == "truncated":
        del packed[len(packed) // 2 :]
    else:
        packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "in.jsonl.zst"
    path.write_bytes(bytes(packed))
    result = invoke("dedup", path, "-q")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}: cannot decompress (")
    assert "Traceback" not in result.stderr


def test_compressed_and_parquet_inputs_are_never_read_back(tmp_path: Path) -> None:
    """The dedup read-back reads output lines again from the input file by offset: only
    a plain file can be."""
    (tmp_path / "a.jsonl").write_bytes(GOLDEN_KEPT)
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(GOLDEN_KEPT))
    (tmp_path / "a.jsonl.zst").write_bytes(zst(GOLDEN_KEPT))
    pq.write_table(pa.Table.from_pylist(lines_of(GOLDEN_KEPT)), tmp_path / "a.parquet")
    units = {
        Path(unit.path).name: unit for unit in read_units(resolve_inputs([str(tmp_path)]), Stats())
    }
    assert sorted(units) == ["a.jsonl", "a.jsonl.gz", "a.jsonl.zst", "a.parquet"]
    assert units["a.jsonl"].offset == 0 and units["a.jsonl"].stamp is not None
    for name in ("a.jsonl.gz", "a.jsonl.zst", "a.parquet"):
        assert (units[name].offset, units[name].stamp) == (None, None)


# ---- Parquet ----------------------------------------------------------------------------


def test_parquet_written_by_pyarrow_reads_as_the_same_records_as_jsonl(tmp_path: Path) -> None:
    rows = [
        {
            "id": f"r{n}",
            "text": " ".join(f"w{n}x{k}" for k in range(12)),
            "tags": ["a", str(n)],
            "meta": {"url": f"u{n}", "n": n},
            "score": n / 2,
        }
        for n in range(10)
    ]
    rows.append(dict(rows[3], id="copy"))
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=4)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from_parquet = invoke("dedup", tmp_path / "in.parquet", "-q")
    from_jsonl = invoke("dedup", tmp_path / "in.jsonl", "-q")
    assert (from_parquet.exit_code, from_parquet.stderr) == (0, "")
    expected = [dict(r, source="in") for r in lines_of(from_jsonl.stdout_bytes)]
    got = [dict(r, source="in") for r in lines_of(from_parquet.stdout_bytes)]
    assert got == expected
    assert len(got) == 10 and "title" not in got[0]


def test_a_parquet_row_that_is_not_a_record_is_file_row(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": ["one", None, "three"]}), path)
    result = invoke("dedup", path, "-q")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}:2: no string field 'text'")
    skipped = invoke("dedup", path, "--skip-invalid", "-q")
    assert skipped.exit_code == 0, skipped.stderr
    assert [r["id"] for r in lines_of(skipped.stdout_bytes)] == ["a", "c"]


def test_parquet_written_by_corpus_clean_reads_in_pyarrow_as_the_jsonl_records(
    tmp_path: Path,
) -> None:
    result = invoke(
        "run",
        "samples/",
        "-q",
        "-o",
        tmp_path / "out.parquet",
        "--duplicates",
        tmp_path / "dups.parquet",
    )
    assert (result.exit_code, result.stderr) == (0, "")
    for name, jsonl in [("out", "samples.jsonl"), ("dups", "samples.duplicates.jsonl")]:
        table = pq.read_table(tmp_path / f"{name}.parquet")
        assert table.schema.field("text").type == pa.string()
        rows = [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]
        assert rows == lines_of((GOLDEN / jsonl).read_bytes())
    assert pq.read_table(tmp_path / "dups.parquet").schema.field("cluster_size").type == pa.int64()
    again = invoke("dedup", tmp_path / "out.parquet", "-q")
    assert again.stdout_bytes == GOLDEN_KEPT


def test_parquet_output_columns_take_their_json_type_or_json_text(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "text": "one two", "n": 1, "mixed": 1, "obj": {"k": [1, 2]}, "f": 0.5},
        {"id": "b", "text": "three four", "n": 2, "mixed": "x", "obj": None, "f": 2},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.parquet"
    assert invoke("dedup", source, "-q", "-o", out).exit_code == 0
    schema = pq.read_schema(out)
    assert [schema.field(c).type for c in ("n", "mixed", "obj", "f")] == [
        pa.int64(),
        pa.string(),
        pa.string(),
        pa.float64(),
    ]
    assert pq.read_table(out).column("mixed").to_pylist() == ["1", '"x"']
    back = invoke("dedup", out, "-q")
    assert lines_of(back.stdout_bytes) == [
        dict(rows[0], source=str(source)),
        {**rows[1], "f": 2.0, "source": str(source)},
    ]


def test_a_field_the_first_row_group_had_not_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "PARQUET_GROUP_ROWS", 2)
    rows = [{"text": f"story {n}"} for n in range(4)] + [{"text": "late", "lang": "en"}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.parquet"
    result = invoke("clean", source, "-q", "-o", out)
    assert result.exit_code == 2
    assert "record 'in.jsonl:5'" in result.stderr or f"record '{source}:5'" in result.stderr
    assert "'lang'" in result.stderr and "write JSONL instead" in result.stderr
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["input", "output"])
def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path, where: str) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": ["a"]}), path)
    args = ["dedup", str(path)] if where == "input" else ["dedup", "-", "-o", str(path)]
    code = (
        "import sys; sys.modules['pyarrow'] = None; from corpus_clean.cli import main; "
        f"sys.argv = ['corpus-clean', *{args!r}]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=b'{"text": "a"}\n', capture_output=True, timeout=120
    )
    assert done.returncode == 2
    assert b"install corpus-clean[parquet] to read/write Parquet" in done.stderr
    assert b"Traceback" not in done.stderr


# ---- dolma-style records ---------------------------------------------------------------


def test_a_record_without_title_gets_none_and_a_null_title_stays(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "text": "one"}\n{"id": "b", "text": "two", "title": null}\n')
    result = invoke("dedup", source, "-q")
    assert [list(r) for r in lines_of(result.stdout_bytes)] == [
        ["id", "text", "source"],
        ["id", "title", "text", "source"],
    ]


def test_a_datatrove_folder_of_zst_parts_keeps_only_id_text_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for part in range(3):
        records = [
            {
                "id": f"p{part}-{n}",
                "text": f"story {n} of the old bridge, told again " * 5,
                "metadata": {"url": f"https://x/{part}/{n}", "dump": "CC-1"},
            }
            for n in range(4)
        ]
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
        (folder / f"{part:05d}.jsonl.zst").write_bytes(zst(data))
    out, dups = tmp_path / "out.jsonl.zst", tmp_path / "dups.jsonl.zst"
    result = invoke(
        "run", folder, "--metadata-field", "metadata", "-o", out, "--duplicates", dups, "-q"
    )
    assert (result.exit_code, result.stderr) == (0, "")
    kept, removed = lines_of(unpacked(out)), lines_of(unpacked(dups))
    assert [r["id"] for r in kept] == ["p0-0", "p0-1", "p0-2", "p0-3"]
    assert len(removed) == 8
    for record in kept + removed:
        assert list(record) == ["id", "text", "metadata"]
        assert list(record["metadata"])[:3] == ["url", "dump", "source"]
    assert removed[0]["metadata"]["duplicate_of"] == "p0-0"
    assert removed[0]["metadata"]["duplicate_kind"] == "exact"
    # Read back with the option, the records come out as they went in.
    again = invoke("run", out, "--metadata-field", "metadata", "-q")
    assert lines_of(again.stdout_bytes) == kept


def test_stages_piped_with_metadata_field_equal_run() -> None:
    opt = ("--metadata-field", "metadata")
    split = invoke("split", "samples/", "-q", *opt)
    assert split.exit_code == 0, split.stderr
    cleaned = invoke("clean", "-q", *opt, input=split.stdout_bytes)
    deduped = invoke("dedup", "-q", *opt, input=cleaned.stdout_bytes)
    run = invoke("run", "samples/", "-q", *opt)
    assert deduped.stdout_bytes == run.stdout_bytes
    records = lines_of(run.stdout_bytes)
    assert len(records) == 18
    assert {tuple(r) for r in records} == {("id", "text", "metadata")}
    plain = lines_of(GOLDEN_KEPT)
    assert [{"id": r["id"], "text": r["text"], **r["metadata"]} for r in records] == plain


def test_metadata_field_that_is_not_an_object_is_file_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "one", "metadata": "x"}\n')
    result = invoke("dedup", source, "--metadata-field", "metadata", "-q")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {source}:1: field 'metadata' must be an object, for --metadata-field\n"
    )


def test_rejects_cannot_be_parquet(tmp_path: Path) -> None:
    result = invoke(
        "dedup",
        "-",
        "--skip-invalid",
        "--rejects",
        tmp_path / "r.parquet",
        input=b'{"text": "a"}\n',
    )
    assert result.exit_code == 2
    assert "--rejects holds the skipped lines verbatim" in result.stderr
    assert not (tmp_path / "r.parquet").exists()


def test_metadata_field_moves_exactly_the_added_fields(tmp_path: Path) -> None:
    """dedup of a plain file (whose lines are read back at the end) with annotations on
    both outputs: the records are the plain run's, with what it added moved inside."""
    split = invoke("split", "samples/", "-q")
    records = [
        {k: v for k, v in r.items() if k != "source"} | {"metadata": {"n": n}}
        for n, r in enumerate(lines_of(split.stdout_bytes))
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    outputs = {}
    for mode, extra in [("plain", ()), ("inside", ("--metadata-field", "metadata"))]:
        kept, dups = tmp_path / f"{mode}.jsonl", tmp_path / f"{mode}.dups.jsonl"
        result = invoke(
            "dedup", source, "-q", "--cluster-fields", "-o", kept, "--duplicates", dups, *extra
        )
        assert (result.exit_code, result.stderr) == (0, "")
        outputs[mode] = lines_of(kept.read_bytes()) + lines_of(dups.read_bytes())
    assert len(outputs["plain"]) == 23
    given = {r["id"]: r.keys() for r in records}
    moved = []
    for record in outputs["plain"]:
        own = {k: v for k, v in record.items() if k in given[record["id"]]}
        added = {k: v for k, v in record.items() if k not in given[record["id"]]}
        moved.append({**own, "metadata": {**record["metadata"], **added}})
    assert any("date" in r for r in records)  # given: stays at the top
    assert outputs["inside"] == moved


def test_a_jsonl_record_without_title_stays_so_through_the_stages(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"r{n}", "text": f"Story {n} of the bridge.\n\nShare this:"}) + "\n"
            for n in range(3)
        )
    )
    split = invoke("split", source, "-q")
    cleaned = invoke("clean", "-q", input=split.stdout_bytes)
    deduped = invoke("dedup", "-q", input=cleaned.stdout_bytes)
    run = invoke("run", source, "-q")
    assert (run.exit_code, run.stderr) == (0, "")
    assert deduped.stdout_bytes == run.stdout_bytes
    assert all("title" not in r for r in lines_of(run.stdout_bytes))
