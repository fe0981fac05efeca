"""A fixture news site on loopback: feeds, sitemaps and pages from tests/fixtures/site.

Files are served as they are, except for two placeholders: ``{base}`` becomes the
server's own address (the port is chosen at start) and ``{now-3600}`` an ISO time
that many seconds before the server started, so sitemaps carry fresh dates that
stay the same from one poll to the next. Like a real server
it sends ``ETag`` and ``Last-Modified`` and answers conditional requests with 304
(``validators = False`` turns that off).

Named endpoints give the bad cases: ``/status/<code>`` answers with that status;
``script(path, replies)`` makes a path answer a sequence of replies (statuses,
headers, delays, redirects), the last one repeating; ``set_content`` replaces a
file's body. Every request is recorded with its time, headers and our status.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SITE_ROOT = Path(__file__).parent / "fixtures" / "site"
# The pages and feeds `newswatch demo` serves are the site's core: the tests serve
# their own fixtures (more sources, broken feeds, sitemaps, sections) over them.
DEMO_ROOT = Path(__file__).parent.parent / "crawler" / "demo_site"


def site_file(path: str) -> Path:
    """A fixture file of the site (``articles/cup-final.html``), from whichever layer
    has it."""
    for root in (SITE_ROOT, DEMO_ROOT):
        if (root / path).is_file():
            return root / path
    raise FileNotFoundError(f"no fixture file {path} in {SITE_ROOT} or {DEMO_ROOT}")


CONTENT_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
# Every fixture file "changed" at this moment, as far as Last-Modified goes.
LAST_MODIFIED = datetime(2024, 2, 14, 12, 0, tzinfo=UTC)
_NOW_PLACEHOLDER = re.compile(rb"\{now([+-]\d+)?\}")


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes | None = None  # None: the file at the path, as usual
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass(frozen=True)
class SeenRequest:
    path: str
    at: float  # time.monotonic()
    headers: dict[str, str]
    status: int


class NewsSite:
    """Serves a folder of fixture files over HTTP on 127.0.0.1 (or another loopback
    address: ``host``) and a free port."""

    def __init__(
        self, root: Path = SITE_ROOT, *, under: Path | None = DEMO_ROOT, host: str = "127.0.0.1"
    ) -> None:
        self.root = root
        self._roots = [root] if under is None else [root, under]
        self.requests: list[SeenRequest] = []
        self.started = datetime.now(UTC).replace(microsecond=0)
        self.validators = True
        self._scripts: dict[str, list[Reply]] = {}
        self._contents: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        # Requests being answered now, and the most at any one moment.
        self.in_flight = 0
        self.most_in_flight = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                reply = site.respond(self.path, dict(self.headers.items()))
                with site._lock:
                    site.requests.append(
                        SeenRequest(
                            self.path, time.monotonic(), dict(self.headers.items()), reply.status
                        )
                    )
                    site.in_flight += 1
                    site.most_in_flight = max(site.most_in_flight, site.in_flight)
                if reply.delay:
                    time.sleep(reply.delay)
                with site._lock:  # before the answer: then the client may send the next
                    site.in_flight -= 1
                body = reply.body or b""
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to tell it

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are recorded instead, and the test output stays readable

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> NewsSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    # -- what tests change --------------------------------------------------------

    def script(self, path: str, replies: list[Reply]) -> None:
        """Answer ``path`` with these replies in turn; the last one repeats."""
        self._scripts["/" + path.lstrip("/")] = list(replies)

    def set_content(self, path: str, body: bytes, content_type: str | None = None) -> None:
        """Serve ``body`` at ``path`` instead of the file (placeholders still apply)."""
        path = "/" + path.lstrip("/")
        self._contents[path] = (body, content_type or _content_type(path))

    # -- what tests read ----------------------------------------------------------

    def paths_requested(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def requests_for(self, path: str) -> list[SeenRequest]:
        path = "/" + path.lstrip("/")
        return [seen for seen in self.requests if seen.path.split("?", 1)[0] == path]

    # -- serving -----------------------------------------------------------------

    def respond(self, raw_path: str, headers: dict[str, str]) -> Reply:
        path = raw_path.split("?", 1)[0]
        if path in self._scripts:
            replies = self._scripts[path]
            scripted = replies.pop(0) if len(replies) > 1 else replies[0]
            if scripted.body is not None or scripted.status != 200:
                return Reply(
                    scripted.status,
                    scripted.body or b"",
                    {"Content-Type": "text/plain", **scripted.headers},
                    scripted.delay,
                )
            served = self._serve(path, headers)
            served.delay, served.headers = scripted.delay, {**served.headers, **scripted.headers}
            return served
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return Reply(
                code, f"{code} {HTTPStatus(code).phrase}".encode(), {"Content-Type": "text/plain"}
            )
        return self._serve(path, headers)

    def file(self, path: str) -> Path | None:
        """The fixture file served at ``path``: the first layer that has it."""
        for root in self._roots:
            file = (root / path.lstrip("/")).resolve()
            if file.is_relative_to(root.resolve()) and file.is_file():
                return file
        return None

    def _serve(self, path: str, headers: dict[str, str]) -> Reply:
        if path.endswith("/"):
            path += "index.html"
        if path in self._contents:
            raw, content_type = self._contents[path]
        else:
            file = self.file(path)
            if file is None:
                return Reply(
                    404,
                    b"<html><body><h1>Not found</h1></body></html>",
                    {"Content-Type": "text/html"},
                )
            raw, content_type = file.read_bytes(), _content_type(path)
        body = _fill_placeholders(raw, self.base, self.started)
        reply_headers = {"Content-Type": content_type}
        if not self.validators:
            return Reply(200, body, reply_headers)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        reply_headers |= {"ETag": etag, "Last-Modified": format_datetime(LAST_MODIFIED, True)}
        if _not_modified(headers, etag):
            return Reply(304, b"", reply_headers)
        return Reply(200, body, reply_headers)


def _content_type(path: str) -> str:
    suffix = Path(path).suffix
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _fill_placeholders(body: bytes, base: str, now: datetime) -> bytes:
    body = body.replace(b"{base}", base.encode())

    def moment(found: re.Match[bytes]) -> bytes:
        return (now + timedelta(seconds=int(found.group(1) or 0))).isoformat().encode()

    return _NOW_PLACEHOLDER.sub(moment, body)


def _not_modified(headers: dict[str, str], etag: str) -> bool:
    lowered = {name.lower(): value for name, value in headers.items()}
    if "if-none-match" in lowered:
        return etag in [tag.strip() for tag in lowered["if-none-match"].split(",")]
    if "if-modified-since" in lowered:
        try:
            return parsedate_to_datetime(lowered["if-modified-since"]) >= LAST_MODIFIED
        except (TypeError, ValueError):
            return False
    return False
