"""The service's web face: status pages, ``/healthz`` and ``/metrics``.

Served by ``twisted.web`` on the service's own reactor (Scrapy's asyncio reactor),
bound to ``web.host:web.port``. Every database call and every scrape of the
database-backed metrics runs in the web UI's own small thread pool, never on the
reactor thread: a slow page never holds up crawling, the health check never waits
behind a batch of article writes on the database thread, and a database that
hangs cannot use up the reactor's pool, which Scrapy needs for DNS lookups.

Pages are rendered server-side from ``alerts/templates/web/*.html.j2`` with the
digest's own Jinja2 environment (autoescaped), with no JavaScript. Everything
from the web (titles, URLs, authors, errors) is escaped, and links are made only
for http(s) URLs. With ``web.token_env`` set, every path but ``/healthz`` wants the
token (``Authorization: Bearer …``, ``?token=…``, or the session cookie set after
a good ``?token=``); neither the token, nor the SMTP password, nor a source's
password is ever written into a response. Every path but ``/healthz`` also checks
the ``Host`` header, so that a page on another site cannot read these pages
through DNS rebinding: the UI answers to IP addresses, ``localhost``, its bind
address, ``web.allowed_hosts`` and the host of ``web.public_url``, and to any
other name with 421.

Routes: ``/`` status, ``/matches`` (``?rule=NAME``: one rule's), ``/digests``,
``/preview?recipient=EMAIL``, ``/search?q=…``, ``/healthz``, ``/metrics``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from alerts.digest import preview_digests
from alerts.render import get_environment, make_snippet, safe_url
from alerts.rules import find_terms
from crawler.domain.urls import redact_text

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort
    from twisted.python.failure import Failure
    from twisted.web.server import Request

    from crawler.domain.config import Config
    from crawler.orchestration.metrics import Metrics
    from crawler.orchestration.service import NewswatchService
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT = 5.0  # seconds the database may take to answer /healthz
WEB_THREADS = 4  # database calls of the web UI at once
# Shorter secrets are not searched for in pages: replacing every "news" would
# mangle them, and a secret that short is no protection anyway.
MIN_REDACTED_CHARS = 8
SEARCH_LIMIT = 50
MATCHES_PER_RULE = 50
MATCHES_OF_ONE_RULE = 2000
DELIVERIES_SHOWN = 200
MAX_QUERY_CHARS = 500
MAX_SEARCH_TERMS = 12
MAX_TITLE_CHARS = 300
MAX_ERROR_CHARS = 600
MAX_URL_CHARS = 300
SESSION_COOKIE = b"newswatch_session"
NO_TIME = "—"
# The scheduler's job ids (crawler/orchestration/service.py): the next poll and digest.
POLL_JOB = "poll:{}"
DIGEST_JOB = "digest:{}"

PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# A digest preview is web content in a mail layout: no script, no fetch, only its
# inline styles and images (as a mail client shows them).
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # A ?token=… in the address must not leak to the sites articles link to.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"

_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_INVISIBLE_RE = re.compile(
    "[\u00ad\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_SEARCH_TERM_RE = re.compile(r'"([^"]*)"|(\S+)')
_PORT_RE = re.compile(r"\d{1,5}")
# Names that always mean this machine: a DNS answer cannot make a browser send them.
LOOPBACK_NAMES = frozenset({"localhost"})
MISDIRECTED = (b"421 misdirected request: newswatch does not answer to the host name in "
               b"this request's Host header; if the name is yours, add it to "
               b"web.allowed_hosts\n")


@dataclass
class Reply:
    """A complete response, written in one go."""

    status: int
    body: bytes
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)


def parse_search(query: str) -> list[str]:
    """The terms of a search box: words, and "quoted phrases", all required.

    Anything else (operators, stars, brackets) is plain text: the store passes
    terms as data. Terms without a letter or digit are dropped.
    """
    terms: list[str] = []
    for phrase, word in _SEARCH_TERM_RE.findall(query[:MAX_QUERY_CHARS]):
        term = " ".join((phrase or word).strip('"').split())
        if any(character.isalnum() for character in term):
            terms.append(term)
    return list(dict.fromkeys(terms))[:MAX_SEARCH_TERMS]


safe_link = safe_url  # one link check for digests and pages


def is_allowed_host(header: bytes, names: frozenset[str]) -> bool:
    """True when a ``Host`` header names this service: an IP address (a page can
    only reach an address literal from its own origin, so that is no rebinding),
    ``localhost`` or a name under it, or one of ``names`` (lower case, without a
    trailing dot); with an optional port. A DNS-rebinding page sends its own
    domain name, which is refused."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):  # an IPv6 literal, "[::1]:8787"
        address, bracket, port = text[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and _PORT_RE.fullmatch(port[1:]))):
            return False
        return _is_address(address)
    host, colon, port = text.rpartition(":") if ":" in text else (text, "", "")
    if colon and not _PORT_RE.fullmatch(port):
        return False
    host = host.removesuffix(".")
    if not host:
        return False
    return (_is_address(host) or host in LOOPBACK_NAMES or host.endswith(".localhost")
            or host in names)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def one_line(text: str | None, limit: int) -> str:
    """``text`` on one line, without control or invisible characters, at most
    ``limit`` characters (cut with "…")."""
    text = _INVISIBLE_RE.sub("", _CONTROL_RE.sub(" ", text or ""))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def highlight(text: str, terms: Sequence[str]) -> Markup:
    """``text`` escaped, with the hits of ``terms`` in ``<mark>``."""
    pieces: list[Markup] = []
    position = 0
    for start, end in find_terms(text, terms):
        pieces.append(escape(text[position:start]))
        pieces.append(Markup("<mark>{}</mark>").format(text[start:end]))
        position = end
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


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
        secrets += [credentials[1] for source in self.config.sources
                    if (credentials := source.credentials())]
        return [s.encode() for s in secrets if s and len(s) >= MIN_REDACTED_CHARS]

    def _host_names(self) -> frozenset[str]:
        """The names this UI answers to besides addresses and localhost."""
        web = self.config.web
        # The host of web.public_url is where readers come from: it is allowed too.
        public = urlsplit(str(web.public_url)).hostname if web.public_url else None
        return frozenset(name.lower().removesuffix(".")
                         for name in (web.host, *web.allowed_hosts, public) if name)

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
            logger.error("web: %s %s failed: %s", request.method.decode(errors="replace"),
                         request.path.decode(errors="replace")[:200], failure.getTraceback())
            send(Reply(500, b"500 internal error (see the service log)\n", TEXT))

        deferred = Deferred.fromCoroutine(self.respond(request))
        deferred.addCallback(send).addErrback(fail)
        return NOT_DONE_YET

    async def respond(self, request: Request) -> Reply:
        """Method, authentication, then the route."""
        if request.method not in (b"GET", b"HEAD"):
            return Reply(405, b"405 method not allowed: GET or HEAD only\n", TEXT,
                         {"Allow": "GET, HEAD"})
        path = request.path.decode("utf-8", errors="replace")
        path = path.rstrip("/") or "/"
        if path != "/healthz" and not self._host_allowed(request):
            return Reply(421, MISDIRECTED, TEXT)
        if path != "/healthz" and not self._authorized(request):
            return Reply(401, b"401 unauthorized: send Authorization: Bearer <token>, "
                              b"or add ?token=<token> to the address\n", TEXT,
                         {"WWW-Authenticate": 'Bearer realm="newswatch"'})
        route = self.routes.get(path)
        if route is None:
            return self._page("web/message.html.j2", "Not found", path, status=404,
                              message="There is no page at this address.")
        try:
            return await route(request)
        except SQLAlchemyError as error:
            logger.warning("web: %s: the database did not answer: %s", path[:100],
                           one_line(str(error), 300))
            return self._page("web/message.html.j2", "Database unavailable", path, status=503,
                              message="The database does not answer; the service log says why.")

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
            request.addCookie(SESSION_COOKIE, session, path=b"/", httpOnly=True,
                              sameSite="strict")
            return True
        cookie = request.getCookie(SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, session)

    def _redact(self, body: bytes) -> bytes:
        """Belt and braces: no secret leaves, even inside an error message."""
        for secret in self._secrets():
            for form in {secret, str(escape(secret.decode())).encode()}:
                body = body.replace(form, b"[redacted]")
        return body

    async def _blocking(self, function: Callable[..., Any], *args: Any,
                        timeout: float | None = None) -> Any:
        """Run a blocking call in a worker thread and wait for it."""
        from twisted.internet import reactor

        deferred = (
            deferToThread(function, *args) if self.threads is None
            else deferToThreadPool(reactor, self.threads, function, *args)  # type: ignore[arg-type]
        )
        if timeout is not None:
            deferred.addTimeout(timeout, reactor)  # type: ignore[arg-type]
        return await deferred

    @staticmethod
    def _arg(request: Request, name: str) -> str:
        values = request.args.get(name.encode(), [])
        return values[0].decode("utf-8", errors="replace")[:MAX_QUERY_CHARS] if values else ""

    def _page(self, template: str, title: str, current: str, *, status: int = 200,
              query: str = "", **context: Any) -> Reply:
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
            logger.warning("healthz: the database did not answer: %s",
                           one_line(redact_text(str(error)), 300))
        body: dict[str, Any] = {
            "status": "ok" if scheduler and database else "fail",
            "scheduler": scheduler,
            "database": database,
        }
        if not (scheduler and database):
            body["reason"] = "; ".join(
                reason for ok, reason in ((scheduler, "the scheduler is not running"),
                                          (database, "the database does not answer"))
                if not ok)
        return Reply(200 if scheduler and database else 503,
                     json.dumps(body).encode() + b"\n", JSON)

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
            return (self.store.source_statuses(), self.store.rule_match_counts(),
                    self.store.count_articles(), self.store.unsent_delivery_counts())

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
                "next": _local(runs.get(DIGEST_JOB.format(recipient.email)),
                               recipient.timezone, now),
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
        return self._page("web/status.html.j2", "Status", "/", sources=sources, rules=rules,
                          recipients=recipients, totals=totals, now=self._when(now))

    def _source_view(self, source: Any, row: dict[str, Any], runs: dict[str, datetime | None],
                     now: datetime) -> dict[str, Any]:
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
            if source.enabled else NO_TIME,
            # Redacted again: a row written before userinfo was kept out of errors.
            "last_error": one_line(redact_text(row.get("last_error") or ""), MAX_ERROR_CHARS)
            if failures else "",
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
            sections.setdefault(row["rule"], []).append({
                "title": one_line(row["title"], MAX_TITLE_CHARS) or "(untitled)",
                "link": safe_link(row["url"]),
                "url": one_line(row["url"], MAX_URL_CHARS),
                "source": one_line(row["source"], MAX_TITLE_CHARS),
                "published": self._when(row["published_at"]),
                "matched": self._when(row["matched_at"]),
                "terms": ", ".join(one_line(term, 100) for term in row["terms"] or ()),
            })
        ordered = sorted(sections.items(), key=lambda item: (order.get(item[0], len(order)),
                                                              item[0]))
        return self._page("web/matches.html.j2", "Recent matches", "/matches",
                          sections=[{"rule": one_line(rule, MAX_TITLE_CHARS), "entries": entries}
                                    for rule, entries in ordered],
                          per_rule=per_rule, rule=rule)

    async def digests_page(self, request: Request) -> Reply:
        rows = await self._blocking(self.store.delivery_history, DELIVERIES_SHOWN)
        deliveries = [
            {
                "recipient": one_line(row["recipient"], MAX_TITLE_CHARS),
                "kind": row["kind"],
                "created": self._when(row["created_at"]),
                "sent": self._when(row["sent_at"]),
                "state": "sent" if row["sent_at"] else "waiting to be sent",
                "state_class": "ok" if row["sent_at"] else "pending",
                "attempts": row["attempts"],
                "articles": row["articles"],
                "last_error": one_line(row["last_error"], MAX_ERROR_CHARS),
            }
            for row in rows
        ]
        return self._page("web/digests.html.j2", "Delivery history", "/digests",
                          deliveries=deliveries, shown=DELIVERIES_SHOWN)

    async def preview_page(self, request: Request) -> Reply:
        """The next digest of one recipient, exactly the HTML that would be sent."""
        wanted = self._arg(request, "recipient").strip()
        recipients = [recipient.email for recipient in self.config.all_recipients()]
        if not wanted:
            return self._page("web/preview.html.j2", "Digest preview", "/preview",
                              recipients=recipients, recipient=None)
        email = next((e for e in recipients if e.lower() == wanted.lower()), None)
        if email is None:
            return self._page("web/message.html.j2", "Digest preview", "/preview", status=404,
                              message="No recipient has this address.")
        previews = await self._blocking(preview_digests, self.store, self.config)
        digest = previews.get(email)
        if digest is None:
            return self._page("web/preview.html.j2", "Digest preview", "/preview",
                              recipients=recipients, recipient=email)
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
                results.append({
                    "title": highlight(one_line(row["title"], MAX_TITLE_CHARS) or "(untitled)",
                                       terms),
                    "link": safe_link(row["url"]),
                    "url": one_line(row["url"], MAX_URL_CHARS),
                    "source": one_line(row["source"], MAX_TITLE_CHARS),
                    "published": self._when(row["published_at"] or row["fetched_at"]),
                    "snippet": highlight(snippet, terms),
                })
        return self._page("web/search.html.j2", "Search", "/search", query=query,
                          terms=terms, results=results, failed=failed, limit=SEARCH_LIMIT)


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


