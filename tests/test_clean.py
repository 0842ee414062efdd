"""Cleaning: boilerplate rules, layout normalization, user rules and their errors."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support import (
    GOLDEN,
    REPO,
    SAMPLE_FILES,
    builtin_rules,
    clean,
    replicated_samples,
    seed_articles,
    split,
)

from corpus_clean import pipeline
from corpus_clean.cli import cli
from corpus_clean.options import CleanOptions
from corpus_clean.record import Record
from corpus_clean.stages.clean import Cleaner, RulesError, clean_text, clean_title, load_rules
from corpus_clean.stats import Stats

HEBEI_PROMO = "Pay attention to Hebei News network, understand the latest news in Hebei."


def cleaned(text: str) -> tuple[str, Counter[str]]:
    removed: Counter[str] = Counter()
    return clean_text(text, builtin_rules(), removed), removed


# ---- built-in rules, each on its example from the seed pages -------------------------


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("关于作者", "author_footer"),
        ("admin administrator", "author_footer"),
        ("  admin administrator  ", "author_footer"),
        ("Click on the link to participate in this activity!", "call_to_action"),
        ("?One-click ticket purchase", "call_to_action"),
        ("Click on one-click ticket purchase:https://t.cfc.com.cn/te3rfv ", "call_to_action"),
        # A near-variant of a known call to action: a typo defeats the regex, not the fuzzy rule.
        ("Clik on the link to participate in this activity!", "call_to_action_variant"),
        (
            "Pay attention to Hebei News network, understand the latest news in Hebei!",
            "call_to_action_variant",
        ),
        # Share chrome and the comment form's call to action, from the real pages.
        ("Short link for this page: http://gu.com/p/3bh38", "share_link"),
        ("Permalink: https://www.faz.net/-gqe-9vw7i", "share_link"),
        ("Kurzlink: https://heise.de/-4451133", "share_link"),
        ("\u672c\u6587\u94fe\u63a5\uff1ahttps://news.example.cn/1.html", "share_link"),
        ("Click here to cancel reply.", "call_to_action"),
        ("通过admin", "separator"),
        ("通过 admin", "separator"),
        ("首页", "site_header"),
        ("标签归档 武汉夜生活网", "site_header"),
        ("2022-05-25 0 By", "date_byline"),
        ("2022-06-09 0 By", "date_byline"),
        (HEBEI_PROMO, "promo_tail"),
    ],
)
def test_builtin_rule_removes_its_seed_example(line: str, rule: str) -> None:
    text, removed = cleaned(f"Before it.\n{line}\nAfter it.")
    assert text == "Before it.\n\nAfter it."
    assert removed == Counter({rule: 1})


def test_promo_tail_is_cut_and_the_rest_of_the_line_kept() -> None:
    line = f"(Hebei Daily reporter Wang Ludan correspondent Xue Hua) {HEBEI_PROMO}"
    text, removed = cleaned(f"Paragraph one.\n{line}")
    assert text == "Paragraph one.\n\n(Hebei Daily reporter Wang Ludan correspondent Xue Hua)"
    assert removed == Counter({"promo_tail": 1})


def test_promo_tail_of_another_site_is_cut_too() -> None:
    text, removed = cleaned(
        "It rained. Pay attention to Hubei Daily, understand the latest news in Wuhan."
    )
    assert (text, removed) == ("It rained.", Counter({"promo_tail": 1}))


def test_whitespace_only_lines_are_removed_and_counted() -> None:
    text, removed = cleaned("One.\n \n\t\n\u3000\n\nTwo.")
    assert text == "One.\n\nTwo."
    assert removed == Counter({"whitespace_only_line": 3})


@pytest.mark.parametrize(
    "line",
    [
        "Users can click on the link below to read the full report.",
        "The admin administrator role was abolished in 2021.",
        "About the author: 关于作者的介绍见下文。",
        "The report (see https://example.com/report) was published on Monday and widely read.",
        "On 2022-05-25 the bureau published its figures, and by June the prices had risen.",
        "Pay attention to detail, the inspector said.",
        "首页新闻",
        # Lines the human main text of real pages keeps (benchmarks/rules_check.py).
        "Read more here: http://www.fastcocreate.com",
        "Sign up here: http://www.scotthyoung.com/learnonsteroids/",
        "http://www.openpetition.de",
        "http://keithpp.wordpress.com/2012/02/08/bandcamp/",
        "www.thepaper.cn",
        "Click here for the slide show.",
        "Click here for more information and tickets to The Birthday Party.",
        "Click here.",
        "The permalink: a short link for this page is below.",
    ],
)
def test_article_lines_resembling_boilerplate_are_kept(line: str) -> None:
    text, removed = cleaned(line)
    assert (text, removed) == (line, Counter())


@pytest.mark.parametrize(
    "line",
    [
        "Click on any district of the interactive map and the museum shows where the walls ran.",
        "Click on the small red icon in the corner of the government app and residents can see "
        "the queue at every clinic in the city, updated each minute, which the health bureau says "
        "has halved waiting times since the service opened in March.",
    ],
    ids=["short", "long"],
)
def test_article_sentences_starting_with_click_on_are_kept(line: str) -> None:
    text, removed = cleaned(f"Before it.\n{line}\nAfter it.")
    assert text == f"Before it.\n\n{line}\n\nAfter it."
    assert removed == Counter()


@pytest.mark.parametrize(
    "line",
    [
        "Click on the button below to download the app",
        "Click on the QR code to follow us",
        "Click on https://example.com/register to sign up",
    ],
)
def test_short_click_lines_naming_what_to_click_are_calls_to_action(line: str) -> None:
    assert cleaned(f"Before it.\n{line}\nAfter it.") == (
        "Before it.\n\nAfter it.",
        Counter({"call_to_action": 1}),
    )


# ---- layout normalization ----------------------------------------------------------


#: Glued sentences the repair exists for: from the seed pages (003, 004), and shapes
#: like them. (text, repaired text).
GLUED = [
    ("development layout.At the meeting", "development layout. At the meeting"),
    ("it rose by 10%.Hubei, a major", "it rose by 10%. Hubei, a major"),
    ("this year?Original innovation", "this year? Original innovation"),
    ("were eliminated!The rest", "were eliminated! The rest"),
    ("be implemented\u201d.We have", "be implemented\u201d. We have"),
    ("he said.\u201dLong Fenjie said", "he said.\u201d Long Fenjie said"),
    ("in the next stage.The conference", "in the next stage. The conference"),
    ("reached 25.6%.Complete the task", "reached 25.6%. Complete the task"),
    ("1,200 yuan/ton.Compared with", "1,200 yuan/ton. Compared with"),
    ("to crack it.This year, the", "to crack it. This year, the"),
    ("fund was set up.In scientific work", "fund was set up. In scientific work"),
    (
        "technological cooperation.China\u2019s three major",
        "technological cooperation. China\u2019s three major",
    ),
    ("high frequency word.GongJianZhang play core", "high frequency word. GongJianZhang play core"),
    (
        "the Beijing-Tianjin-Hebei National Technology Innovation Center.To meet the",
        "the Beijing-Tianjin-Hebei National Technology Innovation Center. To meet the",
    ),
    (
        "play a good \u201cfirst hand chess\u201d?This gathering",
        "play a good \u201cfirst hand chess\u201d? This gathering",
    ),
    ("It reached 1,451.Hengshui city", "It reached 1,451. Hengshui city"),
    ("were excellent.Next, we will", "were excellent. Next, we will"),
    ("the One-click stage.One-click purchase", "the One-click stage. One-click purchase"),
    ("It stops.Then it goes.Then it stops", "It stops. Then it goes. Then it stops"),
    # From the real pages (../shared/realdata), in other languages.
    ("gemietet werden k\u00f6nnen.Bei der Villa", "gemietet werden k\u00f6nnen. Bei der Villa"),
    ("sie sind viel zu fettig.Aber mit ein", "sie sind viel zu fettig. Aber mit ein"),
    ("do come\u00e7o ao fim.Uma obra prima", "do come\u00e7o ao fim. Uma obra prima"),
]

#: Identifiers, abbreviations, numbers and addresses: never split.
NOT_GLUED = [
    "Subclass unittest.TestCase and add test methods.",
    "class MyTest(unittest.TestCase):",
    "Call self.Assert and check the result.",
    "Use self.Assert(x) there.",
    "Build it with np.Array and a loop.",
    "Join them with os.Path and more.",
    "Import os.path first.",
    "Visit example.com today.",
    "Visit Example.Com today.",
    "Upgrade to v1.2 now.",
    "Upgrade to v1.2.Beta now.",
    "It is written in Node.js and Vue.js.",
    "The U.S. Army and the U.S.Navy met.",
    "Fruit, e.g. apples, i.e. food.",
    "Fruit, e.g.Apples and pears.",
    "Open file.txt and read.",
    "Open File.Txt and read.",
    "pi is 3.14 and e is 2.71",
    "a Ph.D. from MIT",
    "visit www.Xinhuanet.com today",
    "and www.People.com.cn too",
    "No.32 [2021] of Tianjin",
    "The React.Component class renders.",
    "The Hebei Center.To this end",  # a capitalized word needs a sentence before it
    "See java.util.List for details.",
    "The value of foo.Bar=3 is set.",
    "Read config.Settings_x here.",
    "End of line word.Next",
    "NASA.Then it launched.",
    "Mr.Smith went to Washington.",
    # From the real pages: names, brands and ordinals, not sentence ends.
    "Read Mac.AppStorm and iPhone.AppStorm daily.",
    "Die 9.Auflage ist da.",
    "See chapter 1.Introduction to it.",
    "Fotos: DoSchu / DoSchu.Com today",
    "Build Xamarin.Android in Windows.",
    "Von Isabella.DiBiase am Samstag",
]


@pytest.mark.parametrize(("before", "after"), GLUED)
def test_sure_glued_sentences_get_their_space(before: str, after: str) -> None:
    counts: Counter[str] = Counter()
    assert clean_text(before, builtin_rules(), counts=counts) == after
    assert counts == Counter({"glued_sentences_split": after.count(" ") - before.count(" ")})
    assert clean_text(after, builtin_rules()) == after  # and a second cleaning finds no more


@pytest.mark.parametrize("text", NOT_GLUED)
def test_identifiers_abbreviations_and_addresses_are_never_split(text: str) -> None:
    counts: Counter[str] = Counter()
    assert clean_text(text, builtin_rules(), counts=counts) == text
    assert counts == Counter()


def test_glue_repair_can_be_switched_off() -> None:
    counts: Counter[str] = Counter()
    text = "development layout.At the meeting"
    assert clean_text(text, builtin_rules(), glue_repair=False, counts=counts) == text
    assert counts == Counter()
    record = Record(id="r", text=text, source="s")
    stats = Stats()
    [out] = Cleaner(builtin_rules(), CleanOptions(glue_repair=False)).run([record], stats)
    assert out.text == text
    assert stats["glued_sentences_split"] == 0


def test_seed_repairs_are_counted() -> None:
    stats = Stats()
    seed_articles(stats)
    assert stats["glued_sentences_split"] == 172


def test_text_is_nfc_normalized() -> None:
    text, _ = cleaned("Cafe\u0301 au lait, \uff21 stays full width, \u212b becomes \u00c5.")
    assert text == "Caf\u00e9 au lait, \uff21 stays full width, \u00c5 becomes \u00c5."


def test_indentation_is_stripped_and_paragraphs_get_one_blank_line() -> None:
    raw = "\n\n  First paragraph.\n\n\n\n\tSecond paragraph.\r\n        Third.\n\n"
    assert cleaned(raw) == ("First paragraph.\n\nSecond paragraph.\n\nThird.", Counter())


def test_title_is_nfc_on_one_line() -> None:
    assert clean_title("  A  title\n split\tin two Cafe\u0301 ") == "A title split in two Caf\u00e9"


def test_cleaner_keeps_everything_but_title_and_text() -> None:
    record = Record(
        id="r1",
        text="  Body.\n通过admin\n",
        source="s",
        title=" T ",
        date="2020-01-01",
        meta={"k": [1]},
    )
    stats = Stats()
    [out] = Cleaner(builtin_rules()).run([record], stats)
    assert out == record.evolve(text="Body.", title="T")
    assert stats["records_cleaned"] == 1
    assert stats.removed_by_rule == Counter({"separator": 1})


def test_seed_removals_are_counted_by_rule_name() -> None:
    stats = Stats()
    seed_articles(stats)
    assert stats.removed_by_rule == Counter(
        {"author_footer": 2, "call_to_action": 3, "promo_tail": 1, "whitespace_only_line": 4}
    )


# ---- user rules ----------------------------------------------------------------------

USER_RULES = """
[[rule]]
name = "subscribe_footer"
patterns = ["Subscribe to our newsletter", "Share this article"]

