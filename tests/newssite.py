"""A fixture news site on loopback: feeds and article pages from tests/fixtures/site.

Files are served as they are, except that ``{base}`` in feeds and pages becomes
the server's own address (the port is chosen at start). Named endpoints give the
bad cases: ``/status/<code>`` answers with that status, ``/broken/truncated.xml``
is a feed cut off mid-item. Every request is recorded so tests can count them.
"""

from __future__ import annotations

import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SITE_ROOT = Path(__file__).parent / "fixtures" / "site"
TEXT_TYPES = {".xml": "application/rss+xml; charset=utf-8", ".atom": "application/atom+xml"}


class NewsSite:
    """Serves a folder of fixture files over HTTP on 127.0.0.1 and a free port."""

    def __init__(self, root: Path = SITE_ROOT) -> None:
        self.root = root
        self.requests: list[tuple[str, str]] = []  # (path, user agent)
        self.overrides: dict[str, tuple[int, str, bytes]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append((self.path, self.headers.get("User-Agent", "")))
                status, content_type, body = site.respond(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output stays readable; requests are recorded instead

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> NewsSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def paths_requested(self) -> list[str]:
        return [path for path, _agent in self.requests]

    def respond(self, raw_path: str) -> tuple[int, str, bytes]:
        path = raw_path.split("?", 1)[0]
        if path in self.overrides:
            return self.overrides[path]
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return code, "text/plain", f"{code} {HTTPStatus(code).phrase}".encode()
        file = (self.root / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.root.resolve()) or not file.is_file():
            return 404, "text/html", b"<html><body><h1>Not found</h1></body></html>"
        content_type = TEXT_TYPES.get(file.suffix) or (
            mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        if content_type.startswith("text/html"):
            content_type = "text/html; charset=utf-8"
        body = file.read_bytes().replace(b"{base}", self.base.encode())
        return 200, content_type, body
