"""Shared helpers: the seed pages, and each library stage driven directly (no click)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from corpus_clean.clean import Cleaner, RuleSet, load_rules
from corpus_clean.dedup import Deduplicator, Fingerprinter, Verdict
from corpus_clean.io.inputs import resolve_inputs
from corpus_clean.io.readers import read_records
from corpus_clean.options import CleanOptions, DedupOptions, ReadOptions, SplitOptions
from corpus_clean.record import Record
from corpus_clean.split import PageSplitter
from corpus_clean.stats import Stats

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


def dedup(
    records: Sequence[Record],
    stats: Stats | None = None,
    *,
    batch_size: int | None = None,
    **options: object,
) -> list[tuple[Record, Verdict | None]]:
    """Every record with its verdict (None: kept), fingerprinted in batches of
    ``batch_size`` records (default: one batch), as the pipeline hands them over."""
    opts = DedupOptions(**options)  # type: ignore[arg-type]
    fingerprinter = Fingerprinter(opts)
    size = batch_size or max(len(records), 1)
    batches = [list(records[i : i + size]) for i in range(0, len(records), size)]
    fed = [
        (batch, fingerprinter.fingerprint([r.text for r in batch], [r.date for r in batch]))
        for batch in batches
    ]
    stage = Deduplicator(opts)
    return list(stage.run(fed, stats if stats is not None else Stats()))


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