[[rule]]
name = "photo_credit"
match = "regex"
patterns = ['(?:Photo|Image): [A-Z][a-z]+ [A-Z][a-z]+(?:/\\w+)?']

[[rule]]
name = "editor_note"
match = "fuzzy"
min_score = 85
patterns = ["Editor in charge: Zhang Wei"]

[[rule]]
name = "read_more"
action = "tail"
patterns = ["Read more >>"]
"""


def test_user_rules_file_adds_exact_regex_fuzzy_and_tail_rules(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(USER_RULES, encoding="utf-8")
    rules = load_rules(CleanOptions(rule_files=(path,)))
    removed: Counter[str] = Counter()
    text = clean_text(
        "Body one.\n"
        "Share this article\n"
        "Photo: Li Ming/Xinhua\n"
        "Editor in charge: Zhang Wie\n"
        "Body two. Read more >>\n"
        "关于作者\n"
        "Photo: the river at dawn, by a reader.\n"
        "Subscribe to our newsletter today for free and never miss a story.\n",
        rules,
        removed,
    )
    assert text == (
        "Body one.\n\nBody two.\n\nPhoto: the river at dawn, by a reader.\n\n"
        "Subscribe to our newsletter today for free and never miss a story."
    )
    assert removed == Counter(
        {
            "subscribe_footer": 1,
            "photo_credit": 1,
            "editor_note": 1,
            "read_more": 1,
            "author_footer": 1,
        }
    )


def test_user_rules_alone_without_builtin_ones(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(USER_RULES, encoding="utf-8")
    rules = load_rules(CleanOptions(rule_files=(path,), use_builtin_rules=False))
    assert {rule.name for rule in rules.rules} == {
        "subscribe_footer",
        "photo_credit",
        "editor_note",
        "read_more",
    }
    assert clean_text("关于作者\nShare this article", rules) == "关于作者"


def test_user_regex_with_inline_flags(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        "[[rule]]\nname = 'shout'\nmatch = 'regex'\npatterns = ['(?i:click here.*)']\n",
        encoding="utf-8",
    )
    rules = load_rules(CleanOptions(rule_files=(path,)))
    assert clean_text("CLICK HERE NOW\nText.", rules) == "Text."


BAD_RULES = [
    ("[[rule]\nname = 'x'", "not valid TOML"),
    ("[rule]\nname = 'x'\npatterns = ['a']", "rules go in [[rule]] tables"),
    ("rule = ['x']", "rules go in [[rule]] tables"),
    ("[[rule]]\npatterns = ['a']", "rule 1: needs a name"),
    (
        "[[rule]]\nname = 'x'\naction = 'drop'\npatterns = ['a']",
        "rule 1 (x): action must be one of line, tail",
    ),
    (
        "[[rule]]\nname = 'x'\nmatch = 'glob'\npatterns = ['a']",
        "rule 1 (x): match must be one of exact, regex, fuzzy",
    ),
    (
        "[[rule]]\nname = 'x'\naction = 'tail'\nmatch = 'fuzzy'\npatterns = ['a']",
        "a tail rule matches by exact text or regex, not fuzzy",
    ),
    ("[[rule]]\nname = 'x'", "patterns must be a non-empty list of non-empty strings"),
    ("[[rule]]\nname = 'x'\npatterns = 'a'", "patterns must be a non-empty list"),
    ("[[rule]]\nname = 'x'\npatterns = []", "patterns must be a non-empty list"),
    ("[[rule]]\nname = 'x'\npatterns = ['a', ' ']", "patterns must be a non-empty list"),
    (
        "[[rule]]\nname = 'x'\nmatch = 'regex'\npatterns = ['(unclosed']",
        "rule 1 (x): bad regular expression '(unclosed'",
    ),
    # Valid alone, but a global flag cannot stand inside the combined expression.
    (
        "[[rule]]\nname = 'x'\nmatch = 'regex'\npatterns = ['(?i)click here']",
        "rule 1 (x): bad regular expression '(?i)click here'",
    ),
    (
        "[[rule]]\nname = 'x'\nmatch = 'fuzzy'\nmin_score = 0\npatterns = ['a']",
        "min_score must be a number in (0, 100]",
    ),
    (
        "[[rule]]\nname = 'x'\nmatch = 'fuzzy'\nmin_score = 'high'\npatterns = ['a']",
        "min_score must be a number in (0, 100]",
    ),
    (
        "[[rule]]\nname = 'ok'\npatterns = ['a']\n[[rule]]\nname = 'ok'\npatterns = ['b']",
        "rule name 'ok' is already used in ",
    ),
    (
        "[[rule]]\nname = 'separator'\npatterns = ['a']",
        "rule name 'separator' is already used in <built-in rules>",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_RULES)
def test_bad_rules_file_says_where_and_what_to_fix(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_rules(CleanOptions(rule_files=(path,)))
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")


def test_missing_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(RulesError, match=r"absent\.toml: cannot read rules file"):
        load_rules(CleanOptions(rule_files=(path,)))


def test_rules_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[[rule]]\nname = 'caf\u00e9'\npatterns = ['x']\n".encode("latin-1"))
    with pytest.raises(RulesError, match=r"latin1\.toml: .*UTF-8"):
        load_rules(CleanOptions(rule_files=(path,)))


def test_builtin_rules_load_and_have_unique_names() -> None:
    names = [rule.name for rule in builtin_rules().rules]
    assert len(names) == len(set(names))
    assert {
        "separator",
        "site_header",
        "author_footer",
        "date_byline",
        "call_to_action",
        "call_to_action_variant",
        "share_link",
        "promo_tail",
    } <= set(names)


def test_cleaning_twice_changes_nothing_even_for_a_repeated_promo_tail() -> None:
    text = f"Body.\nLast words. {HEBEI_PROMO} {HEBEI_PROMO}\n{HEBEI_PROMO}{HEBEI_PROMO}"
    once, removed = cleaned(text)
    assert once == "Body.\n\nLast words."
    assert removed == Counter({"promo_tail": 4})
    assert cleaned(once) == (once, Counter())


GROUPED_RULES = r"""
[[rule]]
name = "stutter"
match = "regex"
patterns = ['(\w+) \1']

