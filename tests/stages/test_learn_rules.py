"""What was learned, as a rules file: read back as it was; folded rules checked."""

from __future__ import annotations

import random

import pytest
from learn_pages import learned_from, paragraph, record

from corpus_clean.stages.clean import RulesError, parse_rules
from corpus_clean.stages.learn.patterns import Learned, TextKey
from corpus_clean.stages.learn.rules import rules_toml, texts_of
from corpus_clean.stats import Stats


def test_learned_patterns_written_as_rules_read_back_as_they_were() -> None:
    odd = ['Say "hi" \\ there', "del\x7fchar", "«Zurück» zur Übersicht", "关注我们"]
    records = [
        record('site "q"', i, [*odd, paragraph(random.Random(i)), *odd[::-1]]) for i in range(4)
    ]
    learned = learned_from(records)
    texts: dict[TextKey, str] = {}
    texts_of(learned, records, texts)
    written = rules_toml(learned, texts, Stats().removed_by_pattern, "a header")
    pinned = Learned.from_rules(parse_rules(written, "learned.toml"))
    strengths = {site: {h: p.strength for h, p in t.items()} for site, t in learned.lines.items()}
    assert strengths == {
        site: {h: p.strength for h, p in t.items()} for site, t in pinned.lines.items()
    }
    assert [pinned.apply(r) for r in records] == [learned.apply(r) for r in records]


def test_a_folded_rule_needs_match_folded_and_a_known_context() -> None:
    with pytest.raises(RulesError, match="folded"):
        parse_rules('[[rule]]\nname = "x"\nsite = "a"\npatterns = ["y"]\n', "f.toml")
    with pytest.raises(RulesError, match="context must be one of"):
        parse_rules(
            '[[rule]]\nname = "x"\nmatch = "folded"\ncontext = "near"\npatterns = ["y"]\n',
            "f.toml",
        )
