"""``newswatch demo``: the whole service against a bundled news site, no internet needed.

A small local site (two feeds, five real-looking article pages) is served on
loopback; a configuration in the demo folder polls it every few seconds, matches
a few rules and writes a digest into the demo's outbox every 20 seconds. The
service is the real one, so what a new user sees here is what they will run.
"""

from __future__ import annotations

import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEMO_PACKAGE = "crawler"
DEMO_FOLDER = "demo_site"


class DemoSite:
    """Serves the bundled demo site on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        root = resources.files(DEMO_PACKAGE) / DEMO_FOLDER
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].lstrip("/") or "index.html"
                resource = root.joinpath(*[p for p in path.split("/") if p not in ("", "..")])
                if not resource.is_file():
                    self.send_error(404)
                    return
                body = resource.read_bytes().replace(b"{base}", site.base.encode())
                kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the service logs what matters

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_demo_config(folder: Path, site: DemoSite, web_port: int = 0) -> Path:
    """A configuration for the demo: fast polls, a digest every 20 seconds, the outbox."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "database": "sqlite:///newswatch-demo.db",
        "user_agent_contact": "https://example.org/newswatch-demo",
        "workers": 1,
        "sources": [
            {"name": "Fixture Daily World", "feed": f"{site.base}/world/rss.xml", "every": "10s"},
            {"name": "Fixture Daily Tech", "feed": f"{site.base}/tech/atom.xml", "every": "10s"},
        ],
        "rules": [
            {"name": "Syria", "query": '(Palmyra OR "Al-Qaryatain" OR ISIS) AND NOT football'},
            {"name": "Chips", "keywords": ["memory chip", "semiconductor"]},
            {"name": "Heritage", "keywords": ["museum", "theatre", "restoration"]},
        ],
        "digest": {
            "schedule": "*/20 * * * * *",  # every 20 seconds, for the demo
            "timezone": "UTC",
            "recipients": ["you@example.org"],
            "subject": "newswatch demo: {count} new articles",
        },
        "delivery": {"outbox": "outbox"},
        "web": {"port": web_port},
    }
    path = folder / "config.yaml"
    path.write_text(
        "# Written by `newswatch demo`; edit it while the demo runs and watch it reload.\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return path
