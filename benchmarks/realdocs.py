"""Deduplication against exact truth on real documents that nobody here wrote.

The docs, READMEs and changelogs in the sdists of successive released versions of a few
PyPI packages are real near-duplicates of every kind: unchanged files, small edits, a
changelog that grows by a section each release (an excerpt of its successor), a page
split or merged. The truth is exact: word 5-gram sets of every document (tokenized as
corpus-clean does: lowercased, runs of letters and digits, each Han/kana/Thai character
a word), no hashing, Jaccard similarity and containment of every pair that shares a
shingle (the others have both at 0).

Reported: recall at Jaccard >= T (pairs of which ``corpus-clean dedup`` does not keep
both), recall at containment >= C (the smaller set's shingles inside the larger), both
over all pairs and over the pairs the containment keys are tuned for (the smaller
with at least 20 shingles, a size ratio of at least 0.3; of these, those below Jaccard
T are the ones only containment finds), and the precision of every
``duplicate_of`` pair the tool writes: right when the removed record is at least T
similar to it or at least C inside it (and it is the longer).

    .venv/bin/python benchmarks/realdocs.py [--cache /work/realdocs-cache] [--out results.json]

Sdists are downloaded once with ``pip download --no-deps --no-binary :all:`` into the
cache folder (outside the repository; never commit them). Left out on purpose, kept
aside for an independent check: click, Flask, requests, attrs, Jinja2, sqlite-utils,
rich, urllib3, the Python standard library and Debian copyright files.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

#: Package -> versions, oldest first: nine packages whose sdists carry docs and changelogs.
PACKAGES: dict[str, tuple[str, ...]] = {
    "packaging": ("20.9", "21.0", "21.3", "22.0", "23.0", "23.1", "23.2", "24.0"),
    "pluggy": ("0.13.1", "1.0.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"),
    "tomli": ("1.2.3", "2.0.0", "2.0.1", "2.0.2", "2.1.0", "2.2.1"),
    "more-itertools": ("8.12.0", "9.0.0", "9.1.0", "10.0.0", "10.1.0", "10.2.0", "10.3.0"),
    "cachetools": ("4.2.4", "5.0.0", "5.2.0", "5.3.0", "5.3.3", "5.4.0", "5.5.0"),
    "platformdirs": ("2.6.2", "3.0.0", "3.5.0", "3.10.0", "4.0.0", "4.2.0", "4.3.6"),
    "filelock": ("3.8.0", "3.10.0", "3.12.0", "3.13.1", "3.15.4", "3.16.1"),
    "pyparsing": ("3.0.9", "3.1.0", "3.1.1", "3.1.2", "3.1.4", "3.2.0"),
    "wheel": ("0.37.1", "0.38.4", "0.40.0", "0.41.2", "0.42.0", "0.43.0", "0.44.0"),
}
EXCLUDED = {"click", "flask", "requests", "attrs", "jinja2", "sqlite-utils", "rich", "urllib3"}
#: Files taken from an sdist: top-level READMEs, changelogs and the like, and docs/ pages.
TOP_LEVEL = re.compile(r"(readme|change|history|news|release|authors|contributing)", re.I)
DOC_SUFFIXES = {".rst", ".md", ".txt"}
MAX_BYTES = 1 << 20
SHINGLE = 5
#: As in corpus-clean's shingles.py: every character of these scripts is a word.
SOLO = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORDS = re.compile(f"[{SOLO}]|[^\\W_{SOLO}]+")
HERE = Path(__file__).resolve().parent


def download(cache: Path) -> list[tuple[str, str, Path]]:
    """(package, version, sdist) for every release, downloading what the cache lacks."""
    cache.mkdir(parents=True, exist_ok=True)
    found = []
    for package, versions in PACKAGES.items():
        assert package.lower() not in EXCLUDED
        for version in versions:
            sdist = _cached(cache, package, version)
            if sdist is None:
                print(f"downloading {package}=={version}", file=sys.stderr)
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        "--no-binary",
                        ":all:",
                        f"{package}=={version}",
                        "-d",
                        str(cache),
                    ],
                    check=False,
                    capture_output=True,
                )
                sdist = _cached(cache, package, version)
            if sdist is None:
                print(f"  {package}=={version}: no sdist, left out", file=sys.stderr)
                continue
            found.append((package, version, sdist))
    return found


def _cached(cache: Path, package: str, version: str) -> Path | None:
    stems = {f"{name}-{version}" for name in (package, package.replace("-", "_"))}
    for path in sorted(cache.iterdir()):
        for suffix in (".tar.gz", ".zip"):
            if path.name.endswith(suffix) and path.name[: -len(suffix)].lower() in stems:
                return path
    return None


def documents(package: str, version: str, sdist: Path) -> list[dict[str, str]]:
    """The docs of one sdist as records: id ``package==version:path``."""
    members: list[tuple[str, bytes]] = []
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as archive:
            for info in archive.infolist():
                if not info.is_dir() and info.file_size <= MAX_BYTES:
                    members.append((info.filename, archive.read(info)))
    else:
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.size <= MAX_BYTES:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        members.append((member.name, handle.read()))
    records = []
    for name, data in sorted(members):
        inside = PurePosixPath(*PurePosixPath(name).parts[1:])  # below "package-version/"
        top = len(inside.parts) == 1 and TOP_LEVEL.match(inside.name)
        doc = inside.parts[:1] == ("docs",) and inside.suffix in DOC_SUFFIXES
        if not (top or doc) or inside.name.lower().startswith("license"):
            continue
        text = data.decode("utf-8", "replace")
        if text.strip():
            records.append({"id": f"{package}=={version}:{inside}", "text": text})
    return records


def shingle_sets(texts: list[str]) -> list[np.ndarray]:
    """Each text's word 5-grams as sorted ids, numbered exactly (a dict of tuples, no
    hash standing in for a shingle); a text of fewer words is one shingle of them all."""
    numbering: dict[tuple[str, ...], int] = {}
    sets = []
    for text in texts:
        words = WORDS.findall(text.lower())
        grams = (
            {tuple(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}
            if len(words) >= SHINGLE
            else ({tuple(words)} if words else set())
        )
        ids = [numbering.setdefault(gram, len(numbering)) for gram in grams]
        sets.append(np.unique(np.array(ids, dtype=np.int64)))
    return sets


def overlaps(sets: list[np.ndarray]) -> dict[tuple[int, int], int]:
    """Shared shingles of every pair (a < b) that shares any, counted exactly through
    an inverted index."""
    owners = np.concatenate([np.full(len(s), n, np.int64) for n, s in enumerate(sets)])
    values = np.concatenate(sets)
    order = np.argsort(values, kind="stable")
    values, owners = values[order], owners[order]
    bounds = np.flatnonzero(np.diff(values)) + 1
    postings = np.split(owners, bounds)
    by_doc: list[list[np.ndarray]] = [[] for _ in sets]
    for posting in postings:
        if len(posting) > 1:
            for n in posting.tolist():
                by_doc[n].append(posting)
    shared: dict[tuple[int, int], int] = {}
    for a, lists in enumerate(by_doc):
        if not lists:
            continue
        counts = np.bincount(np.concatenate(lists), minlength=len(sets))
        for b in np.flatnonzero(counts[a + 1 :]).tolist():
            shared[a, a + 1 + b] = int(counts[a + 1 + b])
    return shared


def run_dedup(corpus: Path, out: Path, args: argparse.Namespace) -> tuple[list[str], float]:
    """Removed records as (id, duplicate_of) lines; and the wall seconds."""
    binary = Path(sys.executable).parent / "corpus-clean"
    dups = out / "removed.jsonl"
    argv = [
        str(binary),
        "dedup",
        str(corpus),
        "-o",
        str(out / "kept.jsonl"),
        "--duplicates",
        str(dups),
        "--quiet",
        "--threshold",
        str(args.threshold),
        "--containment",
        str(args.tool_containment),
    ]
    began = time.perf_counter()
    subprocess.run(argv, check=True)
    return dups.read_text("utf-8").splitlines(), time.perf_counter() - began


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    records = [doc for release in download(args.cache) for doc in documents(*release)]
    ids = [record["id"] for record in records]
    sets = shingle_sets([record["text"] for record in records])
    sizes = np.array([len(s) for s in sets])
    began = time.perf_counter()
    shared = overlaps(sets)
    truth_seconds = time.perf_counter() - began
    with tempfile.TemporaryDirectory(prefix="corpus-clean-realdocs-") as tmp:
        corpus = Path(tmp) / "docs.jsonl"
        corpus.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8"
        )
        if args.save_corpus:
            args.save_corpus.write_bytes(corpus.read_bytes())
        if args.score:  # another tool's (or version's) duplicates file for this corpus
            lines, seconds = args.score.read_text("utf-8").splitlines(), 0.0
        else:
            lines, seconds = run_dedup(corpus, Path(tmp), args)
    where = {art_id: n for n, art_id in enumerate(ids)}
    verdicts = {where[r["id"]]: r for r in map(json.loads, lines)}

    def jaccard(a: int, b: int) -> float:
        common = shared.get((min(a, b), max(a, b)), 0)
        union = sizes[a] + sizes[b] - common
        return common / union if union else 1.0

    def inside(a: int, b: int) -> float:  # a's shingles inside b
        common = shared.get((min(a, b), max(a, b)), 0)
        return common / sizes[a] if sizes[a] else 0.0

    def recall(pairs: list[tuple[int, int]]) -> dict[str, Any]:
        merged = [a in verdicts or b in verdicts for a, b in pairs]
        return {"pairs": len(pairs), "recall": sum(merged) / len(pairs) if pairs else None}

    near = [pair for pair in shared if jaccard(*pair) >= args.threshold]
    contained = []
    for a, b in shared:
        small, large = (a, b) if sizes[a] <= sizes[b] else (b, a)
        if sizes[small] and inside(small, large) >= args.containment:
            contained.append((small, large))
    tuned = [(s, big) for s, big in contained if sizes[s] >= 20 and sizes[s] >= 0.3 * sizes[big]]
    below = [(s, big) for s, big in tuned if jaccard(s, big) < args.threshold]
    wrong = []
    for n, verdict in sorted(verdicts.items()):
        kept = where[verdict["duplicate_of"]]
        ok = jaccard(n, kept) >= args.threshold - 1e-9 or (
            sizes[kept] > sizes[n] and inside(n, kept) >= args.containment - 1e-9
        )
        if not ok:
            wrong.append(
                {
                    "id": ids[n],
                    "duplicate_of": ids[kept],
                    "said": verdict["similarity"],
                    "jaccard": round(jaccard(n, kept), 4),
                    "containment": round(inside(n, kept), 4),
                }
            )
    return {
        "packages": {p: v for p, v in PACKAGES.items()},
        "documents": len(records),
        "bytes": sum(len(r["text"].encode()) for r in records),
        "threshold": args.threshold,
        "containment": args.containment,
        "tool_containment": args.tool_containment,
        "removed": len(verdicts),
        "by_kind": {
            kind: sum(v["duplicate_kind"] == kind for v in verdicts.values())
            for kind in sorted({v["duplicate_kind"] for v in verdicts.values()})
        },
        "recall_at_jaccard": recall(near),
        "recall_at_containment": recall(contained),
        "recall_at_containment_tuned_scope": recall(tuned),
        "recall_at_containment_tuned_scope_below_threshold": recall(below),
        "precision_of_duplicate_of": 1 - len(wrong) / len(verdicts) if verdicts else None,
        "wrong_pairs": wrong,
        "missed_containment_examples": [
            {
                "smaller": ids[s],
                "larger": ids[big],
                "containment": round(inside(s, big), 4),
                "jaccard": round(jaccard(s, big), 4),
            }
            for s, big in below
            if s not in verdicts and big not in verdicts
        ][:20],
        "dedup_seconds": round(seconds, 2),
        "truth_seconds": round(truth_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/realdocs-cache"))
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--containment", type=float, default=0.9, help="truth's C (and the tool's)")
    parser.add_argument("--tool-containment", type=float, help="give the tool another C (0: off)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--save-corpus", type=Path, help="keep the corpus (JSONL) here")
    parser.add_argument("--score", type=Path, help="score this duplicates file instead of a run")
    args = parser.parse_args()
    if args.tool_containment is None:
        args.tool_containment = args.containment
    if HERE.parent in args.cache.resolve().parents:
        sys.exit("keep the download cache outside the repository")
    figures = evaluate(args)
    shown = {k: v for k, v in figures.items() if k not in ("wrong_pairs", "packages")}
    print(json.dumps(shown, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
