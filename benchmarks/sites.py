# ruff: noqa: RUF001  (Chinese chrome is written with its own full-width punctuation)
"""Synthetic scrapes of many sites of the seed family, with truth, and a scorer.

Each site has chrome that no built-in rule names: its name as a line, a breadcrumb and
a WordPress archive title (tag, category, author or date archive, in Chinese or
English) above the first separator; its own promo or subscription sentence appended to
the end of every article (as the last paragraph's closing sentence, or as a paragraph
of its own); its own footer lines under the last article of a page. Articles are
reposted across pages and sites (exact copies, or with one word changed), a few of them
onto dozens of pages. A third of the articles are followed by a "related posts" block:
other articles' titles, half of them with their lead sentence, which is content on its
own page (and a paragraph of its own in 40% of articles). The truth beside the pages
says, for every article on every page, which sentences are the article's, which lines
or sentences are its boilerplate (the promo first, then whole lines), and which lines
its related block.

One command generates a scrape and scores ``corpus-clean run`` on it::

    .venv/bin/python benchmarks/sites.py --sites 20 --articles 20000
    .venv/bin/python benchmarks/sites.py --variant default= --variant no-learn=--no-learn
    .venv/bin/python benchmarks/sites.py --generate-only DIR

Per variant (a label and the extra arguments given to ``corpus-clean run``): boilerplate
lines and sentences left in the records written (of those planted in them), related-block
lines left (apart: they recur little, and some are other articles' content), records
written with an empty text, the share of article sentences kept (each distinct article
counted once, in the copy dedup kept), and reposted articles intact (every copy written,
kept or removed as a duplicate, with every sentence). Without ``--variant``, the scorer
runs ``no-learn`` (``--no-learn``) and ``default`` when ``corpus-clean run`` knows
``--no-learn``, else ``default`` alone. Targets once learning is in: 0 boilerplate left,
0 empty records, >= 99.9% of article sentences kept, every repost intact.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import synth

FORMAT_VERSION = 2
DEFAULT_SEED = 20261201
#: Share of article slots that repost an earlier article, and of reposts that copy one
#: of the few "viral" articles (which so end up on dozens of pages and sites).
REPOST_RATE = 0.25
VIRAL_SHARE = 0.15
VIRAL_ARTICLES = 12
EDITED_REPOST_RATE = 0.3
SINGLE_ARTICLE_PAGES = 0.15
#: Share of articles followed by a "related posts" block: other articles' titles, some
#: with their lead sentence as a teaser; and of articles whose lead is a paragraph alone.
RELATED_RATE = 0.3
TEASER_RATE = 0.5
LEAD_ALONE = 0.4
ZH_SITES = 0.3

PLACES = [
    ("江城", "Jiangcheng"),
    ("楚天", "Chutian"),
    ("华中", "Huazhong"),
    ("汉口", "Hankou"),
    ("长江", "Changjiang"),
    ("荆楚", "Jingchu"),
    ("江汉", "Jianghan"),
    ("东湖", "Donghu"),
    ("光谷", "Guanggu"),
    ("黄鹤", "Huanghe"),
    ("洪山", "Hongshan"),
    ("武昌", "Wuchang"),
    ("汉阳", "Hanyang"),
    ("青山", "Qingshan"),
    ("江夏", "Jiangxia"),
    ("黄陂", "Huangpi"),
    ("新洲", "Xinzhou"),
    ("蔡甸", "Caidian"),
    ("襄阳", "Xiangyang"),
    ("宜昌", "Yichang"),
    ("荆州", "Jingzhou"),
    ("十堰", "Shiyan"),
    ("孝感", "Xiaogan"),
    ("黄石", "Huangshi"),
    ("咸宁", "Xianning"),
    ("随州", "Suizhou"),
    ("恩施", "Enshi"),
    ("鄂州", "Ezhou"),
]
KINDS = [
    ("资讯网", "News"),
    ("新闻网", "Daily"),
    ("热点网", "Hotspot"),
    ("生活网", "Life"),
    ("时报网", "Times"),
    ("在线", "Online"),
    ("日报网", "Herald"),
    ("快讯网", "Express"),
]
CATEGORIES = [
    ("科技", "Technology"),
    ("财经", "Finance"),
    ("社会", "Society"),
    ("教育", "Education"),
    ("健康", "Health"),
    ("文化", "Culture"),
    ("体育", "Sports"),
    ("本地", "Local"),
]
MONTHS = "January February March April May June July August September October November December"
BREADCRUMBS = [
    "首页 » {cat_zh}",
    "首页 > {cat_zh} > 正文",
    "当前位置：首页 > {cat_zh}",
    "Home » {cat_en}",
    "Home / {cat_en} / Article",
    "You are here: Home › {cat_en}",
]
ARCHIVES = [
    "分类目录归档：{cat_zh}",
    "作者归档：{author}",
    "月度归档：{year}年{month}月",
    "标签：{tag}",
    "Tag Archives: {tag}",
    "Category Archives: {cat_en}",
    "Author Archives: {author}",
    "Monthly Archives: {month_name} {year}",
    "Daily Archives: {month_name} {day}, {year}",
]
PROMOS_EN = [
    "Follow {en} on WeChat for more local news every day.",
    "Subscribe to {en} and be the first to know what happens in {place}.",
    "For more stories like this, follow the official account of {en}.",
    "Scan the QR code to follow {en} and never miss the news of {place}.",
    "Like {en} for the latest updates from {place} and beyond.",
]
PROMOS_ZH = [
    "关注{zh}微信公众号，获取更多本地资讯。",
    "欢迎订阅{zh}，第一时间了解{place}最新消息。",
    "更多精彩内容，请关注{zh}官方账号。",
    "扫描二维码关注{zh}，{place}新闻一手掌握。",
]
FOOTERS = [
    ["© 2022 {zh} 版权所有", "联系我们 | 关于我们 | 网站地图"],
    ["Copyright © 2022 {en}. All rights reserved.", "Powered by WordPress | Theme by {en}"],
    ["本站部分内容来源于网络，如有侵权请联系删除。", "{zh} 鄂ICP备{num}号"],
    ["About {en}", "Contact us: editor@{host}.example.cn"],
    ["{en} · {place} · Since 2009", "Privacy Policy | Terms of Use"],
    ["责任编辑：{editor}", "{zh}客户端下载"],
]
RELATED_HEADINGS = ["Related posts", "You may also like", "相关文章", "猜你喜欢", "Read more"]
EDITORS = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏"]


@dataclass
class Site:
    number: int
    zh: str
    en: str
    place: str
    lang: str
    author: str
    promo: str
    promo_as_tail: bool
    footer: list[str]
    related: str

    @property
    def folder(self) -> str:
        return f"site-{self.number:02d}"


@dataclass
class Article:
    """One article as it stands on one page: its sentences, paragraph by paragraph."""

    key: int  # the original's number: reposts share it
    lang: str
    title: str
    paragraphs: list[list[str]]

    @property
    def sentences(self) -> list[str]:
        return [s for paragraph in self.paragraphs for s in paragraph]


@dataclass
class Generator:
    rnd: random.Random
    related_rate: float = RELATED_RATE
    originals: list[Article] = field(default_factory=list)
    titles: set[str] = field(default_factory=set)

    def words(self, lang: str, n: int) -> list[str]:
        lex = synth.LEXICONS[lang]
        return self.rnd.choices(lex.units, cum_weights=lex.cum_weights, k=n)

    def sentence(self, lang: str) -> str:
        if lang == "zh":
            return "".join(self.words("zh", self.rnd.randint(10, 40))) + "\u3002"
        words = self.words("en", self.rnd.randint(8, 30))
        words[0] = words[0].capitalize()
        return " ".join(words) + "."

    def title(self, lang: str) -> str:
        while True:
            if lang == "zh":
                title = "".join(self.words("zh", self.rnd.randint(8, 20)))
            else:
                words = self.words("en", self.rnd.randint(5, 12))
                title = " ".join(w.capitalize() if i == 0 else w for i, w in enumerate(words))
            if title not in self.titles:
                self.titles.add(title)
                return title

    def original(self, lang: str) -> Article:
        paragraphs = [
            [self.sentence(lang) for _ in range(self.rnd.randint(2, 5))]
            for _ in range(self.rnd.randint(2, 6))
        ]
        if self.rnd.random() < LEAD_ALONE:
            paragraphs.insert(0, [self.sentence(lang)])
        article = Article(len(self.originals), lang, self.title(lang), paragraphs)
        self.originals.append(article)
        return article

    def repost(self, lang: str, page: set[int]) -> Article | None:
        """A copy of an earlier article not on this page yet (a page lists it once)."""
        pool = [a for a in self.originals if a.lang == lang and a.key not in page]
        if not pool:
            return None
        viral = [a for a in pool if a.key < VIRAL_ARTICLES * 8 and a.key % 8 == 0]
        source = (
            self.rnd.choice(viral)
            if viral and self.rnd.random() < VIRAL_SHARE
            else self.rnd.choice(pool)
        )
        paragraphs = [list(p) for p in source.paragraphs]
        if self.rnd.random() < EDITED_REPOST_RATE:  # one word changed in one sentence
            p = self.rnd.randrange(len(paragraphs))
            s = self.rnd.randrange(len(paragraphs[p]))
            paragraphs[p][s] = self._edited(paragraphs[p][s], lang)
        return Article(source.key, lang, source.title, paragraphs)

    def related(self, article: Article, site: Site) -> list[str]:
        """A "related posts" block: its heading, other articles' titles and teasers (the
        teaser is that article's lead sentence: content on its own page)."""
        pool = [a for a in self.originals[-500:] if a.lang == article.lang and a.key != article.key]
        if len(pool) < 2 or self.rnd.random() >= self.related_rate:
            return []
        lines = [site.related]
        for other in self.rnd.sample(pool, self.rnd.randint(2, min(4, len(pool)))):
            lines.append(other.title)
            if self.rnd.random() < TEASER_RATE:
                lines.append(other.paragraphs[0][0])
        return lines

    def _edited(self, sentence: str, lang: str) -> str:
        if lang == "zh":
            i = self.rnd.randrange(len(sentence) - 1)
            return sentence[:i] + self.words("zh", 1)[0] + sentence[i + 1 :]
        words = sentence[:-1].split(" ")
        i = self.rnd.randrange(1, len(words))
        words[i] = self.words("en", 1)[0]
        return " ".join(words) + "."


