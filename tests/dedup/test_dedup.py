"""Deduplication: exact and near duplicates, clusters, keep policy, Chinese text, and
signatures that are datasketch's own."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from datasketch import LeanMinHash, MinHash, MinHashLSH
from support import article, dedup, dedup_run, kept_ids, seed_articles

import corpus_clean
from corpus_clean.cli import cli
from corpus_clean.dedup import DuplicateFinder, Fingerprinter, Verifier, jaccard
from corpus_clean.dedup.annotate import annotate
from corpus_clean.dedup.candidates import candidate_pairs
from corpus_clean.dedup.decide import decide, exact_groups, keep_ranks, walk_order
from corpus_clean.dedup.minhash import SCHEME, MinHasher
from corpus_clean.dedup.shingles import fmix64, shingle_batch
from corpus_clean.dedup.store import ShingleStore
from corpus_clean.options import (
    DedupOptions,
    containment_detection,
    containment_keys,
    detection_probability,
    lsh_bands,
)
from corpus_clean.record import Record
from corpus_clean.stats import Stats
from corpus_clean.storage.sqlite import IndexStore


@pytest.fixture(scope="module")
def seeds() -> list[Record]:
    return seed_articles()


def by_title(seeds: list[Record], start: str) -> str:
    return next(a.text for a in seeds if (a.title or "").startswith(start))


def replace_words(text: str, positions: list[int], tag: str = "edited") -> str:
    words = text.split(" ")
    for n in positions:
        words[n] = f"{tag}{n}"
    return " ".join(words)


def true_jaccard(a: str, b: str) -> float:
    batch = shingle_batch([a, b], 5)
    return jaccard(batch.shingles_of(0), batch.shingles_of(1))


# ---- the seed articles -------------------------------------------------------------


def test_seed_reposts_are_the_five_removed(seeds: list[Record]) -> None:
    verdicts, report = dedup_run(seeds)
    removed = {
        _name(record.id): (_name(verdict.duplicate_of), verdict.kind, verdict.similarity)
        for record, verdict in verdicts
        if verdict is not None
    }
    p000, p001, p002 = (
        "000_27f52f622c7b214e.txt",
        "001_ad5554182b99526e.txt",
        "002_75b1cbe0efa3536a.txt",
    )
    assert removed == {
        f"{p001}#1": (f"{p000}#2", "exact", 1.0),  # Tianjin plan
        f"{p002}#7": (f"{p000}#1", "exact", 1.0),  # Liaoning
        f"{p002}#8": (f"{p000}#2", "exact", 1.0),  # Tianjin plan
        f"{p002}#9": (f"{p000}#3", "exact", 1.0),  # chip fence
        f"{p002}#10": (f"{p000}#7", "exact", 1.0),  # new energy vehicles
    }
    assert len(kept_ids(verdicts)) == 18
    counts = report["counts"]
    assert (counts["kept"], counts["duplicates_exact"], counts["duplicates_near"]) == (18, 5, 0)


def _name(record_id: str) -> str:
    return record_id.rsplit("/", 1)[-1]


def test_verdicts_come_back_in_input_order_one_per_record(seeds: list[Record]) -> None:
    verdicts = dedup(seeds, batch_size=4)
    assert [record for record, _ in verdicts] == seeds


def test_batches_do_not_change_the_verdicts(seeds: list[Record]) -> None:
    whole = [(r.id, v) for r, v in dedup(seeds)]
    for size in (1, 3, 7):
        assert [(r.id, v) for r, v in dedup(seeds, batch_size=size)] == whole


# ---- exact and near duplicates -----------------------------------------------------


def test_exact_duplicate_is_removed(seeds: list[Record]) -> None:
    text = by_title(seeds, "Ministry of Education")
    other = "Another story. " * 30
    verdicts = dedup([article("a", text), article("b", other), article("c", text)])
    assert kept_ids(verdicts) == ["a", "b"]
    verdict = verdicts[2][1]
    assert verdict is not None
    assert (verdict.duplicate_of, verdict.matched_id, verdict.kind, verdict.similarity) == (
        "a",
        "a",
        "exact",
        1.0,
    )


def test_near_duplicate_with_a_few_words_changed_is_caught(seeds: list[Record]) -> None:
    original = by_title(seeds, "New media")
    repost = replace_words(original, [40, 200, 400, 600, 700])
    assert original != repost
    verdicts = dedup([article("original", original), article("repost", repost)])
    assert kept_ids(verdicts) == ["original"]
    verdict = verdicts[1][1]
    assert verdict is not None
    assert (verdict.duplicate_of, verdict.kind) == ("original", "near")
    assert 0.8 <= verdict.similarity < 1.0
    assert verdict.similarity == round(true_jaccard(original, repost), 4)
    fields = {"duplicate_of", "similarity", "matched_id", "duplicate_kind", "cluster_size"}
    assert set(verdict.as_fields()) == fields


def test_repost_with_a_paragraph_cut_is_caught(seeds: list[Record]) -> None:
    original = by_title(seeds, "Multi-local tax")
    paragraphs = original.split("\n\n")
    repost = "\n\n".join(paragraphs[:-1])
    verdicts = dedup([article("original", original), article("repost", repost)])
    assert kept_ids(verdicts) == ["original"]


def test_different_articles_are_not_removed(seeds: list[Record]) -> None:
    a = by_title(seeds, "Many places intensively promote housing")
    b = by_title(seeds, "It is no longer a spare tire")
    assert kept_ids(dedup([article("a", a), article("b", b)])) == ["a", "b"]


def test_article_below_the_threshold_is_kept(seeds: list[Record]) -> None:
    original = by_title(seeds, "New media")
    rewritten = replace_words(original, list(range(5, 760, 12)))
    assert 0.3 < true_jaccard(original, rewritten) < 0.8
    assert kept_ids(dedup([article("a", original), article("b", rewritten)])) == ["a", "b"]


def test_a_chain_does_not_remove_what_is_not_close_to_a_kept_article(
    seeds: list[Record],
) -> None:
    base = " ".join(by_title(seeds, "China\u2019s Energy").split()[:300])
    a = base
    b = replace_words(a, [20, 40, 60, 80, 100], "first")
    c = replace_words(b, [180, 200, 220, 240, 260], "second")
    assert true_jaccard(a, b) >= 0.8
    assert true_jaccard(b, c) >= 0.8
    assert true_jaccard(a, c) < 0.8  # only the chain through B connects A and C
    verdicts = dedup([article("A", a), article("B", b), article("C", c)])
    # B is removed as A's duplicate, so C is compared with A alone: too far, kept.
    assert kept_ids(verdicts) == ["A", "C"]
    found = {r.id: (v.duplicate_of, v.matched_id, v.similarity) for r, v in verdicts if v}
    assert found == {"B": ("A", "A", round(true_jaccard(a, b), 4))}


def test_duplicate_of_is_the_most_similar_kept_article(seeds: list[Record]) -> None:
    base = " ".join(by_title(seeds, "China\u2019s Energy").split()[:300])
    a = base
    edits = list(range(20, 300, 35))
    c = replace_words(a, edits, "far")  # kept: too far from A
    b = replace_words(a, edits[:5], "far")  # close to both, closer to C
    assert true_jaccard(a, c) < 0.8
    assert 0.8 <= true_jaccard(a, b) < true_jaccard(c, b)
    verdicts = dedup([article("A", a), article("C", c), article("B", b)])
    assert kept_ids(verdicts) == ["A", "C"]
    verdict = verdicts[2][1]
    assert verdict is not None
    assert (verdict.duplicate_of, verdict.similarity) == ("C", round(true_jaccard(c, b), 4))


def test_an_article_with_hundreds_of_copies_costs_one_comparison_a_copy(
    seeds: list[Record],
) -> None:
    original = by_title(seeds, "New media")
    copies = [replace_words(original, [n, n + 300]) for n in range(1, 301)]
    verdicts, report = dedup_run(
        [article("original", original), *(article(f"c{n}", t) for n, t in enumerate(copies))]
    )
    assert kept_ids(verdicts) == ["original"]
    assert {v.duplicate_of for _, v in verdicts if v} == {"original"}
    assert {v.cluster_size for _, v in verdicts if v} == {301}
    # Each copy is compared with the kept original, not with the other copies.
    assert report["counts"]["candidates_verified"] == len(copies)


def test_keep_longest_keeps_the_longest_of_the_cluster(seeds: list[Record]) -> None:
    original = by_title(seeds, "Multi-local tax")
    short = "\n\n".join(original.split("\n\n")[:-1])
    records = [article("short", short), article("long", original), article("other", "x " * 50)]
    longest = dedup(records, keep="longest")
    assert kept_ids(longest) == ["long", "other"]
    assert longest[0][1] is not None and longest[0][1].duplicate_of == "long"
    first = dedup(records, keep="first")
    assert kept_ids(first) == ["short", "other"]
    assert first[1][1] is not None and first[1][1].duplicate_of == "short"


def test_keep_longest_applies_to_exact_duplicates_too() -> None:
    text = "Same words here, over and over again in this article. " * 10
    louder = text.upper().replace(",", " ,")  # same words, longer text
    verdicts = dedup([article("a", text), article("b", louder)], keep="longest")
    assert kept_ids(verdicts) == ["b"]


def test_empty_input_gives_nothing() -> None:
    assert dedup([]) == []


# ---- Chinese ----------------------------------------------------------------------

#: Chinese punctuation is full width; written here as ASCII (linters flag look-alikes).
_FULL_WIDTH = str.maketrans({",": "\uff0c", "(": "\uff08", ")": "\uff09", ":": "\uff1a"})

ZH_ARTICLE = (
    "新华社北京3月19日电 国务院新闻办公室19日举行新闻发布会,介绍今年一季度国民经济运行情况。"
    "国家统计局新闻发言人表示,一季度国内生产总值同比增长百分之五点三,比上年四季度环比增长百分之一点六。"
    "从生产看,全国规模以上工业增加值同比增长百分之六点一,装备制造业和高技术制造业增速较快。"
    "从需求看,社会消费品零售总额同比增长百分之四点七,服务零售额增长较快,居民出行和文化旅游消费持续活跃。"
    "固定资产投资同比增长百分之四点五,其中制造业投资增长百分之九点九,基础设施投资增长百分之六点五。"
    "发言人指出,当前外部环境复杂性、严峻性、不确定性上升,国内有效需求仍然不足,"
    "下一步要加大宏观政策实施力度,着力扩大国内需求,推动经济持续回升向好。"
).translate(_FULL_WIDTH)
#: Reposted by another site: its source line and editor added, two phrases reworded.
ZH_REPOST = (
    "(来源:人民网)"
    + ZH_ARTICLE.replace("19日", "十九日").replace("持续活跃", "保持活跃")
    + "责任编辑:王明"
).translate(_FULL_WIDTH)
ZH_OTHER = (
    "本报武汉讯 记者从市园林局获悉,今年春季全市新增绿地面积一百二十公顷,新建口袋公园三十座。"
    "东湖绿道三期工程已完成主体建设,预计五月底前向市民开放,届时绿道总长度将超过一百公里。"
    "园林部门提醒市民,赏花期间请文明游园,不要攀折花木,不要在草坪上搭建帐篷,共同爱护城市绿化成果。"
    "据介绍,全市还将在汉江沿岸新建滨水步道,串联沿线社区与公园,方便居民就近休闲健身。"
).translate(_FULL_WIDTH)


def test_chinese_is_shingled_by_characters() -> None:
    batch = shingle_batch(["国务院新闻办公室", "国务院 新闻 办公室"], 5)
    assert len(batch.words_of(0)) == 8  # one word per Han character
    assert np.array_equal(batch.words_of(0), batch.words_of(1))
    assert len(batch.shingles_of(0)) == 4


def test_chinese_repost_with_small_changes_is_caught() -> None:
    assert 0.8 <= true_jaccard(ZH_ARTICLE, ZH_REPOST) < 1.0
    verdicts = dedup(
        [article("zh", ZH_ARTICLE), article("other", ZH_OTHER), article("repost", ZH_REPOST)]
    )
    assert kept_ids(verdicts) == ["zh", "other"]
    verdict = verdicts[2][1]
    assert verdict is not None
    assert (verdict.duplicate_of, verdict.kind) == ("zh", "near")
    assert verdict.similarity < 1.0


def test_mixed_chinese_and_english_reposts() -> None:
    mixed = ZH_ARTICLE + " The statistics bureau said GDP grew 5.3% in the first quarter."
    repost = ZH_REPOST + " The statistics bureau said GDP grew 5.3% in the first quarter."
    assert kept_ids(dedup([article("a", mixed), article("b", repost)])) == ["a"]


def test_lone_surrogates_do_not_break_fingerprinting() -> None:
    text = "A story about \ud83d broken emoji, told at some length to make shingles. " * 5
    verdicts = dedup([article("a", text), article("b", text)])
    assert kept_ids(verdicts) == ["a"]


# ---- signatures are datasketch's -------------------------------------------------------


@pytest.mark.parametrize(("num_perm", "seed"), [(128, 1), (64, 42)])
def test_signatures_equal_datasketch_minhash(seeds: list[Record], num_perm: int, seed: int) -> None:
    texts = ["", "too short", ZH_ARTICLE, *(a.text for a in seeds[:12]), ""]
    batch = shingle_batch(texts, 5)
    bands, rows = lsh_bands(0.8, num_perm)
    signatures = MinHasher(num_perm, seed, bands, rows).signatures(batch.shingles, batch.offsets)
    assert signatures.shape == (len(texts), num_perm)
    for i in range(len(texts)):
        reference = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME, hashfunc=lambda v: v)
        reference.update_batch(batch.shingles_of(i).tolist())
        assert np.array_equal(signatures[i], reference.hashvalues), i


def test_datasketch_minhashes_are_datasketch_s_own_and_serve_its_lsh(
    seeds: list[Record],
) -> None:
    titles = ("New media", "Multi-local tax", "Many places intensively", "It is no longer")
    texts = [by_title(seeds, title) for title in titles]
    repost = replace_words(texts[0], [40, 200, 400])
    given = [*texts, repost, ZH_ARTICLE, ""]
    for options in (DedupOptions(), DedupOptions(num_perm=64, seed=42)):
        minhashes = corpus_clean.datasketch_minhashes(given, options)
        batch = shingle_batch(given, options.shingles.size)
        for i, minhash in enumerate(minhashes):
            reference = MinHash(
                num_perm=options.num_perm, seed=options.seed, scheme=SCHEME, hashfunc=lambda v: v
            )
            reference.update_batch(batch.shingles_of(i).tolist())
            assert isinstance(minhash, LeanMinHash)
            assert minhash == LeanMinHash(reference), i
    # Into datasketch's own LSH: the repost finds its original, and only it.
    minhashes = corpus_clean.datasketch_minhashes(given)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for n, minhash in enumerate(minhashes[:4]):
        lsh.insert(f"a{n}", minhash)
    assert lsh.query(minhashes[4]) == ["a0"]
    assert lsh.query(minhashes[5]) == []
    assert minhashes[4].jaccard(minhashes[0]) == pytest.approx(
        true_jaccard(texts[0], repost), abs=0.1
    )


def test_fingerprinter_uses_those_signatures(seeds: list[Record]) -> None:
    options = DedupOptions()
    fingerprinter = Fingerprinter(options)
    texts = [a.text for a in seeds[:3]]
    prints = fingerprinter.fingerprint(texts)
    batch = shingle_batch(texts, options.shingles.size)
    signatures = fingerprinter.minhasher.signatures(batch.shingles, batch.offsets)
    bands = fingerprinter.minhasher.band_keys(signatures)
    assert np.array_equal(prints.band_keys[:, :18], bands)
    # Then the containment keys: the 10 smallest shingle hashes of each text.
    assert prints.band_keys.shape == (3, 18 + 10)
    for i in range(3):
        smallest = batch.shingles_of(i)[:10].astype(np.uint64) | np.uint64(0xC0 << 40)
        assert np.array_equal(prints.band_keys[i, 18:], fmix64(smallest))
    assert fingerprinter.settings()["num_perm"] == 128
    assert fingerprinter.settings()["containment_keys"] == 10
    off = Fingerprinter(DedupOptions(containment=0))
    assert np.array_equal(off.fingerprint(texts).band_keys, bands)
    assert "containment_keys" not in off.settings()


def test_lsh_bands_catch_pairs_at_the_threshold() -> None:
    bands, rows = lsh_bands(0.8, 128)
    assert (bands, rows) == (18, 7)
    assert detection_probability(0.8, bands, rows) >= 0.95
    assert detection_probability(0.3, bands, rows) < 0.01
    with pytest.raises(ValueError, match="num-perm"):
        lsh_bands(0.05, 16)


# ---- the steps -----------------------------------------------------------------------


def test_texts_without_words_are_never_duplicates() -> None:
    # Title-only articles (the body was all boilerplate) have nothing to compare.
    records = [
        article("a", "", "First title"),
        article("b", "", "Second title"),
        article("c", " ... !"),
        article("d", "Words at last."),
    ]
    assert kept_ids(dedup(records)) == ["a", "b", "c", "d"]


def test_the_steps_called_apart_decide_as_the_finder_does(seeds: list[Record]) -> None:
    """What a sharded run does with the steps: fingerprint each shard, then candidates
    over every record's band keys, verify, decide by input position, annotate. The
    verdicts are the finder's (exact, near and contained duplicates among them)."""
    options = DedupOptions(keep="longest")
    paragraphs = words_text(15, 10)
    records = [
        *seeds,
        article("excerpt", "\n\n".join(paragraphs[:5])),
        article("full", "\n\n".join(paragraphs)),
        article("repost", replace_words(by_title(seeds, "New media"), [40, 200, 400])),
    ]
    texts, ids = [r.text for r in records], [r.id for r in records]
    fingerprinter = Fingerprinter(options)
    shards = [fingerprinter.fingerprint(texts[a:b]) for a, b in ((0, 9), (9, 17), (17, None))]
    # What the shards send on: keys, hashes, sizes; sets by position, short texts too.
    keys = np.vstack([shard.band_keys for shard in shards])
    hashes = np.frombuffer(b"".join(s.exact for s in shards), np.uint64).reshape(-1, 2)
    counts = np.concatenate([np.diff(shard.offsets) for shard in shards])
    lengths = np.concatenate([shard.lengths for shard in shards])
    starts = np.cumsum([0, *(len(shard.lengths) for shard in shards)]).tolist()
    store = ShingleStore()
    short_texts: dict[int, str] = {}
    for start, shard in zip(starts[:-1], shards, strict=True):
        short_texts |= {start + i: text for i, text in shard.short_texts.items()}
        store.extend(shard.shingles, shard.offsets)
    try:
        ranks = keep_ranks(options.keep, lengths, [None] * len(ids))
        groups = exact_groups(hashes, counts, ranks)
        bands = options.bands_rows[0]
        distinct = keys[groups.distinct]
        tables = [*distinct[:, :bands].T, distinct[:, bands:]]
        pairs = candidate_pairs(tables, groups.distinct, ranks)
        verifier = Verifier(options, store, short_texts, counts)
        matches = decide(len(ids), walk_order(pairs, ranks, counts, verifier), verifier, groups)
        verdicts = annotate(matches, ids, indexed_id=str).verdicts
    finally:
        store.close()
    finder = DuplicateFinder(options)
    for start, end, shard in zip(starts[:-1], starts[1:], shards, strict=True):
        finder.add(ids[start:end], shard)
    assert verdicts == finder.resolve(Stats())
    finder.close()
    assert {v.kind for v in verdicts.values()} == {"exact", "near", "contained"}


