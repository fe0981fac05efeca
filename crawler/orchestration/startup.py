"""Opening the database at start: a database that does not answer is one clear line.

A one-shot command (``status``, ``crawl``, ``digest``, …) stops with that line. The
long-lived ones (``run``, ``worker``, ``run --role scheduler``, ``demo``) wait for it:
they try again after 1, 2, 4, … seconds (at most a minute apart), say so in one log
line each time, and meanwhile answer ``/healthz`` with 503 "waiting for the
database", so an orchestrator sees why the service is not ready. A stop signal
while waiting ends the wait cleanly.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from crawler.domain.config import WebConfig
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


class DatabaseUnavailable(Exception):
    """The database does not answer; the message is one line, without a password."""


def is_database_unreachable(error: BaseException) -> bool:
    """True for errors that say the database cannot be reached or refused us (down,
    restarting, wrong host, unknown role or database), not for bugs in a query."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(error, OperationalError | InterfaceError):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.OperationalError)


def describe_database_error(url: str, error: BaseException) -> str:
    """'the database <url, password hidden> does not answer: <first line of why>'."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = "(the configured database)"
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    why = reason[0] if reason else type(error).__name__
    return f"the database {shown} does not answer: {why[:500]}"


def open_store_or_fail(url: str, opener: Callable[[], Store]) -> Store:
    """``opener()``, or DatabaseUnavailable with one line when the database is down."""
    try:
        return opener()
    except Exception as error:
        if is_database_unreachable(error):
            raise DatabaseUnavailable(describe_database_error(url, error)) from None
        raise


def wait_for_store(
    url: str,
    opener: Callable[[], Store],
    *,
    web: WebConfig | None,
    stop_requested: Callable[[], bool],
    first_delay: float = FIRST_RETRY_SECONDS,
) -> Store | None:
    """``opener()`` once the database answers, trying again with backoff; None when
    a stop was asked for while waiting. ``web`` (when enabled) gets a placeholder
    that answers 503 until then."""
    delay = first_delay
    placeholder: _WaitingWebServer | None = None
    try:
        while True:
            try:
                return opener()
            except Exception as error:
                if not is_database_unreachable(error):
                    raise
                problem = describe_database_error(url, error)
            if placeholder is None and web is not None and web.enabled:
                placeholder = _WaitingWebServer.start(web.host, web.port)
            logger.error("%s; trying again in %ds", problem, delay)
            if _sleep_unless_stopped(delay, stop_requested):
                logger.info("stopped while waiting for the database")
                return None
            delay = min(delay * 2, MAX_RETRY_SECONDS)
    finally:
        if placeholder is not None:
            placeholder.stop()


def _sleep_unless_stopped(seconds: float, stop_requested: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stop_requested():
            return True
        time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
    return stop_requested()


class _WaitingWebServer(ThreadingHTTPServer):
    """Answers every request with 503 while the service waits for its database."""

    allow_reuse_address = True
    daemon_threads = True
    # Not the database's address or the error: /healthz needs no token.
    reason = "waiting for the database (see the service log)"

    @classmethod
    def start(cls, host: str, port: int) -> _WaitingWebServer | None:
        try:
            server = cls((host, port), _WaitingHandler)
        except OSError as error:
            logger.warning(
                "web UI: cannot listen on %s port %d while waiting for the database: %s",
                host,
                port,
                error,
            )
            return None
        threading.Thread(
            target=server.serve_forever, name="newswatch-waiting-web", daemon=True
        ).start()
        return server

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _WaitingHandler(BaseHTTPRequestHandler):
    server: _WaitingWebServer
    server_version = "newswatch"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") == "/healthz":
            body = (
                json.dumps(
                    {
                        "status": "fail",
                        "scheduler": False,
                        "database": False,
                        "reason": self.server.reason,
                    }
                ).encode()
                + b"\n"
            )
            content_type = "application/json"
        else:
            body = (
                f"503 newswatch is starting: {self.server.reason}; it tries again on its own\n"
            ).encode()
            content_type = "text/plain; charset=utf-8"
        self.send_response(503)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Retry-After", "5")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("web (waiting for the database): " + format, *args)
