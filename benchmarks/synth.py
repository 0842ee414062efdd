"""Deterministic synthetic news scrape with planted near-duplicates.

The same arguments always produce byte-identical files, so benchmark numbers from
different machines or commits are comparable. Bodies are rendered in bulk with numpy
(one gather over a piece table per chunk); only reposts, titles and file writing are
per-article Python, which keeps 1,000,000 articles to a few minutes.

Run standalone to inspect a corpus: ``python benchmarks/synth.py --articles 10000 DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 2
DEFAULT_SEED = 20240601
REPOST_RATE = 0.30
ZH_RATE = 0.10
# Body bytes are log-normal, clipped to [1 KB, 20 KB]; MU is tuned so that the mean
# article (title + body) is ~1.45 KB, matching the 20,000 articles = 29 MB.
BODY_MU, BODY_SIGMA = 7.05, 0.45
BODY_MIN, BODY_MAX = 1_000, 20_000
CHUNK = 4096
EDIT_WEIGHTS = {
    "exact": 0.25,
    "typos": 0.15,
    "words": 0.12,
    "truncate": 0.12,
    "drop_paragraph": 0.08,
    "add_paragraph": 0.08,
    # Reposts that differ in size: an excerpt of 30-70% (from the start), the article
    # with 1-3 new paragraphs of ordinary length, and the article without 1-2 paragraphs
    # of any length (at most 40% of it).
    "excerpt": 0.08,
    "extend": 0.06,
    "drop_paragraphs": 0.06,
}
#: Kinds whose repost may lie inside its original, or hold it, with a Jaccard
#: similarity well below 0.8 (the containment is stored in the truth).
SIZE_EDITS = ("excerpt", "extend", "drop_paragraphs")
EXCERPT_SHARE = (0.3, 0.7)
MAX_DROPS_SHARE = 0.40
#: Hard negatives: families of different articles of one site that share an opening
#: paragraph, a closing paragraph (three sentences each) and a promo line around bodies
#: of their own. Of the English originals that are never reposted, this share is put in
#: families of FAMILY_SIZE.
HARD_NEGATIVE_RATE = 0.03
FAMILY_SIZE = 4
PROMO_LINE = "Follow our channel for the latest news from the city and the province."
# A dropped paragraph may hold at most this share of the units, so that the edit stays
# "small" (true Jaccard ~ >= 0.8) instead of halving a short article.
MAX_DROP_SHARE = 0.20
BOILERPLATE_RATE = 0.03
INDENT_RATE = 0.4
ZH_COMMA = "\uff0c"  # fullwidth comma, escaped so linters do not flag it
SITES = ["武汉夜生活网", "江城资讯网", "楚天新闻网", "华中热点网", "汉口生活网", "长江时报网"]
CLICK_LINE = "Click on the link to participate in this activity!"

# Separator codes written after each unit: word gap, comma, sentence end, paragraph end,
# article end.
GAP, COMMA, SENT, PARA, END = range(5)

FUNCTION_WORDS = (
    "the of and to in a is that for on was with he it as at by from his be have are said "
    "has this an not but had they which its were their been will also more who one year "
    "after than new two there or first would about other into people last over up her out "
    "all we can time some when government city she our what only years percent three may "
    "most state could both many under these such local officials province public work "
    "development market report between since during while before through million week "
    "according national project police"
)
SYLLABLES = (
    "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ha he hi ho la "
    "le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so "
    "su ta te ti to tu va ve vi vo wa we wi ya bra bre bri bro cra cre cri dra dre fra "
    "fre gra gre pra pre pro tra tre tri str spa spe sta ste sti cha che chi sha she tha "
    "the thi pla ple cla cle bla ble"
)
CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "nt", "rt", "ng", "ck")
SUFFIXES = ("", "", "", "", "ing", "ed", "er", "tion", "ly", "ment", "al", "s", "ity", "ers")
COMMON_HAN = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下"
    "自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部"
    "其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又"
    "关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯"
    "月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入"
)


@dataclass(frozen=True)
class Lexicon:
    """One language's units (words or Han characters) and its rendering table.

    Piece ``(unit * 2 + capitalised) * 5 + separator`` is the unit's text followed by a
    separator; all pieces live in one byte buffer so a whole chunk of articles renders
    with a single numpy gather.
    """

    units: list[str]
    cdf: np.ndarray
    cum_weights: list[float]
    joiner: str
    seps: tuple[str, ...]
    sentence: tuple[int, int]
    comma_rate: float
    buf: np.ndarray
    start: np.ndarray
    length: np.ndarray
    unit_bytes: float

    @classmethod
    def build(
        cls,
        units: list[str],
        joiner: str,
        seps: tuple[str, ...],
        sentence: tuple[int, int],
        comma_rate: float,
    ) -> Lexicon:
        weights = 1.0 / (np.arange(len(units)) + 2.7)  # Zipf-Mandelbrot, like word ranks
        probs = weights / weights.sum()
        cdf = np.cumsum(probs)
        cdf[-1] = 1.0
        pieces = [
            (unit[:1].upper() + unit[1:] if cap else unit) + sep
            for unit in units
            for cap in (0, 1)
            for sep in seps
        ]
        encoded = [piece.encode() for piece in pieces]
        length = np.array([len(piece) for piece in encoded], dtype=np.int64)
        start = np.concatenate(([0], np.cumsum(length)[:-1]))
        buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        unit_len = np.array([len(unit.encode()) for unit in units])
        sep_len = [len(sep.encode()) for sep in seps]
        # Average bytes a unit costs in running text, separators included (roughly).
        sep_bytes = (
            sep_len[GAP]
            + comma_rate * (sep_len[COMMA] - sep_len[GAP])
            + (sep_len[SENT] - sep_len[GAP]) / (sum(sentence) / 2)
        )
        return cls(
            units=units,
            cdf=cdf,
            cum_weights=cdf.tolist(),
            joiner=joiner,
            seps=seps,
            sentence=sentence,
            comma_rate=comma_rate,
            buf=buf,
            start=start,
            length=length,
            unit_bytes=float(probs @ unit_len + sep_bytes),
        )

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.searchsorted(self.cdf, rng.random(n), side="right")

    def pick(self, rnd: random.Random) -> str:
        return rnd.choices(self.units, cum_weights=self.cum_weights)[0]


def _english_words() -> list[str]:
    """Function words first (most frequent), then pronounceable made-up words."""
    rng = np.random.default_rng(7)
    words = FUNCTION_WORDS.split()
    syllables = SYLLABLES.split()
    seen = set(words)
    while len(words) < 4000:
        n_syll = int(rng.choice([1, 1, 2, 2, 2, 3]))
        word = "".join(syllables[i] for i in rng.integers(0, len(syllables), n_syll))
        word += CODAS[rng.integers(0, len(CODAS))] + SUFFIXES[rng.integers(0, len(SUFFIXES))]
        if 2 <= len(word) <= 14 and word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _han_chars() -> list[str]:
    """GB2312 level-1 hanzi (the 3,755 most used), the very commonest first."""
    level1: list[str] = []
    for row in range(0xB0, 0xD8):
        for col in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):  # row 0xD7 ends early
                level1.append(bytes((row, col)).decode("gb2312"))
    rest = [c for c in level1 if c not in COMMON_HAN]
    order = np.random.default_rng(11).permutation(len(rest)).tolist()
    return list(dict.fromkeys(COMMON_HAN)) + [rest[i] for i in order]


ENGLISH = Lexicon.build(_english_words(), " ", (" ", ", ", ". ", ".\n\n", "."), (8, 30), 0.06)
CHINESE = Lexicon.build(_han_chars(), "", ("", ZH_COMMA, "。", "。\n\n", "。"), (10, 40), 0.05)
LEXICONS = {"en": ENGLISH, "zh": CHINESE}


def _run_ends(rng: np.random.Generator, sizes: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Cut every segment (sizes[i] items, laid end to end) into runs of lo..hi items.

    Returns the global index of the last item of every run, sorted; each segment's last
    item always closes a run, and no run is shorter than lo unless its segment is.
    """
    slots = sizes // lo + 1
    lens = rng.integers(lo, hi + 1, int(slots.sum()))
    seg = np.repeat(np.arange(len(sizes)), slots)
    cum = np.cumsum(lens)
    first_slot = np.cumsum(slots) - slots
    local = cum - (cum - lens)[first_slot][seg]
    keep = local <= sizes[seg] - lo
    offsets = np.cumsum(sizes) - sizes
    interior = offsets[seg[keep]] + local[keep] - 1
    return np.sort(np.concatenate((interior, offsets + sizes - 1)))