# ---- clusters visible ------------------------------------------------------------------


def test_cluster_fields_join_kept_records_with_their_duplicates(
    seeds: list[Record], tmp_path: Path
) -> None:
    original = by_title(seeds, "New media")
    other = by_title(seeds, "Multi-local tax")
    lines = [
        {"id": "a", "text": original},
        {"id": "b", "text": replace_words(original, [40, 200])},
        {"id": "c", "text": other},
        {"id": "d", "text": original},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    removed_path = tmp_path / "removed.jsonl"
    result = CliRunner().invoke(
        cli,
        ["dedup", str(source), "--duplicates", str(removed_path), "--cluster-fields", "-q"],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    kept = [json.loads(line) for line in result.stdout.splitlines()]
    removed = [json.loads(line) for line in removed_path.read_text("utf-8").splitlines()]
    assert [(r["id"], r["cluster_id"], r["cluster_size"]) for r in kept] == [
        ("a", "a", 3),
        ("c", "c", 1),
    ]
    assert list(kept[0])[-2:] == ["cluster_id", "cluster_size"]
    found = [(r["id"], r["duplicate_of"], r["cluster_size"], r["duplicate_kind"]) for r in removed]
    assert found == [("b", "a", 3, "near"), ("d", "a", 3, "exact")]
    # Without the option, kept records are written as they came.
    plain = CliRunner().invoke(cli, ["dedup", str(source), "-q"])
    assert "cluster_id" not in plain.stdout


# ---- containment ---------------------------------------------------------------------


def words_text(seed: int, paragraphs: int, words: int = 60) -> list[str]:
    """Paragraphs of made-up words, unlike any other seed's."""
    rng = np.random.default_rng(seed)
    return [
        " ".join(f"{chr(97 + seed % 26)}{w}" for w in rng.integers(0, 5000, words))
        for _ in range(paragraphs)
    ]


def containment_of(inner: str, outer: str) -> float:
    batch = shingle_batch([inner, outer], 5)
    a, b = batch.shingles_of(0), batch.shingles_of(1)
    return len(np.intersect1d(a, b)) / len(a)


@pytest.mark.parametrize("excerpt_first", [False, True])
def test_an_excerpt_is_a_duplicate_of_its_container_whatever_the_order(
    excerpt_first: bool,
) -> None:
    paragraphs = words_text(1, 10)
    full = "\n\n".join(paragraphs)
    excerpt = "\n\n".join(paragraphs[:5]) + "\n\nRead the rest at example.com."
    assert true_jaccard(excerpt, full) < 0.6
    assert containment_of(excerpt, full) >= 0.9
    records = [article("full", full), article("other", "\n\n".join(words_text(2, 8)))]
    records.insert(0 if excerpt_first else 2, article("excerpt", excerpt))
    verdicts = dedup(records)
    assert kept_ids(verdicts) == ["full", "other"]
    verdict = next(v for r, v in verdicts if r.id == "excerpt")
    assert verdict is not None
    assert (verdict.duplicate_of, verdict.kind) == ("full", "contained")
    assert verdict.similarity == round(containment_of(excerpt, full), 4)
    assert verdict.jaccard == round(true_jaccard(excerpt, full), 4)
    fields = verdict.as_fields()
    assert fields["duplicate_kind"] == "contained" and "jaccard" in fields
    # Off, the excerpt is a record of its own.
    assert "excerpt" in kept_ids(dedup(records, containment=0))


def test_an_excerpt_of_an_excerpt_waits_for_both_containers() -> None:
    paragraphs = words_text(3, 12)
    whole, most, half = ("\n\n".join(paragraphs[:k]) for k in (12, 8, 4))
    verdicts = dedup([article("half", half), article("most", most), article("whole", whole)])
    assert kept_ids(verdicts) == ["whole"]
    assert {r.id: v.duplicate_of for r, v in verdicts if v} == {"half": "whole", "most": "whole"}


def test_an_extended_repost_keeps_the_new_content() -> None:
    paragraphs = words_text(4, 6)
    original = "\n\n".join(paragraphs)
    extended = "\n\n".join([*paragraphs, *words_text(5, 4)])  # an editor's new paragraphs
    assert true_jaccard(original, extended) < 0.8
    verdicts = dedup([article("original", original), article("extended", extended)])
    # The original lies inside the extended repost: the repost holds all the content.
    assert kept_ids(verdicts) == ["extended"]
    verdict = verdicts[0][1]
    assert verdict is not None and verdict.kind == "contained"


def test_near_duplicates_follow_keep_order_not_size() -> None:
    paragraphs = words_text(6, 10)
    full = "\n\n".join(paragraphs)
    cut = "\n\n".join(paragraphs[:-1])  # 90%: a near duplicate, Jaccard >= 0.8
    assert true_jaccard(cut, full) >= 0.8
    verdicts = dedup([article("cut", cut), article("full", full)])
    assert kept_ids(verdicts) == ["cut"]
    assert verdicts[1][1] is not None and verdicts[1][1].kind == "near"


def test_articles_sharing_opening_closing_and_promo_are_not_merged() -> None:
    """Hard negatives: a site's different stories with the same lead-in, sign-off and
    promo line, from long stories to ones whose own part is short."""
    opening = "\n\n".join(words_text(7, 1, 40))
    closing = "\n\n".join(words_text(8, 1, 40))
    promo = "Pay attention to Hebei News network, understand the latest news in Hebei."
    stories = [
        "\n\n".join([opening, *words_text(20 + n, 1, words), closing, promo])
        for n, words in enumerate((200, 120, 60, 30, 15))
    ]
    assert 0.7 < containment_of(stories[-1], stories[0]) < 0.9  # the shortest: mostly frame
    verdicts = dedup([article(f"s{n}", text) for n, text in enumerate(stories)])
    assert kept_ids(verdicts) == [f"s{n}" for n in range(len(stories))]
    # In reverse order too: still nothing merged.
    assert len(kept_ids(dedup([article(f"s{n}", t) for n, t in enumerate(stories[::-1])]))) == 5


def test_containment_lsh_finds_95_percent_of_pairs_at_ratio_down_to_0_3() -> None:
    """The claim of options.containment_keys, by arithmetic and on real shingle hashes."""
    keys = containment_keys(0.9)
    assert keys == DedupOptions().containment_keys == 10
    for larger in (40, 300, 3000):
        for ratio in (0.3, 0.5, 0.7, 0.95):
            smaller = round(larger * ratio)
            assert containment_detection(smaller, larger, math.ceil(0.9 * smaller), keys) >= 0.95
    assert containment_detection(90, 300, 27, keys) < 0.95  # far below the containment
    # Empirically: texts whose excerpts (plus 10% of words of their own) lie 90% inside.
    fingerprinter = Fingerprinter(DedupOptions())
    rng = np.random.default_rng(9)
    found = total = 0
    for trial in range(400):
        size = int(rng.integers(60, 1500))
        words = [f"t{trial}w{w}" for w in range(size)]
        inner = int(size * rng.uniform(0.3, 0.95))
        start = int(rng.integers(0, size - inner + 1))
        excerpt = words[start : start + inner]
        own = [f"o{trial}x{w}" for w in range(max(1, inner // 60))]  # a few words changed
        for w, word in zip(rng.choice(inner, len(own), replace=False).tolist(), own, strict=True):
            excerpt[w] = word
        texts = [" ".join(excerpt), " ".join(words)]
        if containment_of(*texts) < 0.9:
            continue
        keyed = fingerprinter.fingerprint(texts).band_keys
        total += 1
        found += bool(np.isin(keyed[0], keyed[1]).any())
    assert total > 300
    assert found / total >= 0.95


def test_containment_against_an_index(tmp_path: Path) -> None:
    """An excerpt of an indexed article is its duplicate; an extended repost of one is new
    content, kept, and the report names the article it extends."""
    paragraphs = words_text(11, 8)
    original = "\n\n".join(paragraphs)
    settings = Fingerprinter(DedupOptions()).settings()
    with IndexStore.open(tmp_path / "accepted.db", settings) as store:
        dedup([article("original", original)], index=store)
    excerpt = "\n\n".join(paragraphs[2:6])
    extended = "\n\n".join([*paragraphs, *words_text(12, 4)])
    with IndexStore.open(tmp_path / "accepted.db", settings) as store:
        verdicts, report = dedup_run(
            [article("excerpt", excerpt), article("extended", extended)], index=store
        )
    assert kept_ids(verdicts) == ["extended"]
    verdict = verdicts[0][1]
    assert verdict is not None
    assert (verdict.duplicate_of, verdict.kind) == ("original", "index")
    assert verdict.similarity == round(containment_of(excerpt, original), 4)
    assert verdict.jaccard == round(true_jaccard(excerpt, original), 4)
    assert report["extends_indexed"] == [{"id": "extended", "extends": "original"}]
    assert report["counts"]["extends_indexed"] == 1
    assert report["index"]["articles_after"] == 2  # the extended repost joined it


def test_keep_earliest_walks_by_date_undated_last(seeds: list[Record]) -> None:
    original = by_title(seeds, "New media")
    copies = [
        Record(id="undated", text=original, source="t"),
        Record(id="late", text=replace_words(original, [40]), source="t", date="2024-05-02"),
        Record(id="early", text=replace_words(original, [90]), source="t", date="2023-12-31"),
        Record(id="early-too", text=original, source="t", date="2023-12-31"),
    ]
    verdicts = dedup(copies, keep="earliest")
    assert kept_ids(verdicts) == ["early"]
    assert {r.id: v.duplicate_of for r, v in verdicts if v} == {
        "undated": "early",
        "late": "early",
        "early-too": "early",
    }
    # Through the CLI, the date field of JSONL records.
    lines = "".join(
        json.dumps({"id": r.id, "text": r.text, **({"date": r.date} if r.date else {})}) + "\n"
        for r in copies
    )
    ran = CliRunner().invoke(cli, ["dedup", "-", "--keep", "earliest", "-q"], input=lines)
    assert ran.exit_code == 0, ran.stderr
    assert [json.loads(line)["id"] for line in ran.stdout.splitlines()] == ["early"]


def test_containment_is_off_or_at_least_0_3() -> None:
    ran = CliRunner().invoke(cli, ["dedup", "-", "--containment", "0.1"], input="")
    assert ran.exit_code == 2
    assert "use 0 to switch containment off, or a value from 0.3 to 1" in ran.stderr
    assert ran.stdout == ""
    off = CliRunner().invoke(cli, ["dedup", "-", "--containment", "0", "-q"], input="")
    assert (off.exit_code, off.stdout) == (0, "")


def test_jaccard_bands_alone_would_miss_most_excerpts_at_ratio_0_3() -> None:
    """Why containment has keys of its own: at ratio 0.3 a wholly contained excerpt has
    Jaccard 0.3, which the 18 x 7 bands catch 0.2% of the time, and LSH tuned for it
    needs 2-row bands."""
    bands, rows = lsh_bands(0.8, 128)
    assert detection_probability(0.3, bands, rows) < 0.01
    assert lsh_bands(0.9 * 0.3 / (1 + 0.3 - 0.9 * 0.3), 128)[1] == 2
    assert containment_detection(300, 1000, 300, containment_keys(0.9)) > 0.95


def test_cli_report_names_the_indexed_articles_extended(tmp_path: Path) -> None:
    paragraphs = words_text(13, 8)
    seed = tmp_path / "seed.jsonl"
    seed.write_text(json.dumps({"id": "old", "text": "\n\n".join(paragraphs)}) + "\n", "utf-8")
    index = tmp_path / "accepted.db"
    added = CliRunner().invoke(cli, ["index", "add", str(index), str(seed), "-q"])
    assert added.exit_code == 0, added.stderr
    night = tmp_path / "night.jsonl"
    night.write_text(
        json.dumps({"id": "new", "text": "\n\n".join([*paragraphs, *words_text(14, 4)])})
        + "\n"
        + json.dumps({"id": "cut", "text": "\n\n".join(paragraphs[:3])})
        + "\n",
        "utf-8",
    )
    report = tmp_path / "report.json"
    removed = tmp_path / "removed.jsonl"
    ran = CliRunner().invoke(
        cli,
        [
            "dedup",
            str(night),
            "--index",
            str(index),
            "--report",
            str(report),
            "--duplicates",
            str(removed),
            "-q",
        ],
    )
    assert ran.exit_code == 0, ran.stderr
    assert [json.loads(line)["id"] for line in ran.stdout.splitlines()] == ["new"]
    figures = json.loads(report.read_text("utf-8"))
    assert figures["extends_indexed"] == [{"id": "new", "extends": "old"}]
    assert figures["counts"]["extends_indexed"] == 1
    cut = json.loads(removed.read_text("utf-8"))
    assert (cut["id"], cut["duplicate_of"], cut["duplicate_kind"]) == ("cut", "old", "index")
    assert cut["similarity"] == 1.0 and cut["jaccard"] < 0.8