[[rule]]
name = "dateline"
match = "regex"
patterns = ['(?P<city>[A-Z]+), (?P<day>\d+) May']

[[rule]]
name = "dateline_june"
match = "regex"
patterns = ['(?P<city>[A-Z]+), (?P<day>\d+) June']

[[rule]]
name = "signature"
action = "tail"
match = "regex"
patterns = ['--\s*(\w+)\s+\1']
"""


def test_user_regexes_with_their_own_groups_and_backreferences(tmp_path: Path) -> None:
    path = tmp_path / "grouped.toml"
    path.write_text(GROUPED_RULES, encoding="utf-8")
    rules = load_rules(CleanOptions(rule_files=(path,)))
    removed: Counter[str] = Counter()
    text = clean_text(
        "hello hello\nhello world\nWUHAN, 3 May\nWUHAN, 4 June\n"
        f"Last line. -- ed ed\nOther line -- ed ed {HEBEI_PROMO}",
        rules,
        removed,
    )
    assert text == "hello world\n\nLast line.\n\nOther line"
    assert removed == Counter(
        {"stutter": 1, "dateline": 1, "dateline_june": 1, "signature": 2, "promo_tail": 1}
    )
    assert clean_text(text, rules) == text


# ---- empty articles ------------------------------------------------------------------


def test_split_article_with_nothing_left_is_dropped_and_counted() -> None:
    article = Record(id="p.txt#2", title="关于作者", text="admin administrator\n", source="p.txt")
    title_only = Record(id="p.txt#3", title="A title", text="", source="p.txt")
    kept = Record(id="p.txt#4", title="T", text="Body.", source="p.txt")
    stats = Stats()
    out = list(Cleaner(builtin_rules()).run([article, title_only, kept], stats))
    assert [r.id for r in out] == ["p.txt#4"]
    assert stats["empty_articles_dropped"] == 2
    assert stats["records_cleaned"] == 3


@pytest.mark.parametrize(
    "record",
    [
        Record(id="in.jsonl:1", title="T", text="", source="in.jsonl"),
        Record(id="in.jsonl:2", title=None, text="\u5173\u4e8e\u4f5c\u8005", source="in.jsonl"),
        # An id of the user's that only looks like a split article's: another source.
        Record(id="page.html#3", text="\u5173\u4e8e\u4f5c\u8005", source="in.jsonl"),
    ],
    ids=["empty", "emptied", "hash-id"],
)
def test_user_records_are_kept_even_when_their_text_is_empty(record: Record) -> None:
    stats = Stats()
    [out] = Cleaner(builtin_rules()).run([record], stats)
    assert (out.id, out.text) == (record.id, "")
    assert stats["empty_articles_dropped"] == 0


def test_page_of_nothing_but_boilerplate_writes_no_record() -> None:
    # F15n: a page of a promo line and boilerplate became a record with the promo line as
    # its title and an empty text.
    page = Record(
        id="p.txt",
        text=f"{HEBEI_PROMO}\n\n\u5173\u4e8e\u4f5c\u8005\nadmin administrator\n",
        source="p.txt",
        is_page=True,
    )
    stats = Stats()
    assert clean(split([page], stats), stats) == []
    assert (stats["articles_split"], stats["empty_articles_dropped"]) == (1, 1)


# ---- explaining removals -------------------------------------------------------------


def test_clean_text_reports_each_removal_in_order() -> None:
    removals: list[tuple[str, str, str]] = []
    text = clean_text(
        f"Body.\n\u901a\u8fc7admin\n  \nLast words. {HEBEI_PROMO}\nPermalink: http://a.cn/1",
        builtin_rules(),
        removals=removals,
    )
    assert text == "Body.\n\nLast words."
    assert removals == [
        ("line", "\u901a\u8fc7admin", "separator"),
        ("tail", HEBEI_PROMO, "promo_tail"),
        ("line", "Permalink: http://a.cn/1", "share_link"),
    ]


def test_cleaner_explains_records_that_lost_anything_and_only_those() -> None:
    records = [
        Record(id="a.txt#1", title="T", text="Body.\n\u5173\u4e8e\u4f5c\u8005", source="a.txt"),
        Record(id="a.txt#2", title="T", text="Body only.\n \n", source="a.txt"),
        Record(id="a.txt#3", title="T", text="admin administrator", source="a.txt"),
    ]
    stats = Stats()
    out = list(Cleaner(builtin_rules(), CleanOptions(explain=True)).run(records, stats))
    assert [r.id for r in out] == ["a.txt#1", "a.txt#2"]
    assert stats.explained == [
        {
            "id": "a.txt#1",
            "source": "a.txt",
            "removed": [{"line": "\u5173\u4e8e\u4f5c\u8005", "rule": "author_footer"}],
        },
        {
            "id": "a.txt#3",
            "source": "a.txt",
            "removed": [{"line": "admin administrator", "rule": "author_footer"}],
            "dropped": "empty_article",
        },
    ]


FOLLOW = "Follow us."


def test_a_stage_between_clean_and_finish_adds_its_removals_and_may_empty_an_article() -> None:
    def learned(records: Iterable[Record]) -> Iterator[Record]:
        """Stands in for the learned-boilerplate stage: removes "Follow us." lines."""
        for record in records:
            lines = record.text.split("\n\n")
            if record.removed is not None:
                gone = [("line", x, "learned:follow") for x in lines if x == FOLLOW]
                record.removed.extend(gone)
            yield record.evolve(text="\n\n".join(x for x in lines if x != FOLLOW))

    records = [
        Record(id="p.txt#1", title="T", text=f"{FOLLOW}\n\u5173\u4e8e\u4f5c\u8005", source="p.txt"),
        Record(id="p.txt#2", title="T", text="Body.\nFollow us.", source="p.txt"),
    ]
    stats = Stats()
    cleaner = Cleaner(builtin_rules(), CleanOptions(explain=True))
    out = list(cleaner.finish(learned(cleaner.clean(records, stats)), stats))
    assert [(r.id, r.text, r.removed) for r in out] == [("p.txt#2", "Body.", None)]
    assert stats["empty_articles_dropped"] == 1
    assert [entry["removed"] for entry in stats.explained] == [
        [
            {"line": "\u5173\u4e8e\u4f5c\u8005", "rule": "author_footer"},
            {"line": "Follow us.", "rule": "learned:follow"},
        ],
        [{"line": "Follow us.", "rule": "learned:follow"}],
    ]


def test_explain_is_off_by_default() -> None:
    stats = Stats()
    record = Record(id="r", text="\u5173\u4e8e\u4f5c\u8005", source="s")
    list(Cleaner(builtin_rules()).run([record], stats))
    assert stats.explained == []


# ---- the command line: --explain, --no-glue-repair -----------------------------------


def invoke(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def test_run_explain_lists_what_each_record_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    out, explain = tmp_path / "out.jsonl", tmp_path / "explain.jsonl"
    result = invoke("run", "samples/", "-o", str(out), "--explain", str(explain))
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b""
    assert "boilerplate removed" in result.stderr and "{" not in result.stderr
    assert out.read_bytes() == (GOLDEN / "samples.jsonl").read_bytes()  # output unchanged
    entries = [json.loads(line) for line in explain.read_bytes().splitlines()]
    # Input order (which is output order), one line per record that lost anything.
    order = [f"samples/{p.name}#{n}" for p in SAMPLE_FILES for n in range(1, 11)]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, key=order.index) and len(set(ids)) == len(ids)
    assert all(e["source"] == e["id"].rpartition("#")[0] for e in entries)
    by_rule = Counter(r["rule"] for e in entries for r in e["removed"])
    assert by_rule == Counter({"author_footer": 2, "call_to_action": 3, "promo_tail": 1})
    [promo] = [r for e in entries for r in e["removed"] if r["rule"] == "promo_tail"]
    assert promo == {"tail": HEBEI_PROMO, "rule": "promo_tail"}


def test_clean_explain_from_stdin_and_nothing_on_stdout_but_records(tmp_path: Path) -> None:
    explain = tmp_path / "explain.jsonl"
    records = (
        b'{"id": "a", "text": "Body.\\nPermalink: http://a.cn/1"}\n'
        b'{"id": "b", "text": "Nothing to remove."}\n'
    )
    result = invoke("clean", "-", "--explain", str(explain), input=records)
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout_bytes.splitlines()] == [
        "Body.",
        "Nothing to remove.",
    ]
    assert explain.read_bytes() == (
        b'{"id": "a", "source": "<stdin>", "removed": '
        b'[{"line": "Permalink: http://a.cn/1", "rule": "share_link"}]}\n'
    )


def test_explain_file_is_not_written_when_the_run_fails(tmp_path: Path) -> None:
    explain = tmp_path / "explain.jsonl"
    bad = write_file(tmp_path / "in.jsonl", '{"text": "Permalink: http://a.cn/1"}\nnot json\n')
    result = invoke("clean", str(bad), "--explain", str(explain), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "in.jsonl:2" in result.stderr
    assert not explain.exists() and not (tmp_path / "o").exists()


def test_explain_file_inside_the_input_folder_is_not_read_back(tmp_path: Path) -> None:
    folder = tmp_path / "scrape"
    folder.mkdir()
    shutil.copy(SAMPLE_FILES[3], folder)
    explain = folder / "explain.jsonl"
    explain.write_text('{"text": "stale"}\n', encoding="utf-8")
    result = invoke("run", str(folder), "-q", "--explain", str(explain))
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout_bytes.splitlines()) == 1
    assert b"stale" not in result.stdout_bytes


def test_explain_is_the_same_for_any_jobs(tmp_path: Path) -> None:
    assert replicated_samples(tmp_path / "in", copies=8) > pipeline.BATCH_BYTES
    runs = {}
    for jobs in ("1", "2"):
        explain = tmp_path / f"explain{jobs}.jsonl"
        result = invoke(
            "run", str(tmp_path / "in"), "--jobs", jobs, "-q", "--explain", str(explain)
        )
        assert result.exit_code == 0, result.stderr
        runs[jobs] = explain.read_bytes()
    assert runs["1"] == runs["2"]
    assert len(runs["1"].splitlines()) == 8 * 3  # three seed articles lose lines, per copy


@pytest.mark.parametrize("command", ["run", "clean"])
def test_no_glue_repair_leaves_glued_sentences_as_they_are(command: str) -> None:
    record = b'{"id": "a", "text": "development layout.At the meeting"}\n'
    repaired = invoke(command, "-", input=record)
    assert repaired.exit_code == 0, repaired.stderr
    assert json.loads(repaired.stdout_bytes)["text"] == "development layout. At the meeting"
    assert any(
        "glued sentences split" in row and row.rstrip(" │|").endswith("1")
        for row in repaired.stderr.splitlines()
    ), repaired.stderr
    kept = invoke(command, "-", "--no-glue-repair", input=record)
    assert kept.exit_code == 0, kept.stderr
    assert json.loads(kept.stdout_bytes)["text"] == "development layout.At the meeting"
    assert "glued sentences split" not in kept.stderr


def test_empty_articles_dropped_are_in_the_summary_and_report(tmp_path: Path) -> None:
    page = write_file(
        tmp_path / "p.txt",
        f"Site name\n\u901a\u8fc7admin\n{HEBEI_PROMO}\n\n\u5173\u4e8e\u4f5c\u8005\n"
        "\u901a\u8fc7admin\nTitle\nBody.\n",
    )
    report = tmp_path / "r.json"
    result = invoke("run", str(page), "--report", str(report))
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["title"] for line in result.stdout_bytes.splitlines()] == ["Title"]
    for label in ("page headers dropped", "empty articles dropped"):
        assert any(
            label in row and row.rstrip(" │|").endswith("1") for row in result.stderr.splitlines()
        ), result.stderr
    counts = json.loads(report.read_text("utf-8"))["counts"]
    assert (counts["page_headers_dropped"], counts["empty_articles_dropped"]) == (1, 1)
    assert (counts["articles_split"], counts["written"]) == (2, 1)


def write_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_page_of_only_a_promo_line_writes_nothing(tmp_path: Path) -> None:
    # Campaign F15n: such a page became a record with the promo line as its title and
    # an empty text.
    page = write_file(tmp_path / "p.txt", "Subscribe to our newsletter for the latest news!\n")
    result = invoke("run", str(page))
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b""
    assert any(
        "empty articles dropped" in row and row.rstrip(" │|").endswith("1")
        for row in result.stderr.splitlines()
    ), result.stderr