def render_bodies(lex: Lexicon, rng: np.random.Generator, n_units: np.ndarray) -> list[str]:
    """Render one chunk of article bodies with the given number of units each."""
    total = int(n_units.sum())
    starts = np.cumsum(n_units) - n_units
    sent_ends = _run_ends(rng, n_units, *lex.sentence)
    art_of_sentence = np.searchsorted(starts, sent_ends, side="right") - 1
    per_article = np.bincount(art_of_sentence, minlength=len(n_units))
    para_ends = sent_ends[_run_ends(rng, per_article, 2, 6)]

    sep = np.where(rng.random(total) < lex.comma_rate, COMMA, GAP)
    sep[sent_ends] = SENT
    sep[para_ends] = PARA
    sep[starts + n_units - 1] = END
    cap = np.zeros(total, dtype=np.int64)
    cap[starts] = 1
    cap[sent_ends[sent_ends + 1 < total] + 1] = 1
    piece = (lex.sample(rng, total) * 2 + cap) * 5 + sep

    plen = lex.length[piece]
    out_start = np.cumsum(plen) - plen
    nbytes = int(plen.sum())
    index = np.arange(nbytes) + np.repeat(lex.start[piece] - out_start, plen)
    data = lex.buf[index].tobytes()
    bounds = np.append(out_start[starts], nbytes).tolist()
    return [data[a:b].decode() for a, b in itertools.pairwise(bounds)]


