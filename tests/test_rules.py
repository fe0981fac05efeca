from __future__ import annotations

from types import SimpleNamespace

import pytest

from alerts.rules import (
    KeywordRule,
    MatchDocument,
    QueryRule,
    RuleMatch,
    RuleMatcher,
    find_terms,
    normalise_text,
    rule_from_config,
)
from crawler.domain.config import RuleConfig


def _hits(keywords: tuple[str, ...], title: str, body: str = "") -> bool:
    matcher = RuleMatcher([KeywordRule(name="rule", keywords=keywords)])
    return bool(matcher.match(MatchDocument(title, body)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Ünïcode  TEXT", "unicode text", id="casefold-strips-accents"),
        pytest.param("Straße", "strasse", id="casefold-sharp-s"),
        pytest.param("Pal\u00admyra", "palmyra", id="soft-hyphen-removed"),
        pytest.param("Pal\u200bmy\u200dra\u2060\ufeff", "palmyra", id="zero-width-removed"),
        pytest.param("\u00a0 a\t\n\r b  ", "a b", id="whitespace-collapsed-and-stripped"),
        pytest.param("ＩＳＩＳ", "isis", id="nfkc-fullwidth"),
        pytest.param("Ze\u0301rich", "zerich", id="decomposed-accent-stripped"),
        pytest.param("Łódź Ørsted", "lodz orsted", id="letters-with-stroke"),
        pytest.param("Pal\u00ad\n myra", "palmyra", id="soft-hyphen-line-break-joins"),
        pytest.param("Islamic \u00ad\nState", "islamic state", id="lone-soft-hyphen-dropped"),
    ],
)
def test_normalise_text(text: str, expected: str) -> None:
    assert normalise_text(text) == expected


@pytest.mark.parametrize(
    ("keywords", "title", "body", "expected"),
    [
        pytest.param(("ISIS",), "ISIS retreats", "", True, id="exact-word"),
        pytest.param(("ISIS",), "A crisis deepens", "", False, id="inside-crisis"),
        pytest.param(("ISIS",), "ISISx is a product", "", False, id="prefix-of-word"),
        pytest.param(("ISIS",), "", "Fighters of ISIS, it said", True, id="before-comma"),
        pytest.param(("ISIS",), "The anti-ISIS coalition", "", True, id="after-hyphen"),
        pytest.param(("ISIS",), "isis_group handle", "", False, id="underscore-is-word-char"),
        pytest.param(("ISIS",), "2ISIS", "", False, id="digit-is-word-char"),
        pytest.param(("isis",), "ISIS", "", True, id="lower-keyword-upper-text"),
        pytest.param(("ISIS",), "isis", "", True, id="upper-keyword-lower-text"),
        pytest.param(("ISIS",), "ＩＳＩＳ claims", "", True, id="fullwidth-text"),
        pytest.param(("Islamic State",), "", "the Islamic   State group", True, id="phrase"),
        pytest.param(("Islamic State",), "", "Islamic\nState", True, id="phrase-newline"),
        pytest.param(("Islamic State",), "", "Islamic \u00ad\nState", True, id="phrase-shy"),
        pytest.param(("Islamic State",), "", "Islamic\u00a0State", True, id="phrase-nbsp"),
        pytest.param(("Islamic State",), "", "State Islamic", False, id="phrase-order"),
        pytest.param(("Islamic State",), "", "Islamic States", False, id="phrase-whole-words"),
        pytest.param(("Islamic State",), "Islamic", "State", False, id="phrase-not-title-to-body"),
        pytest.param(("Palmyra",), "", "Pal\u00admyra", True, id="soft-hyphen-inside-word"),
        pytest.param(("Palmyra",), "", "Pal\u200bmyra", True, id="zero-width-inside-word"),
        pytest.param(("Al-Qaryatain",), "Al-Qaryatain taken", "", True, id="dash-hyphen-minus"),
        pytest.param(("Al-Qaryatain",), "al\u2010qaryatain", "", True, id="dash-u2010"),
        pytest.param(("Al-Qaryatain",), "al\u2011qaryatain", "", True, id="dash-non-breaking"),
        pytest.param(("Al-Qaryatain",), "al\u2013qaryatain", "", True, id="dash-en"),
        pytest.param(("Al\u2011Qaryatain",), "Al-Qaryatain", "", True, id="dash-in-keyword"),
        pytest.param(("Al-Qaryatain",), "Al Qaryatain", "", True, id="dash-is-word-boundary"),
        pytest.param(("Al Qaryatain",), "Al-Qaryatain", "", True, id="space-matches-dash"),
        pytest.param(("Islamic State",), "", "Islamic. State", True, id="phrase-over-punctuation"),
        pytest.param(("Zürich",), "Flooding in ZÜRICH", "", True, id="unicode-upper"),
        pytest.param(("Zürich",), "Zurich", "", True, id="accents-ignored"),
        pytest.param(("Zurich",), "ZÜRICH", "", True, id="accents-ignored-in-text"),
        pytest.param(("Zürich",), "Zu\u0308rich", "", True, id="decomposed-accent"),
        pytest.param(("Ürümqi",), "", "Protests in Ürümqi's centre", True, id="unicode-apostrophe"),
        pytest.param(("Ürümqi",), "", "Ürümqiyang", False, id="unicode-word-boundary"),
        pytest.param(("C++",), "", "written in C++ and Rust", True, id="keyword-ends-in-symbol"),
        pytest.param(("C",), "", "written in C++ and Rust", False, id="c-is-not-c++"),
        pytest.param(("C++",), "", "vitamin C", False, id="c++-is-not-c"),
        pytest.param(("refug*",), "", "Refugees arrive", True, id="keyword-prefix"),
        pytest.param(("refug*",), "", "The refuge", True, id="keyword-prefix-shorter-word"),
        pytest.param(("refug*",), "", "Arefugee", False, id="keyword-prefix-word-start"),
    ],
)
def test_keyword_hits(keywords: tuple[str, ...], title: str, body: str, expected: bool) -> None:
    assert _hits(keywords, title, body) is expected


