from __future__ import annotations

import pytest

from alerts.rules import KeywordRule, RuleMatch, RuleMatcher, find_terms, normalise_text


def _hits(keywords: tuple[str, ...], title: str, body: str = "") -> bool:
    matcher = RuleMatcher([KeywordRule(name="rule", keywords=keywords)])
    return bool(matcher.match(title, body))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Ünïcode  TEXT", "ünïcode text", id="casefold-keeps-accents"),
        pytest.param("Straße", "strasse", id="casefold-sharp-s"),
        pytest.param("Pal\u00admyra", "palmyra", id="soft-hyphen-removed"),
        pytest.param("Pal\u200bmy\u200dra\u2060\ufeff", "palmyra", id="zero-width-removed"),
        pytest.param("\u00a0 a\t\n\r b  ", "a b", id="whitespace-collapsed-and-stripped"),
        pytest.param("ＩＳＩＳ", "isis", id="nfkc-fullwidth"),
        pytest.param("Ze\u0301rich", "zérich", id="nfkc-composes"),
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
        pytest.param(("Al-Qaryatain",), "Al Qaryatain", "", False, id="dash-not-space"),
        pytest.param(("Zürich",), "Flooding in ZÜRICH", "", True, id="unicode-upper"),
        pytest.param(("Zürich",), "Zurich", "", False, id="accents-kept"),
        pytest.param(("Zürich",), "Zu\u0308rich", "", True, id="decomposed-accent"),
        pytest.param(("Ürümqi",), "", "Protests in Ürümqi's centre", True, id="unicode-apostrophe"),
        pytest.param(("Ürümqi",), "", "Ürümqiyang", False, id="unicode-word-boundary"),
        pytest.param(("C++",), "", "written in C++ and Rust", True, id="keyword-ends-in-symbol"),
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
    assert bool(RuleMatcher([rule]).match(title, body)) is expected


def test_match_reports_every_rule_and_terms_in_config_order() -> None:
    rules = [
        KeywordRule(name="syria", keywords=("Palmyra", "Islamic State", "ISIS", "state")),
        KeywordRule(name="football", keywords=("goal",)),
        KeywordRule(name="isis-only", keywords=("ISIS",), exclude=("crisis",)),
        KeywordRule(name="dupes", keywords=("isis", "isis")),
    ]
    matches = RuleMatcher(rules).match(
        "ISIS retreats", "The Islamic State left Palmyra, officials said."
    )
    assert matches == [
        RuleMatch(rule="syria", terms=("Palmyra", "Islamic State", "ISIS", "state")),
        RuleMatch(rule="isis-only", terms=("ISIS",)),
        RuleMatch(rule="dupes", terms=("isis",)),
    ]


def test_match_with_no_rules_or_blank_keywords_matches_nothing() -> None:
    assert RuleMatcher([]).match("ISIS", "ISIS") == []
    blank = KeywordRule(name="blank", keywords=(" ", "\u00ad"))
    assert RuleMatcher([blank]).match("anything", "at all") == []


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
