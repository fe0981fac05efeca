"""The web UI's one resource, ``WebUI``: the route table, the ``Host`` check, the
token, redaction of secrets, and what every page module shares (the worker threads,
query arguments, templates, times in the digest's zone).

The page modules (``pages``; ``feeds`` and ``api`` as they come) each give a list of
``Route``s: a path pattern (its named groups become the handler's keyword
arguments), the methods it answers and who may call it. A handler gets a request
and returns a ``Reply``; it never writes to the request itself, so that a move to
another server changes only this module.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from markupsafe import escape
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from alerts.render import get_environment
from crawler.faces.web.common import (
    COMMON_HEADERS,
    HTML,
    MAX_QUERY_CHARS,
    MIN_REDACTED_CHARS,
    MISDIRECTED,
    NO_TIME,
    PAGE_CSP,
    SESSION_COOKIE,
    TEXT,
    Reply,
    is_allowed_host,
    one_line,
)

if TYPE_CHECKING:
    from twisted.python.failure import Failure
    from twisted.web.server import Request

    from crawler.domain.config import Config
    from crawler.orchestration.metrics import Metrics
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Reply]]
READING = frozenset({b"GET", b"HEAD"})


@dataclass(frozen=True)
class Route:
    """One path of the web UI.

    ``pattern`` is matched against the whole path (trailing ``/`` stripped); its named
    groups are passed to ``handler`` as keyword arguments. ``access``: ``token`` — the
    ``Host`` check and the web token (every page); ``link`` — the ``Host`` check only,
    for URLs that carry their own credential (a private feed's token); ``public`` —
    pages for readers from their email (signed links): the ``Host`` must be
    ``web.public_url``'s, the host those links name; ``open`` — no check
    (``/healthz`` and ``/readyz``, which load balancers call by address).
    """

    pattern: str
    handler: Handler
    methods: frozenset[bytes] = READING
    access: Literal["token", "link", "public", "open"] = "token"

    def match(self, path: str) -> re.Match[str] | None:
        return re.fullmatch(self.pattern, path)


class WebUI(Resource):
    """The web UI; one leaf resource that dispatches on the path to its routes.

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
        self.routes: list[Route] = []
        # The UI starts with the service: time before it is no source's silence.
        self.started = datetime.now(UTC)

    def add_routes(self, routes: Iterable[Route]) -> None:
        """Serve ``routes`` too (the first route whose pattern matches a path wins)."""
        self.routes.extend(routes)

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
        secrets += [
            value
            for access in (
                *(source.site_access() for source in self.config.sources),
                *self.config.domains.values(),
            )
            for value in access.secret_values()
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
            if reply.status != 304:  # a 304 has no body; its length would be the 200's
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
        """Route, method, then the route's access check, then its handler."""
        path = request.path.decode("utf-8", errors="replace")
        path = path.rstrip("/") or "/"
        route, params = self._route(path)
        if route is None or request.method not in route.methods:
            allowed = route.methods if route is not None else READING
            if request.method not in allowed:
                names = ", ".join(sorted(method.decode() for method in allowed))
                return Reply(
                    405, f"405 method not allowed: {names} only\n".encode(), TEXT, {"Allow": names}
                )
        if (route is None or route.access != "open") and not self._host_allowed(request):
            return Reply(421, MISDIRECTED, TEXT)
        if route is not None and route.access == "public" and not self._public_host(request):
            return Reply(421, MISDIRECTED, TEXT)
        if getattr(request, "body_too_large", False):
            return Reply(413, b"413 request body too large\n", TEXT)
        if (route is None or route.access == "token") and not self._authorized(request):
            return Reply(
                401,
                b"401 unauthorized: send Authorization: Bearer <token>, "
                b"or add ?token=<token> to the address\n",
                TEXT,
                {"WWW-Authenticate": 'Bearer realm="newswatch"'},
            )
        if route is None:
            return self.page(
                "web/message.html.j2",
                "Not found",
                path,
                status=404,
                message="There is no page at this address.",
            )
        try:
            return await route.handler(request, **params)
        except SQLAlchemyError as error:
            logger.warning(
                "web: %s: the database did not answer: %s", path[:100], one_line(str(error), 300)
            )
            return self.page(
                "web/message.html.j2",
                "Database unavailable",
                path,
                status=503,
                message="The database does not answer; the service log says why.",
            )

    def _route(self, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            if (found := route.match(path)) is not None:
                return route, found.groupdict()
        return None, {}

    def _host_allowed(self, request: Request) -> bool:
        headers = request.requestHeaders.getRawHeaders(b"host", [])
        if not headers:
            return True  # HTTP/1.0 without a Host: no name a rebinding page could set
        return len(headers) == 1 and is_allowed_host(headers[0], self._host_names())

    def _public_host(self, request: Request) -> bool:
        """Whether the ``Host`` header names ``web.public_url``'s host (any port: a
        proxy in front may listen on another)."""
        public = self.config.web.public_url
        headers = request.requestHeaders.getRawHeaders(b"host", [])
        if public is None or len(headers) != 1:
            return False
        wanted = (urlsplit(str(public)).hostname or "").lower().removesuffix(".")
        try:
            offered = urlsplit("//" + headers[0].decode("latin-1").strip()).hostname or ""
        except ValueError:  # e.g. an unclosed "[" of an IPv6 address
            return False
        return bool(wanted) and offered.lower().removesuffix(".") == wanted

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

    async def blocking(
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
    def arg(request: Request, name: str) -> str:
        values = request.args.get(name.encode(), [])
        return values[0].decode("utf-8", errors="replace")[:MAX_QUERY_CHARS] if values else ""

    def page(
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

    def when(self, moment: datetime | None, now: datetime | None = None) -> str:
        """E.g. "2024-02-14 11:31 IST (5 min ago)" in the digest's time zone."""
        if moment is None:
            return NO_TIME
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(self.zone)
        shown = f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
        return f"{shown} ({relative(moment, now)})" if now is not None else shown


def relative(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    size = abs(seconds)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= span:
            amount = f"{int(size // span)} {unit}"
            break
    else:
        return "just now" if seconds <= 0 else "in a moment"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"
