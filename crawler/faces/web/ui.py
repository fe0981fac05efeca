"""The web UI's one resource, ``WebUI``: every route, the ``Host`` check, the token,
redaction of secrets, and the pages rendered from the templates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from markupsafe import escape
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from alerts.digest import preview_digests
from alerts.render import get_environment, make_snippet
from crawler.domain.urls import redact_text
from crawler.faces.web.common import (
    COMMON_HEADERS,
    DELIVERIES_SHOWN,
    DIGEST_JOB,
    HEALTH_TIMEOUT,
    HTML,
    JSON,
    MATCHES_OF_ONE_RULE,
    MATCHES_PER_RULE,
    MAX_ERROR_CHARS,
    MAX_QUERY_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    MIN_REDACTED_CHARS,
    MISDIRECTED,
    NO_TIME,
    PAGE_CSP,
    POLL_JOB,
    PREVIEW_CSP,
    SEARCH_LIMIT,
    SESSION_COOKIE,
    TEXT,
    Reply,
    highlight,
    is_allowed_host,
    one_line,
    parse_search,
    safe_link,
)

if TYPE_CHECKING:
    from twisted.python.failure import Failure
    from twisted.web.server import Request

    from crawler.domain.config import Config
    from crawler.orchestration.metrics import Metrics
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)


class WebUI(Resource):
    """Every route of the web UI; one leaf resource that dispatches on the path.

    Takes callables for what changes while the service runs: the configuration
    (it can be reloaded), whether the scheduler runs, and {job id: next run time}.
    The access token and the SMTP password are read from the configuration at
    each request.
    """

    isLeaf = True

    def __init__(
        self,
        config: Callable[[], Config],
        store: Store,
        metrics: Metrics | None = None,
        *,
        scheduler_running: Callable[[], bool] = lambda: True,
        next_runs: Callable[[], dict[str, datetime | None]] = dict,
        threads: ThreadPool | None = None,
    ) -> None:
        """``threads`` runs the blocking calls (default: the reactor's pool)."""
        super().__init__()
        self.threads = threads
        self.current_config = config
        self.store = store
        self.metrics = metrics
        self.scheduler_running = scheduler_running
        self.next_runs = next_runs
        self.routes: dict[str, Callable[[Request], Awaitable[Reply]]] = {
            "/": self.status_page,
            "/matches": self.matches_page,
            "/digests": self.digests_page,
            "/preview": self.preview_page,
            "/search": self.search_page,
            "/healthz": self.healthz,
            "/metrics": self.metrics_page,
            "/favicon.ico": self.no_icon,
        }

    @property
    def config(self) -> Config:
        return self.current_config()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config.digest.timezone)

    def _token(self) -> bytes | None:
        token = self.config.web.token()
        return token.encode() if token else None

    def _secrets(self) -> list[bytes]:
        smtp = self.config.delivery.smtp
        secrets = [self.config.web.token(), smtp.password() if smtp else None]
        secrets += [
            credentials[1]
            for source in self.config.sources
            if (credentials := source.credentials())
        ]
        return [s.encode() for s in secrets if s and len(s) >= MIN_REDACTED_CHARS]

    def _host_names(self) -> frozenset[str]:
        """The names this UI answers to besides addresses and localhost."""
        web = self.config.web
        # The host of web.public_url is where readers come from: it is allowed too.
        public = urlsplit(str(web.public_url)).hostname if web.public_url else None
        return frozenset(
            name.lower().removesuffix(".")
            for name in (web.host, *web.allowed_hosts, public)
            if name
        )

    # -- the twisted.web side ----------------------------------------------------

    def render(self, request: Request) -> Any:
        """Answer asynchronously: the reply is written when the coroutine ends."""
        lost: list[Failure] = []
        request.notifyFinish().addErrback(lost.append)

        def send(reply: Reply) -> None:
            if lost:  # the client went away; nobody to answer
                return
            body = self._redact(reply.body)
            request.setResponseCode(reply.status)
            for name, value in {**COMMON_HEADERS, **reply.headers}.items():
                request.setHeader(name, value)
            request.setHeader("Content-Type", reply.content_type)
            request.setHeader("Content-Length", str(len(body)))
            request.setHeader("Server", "newswatch")
            request.write(body)  # for HEAD, Twisted sends the headers only
            request.finish()

        def fail(failure: Failure) -> None:
            logger.error(
                "web: %s %s failed: %s",
                request.method.decode(errors="replace"),
                request.path.decode(errors="replace")[:200],
                failure.getTraceback(),
            )
            send(Reply(500, b"500 internal error (see the service log)\n", TEXT))

        deferred = Deferred.fromCoroutine(self.respond(request))
        deferred.addCallback(send).addErrback(fail)
        return NOT_DONE_YET

    async def respond(self, request: Request) -> Reply:
        """Method, authentication, then the route."""
        if request.method not in (b"GET", b"HEAD"):
            return Reply(
                405, b"405 method not allowed: GET or HEAD only\n", TEXT, {"Allow": "GET, HEAD"}
            )
        path = request.path.decode("utf-8", errors="replace")
        path = path.rstrip("/") or "/"
        if path != "/healthz" and not self._host_allowed(request):
            return Reply(421, MISDIRECTED, TEXT)
        if path != "/healthz" and not self._authorized(request):
            return Reply(
                401,
                b"401 unauthorized: send Authorization: Bearer <token>, "
                b"or add ?token=<token> to the address\n",
                TEXT,
                {"WWW-Authenticate": 'Bearer realm="newswatch"'},
            )
        route = self.routes.get(path)
        if route is None:
            return self._page(
                "web/message.html.j2",
                "Not found",
                path,
                status=404,
                message="There is no page at this address.",
            )
        try:
            return await route(request)
        except SQLAlchemyError as error:
            logger.warning(
                "web: %s: the database did not answer: %s", path[:100], one_line(str(error), 300)
            )
            return self._page(
                "web/message.html.j2",
                "Database unavailable",
                path,
                status=503,
                message="The database does not answer; the service log says why.",
            )

    def _host_allowed(self, request: Request) -> bool:
        headers = request.requestHeaders.getRawHeaders(b"host", [])
        if not headers:
            return True  # HTTP/1.0 without a Host: no name a rebinding page could set
        return len(headers) == 1 and is_allowed_host(headers[0], self._host_names())

    def _authorized(self, request: Request) -> bool:
        token = self._token()
        if token is None:
            return True
        offered = [
            value.strip()
            for header in request.requestHeaders.getRawHeaders(b"authorization", [])
            for scheme, _, value in [header.partition(b" ")]
            if scheme.lower() == b"bearer"
        ]
        if any(hmac.compare_digest(value, token) for value in offered):
            return True
        # Only a digest of the token goes into the cookie, never the token itself.
        session = hmac.new(token, b"newswatch web session", hashlib.sha256).hexdigest().encode()
        query = request.args.get(b"token", [])[:1]
        if query and hmac.compare_digest(query[0], token):
            # A browser opened ?token=…: later pages and the search form need no token.
            request.addCookie(SESSION_COOKIE, session, path=b"/", httpOnly=True, sameSite="strict")
            return True
        cookie = request.getCookie(SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, session)

    def _redact(self, body: bytes) -> bytes:
        """Belt and braces: no secret leaves, even inside an error message."""
        for secret in self._secrets():
            for form in {secret, str(escape(secret.decode())).encode()}:
                body = body.replace(form, b"[redacted]")
        return body

    async def _blocking(
        self, function: Callable[..., Any], *args: Any, timeout: float | None = None
    ) -> Any:
        """Run a blocking call in a worker thread and wait for it."""
        from twisted.internet import reactor as installed_reactor

        reactor: Any = installed_reactor  # zope interfaces: no useful static type

        deferred = (
            deferToThread(function, *args)
            if self.threads is None
            else deferToThreadPool(reactor, self.threads, function, *args)
        )
        if timeout is not None:
            deferred.addTimeout(timeout, reactor)
        return await deferred

    @staticmethod
    def _arg(request: Request, name: str) -> str:
        values = request.args.get(name.encode(), [])
        return values[0].decode("utf-8", errors="replace")[:MAX_QUERY_CHARS] if values else ""

    def _page(
        self,
        template: str,
        title: str,
        current: str,
        *,
        status: int = 200,
        query: str = "",
        **context: Any,
    ) -> Reply:
        config = self.config
        templates = get_environment([config.digest.templates] if config.digest.templates else [])
        html = templates.get_template(template).render(
            title=title, current=current, query=query, **context
        )
        return Reply(status, html.encode(), HTML, {"Content-Security-Policy": PAGE_CSP})

    def _when(self, moment: datetime | None, now: datetime | None = None) -> str:
        """E.g. "2024-02-14 11:31 IST (5 min ago)" in the digest's time zone."""
        if moment is None:
            return NO_TIME
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(self.zone)
        shown = f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
        return f"{shown} ({_relative(moment, now)})" if now is not None else shown

    # -- routes ------------------------------------------------------------------

    async def healthz(self, request: Request) -> Reply:
        """200 when the scheduler runs and the database answers, else 503."""
        scheduler = bool(self.scheduler_running())
        database = True
        try:
            await self._blocking(self.store.ping, timeout=HEALTH_TIMEOUT)
        except Exception as error:
            database = False
            logger.warning(
                "healthz: the database did not answer: %s", one_line(redact_text(str(error)), 300)
            )
        body: dict[str, Any] = {
            "status": "ok" if scheduler and database else "fail",
            "scheduler": scheduler,
            "database": database,
        }
        if not (scheduler and database):
            body["reason"] = "; ".join(
                reason
                for ok, reason in (
                    (scheduler, "the scheduler is not running"),
                    (database, "the database does not answer"),
                )
                if not ok
            )
        return Reply(
            200 if scheduler and database else 503, json.dumps(body).encode() + b"\n", JSON
        )

    async def no_icon(self, request: Request) -> Reply:
        """Browsers ask for it (a digest preview has no <link rel=icon>): no noise in logs."""
        return Reply(204, b"", "image/x-icon")

    async def metrics_page(self, request: Request) -> Reply:
        if self.metrics is None:
            return Reply(404, b"404 no metrics in this process\n", TEXT)
        # Scraping reads the database-backed gauges: off the reactor thread.
        data = await self._blocking(generate_latest, self.metrics.registry)
        return Reply(200, data, CONTENT_TYPE_LATEST)

    async def status_page(self, request: Request) -> Reply:
        def read() -> tuple[list[dict[str, Any]], dict[str, int], int, dict[str, int]]:
            return (
                self.store.source_statuses(),
                self.store.rule_match_counts(),
                self.store.count_articles(),
                self.store.unsent_delivery_counts(),
            )

        rows, match_counts, articles, unsent = await self._blocking(read)
        now = datetime.now(UTC)
        runs = self.next_runs()
        by_name = {row["name"]: row for row in rows}
        sources = [
            self._source_view(source, by_name.get(source.name, {}), runs, now)
            for source in self.config.sources
        ]
        rules = [
            {"name": rule.name, "alert": rule.alert, "matches": match_counts.get(rule.name, 0)}
            for rule in self.config.rules
        ]
        recipients = [
            {
                "email": recipient.email,
                "schedule": recipient.schedule,
                "quiet_days": ", ".join(sorted(recipient.quiet_days)),
                "timezone": recipient.timezone,
                "next": _local(
                    runs.get(DIGEST_JOB.format(recipient.email)), recipient.timezone, now
                ),
            }
            for recipient in self.config.all_recipients()
        ]
        totals = {
            "articles": articles,
            "sources": sum(1 for s in sources if s["enabled"]),
            "sources_ok": sum(1 for s in sources if s["state"] == "ok"),
            "matches": sum(match_counts.values()),
            "unsent": sum(unsent.values()),
        }
        return self._page(
            "web/status.html.j2",
            "Status",
            "/",
            sources=sources,
            rules=rules,
            recipients=recipients,
            totals=totals,
            now=self._when(now),
        )

    def _source_view(
        self, source: Any, row: dict[str, Any], runs: dict[str, datetime | None], now: datetime
    ) -> dict[str, Any]:
        failures = row.get("consecutive_failures") or 0
        if not source.enabled:
            state, css = "disabled", "idle"
        elif row.get("last_polled_at") is None:
            state, css = "not polled yet", "idle"
        elif failures:
            state, css = f"failing ({failures} in a row)", "failing"
        else:
            state, css = "ok", "ok"
        discovered = row.get("discovered_url")
        return {
            "name": one_line(source.name, MAX_TITLE_CHARS),
            "kind": source.kind,
            "url": one_line(source.url, MAX_URL_CHARS),
            "link": safe_link(source.url),
            "discovered": one_line(discovered, MAX_URL_CHARS) if discovered else None,
            "enabled": source.enabled,
            "state": state,
            "state_class": css,
            "last_poll": self._when(row.get("last_polled_at"), now),
            "last_success": self._when(row.get("last_success_at"), now),
            "next_poll": self._when(runs.get(POLL_JOB.format(source.name)), now)
            if source.enabled
            else NO_TIME,
            # Redacted again: a row written before userinfo was kept out of errors.
            "last_error": one_line(redact_text(row.get("last_error") or ""), MAX_ERROR_CHARS)
            if failures
            else "",
            "articles": row.get("articles", 0),
        }

    async def matches_page(self, request: Request) -> Reply:
        # ?rule=NAME: that rule's matches only, many more of them (a cut digest's link).
        rule = self._arg(request, "rule").strip() or None
        per_rule = MATCHES_OF_ONE_RULE if rule else MATCHES_PER_RULE
        rows = await self._blocking(self.store.recent_matches, per_rule, rule)
        order = {rule: n for n, rule in enumerate(self.config.rule_names())}
        sections: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            sections.setdefault(row["rule"], []).append(
                {
                    "title": one_line(row["title"], MAX_TITLE_CHARS) or "(untitled)",
                    "link": safe_link(row["url"]),
                    "url": one_line(row["url"], MAX_URL_CHARS),
                    "source": one_line(row["source"], MAX_TITLE_CHARS),
                    "published": self._when(row["published_at"]),
                    "matched": self._when(row["matched_at"]),
                    "terms": ", ".join(one_line(term, 100) for term in row["terms"] or ()),
                }
            )
        ordered = sorted(
            sections.items(), key=lambda item: (order.get(item[0], len(order)), item[0])
        )
        return self._page(
            "web/matches.html.j2",
            "Recent matches",
            "/matches",
            sections=[
                {"rule": one_line(rule, MAX_TITLE_CHARS), "entries": entries}
                for rule, entries in ordered
            ],
            per_rule=per_rule,
            rule=rule,
        )

    async def digests_page(self, request: Request) -> Reply:
        rows = await self._blocking(self.store.delivery_history, DELIVERIES_SHOWN)
        deliveries = [
            {
                "recipient": one_line(row["recipient"], MAX_TITLE_CHARS),
                "channel": one_line(row["channel"], MAX_TITLE_CHARS),
                "kind": row["kind"],
                "created": self._when(row["created_at"]),
                "sent": self._when(row["sent_at"]),
                "state": _delivery_state(row)[0],
                "state_class": _delivery_state(row)[1],
                "attempts": row["attempts"],
                "articles": row["articles"],
                "last_error": one_line(row["last_error"], MAX_ERROR_CHARS),
            }
            for row in rows
        ]
        return self._page(
            "web/digests.html.j2",
            "Delivery history",
            "/digests",
            deliveries=deliveries,
            shown=DELIVERIES_SHOWN,
        )

    async def preview_page(self, request: Request) -> Reply:
        """The next digest of one recipient, exactly the HTML that would be sent."""
        wanted = self._arg(request, "recipient").strip()
        recipients = [recipient.email for recipient in self.config.all_recipients()]
        if not wanted:
            return self._page(
                "web/preview.html.j2",
                "Digest preview",
                "/preview",
                recipients=recipients,
                recipient=None,
            )
        email = next((e for e in recipients if e.lower() == wanted.lower()), None)
        if email is None:
            return self._page(
                "web/message.html.j2",
                "Digest preview",
                "/preview",
                status=404,
                message="No recipient has this address.",
            )
        previews = await self._blocking(preview_digests, self.store, self.config)
        digest = previews.get(email)
        if digest is None:
            return self._page(
                "web/preview.html.j2",
                "Digest preview",
                "/preview",
                recipients=recipients,
                recipient=email,
            )
        return Reply(200, digest.html.encode(), HTML, {"Content-Security-Policy": PREVIEW_CSP})

    async def search_page(self, request: Request) -> Reply:
        query = self._arg(request, "q")
        terms = parse_search(query)
        results: list[dict[str, Any]] = []
        failed = False
        if terms:
            try:
                rows = await self._blocking(self.store.search_articles, terms, SEARCH_LIMIT)
            except Exception:
                logger.exception("web: search for %r failed", query[:100])
                rows, failed = [], True
            for row in rows:
                snippet = make_snippet(row["body"] or "", terms)
                results.append(
                    {
                        "title": highlight(
                            one_line(row["title"], MAX_TITLE_CHARS) or "(untitled)", terms
                        ),
                        "link": safe_link(row["url"]),
                        "url": one_line(row["url"], MAX_URL_CHARS),
                        "source": one_line(row["source"], MAX_TITLE_CHARS),
                        "published": self._when(row["published_at"] or row["fetched_at"]),
                        "snippet": highlight(snippet, terms),
                    }
                )
        return self._page(
            "web/search.html.j2",
            "Search",
            "/search",
            query=query,
            terms=terms,
            results=results,
            failed=failed,
            limit=SEARCH_LIMIT,
        )


def _relative(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    size = abs(seconds)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= span:
            amount = f"{int(size // span)} {unit}"
            break
    else:
        return "just now" if seconds <= 0 else "in a moment"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _local(moment: datetime | None, timezone: str, now: datetime) -> str:
    if moment is None:
        return NO_TIME
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({_relative(moment, now)})"


def _delivery_state(row: dict[str, Any]) -> tuple[str, str]:
    """How a delivery stands, and its badge's class."""
    if row["sent_at"]:
        return "sent", "ok"
    if row.get("failed_at"):
        return "refused, not retried", "failing"
    return "waiting to be sent", "pending"
