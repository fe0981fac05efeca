"""Rules cannot be made to backtrack: there are no regular expressions in them, and
matching costs time in proportion to the article, whatever the rules and the text."""

from __future__ import annotations

import time

from alerts.rules import MatchDocument, RuleMatcher, rule_from_config
from crawler.domain.config import RuleConfig

# The shapes that make backtracking engines explode, written as rules: nested
# alternatives, many overlapping prefixes, proximity over a text of one letter.
HOSTILE_RULES = [
    RuleConfig(name="near", query="a* NEAR/50 a*"),
    RuleConfig(name="phrase", keywords=["a a a a a a a a a a a a a a a a b"]),
    RuleConfig(name="nested", query="((a OR aa) AND NOT b) OR (a* NEAR/5 aa*)"),
    RuleConfig(name="prefixes", query=" OR ".join(f"a{'a' * n}*" for n in range(50))),
]


def _seconds_to_match(matcher: RuleMatcher, words: int) -> float:
    body = "a " * words + "aaaa " * (words // 5)  # the worst text for these rules
    started = time.perf_counter()
    matched = matcher.match(MatchDocument(title="a a a", body=body))
    elapsed = time.perf_counter() - started
    assert {match.rule for match in matched} == {"near", "nested", "prefixes"}
    return elapsed


def test_matching_hostile_rules_on_a_hostile_text_grows_linearly() -> None:
    matcher = RuleMatcher([rule_from_config(rule) for rule in HOSTILE_RULES])
    small = _seconds_to_match(matcher, 25_000)
    large = _seconds_to_match(matcher, 100_000)  # four times the text (300 KB)
    assert large < 15  # a backtracking engine would not finish
    assert large < 8 * small + 1.0  # linear: ~4×; quadratic would be ~16×