def make_sites(n: int, rnd: random.Random) -> list[Site]:
    pairs = [(p, k) for p in PLACES for k in KINDS]
    rnd.shuffle(pairs)
    sites = []
    for number, ((place_zh, place_en), (kind_zh, kind_en)) in enumerate(pairs[:n]):
        lang = "zh" if rnd.random() < ZH_SITES else "en"
        zh, en = place_zh + kind_zh, f"{place_en} {kind_en}"
        fill = {
            "zh": zh,
            "en": en,
            "place": place_zh if lang == "zh" else place_en,
            "host": place_en.lower(),
            "num": f"{rnd.randrange(10**7, 10**8)}",
            "editor": rnd.choice(EDITORS),
        }
        promo = rnd.choice(PROMOS_ZH if lang == "zh" else PROMOS_EN).format(**fill)
        footer = [line.format(**fill) for line in rnd.choice(FOOTERS)]
        sites.append(
            Site(
                number,
                zh,
                en,
                fill["place"],
                lang,
                f"editor{number:02d}",
                promo,
                rnd.random() < 0.6,
                footer,
                rnd.choice(RELATED_HEADINGS),
            )
        )
    return sites


def header_lines(site: Site, rnd: random.Random) -> list[str]:
    cat_zh, cat_en = rnd.choice(CATEGORIES)
    month = rnd.randint(1, 12)
    fill = {
        "cat_zh": cat_zh,
        "cat_en": cat_en,
        "author": site.author,
        "year": 2022,
        "month": month,
        "month_name": MONTHS.split()[month - 1],
        "day": rnd.randint(1, 28),
        "tag": rnd.choice(CATEGORIES)[0 if site.lang == "zh" else 1],
    }
    lines = [site.zh if site.lang == "zh" or rnd.random() < 0.5 else site.en]
    if rnd.random() < 0.6:
        lines.append(rnd.choice(BREADCRUMBS).format(**fill))
    if rnd.random() < 0.8:
        lines.append(rnd.choice(ARCHIVES).format(**fill))
    return lines