def shingles(text: str, lang: str) -> set[object]:
    """Word 5-grams (text.split()) for English, character 5-grams for Chinese."""
    if lang == "zh":
        chars = "".join(text.split())
        return {chars[i : i + 5] for i in range(len(chars) - 4)}
    words = text.split()
    return set(zip(words, words[1:], words[2:], words[3:], words[4:], strict=False))


def jaccard(a: str, b: str, lang: str) -> float:
    sa, sb = shingles(a, lang), shingles(b, lang)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 1.0


def containment(a: str, b: str, lang: str) -> float:
    """How much of the smaller shingle set lies inside the larger."""
    sa, sb = shingles(a, lang), shingles(b, lang)
    smaller = min(len(sa), len(sb))
    return len(sa & sb) / smaller if smaller else 1.0


def hard_negative_families(plan: Plan, seed: int) -> dict[int, tuple[int, int]]:
    """Article -> (family, place in it): English originals never reposted, a share of
    them grouped in consecutive families of FAMILY_SIZE (drawn apart from the plan, so
    that the rest of the corpus does not move)."""
    reposted = np.zeros(plan.n, dtype=bool)
    reposted[plan.original[plan.original >= 0]] = True
    lonely = np.flatnonzero((plan.original < 0) & ~reposted & (plan.lang == 0))
    chosen = lonely[np.random.default_rng(seed + 1).random(len(lonely)) < HARD_NEGATIVE_RATE]
    chosen = chosen[: len(chosen) // FAMILY_SIZE * FAMILY_SIZE]
    return {int(i): (k // FAMILY_SIZE, k % FAMILY_SIZE) for k, i in enumerate(chosen)}


def framed(body: str, frame: tuple[str, str]) -> str:
    """A family member's body: its own, between the family's opening and closing
    paragraphs, then the promo line."""
    return "\n\n".join([frame[0], body, frame[1], PROMO_LINE])


class Editor:
    """Applies one small repost edit to a body, on paragraphs of units."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def __call__(self, text: str, lex: Lexicon) -> tuple[str, str]:
        if lex.joiner:
            paras = [p.split(lex.joiner) for p in text.split("\n\n")]
        else:
            paras = [list(p) for p in text.split("\n\n")]
        kinds = dict(EDIT_WEIGHTS)
        total = sum(len(p) for p in paras)
        if len(paras) < 2 or min(len(p) for p in paras) > MAX_DROP_SHARE * total:
            del kinds["drop_paragraph"]
        if len(paras) < 2 or min(len(p) for p in paras) > MAX_DROPS_SHARE * total:
            del kinds["drop_paragraphs"]
        kind = self.rnd.choices(list(kinds), weights=list(kinds.values()))[0]
        few = self.rnd.randint(1, max(1, min(5, total // 50)))
        if kind in ("typos", "words"):
            for _ in range(few):
                para = self.rnd.choice(paras)
                i = self.rnd.randrange(len(para))
                if kind == "typos":
                    para[i] = self._typo(para[i], lex)
                elif lex.joiner:
                    para[i] = self._swap_word(para[i], lex)
                else:
                    para[i : i + 2] = [lex.pick(self.rnd), lex.pick(self.rnd)]
        elif kind == "truncate":
            cut = max(1, round(total * self.rnd.uniform(0.02, 0.10)))
            while cut >= len(paras[-1]):
                cut -= len(paras.pop())
            if cut:
                del paras[-1][-cut:]
        elif kind == "drop_paragraph":
            paras.pop(min(range(len(paras)), key=lambda i: len(paras[i])))
        elif kind == "add_paragraph":
            paras.insert(self.rnd.randint(0, len(paras)), self.paragraph(lex))
        elif kind == "excerpt":
            keep = max(1, round(total * self.rnd.uniform(*EXCERPT_SHARE)))
            kept: list[list[str]] = []
            while keep > 0 and paras:
                para = paras.pop(0)
                kept.append(para[:keep])
                keep -= len(para)
            paras = kept
        elif kind == "extend":
            for _ in range(self.rnd.randint(1, 3)):
                new = self.paragraph(lex, sentences=self.rnd.randint(2, 5))
                paras.insert(self.rnd.choice((0, len(paras), len(paras))), new)
        elif kind == "drop_paragraphs":
            for _ in range(self.rnd.randint(1, 2)):
                lengths = [len(p) for p in paras]
                droppable = [
                    i
                    for i, n in enumerate(lengths)
                    if total - sum(lengths) + n <= MAX_DROPS_SHARE * total
                ]
                if len(paras) < 2 or not droppable:
                    break
                paras.pop(self.rnd.choice(droppable))
        return "\n\n".join(lex.joiner.join(p) for p in paras), kind

    def _typo(self, token: str, lex: Lexicon) -> str:
        if not lex.joiner:
            return lex.pick(self.rnd) if token.strip(ZH_COMMA + "。") else token
        core = token.rstrip(",.")
        if len(core) < 3:
            return core + "e" + token[len(core) :]
        i = self.rnd.randrange(len(core) - 1)
        op = self.rnd.randrange(3)
        if op == 0:
            core = core[:i] + core[i + 1] + core[i] + core[i + 2 :]
        elif op == 1:
            core = core[:i] + core[i + 1 :]
        else:
            core = core[: i + 1] + core[i] + core[i + 1 :]
        return core + token[len(token.rstrip(",.")) :]

    def _swap_word(self, token: str, lex: Lexicon) -> str:
        core = token.rstrip(",.")
        new = lex.pick(self.rnd)
        if core[:1].isupper():
            new = new[:1].upper() + new[1:]
        return new + token[len(core) :]

    def paragraph(self, lex: Lexicon, sentences: int = 0) -> list[str]:
        """Two short sentences, a brief note a repost site might add; or ``sentences``
        of ordinary length, a paragraph of new reporting."""
        lo, hi = lex.sentence
        units: list[str] = []
        for _ in range(sentences or 2):
            length = self.rnd.randint(lo, hi) if sentences else self.rnd.randint(lo, lo + 4)
            words = [lex.pick(self.rnd) for _ in range(length)]
            words[0] = words[0][:1].upper() + words[0][1:]
            words[-1] += lex.seps[END]
            units += words
        return units


@dataclass(frozen=True)
class Plan:
    """Everything decided up front with vectorised draws: who reposts whom, and where."""

    n: int
    original: np.ndarray  # index of the reposted article, -1 for originals
    lang: np.ndarray  # 0 English, 1 Chinese
    body_bytes: np.ndarray
    page_sizes: list[int]
    page_headers: list[str]
    indent: np.ndarray
    boilerplate: np.ndarray  # 0 none, 1 click line, 2 URL line, 3 both


def make_plan(n: int, rng: np.random.Generator) -> Plan:
    repost = rng.random(n) < REPOST_RATE
    repost[0] = False
    originals = np.flatnonzero(~repost)
    originals_before = np.cumsum(~repost)
    original = np.full(n, -1, dtype=np.int64)
    reposts = np.flatnonzero(repost)
    pick = np.floor(rng.random(len(reposts)) * originals_before[reposts]).astype(np.int64)
    original[reposts] = originals[pick]
    lang = (rng.random(n) < ZH_RATE).astype(np.int8)
    lang[reposts] = lang[original[reposts]]
    body = np.clip(rng.lognormal(BODY_MU, BODY_SIGMA, n), BODY_MIN, BODY_MAX)
    sizes = rng.integers(1, 21, n // 10 + 2)
    n_pages = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    sizes = sizes[:n_pages]
    sizes[-1] -= int(sizes.sum()) - n
    site = rng.integers(-len(SITES), len(SITES), n_pages).tolist()  # negative: front page
    headers = [f"标签归档 {SITES[s]}" if s >= 0 else "首页" for s in site]
    return Plan(
        n=n,
        original=original,
        lang=lang,
        body_bytes=body,
        page_sizes=sizes.tolist(),
        page_headers=headers,
        indent=rng.random(n) < INDENT_RATE,
        boilerplate=(rng.random(n) < BOILERPLATE_RATE) + 2 * (rng.random(n) < BOILERPLATE_RATE),
    )


def original_bodies(plan: Plan, rng: np.random.Generator) -> Iterator[str]:
    """Bodies of the original articles in order, rendered a chunk at a time."""
    originals = np.flatnonzero(plan.original < 0)
    for lo in range(0, len(originals), CHUNK):
        idx = originals[lo : lo + CHUNK]
        bodies: list[str] = [""] * len(idx)
        for code, lex in enumerate((ENGLISH, CHINESE)):
            mine = np.flatnonzero(plan.lang[idx] == code)
            if len(mine) == 0:
                continue
            units = np.maximum(1, np.rint(plan.body_bytes[idx[mine]] / lex.unit_bytes))
            for j, body in zip(mine, render_bodies(lex, rng, units.astype(np.int64)), strict=True):
                bodies[j] = body
        yield from bodies


def make_title(lex: Lexicon, rnd: random.Random, seen: set[str]) -> str:
    """A headline-like line; extended by one unit until no earlier article has it."""
    if lex.joiner:
        words = [lex.pick(rnd) for _ in range(rnd.randint(5, 12))]
    else:
        words = [lex.pick(rnd) for _ in range(rnd.randint(8, 20))]
    words[0] = words[0][:1].upper() + words[0][1:]
    title = lex.joiner.join(words)
    while title in seen:
        title += lex.joiner + lex.pick(rnd)
    seen.add(title)
    return title


def generate(out_dir: Path, n_articles: int, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write pages/, articles.jsonl, truth.jsonl and manifest.json under out_dir."""
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    plan = make_plan(n_articles, rng)
    pages_dir = out_dir / "pages"
    pages_dir.mkdir(parents=True, exist_ok=True)
    id_width = max(7, len(str(n_articles)))
    page_width = max(6, len(str(len(plan.page_sizes))))
    last_use = np.full(n_articles, -1, dtype=np.int64)
    reposts = np.flatnonzero(plan.original >= 0)
    np.maximum.at(last_use, plan.original[reposts], reposts)
    kept: dict[int, str] = {}
    families = hard_negative_families(plan, seed)
    frames: dict[int, tuple[str, str]] = {}
    members: dict[int, list[str]] = {}  # family -> bodies so far
    titles: set[str] = set()
    edit = Editor(rnd)
    bodies = original_bodies(plan, rng)
    page_bytes = 0
    article = 0
    with (
        (out_dir / "articles.jsonl").open("w", encoding="utf-8") as articles,
        (out_dir / "truth.jsonl").open("w", encoding="utf-8") as truth,
    ):
        for page_no, (size, header) in enumerate(
            zip(plan.page_sizes, plan.page_headers, strict=True), start=1
        ):
            page_name = f"page_{page_no:0{page_width}d}.txt"
            blocks = [header]
            for index in range(1, size + 1):
                i = article
                article += 1
                lang = "zh" if plan.lang[i] else "en"
                lex = LEXICONS[lang]
                src = int(plan.original[i])
                family: dict[str, object] = {}
                contained = None
                if src < 0:
                    body, kind, sim = next(bodies), None, None
                    if i in families:
                        f, place = families[i]
                        if f not in frames:
                            opening, closing = (
                                " ".join(edit.paragraph(ENGLISH, 3)) for _ in range(2)
                            )
                            frames[f] = (opening, closing)
                        body = framed(body, frames[f])
                        others = members.setdefault(f, [])
                        family = {
                            "family": f,
                            "family_jaccard": max(
                                (round(jaccard(o, body, lang), 4) for o in others), default=None
                            ),
                            "family_containment": max(
                                (round(containment(o, body, lang), 4) for o in others),
                                default=None,
                            ),
                        }
                        others.append(body)
                        if place == FAMILY_SIZE - 1:
                            del members[f], frames[f]
                    if last_use[i] >= 0:
                        kept[i] = body
                else:
                    body, kind = edit(kept[src], lex)
                    sim = round(jaccard(kept[src], body, lang), 4)
                    contained = round(containment(kept[src], body, lang), 4)
                    if last_use[src] == i:
                        del kept[src]
                title = make_title(lex, rnd, titles)
                art_id = f"a{i + 1:0{id_width}d}"
                # Compact, as corpus-clean and the ecosystem's tools write JSONL.
                record = {"id": art_id, "title": title, "text": body}
                articles.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                truth.write(
                    json.dumps(
                        {
                            "id": art_id,
                            "page": page_name,
                            "index": index,
                            "lang": lang,
                            "original": f"a{src + 1:0{id_width}d}" if src >= 0 else None,
                            "edit": kind,
                            "jaccard": sim,
                            "containment": contained,
                            **family,
                        }
                    )
                    + "\n"
                )
                indent = "  " if plan.indent[i] else ""
                blocks += ["通过admin", title]
                blocks += [indent + p for p in body.split("\n\n")]
                if plan.boilerplate[i] & 1:
                    blocks.append(CLICK_LINE)
                if plan.boilerplate[i] & 2:
                    blocks.append(f"https://news.example.cn/{lang}/{i + 1}.html")
            page = ("\n\n".join(blocks) + "\n").encode()
            (pages_dir / page_name).write_bytes(page)
            page_bytes += len(page)
    manifest = {
        "format": FORMAT_VERSION,
        "articles": n_articles,
        "seed": seed,
        "pages": len(plan.page_sizes),
        "page_bytes": page_bytes,
        "articles_jsonl_bytes": (out_dir / "articles.jsonl").stat().st_size,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def truth_stats(truth_path: Path) -> dict[str, object]:
    """Repost rate, edit mix and true-Jaccard spread of the planted pairs."""
    rows = [json.loads(line) for line in truth_path.open(encoding="utf-8")]
    sims = np.array([r["jaccard"] for r in rows if r["original"]], dtype=float)
    edits = Counter(r["edit"] for r in rows if r["original"])
    below = Counter(r["edit"] for r in rows if r["original"] and r["jaccard"] < 0.8)
    return {
        "articles": len(rows),
        "chinese": sum(r["lang"] == "zh" for r in rows),
        "reposts": len(sims),
        "repost_rate": round(len(sims) / len(rows), 4),
        "edits": dict(sorted(edits.items())),
        "jaccard_quantiles": {
            f"p{q}": round(float(np.percentile(sims, q)), 3) for q in (1, 5, 10, 25, 50)
        }
        if len(sims)
        else {},
        "pairs_below_0.8": int((sims < 0.8).sum()),
        "below_0.8_by_edit": dict(sorted(below.items())),
        "hard_negatives": sum(r.get("family") is not None for r in rows),
        "hard_negative_max_containment": max(
            (r["family_containment"] or 0 for r in rows if r.get("family") is not None),
            default=None,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    began = time.perf_counter()
    manifest = generate(args.out_dir, args.articles, args.seed)
    seconds = time.perf_counter() - began
    print(json.dumps({**manifest, "seconds": round(seconds, 2)}, indent=2))
    print(json.dumps(truth_stats(args.out_dir / "truth.jsonl"), indent=2, ensure_ascii=False))
    print(f"mean page bytes per article: {manifest['page_bytes'] / args.articles:.0f}")


if __name__ == "__main__":
    main()
