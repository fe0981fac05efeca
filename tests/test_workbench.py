"""The pieces of the web UI's query search and rule workbench: checking a query with
the rules' parser, finding and comparing hits, highlighting, the YAML entry, and the
bounded scan of the store (the pages themselves: test_browser_workbench.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import yaml

from alerts.render import get_environment
from alerts.rules import KeywordRule, QueryRule, RuleError
from alerts.workbench import (
    QueryProblem,
    check_query,
    compare_hits,
    draft_rule,
    find_hits,
    find_hits_of,
    index_words,
    rule_problem,
    rule_snippet,
)
from crawler.domain.items import ExtractedArticle
from crawler.domain.query import parse_query
from crawler.faces.web import workbench
from crawler.faces.web.common import highlight
from crawler.faces.web.workbench import QueryPages, error_view, keyword_query, rule_query
from crawler.storage.store import ArticleRecord, Store, StoredArticle


def _article(n: int, title: str, body: str = "", source: str = "wire") -> StoredArticle:
    return StoredArticle(
        id=n,
        url=f"https://news.example/{n}",
        source=source,
        title=title,
        body=body,
        published=datetime(2024, 2, 14, 6, n, tzinfo=UTC),
        authors=(),
        language="en",
    )


ARTICLES = [
    _article(1, "Mekong dam talks resume", "Ministers met on the Mekong on Tuesday."),
    _article(2, "Mekong football cup", "The Mekong derby ended in a draw."),
    _article(3, "Floods on the Mun river", "The Mun joins the Mekong downstream."),
    _article(4, "Chip shortage eases", "Semiconductor plants reopened.", source="tech"),
]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        pytest.param("Mekong AND NOT football", None, id="good"),
        pytest.param("title:(Syria OR Iraq) refug*", None, id="fields-and-prefix"),
        pytest.param(
            "Mekong AND", QueryProblem("expected a term after AND", 11), id="dangling-and"
        ),
        pytest.param(
            "Mekong and football",
            QueryProblem("'and' is not an operator", 8, 'write AND, or "and" for the word'),
            id="lower-case-operator",
        ),
        pytest.param(
            "(Mekong OR Mun",
            QueryProblem("unclosed '('", 1, "expected ')' before the end"),
            id="unclosed",
        ),
        pytest.param("x*y", QueryProblem("'*' may only end a word", 2), id="inner-star"),
    ],
)
def test_a_query_is_checked_by_the_rules_parser_with_its_column(
    query: str, problem: QueryProblem | None
) -> None:
    assert check_query(query) == problem


def test_the_caret_stands_under_the_column_even_past_control_characters() -> None:
    query = "Mekong\tand football"
    problem = check_query(query)
    assert problem is not None
    view = error_view(query, problem)
    assert view["query"] == "Mekong and football"  # the tab shown as one space
    assert view["pointer"] == "       ^"
    assert view["query"][len(view["pointer"]) - 1 :].startswith("and")
    # A column past the end (an unfinished query) points just after it.
    assert error_view("ab", QueryProblem("expected a term", 99))["pointer"] == "  ^"
    assert error_view("ab", QueryProblem("no stemmer"))["pointer"] is None


def test_hits_carry_their_terms_and_follow_the_rule_language() -> None:
    hits = find_hits(QueryRule("search", "Mekong AND NOT football"), ARTICLES)
    assert [(hit.article.id, hit.terms) for hit in hits] == [(1, ("Mekong",)), (3, ("Mekong",))]
    # A rule limited to sources sees only their articles, as in a crawl.
    scoped = QueryRule("chips", "semiconductor OR chip", sources=frozenset({"wire"}))
    assert find_hits(scoped, ARTICLES) == []
    with pytest.raises(RuleError):
        find_hits(QueryRule("bad", "Mekong AND"), ARTICLES)


def test_a_draft_is_compared_with_the_rule_it_would_replace() -> None:
    configured = KeywordRule("mekong", ("Mekong",), ("football",), sources=frozenset({"wire"}))
    draft = draft_rule("Mekong OR Mun", configured)
    assert (draft.name, draft.sources) == ("mekong", frozenset({"wire"}))
    comparison = compare_hits(find_hits(draft, ARTICLES), find_hits(configured, ARTICLES))
    assert [hit.article.id for hit in comparison.draft] == [1, 2, 3]
    assert [hit.article.id for hit in comparison.added] == [2]  # football is no longer out
    assert comparison.dropped == []
    assert comparison.kept == 2
    narrower = compare_hits(
        find_hits(draft_rule("title:Mekong", configured), ARTICLES),
        find_hits(configured, ARTICLES),
    )
    assert [hit.article.id for hit in narrower.added] == [2]
    assert [hit.article.id for hit in narrower.dropped] == [3]  # Mekong only in its body
    assert draft_rule("x", None) == QueryRule("draft", "x")
    # Both at once (an article tokenised once), the same as one by one.
    together = find_hits_of([draft, configured], ARTICLES)
    assert together == [find_hits(draft, ARTICLES), find_hits(configured, ARTICLES)]


def test_a_rule_that_will_not_compile_is_a_problem_without_a_column() -> None:
    error = RuleError("r", ValueError("no stemmer for language 'xx'"))
    assert rule_problem(error) == QueryProblem("no stemmer for language 'xx'")


@pytest.mark.parametrize(
    ("keywords", "exclude", "query"),
    [
        pytest.param(("Palmyra",), (), "Palmyra", id="one"),
        pytest.param(
            ("Palmyra", "Al-Qaryatain", "ISIS"),
            ("football",),
            '(Palmyra OR "Al-Qaryatain" OR ISIS) AND NOT football',
            id="syria",
        ),
        pytest.param(("memory chip", "refug*"), (), '"memory chip" OR refug*', id="phrase-prefix"),
        pytest.param(
            ("and", "near", 'say "no"'), (), '"and" OR "near" OR "say no"', id="operators"
        ),
        pytest.param(
            ("Mekong",), ("football", "cup"), "Mekong AND NOT (football OR cup)", id="excludes"
        ),
    ],
)
def test_a_keyword_rule_is_shown_as_the_query_it_means(
    keywords: tuple[str, ...], exclude: tuple[str, ...], query: str
) -> None:
    assert keyword_query(keywords, exclude) == query
    assert keyword_query((), exclude) == ""  # a rule without keywords matches nothing
    parse_query(query)  # what the workbench puts in its box runs as it is
    rule = KeywordRule("k", keywords, exclude)
    assert rule_query(rule) == query
    assert [hit.article.id for hit in find_hits(rule, ARTICLES)] == [
        hit.article.id for hit in find_hits(QueryRule("q", query), ARTICLES)
    ]


def test_hits_are_marked_and_everything_else_escaped() -> None:
    title = '<script>alert("x")</script> Mekong & Mun'
    [hit] = find_hits(QueryRule("s", "Mekong"), [_article(9, title)])
    assert str(highlight(title, hit.terms)) == (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; <mark>Mekong</mark> &amp; Mun"
    )


def test_the_yaml_entry_is_valid_whatever_the_query_and_keeps_the_rule_settings() -> None:
    query = 'Palmyra AND NOT "foot: ball" # not a comment\n- [x]'
    snippet = rule_snippet(
        "syria", query, {"keywords": ["Palmyra"], "stem": True, "sources": ["tag:war"]}
    )
    assert yaml.safe_load(snippet) == [
        {"name": "syria", "query": query, "stem": True, "sources": ["tag:war"]}
    ]
    assert snippet.startswith("- name: syria\n  query: ")
    assert yaml.safe_load(rule_snippet("new-rule", "Mekong")) == [
        {"name": "new-rule", "query": "Mekong"}
    ]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        pytest.param("Mekong AND NOT football", ("mekong",), id="and-not"),
        pytest.param('"Mekong delta" OR Mun', ("mekong", "mun"), id="phrase-or"),
        pytest.param("NOT football", (), id="not-only"),
        pytest.param("refug* OR Mekong", (), id="prefix"),
        pytest.param("Mekong AND", (), id="bad"),
    ],
)
def test_the_words_a_search_can_look_up_in_the_index(query: str, words: tuple[str, ...]) -> None:
    assert index_words(query) == words


def _stored_store(database_url: str, count: int) -> Store:
    store = Store.from_url(database_url)
    store.upgrade()
    for n in range(1, count + 1):
        article = ExtractedArticle(
            url=f"https://news.example/{n}", title=f"Story {n}", text=f"Body {n}."
        )
        store.insert_articles([(ArticleRecord("wire", article), [])])
    return store


def test_the_store_gives_the_most_recently_fetched_articles_first_bounded(
    database_url: str,
) -> None:
    store = _stored_store(database_url, 5)
    assert [a.title for a in store.newest_articles(3)] == ["Story 5", "Story 4", "Story 3"]
    assert store.newest_articles(10)[0].body == "Body 5."
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert store.newest_articles(10, since=later) == []
    assert len(store.newest_articles(10, since=later - timedelta(days=1))) == 5
    store.close()


def _render(template: str, **context: object) -> str:

    return (
        get_environment()
        .get_template(template)
        .render(title="t", current="/workbench", query="", **context)
    )


def test_a_bad_query_is_shown_escaped_with_its_caret() -> None:
    query = "<script>alert(1)</script> and x"
    problem = check_query(query)
    assert problem is not None
    page = _render("web/search.html.j2", error=error_view(query, problem), results=[])
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and x" in page
    assert f"at column {query.index('and') + 1}" in page


def test_the_workbench_says_when_the_scan_was_cut() -> None:
    context = {
        "rules": ["syria"],
        "rule": "syria",
        "unknown_rule": "",
        "days": 30,
        "day_choices": (7, 30),
        "draft": "Mekong",
        "error": None,
        "ran": True,
        "searched": 5000,
        "capped": True,
        "scan_limit": 5000,
        "shown": 100,
        "caught": [],
        "caught_count": 0,
        "added": [],
        "added_count": 0,
        "dropped": [],
        "dropped_count": 0,
        "kept": 0,
        "current_count": 0,
        "snippet": rule_snippet("syria", "Mekong"),
    }
    page = _render("web/workbench.html.j2", **context)
    assert "only the 5000 most recently fetched: older ones in this window" in page
    assert '<option value="30" selected>30 days</option>' in page
    assert "Nothing the rule catches is lost." in page
    uncut = _render("web/workbench.html.j2", **{**context, "capped": False})
    assert "most recently fetched" not in uncut


def test_a_search_past_its_scan_reaches_older_articles_through_the_index(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _stored_store(database_url, 6)
    monkeypatch.setattr(workbench, "SCAN_LIMIT", 2)
    older = store.articles_with_any_word(["body", "nothing"], 10, skip_newest=2)
    assert [article.title for article in older] == ["Story 4", "Story 3", "Story 2", "Story 1"]
    assert store.articles_with_any_word(["story 1"], 10) != []  # a phrase, as data
    assert store.articles_with_any_word(['"', "\x00"], 10) == []

    pages = QueryPages(SimpleNamespace(store=store))  # type: ignore[arg-type]
    scan = pages._search_scan('"Story 1" OR "Story 6"')
    assert (scan.capped, scan.older) == (True, 4)
    hits = find_hits(QueryRule("search", '"Story 1" OR "Story 6"'), scan.articles)
    assert [hit.article.title for hit in hits] == ["Story 6", "Story 1"]
    # A query the index cannot narrow (NOT alone) is evaluated on the newest only.
    scan = pages._search_scan("NOT Story")
    assert (len(scan.articles), scan.capped, scan.older) == (2, True, 0)
    store.close()
