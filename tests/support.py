"""Shared helpers: the seed pages, each library stage driven directly (no click), and
dedup through the one driver the command runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from corpus_clean.dedup import Verdict
from corpus_clean.driver import Run, Targets, execute
from corpus_clean.io.inputs import resolve_inputs
from corpus_clean.io.readers import read_records
from corpus_clean.options import CleanOptions, DedupOptions, ReadOptions, SplitOptions
from corpus_clean.pipeline import Plan
from corpus_clean.record import Record
from corpus_clean.report import Report
from corpus_clean.stages.clean import Cleaner, RuleSet, load_rules
from corpus_clean.stages.split import PageSplitter
from corpus_clean.stats import Stats
from corpus_clean.storage.sqlite import IndexStore

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
SAMPLE_FILES = sorted(SAMPLES.glob("*.txt"))
GOLDEN = REPO / "tests" / "golden"

_RULES: RuleSet | None = None


def builtin_rules() -> RuleSet:
    global _RULES
    if _RULES is None:
        _RULES = load_rules(CleanOptions())
    return _RULES


def read(
    paths: Iterable[str | Path], stats: Stats | None = None, **options: object
) -> list[Record]:
    stats = stats if stats is not None else Stats()
    inputs = resolve_inputs([str(p) for p in paths])
    return list(read_records(inputs, ReadOptions(**options), stats))  # type: ignore[arg-type]


def split(records: Iterable[Record], stats: Stats | None = None) -> list[Record]:
    return list(PageSplitter(SplitOptions()).run(records, stats if stats is not None else Stats()))


def clean(records: Iterable[Record], stats: Stats | None = None) -> list[Record]:
    return list(Cleaner(builtin_rules()).run(records, stats if stats is not None else Stats()))


def seed_articles(stats: Stats | None = None) -> list[Record]:
    """The seed pages read, split and cleaned, in input order."""
    stats = stats if stats is not None else Stats()
    return clean(split(read([SAMPLES], stats), stats), stats)


#: A field each record carries through dedup, to find its place among the outputs.
_POSITION = "test_position"


def dedup(
    records: Sequence[Record],
    *,
    batch_size: int | None = None,
    index: IndexStore | None = None,
    **options: object,
) -> list[tuple[Record, Verdict | None]]:
    """Every record with its verdict (None: kept); see ``dedup_run``."""
    return dedup_run(records, batch_size=batch_size, index=index, **options)[0]


def dedup_run(
    records: Sequence[Record],
    *,
    batch_size: int | None = None,
    index: IndexStore | None = None,
    **options: object,
) -> tuple[list[tuple[Record, Verdict | None]], Report]:
    """``corpus-clean dedup`` over ``records``, through the driver the command runs, and
    its report: every record with its verdict (None: kept), read back from the kept and
    removed outputs, which must hold each record once, in input order. The records go in
    as JSONL files of ``batch_size`` records (default: one file), each a batch of its own;
    ``index`` is consulted, then accepts what the run kept."""
    size = batch_size or max(len(records), 1)
    with tempfile.TemporaryDirectory(prefix="corpus-clean-test-") as folder:
        names = []
        for start in range(0, len(records), size):
            name = os.path.join(folder, f"{start:06d}.jsonl")
            with open(name, "w", encoding="utf-8") as batch:
                for n, record in enumerate(records[start : start + size], start):
                    batch.write(json.dumps(record.to_dict({_POSITION: n})) + "\n")
            names.append(name)
        kept, removed = os.path.join(folder, "kept"), os.path.join(folder, "removed")
        plan = Plan(dedup=DedupOptions(**options))  # type: ignore[arg-type]
        report = execute(Run("dedup", plan, resolve_inputs(names), Targets(kept, removed), index))
        outputs = [_read_lines(kept), _read_lines(removed)]
    verdicts: dict[int, Verdict | None] = {}
    for lines in outputs:
        places = [line[_POSITION] for line in lines]
        assert places == sorted(places), "an output is not in input order"
        verdicts |= {line[_POSITION]: _verdict(line) for line in lines}
    assert sorted(verdicts) == list(range(len(records))), "a record is missing or repeated"
    return [(record, verdicts[n]) for n, record in enumerate(records)], report


def _read_lines(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _verdict(line: dict[str, Any]) -> Verdict | None:
    """The verdict a removed record's line carries (its similarities rounded to 4 places,
    as written); None for a kept one."""
    if "duplicate_of" not in line:
        return None
    assert line["matched_id"] == line["duplicate_of"]
    jaccard = line.get("jaccard")
    return Verdict(
        str(line["duplicate_of"]),
        float(line["similarity"]),
        str(line["duplicate_kind"]),
        int(line["cluster_size"]),
        float(jaccard) if jaccard is not None else None,
    )


def kept_ids(verdicts: Iterable[tuple[Record, Verdict | None]]) -> list[str]:
    return [record.id for record, verdict in verdicts if verdict is None]


def article(id: str, text: str, title: str | None = None) -> Record:
    return Record(id=id, text=text, source="test", title=title)


def replicated_samples(dest: Path, copies: int) -> int:
    """Write ``copies`` edited copies of each seed page into ``dest``; return characters written.

    Copy k changes a few words in a few long lines of every page and drops one line, so
    the run finds near duplicates as well as exact ones.
    """
    import random

    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for k in range(copies):
        for page in SAMPLE_FILES:
            lines = page.read_text("utf-8").split("\n")
            rng = random.Random(f"{k}/{page.name}")
            long_lines = [n for n, line in enumerate(lines) if len(line) > 200]
            for n in rng.sample(long_lines, min(3, len(long_lines))):
                words = lines[n].split(" ")
                words[rng.randrange(len(words))] = f"edit{k}"
                lines[n] = " ".join(words)
            if k and len(long_lines) > 3:
                del lines[rng.choice(long_lines)]
            text = "\n".join(lines)
            (dest / f"{k:02d}_{page.name}").write_text(text, encoding="utf-8")
            total += len(text)
    return total


#: The installed command, for tests that need a real process (signals, closed streams).
SCRIPT = Path(sys.executable).parent / "corpus-clean"


@contextlib.contextmanager
def started(*args: str | Path) -> Iterator[subprocess.Popen[bytes]]:
    """The installed command in a session of its own, reading stdin from the test;
    whatever is left of the session is killed at the end."""
    running = subprocess.Popen(
        [SCRIPT, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield running
    finally:
        for pid in session_members(running.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        running.wait()
        for stream in (running.stdin, running.stdout, running.stderr):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]


def child_processes(pid: int) -> list[int]:
    """The processes ``pid`` started (its pool's workers), from /proc."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def stop_with_workers(running: subprocess.Popen[bytes]) -> None:
    """Kill a run a test left running, its workers first, so that none outlives it."""
    if running.poll() is None:
        for worker in child_processes(running.pid):
            os.kill(worker, signal.SIGKILL)
        running.kill()
        running.communicate()


def session_members(session: int) -> list[int]:
    """Live (not zombie) processes of a session, found in /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state, _ppid, _group, sid = stat.rsplit(")", 1)[1].split()[:4]
        if int(sid) == session and state != "Z":
            members.append(int(entry.name))
    return members


def write(path: Path, data: bytes | str) -> Path:
    """A file of ``data`` (str as UTF-8), its folders made as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def jsonl(*objects: object) -> str:
    """JSONL lines of ``objects``, spelled as json.dumps spells them."""
    return "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects)
