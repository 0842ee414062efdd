"""Short articles reposted with one line edited: how many of their lines learning removes.

A corpus of short records (three to eight lines of three to seven made-up words: no line
is long enough to tell copies by), spread over 100 hosts; a share of them (``--reposts``)
repost an earlier record with one word added to one of its lines. Nothing in it is
boilerplate, so every line learning removes is an article's. One command::

    python benchmarks/short_reposts.py [--records 200000] [--reposts 0.05] [--keep DIR]

runs ``corpus-clean clean`` of this checkout (``-j 1``, through ``measure.py``) and prints
the lines given and written, the lines removed as learned boilerplate, seconds and peak
RSS. Fixed seed: the same arguments give the same corpus.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORDS = [f"w{i}" for i in range(5000)]


def write_corpus(path: Path, records: int, reposts: float, seed: int = 1) -> int:
    """The corpus as JSONL; returns how many lines it holds."""
    rnd = random.Random(seed)
    originals: list[list[str]] = []
    lines_given = 0
    with path.open("w", encoding="utf-8") as handle:
        for n in range(records):
            if originals and rnd.random() < reposts:
                lines = list(rnd.choice(originals))
                i = rnd.randrange(len(lines))
                lines[i] += " " + rnd.choice(WORDS)
            else:
                lines = [
                    " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 7)))
                    for _ in range(rnd.randint(3, 8))
                ]
                if len(originals) < records // 10:
                    originals.append(lines)
            lines_given += len(lines)
            url = f"http://h{rnd.randrange(100)}.example/{n}"
            handle.write(json.dumps({"id": str(n), "url": url, "text": "\n".join(lines)}) + "\n")
    return lines_given


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--reposts", type=float, default=0.05, help="share of reposts")
    parser.add_argument("--keep", metavar="DIR", help="keep the corpus and output here")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="short-reposts-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        corpus, out, usage, report = (
            folder / name for name in ("short.jsonl", "out.jsonl", "usage.json", "report.json")
        )
        lines_given = write_corpus(corpus, args.records, args.reposts)
        command = [str(Path(sys.executable).with_name("corpus-clean")), "clean", str(corpus)]
        command += ["-q", "-j", "1", "-o", str(out), "--report", str(report)]
        measure = [sys.executable, str(HERE / "measure.py"), str(usage), "--"]
        subprocess.run([*measure, *command], check=True)
        measured = json.loads(usage.read_text())
        written = sum(
            len(json.loads(raw)["text"].split("\n\n")) for raw in out.read_bytes().splitlines()
        )
        removed = json.loads(report.read_text())["boilerplate_removed"]
        print(
            f"{args.records:,} records, {lines_given:,} lines: {written:,} written, "
            f"{removed:,} removed as learned boilerplate; {measured['seconds']:.2f} s, "
            f"{measured['max_rss_kib'] // 1024:,} MB peak RSS"
        )
    finally:
        if not args.keep:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