def render_article(
    article: Article, site: Site, rnd: random.Random, related: list[str]
) -> tuple[list[str], list[str]]:
    """The page blocks of one article's body, and the boilerplate planted in them."""
    joiner = "" if article.lang == "zh" else " "
    paragraphs = [joiner.join(p) for p in article.paragraphs]
    if site.promo_as_tail:
        promo_joiner = "" if site.lang == "zh" or article.lang == "zh" else " "
        paragraphs[-1] += promo_joiner + site.promo
    else:
        paragraphs.append(site.promo)
    indent = "  " if rnd.random() < 0.4 else ""
    return [indent + p for p in paragraphs] + related, [site.promo]


def generate(
    out: Path,
    n_sites: int,
    n_articles: int,
    seed: int = DEFAULT_SEED,
    related_rate: float = RELATED_RATE,
) -> dict[str, Any]:
    """Write ``out/pages/site-NN/page-NNNNN.txt`` and ``out/truth.jsonl``; return figures."""
    rnd = random.Random(seed)
    sites = make_sites(n_sites, rnd)
    gen = Generator(rnd, related_rate)
    pages_dir = out / "pages"
    for site in sites:
        (pages_dir / site.folder).mkdir(parents=True, exist_ok=True)
    slots = 0
    page_numbers: dict[int, int] = defaultdict(int)
    reposts = 0
    with open(out / "truth.jsonl", "w", encoding="utf-8") as truth:
        while slots < n_articles:
            site = rnd.choice(sites)
            single = rnd.random() < SINGLE_ARTICLE_PAGES
            count = 1 if single else min(rnd.randint(2, 10), n_articles - slots)
            articles = []
            for _ in range(count):
                lang = site.lang if rnd.random() < 0.9 else ("en" if site.lang == "zh" else "zh")
                on_page = {a.key for a in articles}
                article = gen.repost(lang, on_page) if rnd.random() < REPOST_RATE else None
                reposts += article is not None
                articles.append(article or gen.original(lang))
            slots += count
            number = page_numbers[site.number]
            page_numbers[site.number] += 1
            name = f"{site.folder}/page-{number:05d}.txt"
            blocks: list[str] = []
            entries = []
            header: list[str] = []
            if single:
                article = articles[0]
                related = gen.related(article, site)
                body, planted = render_article(article, site, rnd, related)
                day = f"2022-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
                blocks += [article.title, f"{day} 0 By", *body]
                entries.append((article, planted, related))
            else:
                header = header_lines(site, rnd)
                blocks += header
                separator = f"通过{site.author}"
                for article in articles:
                    related = gen.related(article, site)
                    body, planted = render_article(article, site, rnd, related)
                    blocks += [separator, article.title, *body]
                    entries.append((article, planted, related))
            blocks += site.footer
            entries[-1][1].extend(site.footer)
            (pages_dir / name).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
            row = {
                "page": name,
                "site": site.number,
                "header": header,
                "articles": [
                    {
                        "n": n,
                        "article": a.key,
                        "title": a.title,
                        "sentences": a.sentences,
                        "boilerplate": planted,
                        "related": related,
                    }
                    for n, (a, planted, related) in enumerate(entries, 1)
                ],
            }
            truth.write(json.dumps(row, ensure_ascii=False) + "\n")
    manifest = {
        "format": FORMAT_VERSION,
        "sites": n_sites,
        "articles": n_articles,
        "seed": seed,
        "related_rate": related_rate,
        "pages": sum(page_numbers.values()),
        "originals": len(gen.originals),
        "reposts": reposts,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


# ---- scoring --------------------------------------------------------------------------


def corpus_clean() -> str:
    return str(Path(sys.executable).with_name("corpus-clean"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def run_variant(data: Path, extra: list[str], work: Path, jobs: int | None) -> dict[str, Any]:
    out, dups, report = work / "out.jsonl", work / "dups.jsonl", work / "report.json"
    command = [
        corpus_clean(),
        "run",
        str(data / "pages"),
        "-o",
        str(out),
        "--duplicates",
        str(dups),
        "--report",
        str(report),
        "-q",
        *extra,
    ]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return {
        "seconds": round(seconds, 2),
        **score(data, read_jsonl(out), read_jsonl(dups)),
        "removed_by_rule": json.loads(report.read_text("utf-8"))["removed_by_rule"],
    }


def score(data: Path, kept: list[dict[str, Any]], removed: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one run against the truth (see the module docstring)."""
    pages = str(data / "pages") + "/"
    truth: dict[tuple[str, str], dict[str, Any]] = {}
    instances: dict[int, int] = defaultdict(int)
    sentences_of: dict[int, int] = {}
    for row in read_jsonl(data / "truth.jsonl"):
        for entry in row["articles"]:
            entry["header"] = row["header"]
            truth[(row["page"], entry["title"])] = entry
            instances[entry["article"]] += 1
            sentences_of.setdefault(entry["article"], len(entry["sentences"]))

    def locate(record: dict[str, Any]) -> dict[str, Any] | None:
        """The truth of a record: its page and title (a title is unique on its page),
        so that a version which numbers articles otherwise is scored all the same."""
        source = str(record["source"])
        if not source.startswith(pages):
            return None
        return truth.get((source[len(pages) :], record["title"] or ""))

    planted = left = related_planted = related_left = empty = unknown = 0
    kept_sentences: dict[int, int] = {}
    intact_copies: dict[int, int] = defaultdict(int)
    for written, records in ((True, kept), (False, removed)):
        for record in records:
            entry = locate(record)
            text, title = record["text"], record["title"] or ""
            if written:
                empty += not text
            if entry is None:  # a page's chrome written as if it were an article
                unknown += written
                continue
            found = sum(sentence in text for sentence in entry["sentences"])
            if found == len(entry["sentences"]):
                intact_copies[entry["article"]] += 1
            if not written:
                continue
            # The promo (first) may be a tail, so it is looked for anywhere; the rest are
            # whole lines (a site's name also stands inside its promo).
            lines = set(text.split("\n")) | {title}
            promo, *chrome = entry["boilerplate"]
            planted += len(entry["boilerplate"])
            left += promo in text
            left += sum(line in lines for line in chrome + entry["header"])
            related_planted += len(entry["related"])
            related_left += sum(line in lines for line in entry["related"])
            kept_sentences.setdefault(entry["article"], found)
    total_sentences = sum(sentences_of.values())
    reposted = [key for key, n in instances.items() if n > 1]
    return {
        "records_written": len(kept),
        "chrome_records": unknown,
        "empty_records": empty,
        "boilerplate_planted": planted,
        "boilerplate_left": left,
        "related_planted": related_planted,
        "related_left": related_left,
        "article_sentences": total_sentences,
        "article_sentences_kept": sum(kept_sentences.values()),
        "sentences_kept_share": round(sum(kept_sentences.values()) / total_sentences, 5),
        "reposted_articles": len(reposted),
        "reposts_intact": sum(intact_copies[key] == instances[key] for key in reposted),
    }


def knows(option: str) -> bool:
    done = subprocess.run([corpus_clean(), "run", "--help"], capture_output=True, text=True)
    return option in done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--jobs", type=int)
    parser.add_argument(
        "--related-rate",
        type=float,
        default=RELATED_RATE,
        help="share of articles followed by a related-posts block (0: none)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=ARGS",
        help="a label and the extra corpus-clean run arguments of a run (repeatable)",
    )
    parser.add_argument("--keep-data", type=Path, metavar="DIR", help="generate into DIR, reuse")
    parser.add_argument("--generate-only", type=Path, metavar="DIR")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.generate_only:
        manifest = generate(
            args.generate_only, args.sites, args.articles, args.seed, args.related_rate
        )
        print(json.dumps(manifest))
        return 0
    variants = [(v.partition("=")[0], v.partition("=")[2]) for v in args.variant] or (
        [("no-learn", "--no-learn"), ("default", "")] if knows("--no-learn") else [("default", "")]
    )
    with tempfile.TemporaryDirectory(prefix="sites-") as tmp:
        data = args.keep_data or Path(tmp) / "data"
        expected = {
            "format": FORMAT_VERSION,
            "sites": args.sites,
            "articles": args.articles,
            "seed": args.seed,
            "related_rate": args.related_rate,
        }
        manifest_path = data / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        if {k: manifest.get(k) for k in expected} != expected:
            if data.exists() and any(data.iterdir()):
                if not manifest:
                    raise SystemExit(f"{data} holds something else; give an empty folder")
                shutil.rmtree(data)
            data.mkdir(parents=True, exist_ok=True)
            manifest = generate(data, args.sites, args.articles, args.seed, args.related_rate)
        print(f"corpus: {json.dumps(manifest)}", file=sys.stderr)
        results = {}
        for label, extra in variants:
            work = Path(tmp) / f"run-{label}"
            work.mkdir()
            figures = run_variant(data, shlex.split(extra), work, args.jobs)
            results[label] = {"args": extra, **figures}
    header = (
        f"{'variant':10} {'written':>8} {'chrome':>6} {'empty':>6} {'bp left':>9} {'of':>7} "
        f"{'related left':>13} {'of':>7} "
        f"{'sentences kept':>15} {'reposts intact':>15} {'sec':>6}"
    )
    print(header)
    for label, r in results.items():
        print(
            f"{label:10} {r['records_written']:8} {r['chrome_records']:6} {r['empty_records']:6} "
            f"{r['boilerplate_left']:9} {r['boilerplate_planted']:7} "
            f"{r['related_left']:13} {r['related_planted']:7} "
            f"{r['sentences_kept_share']:15.3%} "
            f"{str(r['reposts_intact']) + '/' + str(r['reposted_articles']):>15} {r['seconds']:6}"
        )
    if args.out:
        args.out.write_text(
            json.dumps({"corpus": manifest, "results": results}, indent=2) + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
