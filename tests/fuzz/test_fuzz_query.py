"""Fuzzing the rule query language (crawler/domain/query/): parse_query, compiling, matching.

A query is written by a person in ``config.yaml`` or on the command line
(``newswatch rules test --query``). The properties, for any text at all:

- ``parse_query`` returns a Query, or raises QuerySyntaxError (never another
  exception) whose column lies in the text (1 to its length + 1) and whose
  message is one line;
- a Query compiles, matches articles and reports its hit terms without error,
  with or without the rule prefilter (and both give the same answer); it prints
  (``str``) and hashes without error, and what it prints parses back into a query
  that matches the same articles;
- the boolean operators mean what they say: ``(A) OR (B)`` matches an article
  exactly when A or B does, ``(A) (B)`` when both do, ``NOT (A)`` when A does not.

Queries are generated from the grammar (terms, phrases, prefixes, fields, lang:,
NEAR/n, NOT, AND, OR, groups, nested up to well past the nesting limit, and long
flat chains) and from noise (operator tokens, unbalanced quotes and parentheses,
arbitrary unicode). Every query is at most a few thousand characters, so each
example costs a bounded amount of work by construction.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from alerts.rules import MatchDocument, QueryRule, RuleMatcher
from crawler.domain.query import (
    MAX_QUERY_DEPTH,
    Near,
    Query,
    QuerySyntaxError,
    compile_query,
    parse_query,
    prepare_document,
    query_terms,
)

# A fuzz test may run for many minutes with the long profile (NEWSWATCH_FUZZ=long).
LONG_TIMEOUT = pytest.mark.timeout(max(300, settings().max_examples // 5))

# Words the articles below are made of, so that generated queries do match some.
VOCABULARY = [
    "Palmyra",
    "ISIS",
    "Syria",
    "Iraq",
    "refugees",
    "camp",
    "Zürich",
    "Łódź",
    "C++",
    "anti-ISIS",
    "election",
    "elections",
    "oil",
    "price",
    "the",
    "State",
    "Islamic",
    "São",
    "Paulo",
    "हिंदी",
    "العربية",
    "straße",
    "x1",
    "ＩＳＩＳ",
]
FIELD_NAMES = ["title", "body", "author", "source", "url"]
LANGUAGES = ["en", "fr", "pt-BR", "de", None]

words = st.one_of(
    st.sampled_from(VOCABULARY),
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8),
)
prefixes = st.one_of(
    st.sampled_from([word for word in VOCABULARY if word[-1].isalnum()]),
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8),
).map(lambda word: word + "*")
phrases = st.lists(st.one_of(words, prefixes), min_size=1, max_size=4).map(
    lambda parts: '"' + " ".join(parts) + '"'
)
terms = st.one_of(words, words, prefixes, phrases)
languages = st.one_of(
    st.sampled_from(["lang:en", "lang:fr", "lang:pt-BR", "lang:(en OR fr)", "lang:zh_Hant"]),
    st.lists(st.sampled_from(["en", "fr", "de", "pt-br"]), min_size=1, max_size=4).map(
        lambda codes: "lang:(" + " OR ".join(codes) + ")"
    ),
)


def _near_side(draw: st.DrawFn) -> str:
    alternatives = draw(st.lists(terms, min_size=1, max_size=4))
    return alternatives[0] if len(alternatives) == 1 else "(" + " OR ".join(alternatives) + ")"


@st.composite
def nears(draw: st.DrawFn) -> str:
    distance = draw(st.one_of(st.integers(1, 12), st.sampled_from([0, 1000, 1001, 10**30])))
    return f"{_near_side(draw)} NEAR/{distance} {_near_side(draw)}"


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from([" AND ", " OR ", " "]), children).map("".join),
        children.map(lambda child: f"({child})"),
        children.map(lambda child: f"NOT {child}"),
        st.tuples(st.sampled_from(FIELD_NAMES), children).map(
            lambda pair: f"{pair[0]}:({pair[1]})"
        ),
        st.lists(children, min_size=2, max_size=6).map(" OR ".join),
    )


# A query from the grammar: always well formed, except where the grammar itself
# forbids a combination (a field inside a field, a field inside NEAR, a NEAR
# distance out of range): those must be QuerySyntaxErrors.
grammar_queries = st.recursive(
    st.one_of(
        terms,
        terms,
        nears(),
        languages,
        st.tuples(st.sampled_from(FIELD_NAMES), terms).map(":".join),
    ),
    _extend,
    max_leaves=12,
)
WRAPPERS = ["(", "NOT ", "title:(", "NOT (", "body:(NOT "]


@st.composite
def deep_queries(draw: st.DrawFn) -> str:
    """A grammar query wrapped in 1 to 3 × MAX_QUERY_DEPTH levels of groups, NOT and
    fields: around the nesting limit and far past it."""
    query = draw(grammar_queries)
    levels = draw(st.integers(1, 3 * MAX_QUERY_DEPTH))
    opened = [draw(st.sampled_from(WRAPPERS)) for _ in range(levels)]
    # A field inside a field is an error of its own: nest fields only where allowed.
    if sum("title:" in w or "body:" in w for w in opened) > 1:
        opened = [w.replace("title:", "").replace("body:", "") for w in opened]
    return "".join(opened) + query + "".join(")" * w.count("(") for w in reversed(opened))


@st.composite
def flat_queries(draw: st.DrawFn) -> str:
    """Long but shallow: up to 3,000 terms in one OR, one AND or a mix."""
    count = draw(st.integers(1, 3000))
    joiner = draw(st.sampled_from([" OR ", " AND ", " ", " OR NOT "]))
    return joiner.join(f"w{index % 97}" for index in range(count))


TOKENS = [
    "AND",
    "OR",
    "NOT",
    "and",
    "or",
    "not",
    "NEAR/3",
    "NEAR/",
    "NEAR/0",
    "NEAR",
    "near/2",
    "(",
    ")",
    '"',
    "*",
    "refug*",
    "*x",
    "a*b",
    "title:",
    "lang:",
    "lang:(",
    "url:",
    "foo:",
    ":",
    "-x",
    "+y",
    "ISIS",
    "Palmyra",
    "\u00ad",
    "\u200b",
    "C#",
    "’",
    "lang:e",
    "lang:(en",
    "title:title:x",
    '""',
    '" "',
    "\t",
    "\n",
    "\u2028",
    "ﬁ",
]
noise_queries = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=5)), max_size=40).map(
        lambda parts: " ".join(parts)
    ),
    st.lists(st.sampled_from(TOKENS), max_size=60).map("".join),
)

articles = st.builds(
    MatchDocument,
    title=st.lists(st.sampled_from(VOCABULARY), max_size=6).map(" ".join),
    body=st.lists(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=6)), max_size=40).map(
        " ".join
    ),
    author=st.sampled_from(["", "ISIS Watcher", "Omar Haddad"]),
    source=st.sampled_from(["", "wire", "Syria Today"]),
    url=st.sampled_from(["", "https://news.example/syria/palmyra", "https://x.example/"]),
    language=st.sampled_from(LANGUAGES),
)
SAMPLE = MatchDocument(
    "Army pressures ISIS in Syria",
    "Refugees reach the camp near Palmyra",
    "Omar Haddad",
    "wire",
    "https://news.example/a",
    "en",
)


def _parse(text: str) -> Query | QuerySyntaxError:
    """The query, or the QuerySyntaxError it raised (any other exception escapes)."""
    try:
        return parse_query(text)
    except QuerySyntaxError as error:
        return error


def _parsed(text: str) -> Query | None:
    """The query, or None after checking the QuerySyntaxError's promises."""
    outcome = _parse(text)
    if isinstance(outcome, QuerySyntaxError):
        event("QuerySyntaxError: " + re.sub(r"'[^']*'|\d+", "…", outcome.message))
        assert 1 <= outcome.column <= len(text) + 1, (text, outcome)
        assert f"at column {outcome.column}" in str(outcome)
        assert len(str(outcome).splitlines()) == 1, outcome
        assert len(str(outcome)) < 400, outcome  # quotes of the input are cut
        return None
    assert isinstance(outcome, Query)
    event("parsed")
    return outcome