@pytest.mark.parametrize(
    ("title", "body", "expected"),
    [
        pytest.param("ISIS attack", "", True, id="no-exclude-term"),
        pytest.param("ISIS attack", "as seen in the video game", False, id="exclude-in-body"),
        pytest.param("Video game ISIS", "", False, id="exclude-in-title"),
        pytest.param("ISIS attack", "videogames", True, id="exclude-whole-words-only"),
        pytest.param("ISIS", "VIDEO\nGAME", False, id="exclude-phrase-case-whitespace"),
    ],
)
def test_exclude_blocks_match(title: str, body: str, expected: bool) -> None:
    rule = KeywordRule(name="isis", keywords=("ISIS",), exclude=("video game",))
    assert bool(RuleMatcher([rule]).match(MatchDocument(title, body))) is expected


def test_match_reports_every_rule_and_terms_in_config_order() -> None:
    rules = [
        KeywordRule(name="syria", keywords=("Palmyra", "Islamic State", "ISIS", "state")),
        KeywordRule(name="football", keywords=("goal",)),
        KeywordRule(name="isis-only", keywords=("ISIS",), exclude=("crisis",)),
        KeywordRule(name="dupes", keywords=("isis", "isis")),
    ]
    matches = RuleMatcher(rules).match(
        MatchDocument("ISIS retreats", "The Islamic State left Palmyra, officials said.")
    )
    assert matches == [
        RuleMatch(rule="syria", terms=("Palmyra", "Islamic State", "ISIS", "state")),
        RuleMatch(rule="isis-only", terms=("ISIS",)),
        RuleMatch(rule="dupes", terms=("isis",)),
    ]


def test_match_with_no_rules_or_blank_keywords_matches_nothing() -> None:
    assert RuleMatcher([]).match(MatchDocument("ISIS", "ISIS")) == []
    blank = KeywordRule(name="blank", keywords=(" ", "\u00ad"), exclude=("nothing",))
    assert RuleMatcher([blank]).match(MatchDocument("anything", "at all")) == []


