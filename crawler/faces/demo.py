"""``newswatch demo``: the whole service against a bundled news site, no internet needed.

A small local site (two feeds, five real-looking article pages) is served on
loopback; a configuration in the demo folder polls it every few seconds, matches
a few rules and writes a digest into the demo's outbox every 20 seconds. The
service is the real one, so what a new user sees here is what they will run.

Every run starts afresh (``claim_demo_folder``): with the articles of an earlier run
still in its database nothing would be new, and no digest would ever come. The
site keeps one port from run to run (``DEMO_SITE_PORT``) so that its links stay
alive, and the status page takes another port when 8787 is someone else's.
"""

from __future__ import annotations

import fcntl
import mimetypes
import os
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEMO_PACKAGE = "crawler"
DEMO_FOLDER = "demo_site"
# The status page's neighbour; taken only when free, else any free port.
DEMO_SITE_PORT = 8788
DEMO_DATABASE = "newswatch-demo.db"
DEMO_OUTBOX = "outbox"
# The first line of the configuration the demo writes: it marks a folder as the demo's own.
DEMO_CONFIG_MARK = "# Written by `newswatch demo`"
# SQLite's side files of an interrupted run go with the database.
SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


class DemoFolderError(Exception):
    """The demo folder cannot be used: not the demo's own, or another demo runs in it."""


@dataclass(frozen=True)
class DemoFolder:
    """A demo folder claimed for this run: ``lock`` is held until the process ends."""

    path: Path
    lock: int
    cleared: bool  # an earlier run's database or digests were removed


def claim_demo_folder(folder: Path) -> DemoFolder:
    """Make ``folder`` ready for a fresh run: create it, lock it against a second
    demo, and remove an earlier run's database and digests.

    Only the demo's own files go: its database (with SQLite's side files) and the
    ``.eml`` files in its outbox; anything else in the folder stays. A folder whose
    ``config.yaml`` the demo did not write, or that holds digests without one, is
    refused (DemoFolderError) and left untouched.
    """
    config = folder / "config.yaml"
    outbox = folder / DEMO_OUTBOX
    if config.exists():
        if not _written_by_demo(config):
            raise DemoFolderError(
                f"{folder} is not a demo folder: its config.yaml was not written by "
                "`newswatch demo`; choose another --folder"
            )
    elif outbox.is_dir() and any(outbox.glob("*.eml")):
        raise DemoFolderError(
            f"{folder} is not a demo folder: it holds digests in {DEMO_OUTBOX}/ but no "
            "configuration written by `newswatch demo`; choose another --folder"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = os.open(folder, os.O_RDONLY)
    except OSError as error:
        raise DemoFolderError(f"cannot use {folder}: {error.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        # Clearing its database under a running demo would break that demo.
        raise DemoFolderError(
            f"another `newswatch demo` is running in {folder}; stop it or choose another --folder"
        ) from None
    try:
        cleared = _clear_earlier_run(folder)
    except OSError as error:
        os.close(lock)
        raise DemoFolderError(
            f"cannot clear the previous demo run in {folder}: {error.strerror}: {error.filename}"
        ) from None
    return DemoFolder(folder, lock, cleared)


def _clear_earlier_run(folder: Path) -> bool:
    """Remove the demo's database and digests; whether there were any."""
    cleared = False
    outbox = folder / DEMO_OUTBOX
    for suffix in SQLITE_SIDE_FILES:
        database = folder / f"{DEMO_DATABASE}{suffix}"
        if database.is_file():
            database.unlink()
            cleared = True
    for digest in outbox.glob("*.eml") if outbox.is_dir() else ():
        if digest.is_file():
            digest.unlink()
            cleared = True
    return cleared


def _written_by_demo(config: Path) -> bool:
    try:
        with config.open(encoding="utf-8") as file:
            return file.readline().startswith(DEMO_CONFIG_MARK)
    except (OSError, UnicodeDecodeError):
        return False


def web_port_for_demo(host: str, wanted: int) -> int:
    """``wanted`` when nothing listens there on ``host``, else 0 (the web UI then
    takes any free port): another newswatch on 8787 keeps its port, and the demo
    gets a status page of its own."""
    if wanted == 0:
        return 0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the web server binds (Twisted sets it): a port left in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, wanted))
        except OSError:
            return 0
    return wanted


class DemoSite:
    """Serves the bundled demo site on 127.0.0.1: on ``port`` when it is free (the
    same address run after run, so links in digests keep working), else on any free port."""

    def __init__(self, port: int = DEMO_SITE_PORT) -> None:
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

        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError:
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
        "database": f"sqlite:///{DEMO_DATABASE}",
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
        "delivery": {"outbox": DEMO_OUTBOX},
        "web": {"port": web_port},
    }
    path = folder / "config.yaml"
    path.write_text(
        f"{DEMO_CONFIG_MARK}, afresh on each run; edit it while the demo runs and "
        "watch it reload.\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return path


def demo_banner(
    site: DemoSite, config: Path, outbox: Path, web_url: str | None, *, cleared: bool
) -> str:
    """What the demo prints once its site and status page listen: every address in
    it is one this run really got."""
    status = web_url or "off (see the log for why)"
    fresh = "  fresh start:      the previous run's database and digests were cleared\n"
    return (
        "newswatch demo\n"
        f"  demo news site:   {site.base}/\n"
        f"  configuration:    {config.resolve()}  (edit it: the service reloads it)\n"
        f"  digests (.eml):   {outbox}  (the first within a minute)\n"
        f"  status page:      {status}\n"
        f"{fresh if cleared else ''}"
        "Stop with Ctrl-C."
    )
