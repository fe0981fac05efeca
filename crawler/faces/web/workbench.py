"""The web UI's pages for trying queries: ``/search`` (the rule language on stored
articles, hits highlighted) and ``/workbench`` (a draft query against a configured
rule over the last N days, and its YAML entry). Read-only: nothing here writes
``config.yaml``.

Both parse with the rules' own parser and match with the rules' own matcher
(alerts/workbench.py), so what they show is what a crawl would have done. The
scan is bounded (the most recently fetched ``SCAN_LIMIT`` articles; the page says
when it was cut) and runs, database read and matching alike, in the web UI's
threads: matching thousands of bodies is CPU work the reactor must not wait on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from alerts.render import get_environment, make_snippet
from alerts.rules import KeywordRule, QueryRule, RuleError, rules_from_config
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
from crawler.faces.web.common import (
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    PAGE_CSP,
    SEARCH_LIMIT,
    Reply,
    highlight,
    one_line,
    safe_link,
)
from crawler.faces.web.site import Route

if TYPE_CHECKING:
    from collections.abc import Sequence

    from twisted.web.server import Request

    from alerts.workbench import Hit
    from crawler.faces.web.site import WebUI
    from crawler.storage.records import StoredArticle

# Articles a search or a workbench run evaluates at most (the most recently
# fetched): matching takes about a millisecond an article, so a page stays within
# seconds on any store.
SCAN_LIMIT = 5000
# Older articles a search adds past the scan, found by the full-text index.
OLDER_LIMIT = 2000
DAY_CHOICES = (1, 3, 7, 14, 30)
DEFAULT_DAYS = 7
HITS_SHOWN = 100  # of each list on the workbench
NEW_RULE_NAME = "new-rule"
# The workbench page may run its one script, from this site, and fetch its own page.
WORKBENCH_CSP = PAGE_CSP + "; script-src 'self'; connect-src 'self'"
SCRIPT = "text/javascript; charset=utf-8"
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A keyword that may stand bare in a query: one word, perhaps a prefix.
_BARE_KEYWORD_RE = re.compile(r"[^\W_]+\*?")
_OPERATOR_WORDS = frozenset({"and", "or", "not"})


@dataclass(frozen=True, slots=True)
class Scan:
    """The articles a page evaluated, and whether ``SCAN_LIMIT`` cut the scan short;
    for a search, how many older articles the full-text index added (``older``)."""

    articles: list[StoredArticle]
    capped: bool
    older: int = 0


def error_view(query: str, problem: QueryProblem) -> dict[str, Any]:
    """A bad query for the page: the message, and the query with a caret under the
    column the parser points at (control characters shown as spaces, so the caret
    stays under its character)."""
    shown = _CONTROL_RE.sub(" ", query)
    pointer = None
    if problem.column is not None:
        pointer = " " * (min(max(problem.column, 1), len(shown) + 1) - 1) + "^"
    return {
        "message": problem.message,
        "column": problem.column,
        "hint": problem.hint,
        "query": shown,
        "pointer": pointer,
    }


def keyword_query(keywords: Sequence[str], exclude: Sequence[str] = ()) -> str:
    """A keyword rule written as the query it means: any keyword, and none of the
    excluded terms (a phrase quoted, a lone word or prefix bare); "" without keywords."""

    def term(text: str) -> str:
        text = " ".join(text.replace('"', " ").split())
        bare = _BARE_KEYWORD_RE.fullmatch(text) and text.lower() not in _OPERATOR_WORDS
        return text if bare and not text.lower().startswith("near") else f'"{text}"'

    def group(terms: list[str]) -> str:
        return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"

    wanted = [term(text) for text in keywords if any(c.isalnum() for c in text)]
    unwanted = [term(text) for text in exclude if any(c.isalnum() for c in text)]
    if not wanted or not unwanted:  # no keyword: the rule matches nothing, no query says so
        return " OR ".join(wanted)
    return f"{group(wanted)} AND NOT {group(unwanted)}"


def rule_query(rule: KeywordRule | QueryRule) -> str:
    """The query a configured rule runs, as text to edit."""
    if isinstance(rule, QueryRule):
        return rule.query
    return keyword_query(rule.keywords, rule.exclude)


class QueryPages:
    """``/search`` and ``/workbench``, over the site's store and configuration."""

    def __init__(self, site: WebUI) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/search", self.search_page),
            Route("/workbench", self.workbench_page),
            Route(r"/workbench\.js", self.workbench_script),
        ]

    def _scan(self, since: datetime | None) -> Scan:
        articles = self.site.store.newest_articles(SCAN_LIMIT + 1, since)
        return Scan(articles[:SCAN_LIMIT], capped=len(articles) > SCAN_LIMIT)

    def _search_scan(self, query: str) -> Scan:
        """The newest ``SCAN_LIMIT`` articles and, past them, up to ``OLDER_LIMIT``
        older ones the full-text index finds holding one of the words the query
        needs (when it names such words): a search reaches the whole store for
        most queries, still bounded."""
        scan = self._scan(None)
        words = index_words(query) if scan.capped else ()
        if not words:
            return scan
        found = self.site.store.articles_with_any_word(words, OLDER_LIMIT, skip_newest=SCAN_LIMIT)
        # Articles fetched between the two reads shift the newest ones: none twice.
        seen = {article.id for article in scan.articles}
        older = [article for article in found if article.id not in seen]
        return Scan(scan.articles + older, capped=True, older=len(older))

    def _hit_view(self, hit: Hit) -> dict[str, Any]:
        article = hit.article
        title = one_line(article.title, MAX_TITLE_CHARS) or "(untitled)"
        return {
            "title": highlight(title, hit.terms),
            "link": safe_link(article.url),
            "url": one_line(article.url, MAX_URL_CHARS),
            "source": one_line(article.source, MAX_TITLE_CHARS),
            "published": self.site.when(article.published),
            "terms": ", ".join(one_line(term, 100) for term in hit.terms),
            "snippet": highlight(make_snippet(article.body or "", hit.terms), hit.terms),
        }

    async def search_page(self, request: Request) -> Reply:
        query = self.site.arg(request, "q").strip()
        context: dict[str, Any] = {"error": None, "results": [], "searched": None}
        problem = check_query(query) if query else None
        if problem is not None:
            context["error"] = error_view(query, problem)
        elif query:

            def search() -> tuple[Scan, list[Hit]]:
                scan = self._search_scan(query)
                return scan, find_hits(QueryRule("search", query), scan.articles)

            try:
                scan, hits = await self.site.blocking(search)
            except RuleError as error:  # parses, but cannot compile
                context["error"] = error_view(query, rule_problem(error))
            else:
                context.update(
                    results=[self._hit_view(hit) for hit in hits[:SEARCH_LIMIT]],
                    total=len(hits),
                    searched=len(scan.articles) - scan.older,
                    older=scan.older,
                    capped=scan.capped,
                )
        return self.site.page(
            "web/search.html.j2",
            "Search",
            "/search",
            query=query,
            limit=SEARCH_LIMIT,
            scan_limit=SCAN_LIMIT,
            **context,
        )

    async def workbench_page(self, request: Request) -> Reply:
        config = self.site.config
        rules = {rule.name: rule for rule in rules_from_config(config)}
        entries = {entry.name: entry for entry in config.rules}
        rule_name = self.site.arg(request, "rule").strip()
        configured = rules.get(rule_name)
        days_text = self.site.arg(request, "days").strip()
        days = int(days_text) if days_text.isdigit() else DEFAULT_DAYS
        if days not in DAY_CHOICES:
            days = DEFAULT_DAYS
        draft = self.site.arg(request, "q").strip()
        if not draft and configured is not None:
            draft = rule_query(configured)
        context: dict[str, Any] = {
            "rules": list(rules),
            "rule": rule_name if configured is not None else "",
            "unknown_rule": rule_name if rule_name and configured is None else "",
            "days": days,
            "day_choices": DAY_CHOICES,
            "draft": draft,
            "error": None,
            "ran": False,
        }
        problem = check_query(draft) if draft else None
        if problem is not None:
            context["error"] = error_view(draft, problem)
        elif draft:
            since = datetime.now(UTC) - timedelta(days=days)
            candidate = draft_rule(draft, configured)

            def run() -> tuple[Scan, list[Hit], list[Hit]]:
                scan = self._scan(since)
                if configured is None:
                    return scan, find_hits(candidate, scan.articles), []
                hits, current = find_hits_of([candidate, configured], scan.articles)
                return scan, hits, current

            try:
                scan, hits, current = await self.site.blocking(run)
            except RuleError as error:
                context["error"] = error_view(draft, rule_problem(error))
            else:
                comparison = compare_hits(hits, current)
                settings = (
                    entries[rule_name].model_dump(
                        mode="json", exclude_defaults=True, exclude={"name", "query"}
                    )
                    if configured is not None
                    else {}
                )
                context.update(
                    ran=True,
                    searched=len(scan.articles),
                    capped=scan.capped,
                    scan_limit=SCAN_LIMIT,
                    shown=HITS_SHOWN,
                    caught=[self._hit_view(hit) for hit in comparison.draft[:HITS_SHOWN]],
                    caught_count=len(comparison.draft),
                    added=[self._hit_view(hit) for hit in comparison.added[:HITS_SHOWN]],
                    added_count=len(comparison.added),
                    dropped=[self._hit_view(hit) for hit in comparison.dropped[:HITS_SHOWN]],
                    dropped_count=len(comparison.dropped),
                    kept=comparison.kept,
                    current_count=len(current),
                    snippet=rule_snippet(rule_name or NEW_RULE_NAME, draft, settings),
                )
        reply = self.site.page("web/workbench.html.j2", "Rule workbench", "/workbench", **context)
        reply.headers["Content-Security-Policy"] = WORKBENCH_CSP
        return reply

    async def workbench_script(self, request: Request) -> Reply:
        """The workbench's script, always the packaged one (a user's template folder
        restyles pages but does not get to run code in them)."""
        script = get_environment().get_template("web/workbench.js.j2").render()
        return Reply(200, script.encode(), SCRIPT)