@pytest.mark.parametrize(
    ("text", "terms", "expected"),
    [
        pytest.param("ISIS, not crisis", ["isis"], ["ISIS"], id="whole-word-only"),
        pytest.param("anti-ISIS and ISIS", ["ISIS"], ["ISIS", "ISIS"], id="every-hit"),
        pytest.param("Islamic \n  State", ["islamic state"], ["Islamic \n  State"], id="phrase"),
        pytest.param("in Pal\u00admyra today", ["palmyra"], ["Pal\u00admyra"], id="soft-hyphen"),
        pytest.param("ZÜRICH", ["zürich"], ["ZÜRICH"], id="unicode-case"),
        pytest.param("Zu\u0308rich!", ["Zürich"], ["Zu\u0308rich"], id="combining-mark-kept"),
        pytest.param("STRASSE Straße", ["straße"], ["STRASSE", "Straße"], id="sharp-s"),
        pytest.param("al\u2011Qaryatain", ["Al-Qaryatain"], ["al\u2011Qaryatain"], id="dash"),
        pytest.param(
            "Islamic State group",
            ["state", "Islamic State", "state group"],
            ["Islamic State group"],
            id="overlaps-merged",
        ),
        pytest.param("Refugees and refuge", ["refug*"], ["Refugees", "refuge"], id="prefix"),
        pytest.param("the réfugiés", ["refug*"], ["réfugiés"], id="prefix-accents"),
        pytest.param("Zurich, Zürich", ["Zürich"], ["Zurich", "Zürich"], id="accents-ignored"),
        pytest.param("Pal\u00ad\nmyra", ["palmyra"], ["Pal\u00ad\nmyra"], id="soft-break"),
        pytest.param("refugee camps near", ["refug* camp*"], ["refugee camps"], id="prefix-phrase"),
        pytest.param("nothing here", ["isis"], [], id="no-hit"),
        pytest.param("", ["isis"], [], id="empty-text"),
        pytest.param("isis", [], [], id="no-terms"),
    ],
)
def test_find_terms_spans_index_original_text(
    text: str, terms: list[str], expected: list[str]
) -> None:
    spans = find_terms(text, terms)
    assert [text[start:end] for start, end in spans] == expected
    assert spans == sorted(spans)


def test_find_terms_highlights_stemmed_matches_through_the_reported_words() -> None:
    document = MatchDocument("", "The elections were held", language="en")
    [match] = RuleMatcher([QueryRule("vote", "election", stem=True)]).match(document)
    assert match.terms == ("election", "elections")
    text = document.body
    assert [text[start:end] for start, end in find_terms(text, match.terms)] == ["elections"]


def test_keyword_rule_terms_keep_prefixes_as_written() -> None:
    rule = KeywordRule("refugees", ("refug*", "asylum"), exclude=("football",))
    matches = RuleMatcher([rule]).match(MatchDocument("Refugees", "seek asylum"))
    assert matches == [RuleMatch("refugees", ("refug*", "asylum"))]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            SimpleNamespace(name="syria", keywords=["ISIS", "Palmyra"], exclude=["game"]),
            KeywordRule("syria", ("ISIS", "Palmyra"), ("game",)),
            id="keywords-only-config",
        ),
        pytest.param(
            SimpleNamespace(
                name="syria", keywords=["ISIS"], exclude=[], query=None, stem=True, language="en"
            ),
            KeywordRule("syria", ("ISIS",), (), stem=True, language="en"),
            id="keywords-with-stemming",
        ),
        pytest.param(
            SimpleNamespace(
                name="vote",
                keywords=[],
                exclude=[],
                query="election NEAR/3 Peru",
                stem=True,
                language=None,
            ),
            QueryRule("vote", "election NEAR/3 Peru", stem=True),
            id="query",
        ),
    ],
)
def test_rule_from_config(config: SimpleNamespace, expected: KeywordRule | QueryRule) -> None:
    assert rule_from_config(config) == expected


def test_rule_from_config_reads_the_configuration_model() -> None:
    config = RuleConfig(name="syria", keywords=["ISIS"], exclude=["video game"])
    assert rule_from_config(config) == KeywordRule("syria", ("ISIS",), ("video game",))
