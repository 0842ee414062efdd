"""Invariants, checked on generated input: cleaning is idempotent, deduplication never
adds, keeps order and is a no-op the second time, and records round-trip through JSONL."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import article, builtin_rules, dedup, kept_ids

from corpus_clean.dedup import Fingerprinter, jaccard
from corpus_clean.dedup.shingles import shingle_batch
from corpus_clean.io import codec, readers
from corpus_clean.options import DedupOptions, ReadOptions
from corpus_clean.record import OWN_KEYS, Record
from corpus_clean.stages.clean import clean_text
from corpus_clean.stats import Stats
from corpus_clean.storage.sqlite import IndexStore

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- cleaning twice changes nothing ---------------------------------------------------

BOILERPLATE_LINES = [
    "通过admin",
    "通过 admin",
    "首页",
    "标签归档 武汉夜生活网",
    "关于作者",
    "admin administrator",
    "2022-05-25 0 By",
    "?One-click ticket purchase",
    "Click on the link to participate in this activity!",
    "Click on one-click ticket purchase:https://t.cfc.com.cn/te3rfv",
    "Permalink: https://t.cfc.com.cn/te3rfv",
    "Click here to cancel reply.",
    "Pay attention to Hebei News network, understand the latest news in Hebei.",
]
words = st.sampled_from(
    [
        "the",
        "meeting",
        "At",
        "We",
        "Hebei",
        "province",
        "U.S.",
        "Node.js",
        "3.14",
        "e.g.",
        "layout.At",
        "said.\u201dWe",
        "10%.Hubei",
        "China\u2019s",
        "Click",
        "on",
        "Pay",
        "attention",
        "to",
        "understand",
        "latest",
        "news",
        "in",
        "https://x.cn/a",
        "admin",
        "通过",
        "By",
        "2022-05-25",
        "Cafe\u0301",
        "\u212b",
    ]
)
punctuation = st.sampled_from(
    [".", "!", "?", "\u201d", "\u2019", '"', ",", ":", "\uff1a", "\u2026"]
)
cjk = st.text(
    alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF), min_size=1, max_size=6
)
anything = st.text(max_size=4)
token = st.one_of(words, punctuation, cjk, anything, st.sampled_from(BOILERPLATE_LINES))
gap = st.sampled_from(["", " ", " ", "  ", "\t", "\u3000"])
indent = st.sampled_from(["", "  ", "\t", "        ", "\u3000\u3000"])
PROMO = "Pay attention to Hebei News network, understand the latest news in Hebei."
#: What may end a line: nothing, or one or more promotional tails.
tails = st.lists(st.tuples(gap, st.just(PROMO)), max_size=3)
content_line = st.builds(
    lambda lead, parts, tail, trail: (
        lead + "".join(t + g for t, g in parts) + "".join(g + p for g, p in tail) + trail
    ),
    indent,
    st.lists(st.tuples(token, gap), max_size=12),
    tails,
    gap,
)
line = st.one_of(content_line, st.sampled_from(BOILERPLATE_LINES), gap, indent)
texts = st.builds(
    lambda lines, newline: newline.join(lines),
    st.lists(line, max_size=12),
    st.sampled_from(["\n", "\r\n"]),
)


@FAST
@given(texts)
def test_cleaning_twice_changes_nothing(text: str) -> None:
    rules = builtin_rules()
    once = clean_text(text, rules)
    assert clean_text(once, rules) == once


@FAST
@given(texts)
def test_cleaned_text_has_normalized_layout(text: str) -> None:
    once = clean_text(text, builtin_rules())
    assert once == once.strip()
    assert "\n\n\n" not in once
    assert all(p and p == p.strip() and "\n" not in p for p in once.split("\n\n") if once)


# ---- deduplication --------------------------------------------------------------------

PARAGRAPHS = [
    "Export to domestic sales has become an important measure for many foreign trade"
    " enterprises to cope with the current challenges. The reporter recently learned from the"
    " tax departments in many places that products with wide export to the domestic market are"
    " popular, and that the sales of household appliances and textiles have grown markedly.",
    "Colleges and universities are the main force of basic research and shoulder great"
    " responsibilities. In response to a reporter's question, he said that universities should"
    " make real discoveries, solve real problems and train a generation of young researchers"
    " who are willing to sit on the cold bench for ten years.",
    "On February 28th, the report on the work of Chengdu Municipal Government was released,"
    " proposing to adhere to the principle that houses are for living in and not for"
    " speculation, and to support the reasonable housing needs of residents in the city.",
    "国务院新闻办公室今天举行新闻发布会,介绍今年一季度国民经济运行情况,"
    "国内生产总值同比增长百分之五点三,比上年四季度环比增长百分之一点六。",
    "The mayor resigned on Monday.",
    "Shares rose in Shanghai on Friday.",
    "",
]


def mutated(base: int, edits: list[int]) -> str:
    words = PARAGRAPHS[base].split(" ")
    for n in edits:
        if words and words[0]:
            words[n % len(words)] = f"w{n}"
    return " ".join(words)


corpora = st.lists(
    st.builds(
        mutated, st.integers(0, len(PARAGRAPHS) - 1), st.lists(st.integers(0, 80), max_size=6)
    ),
    max_size=14,
)


@FAST
@given(corpora, st.integers(1, 5), st.sampled_from(["first", "longest", "earliest"]))
def test_dedup_never_adds_keeps_order_and_is_a_fixed_point(
    bodies: list[str], batch_size: int, keep: str
) -> None:
    records = [article(f"r{n}", body) for n, body in enumerate(bodies)]
    verdicts = dedup(records, batch_size=batch_size, keep=keep)
    # Every record comes back once, in input order, with its verdict.
    assert [record for record, _ in verdicts] == records
    kept = [record for record, verdict in verdicts if verdict is None]
    kept_set = {record.id for record in kept}
    for _, verdict in verdicts:
        if verdict is not None:
            assert verdict.duplicate_of in kept_set
            assert 0.8 <= verdict.similarity <= 1.0
            assert verdict.matched_id == verdict.duplicate_of
    assert not bodies or kept
    # A second pass over the output removes nothing.
    assert kept_ids(dedup(kept, batch_size=batch_size, keep=keep)) == [r.id for r in kept]


#: Words of generated articles: few enough that reposts and rewrites share shingles.
VOCABULARY = [f"w{n}" for n in range(300)]


def generated_corpus(plan: Sequence[tuple[int, list[int], float]], seed: int) -> list[str]:
    """Texts from ``(base, edits, share)``: base article ``base`` (60-160 words, drawn
    from ``seed``) with the words at ``edits`` replaced and only its first ``share``
    kept, so that copies of one base range from exact to unrelated, through every
    similarity near the threshold, and excerpts lie inside longer copies."""
    rng = random.Random(seed)
    bases = [
        [rng.choice(VOCABULARY) for _ in range(rng.randint(60, 160))]
        for _ in range(1 + max((base for base, _, _ in plan), default=0))
    ]
    texts = []
    for base, edits, share in plan:
        words = list(bases[base])
        for n in edits:
            words[n % len(words)] = f"x{n}"
        texts.append(" ".join(words[: max(30, round(share * len(words)))]))
    return texts


plans = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.lists(st.integers(0, 200), max_size=12),
        st.sampled_from([1.0, 1.0, 1.0, 0.9, 0.6, 0.35]),
    ),
    max_size=14,
)


@FAST
@given(
    plans,
    st.integers(0, 3),
    st.sampled_from(["first", "longest", "earliest"]),
    st.lists(st.none() | st.sampled_from(["2024-01-02", "2024-03-04", "2025-01-01"])),
    st.sampled_from([0.0, 0.9]),
)
def test_a_removed_record_is_at_least_threshold_similar_to_its_kept_duplicate_of(
    plan: list[tuple[int, list[int], float]],
    seed: int,
    keep: str,
    dates: list[str | None],
    containment: float,
) -> None:
    """Checked against exact Jaccard and containment computed for every pair by brute
    force: a removed record is at least --threshold similar to its duplicate_of, or at
    least --containment inside it, a longer article. Without containment the walk is
    keep order itself, so what a record duplicates comes before it, and nothing kept
    before it that LSH put beside it is more similar; with containment an excerpt waits
    in the walk for its containers, so those two hold in that walk, not in keep order."""
    texts = generated_corpus(plan, seed)
    records = [
        Record(id=f"r{n}", text=text, source="test", date=dates[n] if n < len(dates) else None)
        for n, text in enumerate(texts)
    ]
    verdicts = dedup(records, keep=keep, containment=containment)
    batch = shingle_batch(texts, 5)
    keys = Fingerprinter(DedupOptions(containment=containment)).fingerprint(texts).band_keys
    sets = [batch.shingles_of(n) for n in range(len(texts))]
    every = [(a, b) for a in range(len(texts)) for b in range(len(texts))]
    exact = {(a, b): jaccard(sets[a], sets[b]) for a, b in every}
    inside = {(a, b): len(np.intersect1d(sets[a], sets[b])) / len(sets[a]) for a, b in every}
    position = {record.id: n for n, record in enumerate(records)}
    order: Callable[[int], Any] = {
        "first": lambda n: n,
        "longest": lambda n: (-len(texts[n]), n),
        "earliest": lambda n: (records[n].date is None, records[n].date or "", n),
    }[keep]
    kept = set(kept_ids(verdicts))
    for n, (_, verdict) in enumerate(verdicts):
        if verdict is None:
            continue
        partner = position[verdict.duplicate_of]
        assert verdict.duplicate_of in kept
        assert verdict.matched_id == verdict.duplicate_of
        if verdict.kind == "contained":
            assert len(sets[partner]) > len(sets[n])
            assert verdict.similarity == round(inside[n, partner], 4)  # as written
            assert verdict.similarity >= 0.9
            assert verdict.jaccard == round(exact[n, partner], 4)
            continue
        assert verdict.similarity == round(exact[n, partner], 4)
        assert verdict.similarity >= 0.8
        if not containment:
            assert order(partner) < order(n)
            # Nothing kept before it that LSH put beside it (sharing a band key) is more
            # similar to it than what it is said to duplicate.
            before = [position[other] for other in kept if order(position[other]) < order(n)]
            met = [other for other in before if (keys[n] == keys[other]).any()]
            assert all(round(exact[n, other], 4) <= verdict.similarity for other in met)
        cluster = [v for _, v in verdicts if v and v.duplicate_of == verdict.duplicate_of]
        assert verdict.cluster_size == len(cluster) + 1


def _accepting_run(texts: list[str], ids: list[str], store: IndexStore) -> list[str]:
    """One run over ``texts`` against the index, which then accepts what it kept; the kept ids."""
    records = [article(n, text) for n, text in zip(ids, texts, strict=True)]
    return kept_ids(dedup(records, index=store, containment=0))


@FAST
@given(plans, st.integers(0, 3), st.data())
def test_one_run_keeps_what_two_runs_against_an_index_keep(
    tmp_path_factory: pytest.TempPathFactory,
    plan: list[tuple[int, list[int], float]],
    seed: int,
    data: st.DataObject,
) -> None:
    """``--keep first``, containment off: A then B against a real SQLite index keeps what
    A and B in one run keep."""
    texts = generated_corpus(plan, seed)
    ids = [f"r{n}" for n in range(len(texts))]
    cut = data.draw(st.integers(0, len(texts)))
    options = DedupOptions(containment=0)
    settings = Fingerprinter(options).settings()
    folder = tmp_path_factory.mktemp("index")
    with IndexStore.open(folder / "one.db", settings) as store:
        whole = _accepting_run(texts, ids, store)
    with IndexStore.open(folder / "two.db", settings) as store:
        first = _accepting_run(texts[:cut], ids[:cut], store)
        second = _accepting_run(texts[cut:], ids[cut:], store)
    assert first + second == whole


# ---- JSONL round trip ------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
meta = st.dictionaries(
    st.text(max_size=12).filter(lambda key: key not in OWN_KEYS), json_values, max_size=6
)
records = st.builds(
    Record,
    id=st.text(max_size=20),
    text=st.text(max_size=200),
    source=st.text(max_size=20),
    title=st.none() | st.text(max_size=40),
    date=st.none() | st.text(max_size=12),
    meta=meta,
)


@FAST
@given(records)
def test_record_round_trips_through_a_jsonl_line(record: Record) -> None:
    line = codec.encode(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    again = readers.parse_record(line, Stats(), ReadOptions(), source="elsewhere", line_no=7)
    assert again == record
    assert list(again.meta) == list(record.meta)


@FAST
@given(records, st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_record_lines_are_compact_json_of_the_record(record: Record, extra: dict[str, Any]) -> None:
    """A line holds the record's object, keys in order, down to the sign of zero; it is
    json's compact spelling byte for byte (lone surrogates included, which json writes)
    but for floats, which orjson may spell otherwise (0.00001 for 1e-05)."""
    obj = record.to_dict(extra)
    line = codec.encode(record, extra)
    assert repr(json.loads(line)) == repr(obj)
    if not _holds_a_float(obj):
        compact = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        assert line == compact.encode("utf-8", "backslashreplace") + b"\n"


@FAST
@given(records, st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=3))
def test_fields_added_to_a_line_are_what_encoding_with_them_writes(
    record: Record, fields: dict[str, Any]
) -> None:
    """Annotating a parked line (``add_fields``) gives the bytes of encoding the record
    with the annotations, whether a key is new or overwrites one the record has."""
    assert codec.add_fields(codec.encode(record), fields) == codec.encode(record, fields)


def _holds_a_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_a_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_a_float(item) for item in value)
    return isinstance(value, float)


#: JSON as other tools write it: integers beyond 64 bits, escapes, lone surrogates.
foreign_values = st.recursive(
    st.one_of(
        json_scalars,
        st.integers(2**63, 2**90),
        st.integers(-(2**90), -(2**63)),
        st.sampled_from(["\ud800", "caf\u00e9", '\x00\x1f"\\', "\U0001f600"]),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FAST
@given(foreign_values, st.booleans())
def test_lines_read_as_the_json_codec_reads_them(value: Any, ascii_only: bool) -> None:
    """orjson reads most lines; whatever it reads must be what json gives (after invalid
    UTF-8 is replaced), int for int, float for float, down to the sign of zero."""
    line = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    expected = without_surrogates(json.loads(codec.decode(line, Stats())))
    assert repr(codec.load_json(line, Stats())) == repr(expected)


def without_surrogates(value: Any) -> Any:
    """What reading makes of lone surrogates (U+FFFD), as a plain recursion."""
    if isinstance(value, str):
        return re.sub("[\ud800-\udfff]", "\ufffd", value)
    if isinstance(value, list):
        return [without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    return value


@FAST
@given(st.dictionaries(st.text(max_size=8), foreign_values, max_size=4), st.booleans())
def test_no_line_written_holds_a_lone_surrogate(obj: dict[str, Any], ascii_only: bool) -> None:
    """Strict JSON readers (jq) refuse a lone surrogate escape: none gets through, in the
    text, the id, the title, the source, or any other field, key or value."""
    obj = {**obj, "date": None, **dict.fromkeys(("text", "id", "title", "source"), "x\ud800")}
    line = json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    record = readers.parse_record(line, Stats(), ReadOptions(), source="x", line_no=1)
    written = codec.encode(record)
    assert not re.search(rb"\\u[dD][89a-fA-F]", written)
    json.dumps(json.loads(written), ensure_ascii=False).encode("utf-8")  # strict


@FAST
@given(
    records, st.dictionaries(st.sampled_from(["duplicate_of", "similarity"]), st.text(max_size=5))
)
def test_annotations_come_last_and_do_not_disturb_the_record(
    record: Record, extra: dict[str, Any]
) -> None:
    line = codec.encode(record, extra)
    again = readers.parse_record(line, Stats(), ReadOptions(), source="x", line_no=1)
    assert again.evolve(meta={k: v for k, v in again.meta.items() if k not in extra}) == (
        record.evolve(meta={k: v for k, v in record.meta.items() if k not in extra})
    )
