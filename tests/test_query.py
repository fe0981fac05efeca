"""The rule query language: what queries match, how they parse, and their errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import run_newswatch, write_config

from alerts.rules import KeywordRule, MatchDocument, QueryRule, RuleMatch, RuleMatcher
from crawler.domain.query import QuerySyntaxError, evaluate, parse_query, prepare_document


def _doc(
    body: str = "",
    title: str = "",
    *,
    author: str = "",
    source: str = "",
    url: str = "",
    language: str | None = None,
) -> MatchDocument:
    return MatchDocument(title, body, author, source, url, language)


EXAMPLE = '"Palmyra" OR (ISIS NEAR/5 (Syria OR Iraq)) AND NOT title:football AND lang:en'

# (query, article, whether it matches)
MATCHES = [
    # whole words
    ("ISIS", _doc("ISIS fighters"), True, "word"),
    ("ISIS", _doc("A crisis deepens"), False, "isis-is-not-in-crisis"),
    ("ISIS", _doc("The anti-ISIS coalition"), True, "hyphen-is-a-word-boundary"),
    ("ISIS", _doc("the isis_group handle"), False, "underscore-joins-words"),
    ("ISIS", _doc("ＩＳＩＳ claims"), True, "nfkc-fullwidth"),
    ("C++", _doc("written in C++ and Rust"), True, "c-plus-plus"),
    ("C", _doc("written in C++ and Rust"), False, "c-is-not-c-plus-plus"),
    # phrases
    ('"Islamic State"', _doc("the Islamic\nState group"), True, "phrase-line-break"),
    ('"Islamic State"', _doc("the Islamic \u00ad\nState group"), True, "phrase-soft-hyphen"),
    ('"Islamic State"', _doc("Islamic. State media"), True, "phrase-over-punctuation"),
    ('"Islamic State"', _doc("State Islamic"), False, "phrase-order"),
    ('"Islamic State"', _doc("Islamic States"), False, "phrase-whole-words"),
    ('"Islamic State"', _doc("State", title="Islamic"), False, "phrase-not-title-into-body"),
    ("Palmyra", _doc("Pal\u00ad\nmyra fell"), True, "soft-hyphen-at-line-end-joins"),
    ("Palmyra", _doc("Pal\u200bmyra fell"), True, "zero-width-inside-word"),
    ("anti-ISIS", _doc("the anti ISIS front"), True, "hyphenated-term-is-a-phrase"),
    # case and accents
    ("Zurich", _doc("Flooding in Zürich"), True, "accent-in-text"),
    ("Zürich", _doc("Flooding in ZURICH"), True, "accent-in-query"),
    ("Zürich", _doc("Flooding in Zu\u0308rich"), True, "decomposed-accent"),
    ('"São Paulo"', _doc("Sao Paulo traffic"), True, "accented-phrase"),
    ("Łódź", _doc("Lodz council"), True, "letters-with-stroke"),
    ("Straße", _doc("STRASSE closed"), True, "sharp-s"),
    # prefixes
    ("refug*", _doc("Refugees arrive"), True, "prefix"),
    ("refug*", _doc("the refuge"), True, "prefix-shorter-word"),
    ("refug*", _doc("arefugee"), False, "prefix-starts-the-word"),
    ("réfug*", _doc("refugee camps"), True, "prefix-accent"),
    ('"refug* camp*"', _doc("refugee camps in Jordan"), True, "prefixes-in-phrase"),
    ('"refug* camp*"', _doc("camps for refugees"), False, "prefixes-in-phrase-order"),
    # NEAR
    ("ISIS NEAR/3 Syria", _doc("ISIS fighters in Syria"), True, "near-at-distance"),
    ("ISIS NEAR/2 Syria", _doc("ISIS fighters in Syria"), False, "near-too-far"),
    ("Syria NEAR/3 ISIS", _doc("ISIS fighters in Syria"), True, "near-either-order"),
    ("ISIS NEAR/2 Syria", _doc("They fled ISIS. Syria is calm."), True, "near-across-sentences"),
    ("ISIS NEAR/5 (Syria OR Iraq)", _doc("ISIS hit towns in north Iraq"), True, "near-or-group"),
    ("ISIS NEAR/3 Syria", _doc("Syria", title="ISIS"), False, "near-same-field-only"),
    ("ISIS NEAR/1 ISIS", _doc("ISIS said"), False, "near-needs-two-places"),
    ("ISIS NEAR/1 ISIS", _doc("ISIS, ISIS"), True, "near-two-places"),
    (
        '"Islamic State" NEAR/2 Palmyra',
        _doc("Islamic State men left Palmyra"),
        False,
        "near-phrase-too-far",
    ),
    (
        '"Islamic State" NEAR/3 Palmyra',
        _doc("Islamic State men left Palmyra"),
        True,
        "near-phrase-from-its-end",
    ),
    ("title:(ISIS NEAR/2 Syria)", _doc("ISIS in Syria"), False, "near-scoped-to-title"),
    ("refug* NEAR/2 camp", _doc("the refugees' camp"), True, "near-prefix"),
    # fields
    ("title:football", _doc("", title="Football scores"), True, "title"),
    ("title:football", _doc("football scores"), False, "title-not-body"),
    ("body:football", _doc("", title="football"), False, "body-not-title"),
    ('author:"John Smith"', _doc(author="Jane Doe, John Smith"), True, "author-phrase"),
    ("source:reuters", _doc(source="Reuters"), True, "source"),
    ("url:bbc", _doc(url="https://www.bbc.co.uk/news/1"), True, "url-word"),
    ('url:"bbc.co.uk"', _doc(url="https://www.bbc.co.uk/news/1"), True, "url-phrase"),
    ("bbc", _doc(url="https://www.bbc.co.uk/news/1"), False, "no-field-is-title-or-body"),
    ("title:(ISIS OR Daesh)", _doc("", title="Daesh retreats"), True, "field-on-group"),
    ("TITLE:ISIS", _doc("", title="ISIS"), True, "field-name-any-case"),
    (
        "(Palmyra OR Homs) AND NOT title:football",
        _doc("Palmyra football", "News"),
        True,
        "not-scoped-to-title",
    ),
    (
        "(Palmyra OR Homs) AND NOT title:football",
        _doc("Palmyra", "Football"),
        False,
        "not-scoped-to-title-blocks",
    ),
    # lang:
    ("lang:en", _doc(language="en-GB"), True, "lang-region-variant"),
    ("lang:en", _doc(language="fr"), False, "lang-other"),
    ("lang:en", _doc(language=None), False, "lang-unknown"),
    ("lang:(pt OR es)", _doc(language="pt_BR"), True, "lang-or-group"),
    ("lang:pt-BR", _doc(language="pt"), False, "lang-region-needs-region"),
    ("lang:pt-BR", _doc(language="pt-br"), True, "lang-region"),
    # operators and precedence
    ("NOT football", _doc("election news"), True, "not-only"),
    ("NOT football", _doc("football news"), False, "not-only-blocks"),
    ("Palmyra Syria", _doc("Palmyra is safe"), False, "implicit-and"),
    ("Palmyra Syria", _doc("Palmyra, Syria"), True, "implicit-and-both"),
    ("Palmyra OR Syria AND football", _doc("Palmyra"), True, "and-before-or"),
    ("(Palmyra OR Syria) AND football", _doc("Palmyra"), False, "parentheses"),
    ("NOT ISIS Syria", _doc("Syria"), True, "not-before-and"),
    ("NOT ISIS Syria", _doc("ISIS in Syria"), False, "not-binds-one-term"),
    ("Palmyra OR NOT ISIS AND Syria", _doc("ISIS in Syria"), False, "or-not-and"),
    ("NOT ISIS NEAR/3 Syria", _doc("ISIS and Syria"), False, "near-before-not"),
    (
        "NOT ISIS NEAR/3 Syria",
        _doc("ISIS is far, far, far from Syria"),
        True,
        "near-before-not-far",
    ),
    (EXAMPLE, _doc("Palmyra reopens", language="fr"), True, "example-or-branch"),
    (
        EXAMPLE,
        _doc("ISIS hit towns in north Iraq", "Attacks", language="en"),
        True,
        "example-near-branch",
    ),
    (
        EXAMPLE,
        _doc("ISIS hit towns in north Iraq", "Football", language="en"),
        False,
        "example-not-title",
    ),
    (
        EXAMPLE,
        _doc("ISIS hit towns in north Iraq", "Attacks", language="de"),
        False,
        "example-lang",
    ),
]


@pytest.mark.parametrize(
    ("query", "document", "expected"),
    [pytest.param(q, d, e, id=i) for q, d, e, i in MATCHES],
)
def test_query_matches(query: str, document: MatchDocument, expected: bool) -> None:
    assert evaluate(query, document).matched is expected
    # The matcher (with its prefilter) agrees with evaluating the query on its own.
    matches = RuleMatcher([QueryRule("rule", query)]).match(document)
    assert bool(matches) is expected


# (query, stem, rule language, article, whether it matches)
STEMMING = [
    ("election", True, None, _doc("Elections held", language="en"), True, "article-language"),
    ("election", False, None, _doc("Elections held", language="en"), False, "stem-off"),
    ('"election"', True, None, _doc("Elections held", language="en"), False, "quoted-exact"),
    ("election", True, "en", _doc("Elections held"), True, "rule-language"),
    ("election", True, None, _doc("Elections held"), False, "no-language-exact"),
    ("election", True, None, _doc("The election", language="en"), True, "same-word"),
    ("élection", True, None, _doc("Les élections", language="fr"), True, "french"),
    ("run NEAR/2 office", True, "en", _doc("running for office"), True, "stemmed-near"),
    ("elect*", True, "en", _doc("electoral roll"), True, "prefix-not-stemmed"),
    ("anti-election", True, "en", _doc("anti elections protest"), True, "stemmed-phrase"),
    ("run", True, "de", _doc("running", language="en"), True, "article-language-first"),
    ("run", True, "en", _doc("running", language="de"), False, "article-language-not-rule"),
    ("run", True, "en", _doc("running", language="zh"), True, "rule-language-if-no-stemmer"),
]


@pytest.mark.parametrize(
    ("query", "stem", "language", "document", "expected"),
    [pytest.param(*case[:5], id=case[5]) for case in STEMMING],
)
def test_stemming(
    query: str, stem: bool, language: str | None, document: MatchDocument, expected: bool
) -> None:
    assert evaluate(query, document, stem=stem, language=language).matched is expected
    rule = QueryRule("rule", query, stem=stem, language=language)
    assert bool(RuleMatcher([rule]).match(document)) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("a OR b c", "(a OR (b AND c))", id="implicit-and-before-or"),
        pytest.param("a OR b AND c", "(a OR (b AND c))", id="and-before-or"),
        pytest.param("a AND b OR c", "((a AND b) OR c)", id="and-before-or-left"),
        pytest.param("NOT a b", "(NOT a AND b)", id="not-before-and"),
        pytest.param("NOT a OR b", "(NOT a OR b)", id="not-before-or"),
        pytest.param("a OR NOT b AND c", "(a OR (NOT b AND c))", id="not-and-or"),
        pytest.param("NOT NOT a", "NOT NOT a", id="double-not"),
        pytest.param("NOT a NEAR/2 b", "NOT (a NEAR/2 b)", id="near-before-not"),
        pytest.param("a b NEAR/2 c", "(a AND (b NEAR/2 c))", id="near-before-and"),
        pytest.param("(a OR b) c", "((a OR b) AND c)", id="parentheses"),
        pytest.param("a AND (b AND c)", "(a AND b AND c)", id="and-flattened"),
        pytest.param("title:(a OR b) c", "((title:a OR title:b) AND c)", id="field-group"),
        pytest.param(
            'title:"a b" lang:(en OR fr)', '(title:"a b" AND lang:(en OR fr))', id="phrase-and-lang"
        ),
        pytest.param("x NEAR/5 (y OR z*)", "(x NEAR/5 (y OR z*))", id="near-or-group"),
    ],
)
def test_precedence(query: str, expected: str) -> None:
    assert str(parse_query(query)) == expected


BAD_QUERIES = [
    ('"Palmyra" OR Syria AND NOT', "expected a term after NOT at column 27"),
    (
        "titel:ISIS",
        "unknown field 'titel' at column 1; expected one of title, body, author, source, url, lang",
    ),
    ("", "empty query at column 1"),
    ("   ", "empty query at column 1"),
    ("(ISIS OR Daesh", "unclosed '(' at column 1; expected ')' before the end"),
    ("ISIS OR (Daesh", "unclosed '(' at column 9; expected ')' before the end"),
    ("ISIS)", "unmatched ')' at column 5; no '(' before it is left open"),
    (")", "unmatched ')' at column 1; no '(' before it is left open"),
    ("()", "expected a term after '(' at column 2"),
    ("ISIS OR", "expected a term after OR at column 8"),
    ("OR ISIS", "expected a term before OR at column 1"),
    ("ISIS AND AND Syria", "expected a term after AND at column 10"),
    ("ISIS AND )", "expected a term after AND at column 10"),
    (
        "ISIS NEAR/0 Syria",
        "NEAR distance 0 is out of range at column 11; expected a number of words from 1 to 1000",
    ),
    (
        "ISIS NEAR/1001 Syria",
        "NEAR distance 1001 is out of range at column 11; "
        "expected a number of words from 1 to 1000",
    ),
    ("ISIS NEAR Syria", "NEAR needs a word distance at column 6; write NEAR/n, such as NEAR/5"),
    ("ISIS NEAR/x Syria", "NEAR needs a word distance at column 6; write NEAR/n, such as NEAR/5"),
    (
        "ISIS NEAR/5 (Syria AND Iraq)",
        "NEAR/5 needs a term, a phrase or a parenthesised OR of them on each side at column 13",
    ),
    (
        "(ISIS OR NOT Daesh) NEAR/5 Syria",
        "NEAR/5 needs a term, a phrase or a parenthesised OR of them on each side at column 1",
    ),
    (
        "lang:en NEAR/5 Syria",
        "NEAR/5 needs a term, a phrase or a parenthesised OR of them on each side at column 1",
    ),
    ("ISIS NEAR/5 NOT Iraq", "expected a term after NEAR/5 at column 13"),
    (
        "title:ISIS NEAR/5 Syria",
        "'title:' cannot be used inside NEAR at column 1; "
        "scope the whole NEAR instead, as in title:(a NEAR/5 b)",
    ),
    (
        "a NEAR/2 b NEAR/2 c",
        "NEAR/2 cannot follow another NEAR at column 12; join two NEAR expressions with AND",
    ),
    ("*", "'*' needs a word before it at column 1; write a prefix such as refug*"),
    ("*ugee", "'*' needs a word before it at column 1; write a prefix such as refug*"),
    ("anti-*", "'*' needs a word before it at column 6; write a prefix such as refug*"),
    ("ref*ug", "'*' may only end a word at column 4"),
    ("refug**", "'*' may only end a word at column 6"),
    ('"refug* cam*p"', "'*' may only end a word at column 12"),
    ("isis or daesh", "'or' is not an operator at column 6; write OR, or \"or\" for the word"),
    ("isis And daesh", "'And' is not an operator at column 6; write AND, or \"And\" for the word"),
    ("not isis", "'not' is not an operator at column 1; write NOT, or \"not\" for the word"),
    ("isis near/5 syria", "'near/5' is not an operator at column 6; write NEAR/5"),
    ("-football", "'-football' starts with '-' at column 1; to exclude it write NOT football"),
    ("+ISIS", "'+ISIS' starts with '+' at column 1; terms are required by default: write ISIS"),
    ('"Islamic State', 'unterminated phrase at column 1; expected a closing " before the end'),
    ('ISIS ""', "empty phrase at column 6"),
    ('"-"', "empty phrase at column 1"),
    ("&&", "expected a term, found '&&' at column 1; a term needs letters or digits"),
    ("title: ISIS", "expected a term right after 'title:' at column 7"),
    ("ISIS title:", "expected a term right after 'title:' at column 12"),
    ("title:(body:ISIS)", "'body:' cannot be used inside 'title:(…)' at column 8"),
    ("title:(lang:en)", "'lang:' cannot be used inside 'title:(…)' at column 8"),
    ("lang:english", "expected a language code such as en or pt-BR after 'lang:' at column 6"),
    ('lang:"en"', "expected a language code such as en or pt-BR after 'lang:' at column 6"),
    (
        "lang:(en AND fr)",
        "expected OR or ')' in 'lang:(…)' at column 10; lang:(…) takes language codes joined by OR",
    ),
    ("lang:(en OR )", "expected a language code such as en or pt-BR in 'lang:(…)' at column 13"),
    (
        "http://example.com",
        "unknown field 'http' at column 1; expected one of title, body, author, source, url, lang",
    ),
]


@pytest.mark.parametrize(
    ("query", "message"), [pytest.param(q, m, id=q or "empty") for q, m in BAD_QUERIES]
)
def test_bad_query_errors(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query)
    assert str(caught.value) == message


def test_syntax_error_parts() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query("ISIS AND NOT")
    assert (caught.value.message, caught.value.column) == ("expected a term after NOT", 13)
    assert caught.value.hint is None


def test_bad_query_rule_names_the_rule() -> None:
    with pytest.raises(ValueError, match=r"^rule 'syria': unknown field 'titel' at column 1"):
        RuleMatcher([QueryRule("syria", "titel:Palmyra")])
    with pytest.raises(ValueError, match=r"^rule 'x': no stemmer for language 'zz'"):
        RuleMatcher([QueryRule("x", "election", stem=True, language="zz")])


@pytest.mark.parametrize(
    ("query", "document", "terms"),
    [
        pytest.param(
            EXAMPLE,
            _doc("ISIS hit Iraq; Palmyra", "ISIS", language="en"),
            ("Palmyra", "ISIS", "Iraq"),
            id="example-as-written",
        ),
        pytest.param(
            "ISIS NEAR/3 (Syria OR Iraq)",
            _doc("ISIS in Syria. Far, far away, Iraq"),
            ("ISIS", "Syria"),
            id="near-only-the-pair-that-held",
        ),
        pytest.param(
            "refug* OR title:camps",
            _doc("Refugees", "Camps"),
            ("refug*", "camps"),
            id="prefix-and-field",
        ),
        pytest.param("Syria AND NOT football", _doc("Syria"), ("Syria",), id="not-never-listed"),
        pytest.param(
            "(Palmyra AND Homs) OR Syria",
            _doc("Palmyra, Syria"),
            ("Syria",),
            id="failed-branch-not-listed",
        ),
        pytest.param(
            '"Islamic State" OR anti-ISIS',
            _doc("the anti-ISIS Islamic state"),
            ("Islamic State", "anti-ISIS"),
            id="phrases-without-quotes",
        ),
        pytest.param("lang:en", _doc("anything", language="en"), (), id="lang-has-no-term"),
    ],
)
def test_hit_terms_as_written(query: str, document: MatchDocument, terms: tuple[str, ...]) -> None:
    assert evaluate(query, document).terms == terms
    assert RuleMatcher([QueryRule("rule", query)]).match(document) == [RuleMatch("rule", terms)]


def test_stemmed_terms_report_the_article_words() -> None:
    document = _doc("Elections, then an election, then more elections", language="en")
    result = evaluate("election", document, stem=True)
    assert result.terms == ("election", "elections")


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        pytest.param(EXAMPLE, ("palmyra", "isis"), id="example"),
        pytest.param("a b", ("a",), id="and-needs-one-side"),
        pytest.param("Zürich OR refug*", ("zurich", "refug*"), id="normalised"),
        pytest.param(
            '(Syria OR Iraq) NEAR/3 "the Islamic State"',
            ("islamic",),
            id="near-side-with-fewer-terms",
        ),
        pytest.param("Syria NEAR/3 ISIS", ("syria",), id="near-longer-word"),
        pytest.param('"of the Islamic State"', ("islamic",), id="phrase-longest-word"),
        pytest.param("NOT football", (), id="not-only-always-evaluated"),
        pytest.param("lang:en OR Syria", (), id="lang-branch-always-evaluated"),
        pytest.param("lang:en Syria", ("syria",), id="lang-and-term"),
    ],
)
def test_query_terms_for_the_prefilter(query: str, terms: tuple[str, ...]) -> None:
    assert parse_query(query).terms() == terms


def test_queries_are_immutable_and_hashable() -> None:
    query = parse_query("ISIS NEAR/5 (Syria OR Iraq)")
    assert query == parse_query("ISIS NEAR/5 (Syria OR Iraq)")
    assert len({query, parse_query("ISIS NEAR/5 (Syria OR Iraq)")}) == 1
    with pytest.raises(AttributeError):
        query.text = "other"  # type: ignore[misc]


# --- the prefilter gives the same results as evaluating every rule ---------------

_WORDS = [
    "isis", "ISIS", "syria", "Syria", "iraq", "palmyra", "Zürich", "zurich", "refugee",
    "refugees", "election", "elections", "islamic", "state", "news", "camp", "camps",
    "c++", "football", "anti", "crisis", "the", "of",
]  # fmt: skip
_PREFIXABLE = [word for word in _WORDS if word.isalpha() and len(word) > 3]
_NOISE = [" ", " ", " ", ", ", ". ", "-", "\n", " \u00ad\n", "\u00ad", "'s "]


def _random_text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(_WORDS) + rng.choice(_NOISE) for _ in range(size))


def _random_term(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.2:
        return f'"{rng.choice(_WORDS)} {rng.choice(_WORDS)}"'
    if roll < 0.3:
        word = rng.choice(_PREFIXABLE)
        return word[: rng.randint(2, len(word) - 1)] + "*"
    if roll < 0.35:
        return f'"{rng.choice(_WORDS)} {rng.choice(_PREFIXABLE)[:3]}*"'
    word = rng.choice(_WORDS)
    return f'"{word}"' if word in ("c++",) else word


def _random_query(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth >= 2 or roll < 0.3:
        term = _random_term(rng)
        if rng.random() < 0.15:
            return f"{rng.choice(['title', 'body', 'url', 'author'])}:{term}"
        return term
    if roll < 0.45:
        return f"{_random_query(rng, depth + 1)} OR {_random_query(rng, depth + 1)}"
    if roll < 0.6:
        return f"({_random_query(rng, depth + 1)}) {_random_query(rng, depth + 1)}"
    if roll < 0.7:
        return f"NOT {_random_query(rng, depth + 1)}"
    if roll < 0.75:
        return f"lang:{rng.choice(['en', 'fr', 'pt-br'])}"
    right = f"({_random_term(rng)} OR {_random_term(rng)})"
    near = f"{_random_term(rng)} NEAR/{rng.randint(1, 4)} {right}"
    return f"title:({near})" if rng.random() < 0.2 else near


def _random_rule(rng: random.Random, index: int) -> KeywordRule | QueryRule:
    stem = rng.random() < 0.25
    language = rng.choice([None, None, "en", "fr"]) if stem else None
    if rng.random() < 0.4:
        keywords = tuple(_random_term(rng).strip('"') for _ in range(rng.randint(1, 3)))
        exclude = tuple(rng.choice(_WORDS) for _ in range(rng.choice([0, 0, 1])))
        return KeywordRule(f"k{index}", keywords, exclude, stem=stem, language=language)
    return QueryRule(f"q{index}", _random_query(rng), stem=stem, language=language)


def _random_document(rng: random.Random) -> MatchDocument:
    return MatchDocument(
        title=_random_text(rng, rng.randint(0, 5)),
        body=_random_text(rng, rng.randint(0, 40)),
        author=_random_text(rng, rng.randint(0, 2)),
        source=rng.choice(["", "Reuters", "Le Monde"]),
        url=rng.choice(["", "https://news.example/isis-syria", "https://bbc.co.uk/a"]),
        language=rng.choice([None, "en", "en-GB", "fr", "pt-BR", "de"]),
    )


def test_prefilter_matches_evaluating_every_rule() -> None:
    rng = random.Random(20240611)  # noqa: S311 - test data, not secrets
    rules = [_random_rule(rng, index) for index in range(400)]
    matcher = RuleMatcher(rules)
    keyword_matchers = {rule.name: RuleMatcher([rule]) for rule in rules}
    total = 0
    for _ in range(150):
        document = _random_document(rng)
        matches = matcher.match(document)
        assert matches == matcher.match(document, prefilter=False)
        # ... and evaluating each rule on its own, as crawler.domain.query does.
        prepared = prepare_document(document)
        expected = []
        for rule in rules:
            if isinstance(rule, QueryRule):
                result = evaluate(rule.query, prepared, stem=rule.stem, language=rule.language)
                if result:
                    expected.append(RuleMatch(rule.name, result.terms))
            else:
                expected.extend(keyword_matchers[rule.name].match(prepared, prefilter=False))
        assert matches == expected
        total += len(matches)
    assert total > 1000  # the rules do match: the comparison is not vacuous


def test_rules_without_terms_are_always_evaluated() -> None:
    matcher = RuleMatcher(
        [QueryRule("not", "NOT football"), QueryRule("en", "lang:en"), KeywordRule("k", ("x",))]
    )
    assert [m.rule for m in matcher.match(_doc("nothing here", language="en"))] == ["not", "en"]
    assert [m.rule for m in matcher.match(_doc("football", language="fr"))] == []
    assert RuleMatcher([]).match(_doc("anything")) == []


# --- limits: hostile queries are clear errors, never a crash or a long wait -----------


def _error(query: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query)
    return caught.value


def test_a_query_nested_300_deep_is_a_clear_error() -> None:
    # Was a RecursionError from the recursive-descent parser (issue 16).
    error = _error("(" * 300 + "ISIS" + ")" * 300)
    assert str(error) == (
        "the query nests more than 50 levels deep at column 51; each parenthesised group, "
        "NOT and field prefix is a level; write it flatter"
    )


def test_a_query_with_400_nots_is_a_clear_error() -> None:
    # Parsed, then str(), repr(), hash() and == of the 400-deep tree recursed too deep.
    error = _error("NOT " * 400 + "ISIS")
    assert error.column == 201  # the 51st NOT
    assert "nests more than 50 levels deep" in error.message


def test_field_groups_count_as_nesting() -> None:
    error = _error("title:" + "(" * 200 + "ISIS" + ")" * 200)
    assert error.column == 56  # title: is level 1, the 50th '(' level 51


def test_a_query_at_the_nesting_limit_works() -> None:
    query = "NOT " * 11 + "(" * 39 + "ISIS" + ")" * 39  # 50 levels
    assert not evaluate(query, _doc("ISIS")).matched
    assert evaluate("(" * 49 + "title:ISIS" + ")" * 49, _doc("", "ISIS")).matched
    parsed = parse_query(query)
    assert hash(parsed) == hash(parse_query(query))
    assert str(parsed) == "NOT " * 11 + "ISIS"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(" OR ".join(f"w{i}" for i in range(5000)), id="5000-ors"),
        pytest.param(" AND ".join(f"w{i}" for i in range(2000)), id="2000-ands"),
        pytest.param(" ".join(f"NOT w{i}" for i in range(2000)), id="2000-nots-anded"),
        pytest.param(" OR ".join(f"(a{i} AND NOT b{i})" for i in range(2000)), id="or-of-ands"),
    ],
)
def test_long_flat_queries_match_without_deep_recursion(query: str) -> None:
    parsed = parse_query(query)
    str(parsed)
    hash(parsed)
    document = _doc("w1 w2 a7 body", "title w0")
    rule = RuleMatcher([QueryRule("long", query)])
    assert bool(rule.match(document)) == evaluate(parsed, document).matched
    assert bool(rule.match(document, prefilter=False)) == evaluate(parsed, document).matched


def test_a_query_of_more_than_10000_terms_is_a_clear_error() -> None:
    error = _error(" OR ".join(f"w{i}" for i in range(10_001)))
    assert error.message == "the query has more than 10,000 terms"
    assert error.column == len(" OR ".join(f"w{i}" for i in range(10_000))) + 5


def test_near_takes_at_most_100_alternatives_a_side() -> None:
    # 300 × 300 alternatives cost 0.14 s per matching article (each pair is searched).
    side = "(" + " OR ".join(f"w{i}" for i in range(101)) + ")"
    error = _error(f"x NEAR/5 {side}")
    assert str(error) == (
        "NEAR/5 takes at most 100 alternatives on a side at column 10; "
        "this side has 101; split the rule"
    )
    assert parse_query("(" + " OR ".join(f"w{i}" for i in range(100)) + ") NEAR/5 x")


def test_a_near_distance_of_5000_digits_is_out_of_range() -> None:
    # Was a plain ValueError from int() (Python refuses 4,300 digits and more).
    error = _error("ISIS NEAR/" + "9" * 5000 + " Syria")
    assert error.message.startswith("NEAR distance 999")
    assert error.message.endswith("… is out of range")
    assert error.column == 11


@pytest.mark.parametrize(
    "run",
    [
        pytest.param("NEAR/" + "x" * 100_000, id="near"),
        pytest.param("-" + "x" * 100_000, id="minus"),
        pytest.param("&" * 100_000, id="no-word"),
        pytest.param("Q" * 100_000 + ":x", id="field"),
    ],
)
def test_a_query_error_quotes_at_most_40_characters_of_the_query(run: str) -> None:
    assert len(str(_error(run))) < 250


def test_a_query_error_escapes_characters_that_do_not_print() -> None:
    assert str(_error("\u202e&&")).startswith("expected a term, found '\\u202e&&'")


def test_rules_test_with_a_deeply_nested_query_exits_2_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, sources=[], rules=[])
    result = run_newswatch(config, "rules", "test", "--query", "(" * 300 + "x" + ")" * 300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "newswatch: configuration error",
        "--query: rule 'inline': the query nests more than 50 levels deep at column 51; each "
        "parenthesised group, NOT and field prefix is a level; write it flatter",
    ]