def _check_usable(query: Query, documents: list[MatchDocument]) -> None:
    """The query prints, hashes, compiles and matches; prefilter or not, the same."""
    assert hash(query) == hash(parse_query(query.text))
    printed = str(query)
    query.triggers()
    list(query_terms(query.root))
    compiled = compile_query(query)
    matcher = RuleMatcher([QueryRule("fuzz", query.text)])
    for document in documents:
        result = compiled.evaluate(prepare_document(document))
        assert result.matched == compiled.matches(prepare_document(document))
        assert all(isinstance(term, str) for term in result.terms)
        assert bool(matcher.match(document)) == result.matched
        assert bool(matcher.match(document, prefilter=False)) == result.matched
    again = _parse(printed)
    if isinstance(again, QuerySyntaxError):
        # The printed form adds a group around every AND and OR, and spells a field
        # on each term of a NEAR: over the nesting limit, or a field inside NEAR.
        assert "nests more than" in again.message or any(
            isinstance(node, Near) for node in _nodes(query)
        ), (printed, again)
        return
    for document in documents:
        assert compile_query(again).matches(prepare_document(document)) == compiled.matches(
            prepare_document(document)
        ), (query.text, printed)


def _nodes(query: Query) -> list[object]:
    found, stack = [], [query.root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(getattr(node, "children", ()))
        if child := getattr(node, "child", None):
            stack.append(child)
    return found


@LONG_TIMEOUT
@given(st.one_of(grammar_queries, deep_queries()), st.lists(articles, max_size=3))
@example("(" * 300 + "x" + ")" * 300, [SAMPLE])  # RecursionError before the limit
@example("NOT " * 400 + "x", [SAMPLE])  # parsed, then str() and hash() recursed too deep
@example("title:" + "(" * 200 + "x" + ")" * 200, [SAMPLE])
@example("(" * MAX_QUERY_DEPTH + "ISIS" + ")" * MAX_QUERY_DEPTH, [SAMPLE])  # at the limit
@example("a NEAR/" + "9" * 5000 + " b", [SAMPLE])  # int() refused 5,000 digits: ValueError
def test_grammar_queries_parse_or_fail_cleanly_and_then_match(
    text: str, documents: list[MatchDocument]
) -> None:
    query = _parsed(text)
    if query is not None:
        _check_usable(query, [SAMPLE, *documents])


@LONG_TIMEOUT
@given(noise_queries)
@example('"unterminated (phrase')
@example("((a)")
@example("a))")
@example("NEAR/" + "x" * 100_000)  # the whole run was quoted in the message
@example("")
@example("\u00ad")
def test_noise_parses_or_fails_with_a_column_inside_the_text(text: str) -> None:
    query = _parsed(text)
    if query is not None:
        _check_usable(query, [SAMPLE])


@LONG_TIMEOUT
@settings(max_examples=max(10, settings().max_examples // 10))
@given(flat_queries())
def test_long_flat_queries_compile_and_match_without_deep_recursion(text: str) -> None:
    query = _parsed(text)
    assert query is not None
    _check_usable(query, [SAMPLE, MatchDocument("w1 w2", "w3 w4 w96", language="en")])


@LONG_TIMEOUT
@given(grammar_queries, grammar_queries, st.lists(articles, min_size=1, max_size=3))
def test_or_and_not_mean_what_they_say(
    left: str, right: str, documents: list[MatchDocument]
) -> None:
    a, b = _parsed(left), _parsed(right)
    if a is None or b is None:
        return
    either, both, neither = (
        _parsed(f"({left}) OR ({right})"),
        _parsed(f"({left}) ({right})"),
        _parsed(f"NOT ({left})"),
    )
    for document in documents:
        prepared = prepare_document(document)
        in_a = compile_query(a).matches(prepared)
        in_b = compile_query(b).matches(prepared)
        if either is not None:
            assert compile_query(either).matches(prepared) == (in_a or in_b)
        if both is not None:
            assert compile_query(both).matches(prepared) == (in_a and in_b)
        if neither is not None:
            assert compile_query(neither).matches(prepared) == (not in_a)