class _QuietSite(Site):
    """A Site that logs requests at debug level only (health checks and scrapes
    every few seconds would drown the service log)."""

    noisy = False

    def log(self, request: Request) -> None:
        logger.debug("web: %s %s %d", request.method.decode(errors="replace"),
                     request.uri.decode(errors="replace")[:200], request.code)


def start_web(service: NewswatchService) -> IListeningPort | None:
    """Serve the web UI of ``service`` at ``web.host:web.port`` on the running
    reactor; return the listening port (its ``getHost().port`` is the real port
    when ``web.port`` is 0), or None when the web UI is disabled or cannot listen.

    The address is taken once, here: a reload that changes ``web.host`` or
    ``web.port`` needs a restart. Everything else follows the reloaded configuration.
    """
    from twisted.internet import reactor

    web = service.config.web
    if not web.enabled:
        return None
    threads = ThreadPool(minthreads=0, maxthreads=WEB_THREADS, name="newswatch-web")
    ui = WebUI(
        lambda: service.config,
        service.store,
        service.metrics,
        scheduler_running=lambda: service.scheduler is not None and service.scheduler.running,
        next_runs=lambda: _next_runs(service),
        threads=threads,
    )
    try:
        port = reactor.listenTCP(  # type: ignore[attr-defined]
            web.port, _QuietSite(ui, timeout=60), interface=web.host
        )
    except CannotListenError as error:
        logger.error("web UI: cannot listen on %s port %d: %s", web.host, web.port,
                     error.socketError)
        return None
    threads.start()
    reactor.addSystemEventTrigger("during", "shutdown", threads.stop)  # type: ignore[attr-defined]
    host = f"[{web.host}]" if ":" in web.host else web.host
    logger.info("web UI at http://%s:%d/", host, port.getHost().port)
    return port


def _next_runs(service: NewswatchService) -> dict[str, datetime | None]:
    scheduler = service.scheduler
    if scheduler is None:
        return {}
    return {job.id: job.next_run_time for job in scheduler.get_jobs()}
