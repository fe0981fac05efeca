"""A generated news site on loopback, for bench/pipeline.py.

``sources`` RSS feeds of ``articles`` entries each. Every article page is one of
the 92 real news pages of tests/fixtures/extraction, varied so that no two pages
(and no two article bodies) are the same: the headline gets an edition tag, the
canonical URL, ``og:url`` and the JSON-LD URLs become the page's own URL, and a
short run of words taken from another corpus article is put before each of the
page's text runs. Sizes stay those of the real pages (20 KB to 1.4 MB, median
107 KB).

Source ``i`` is served on its own loopback address, 127.0.0.(i+1) (the whole of
127/8 is loopback on Linux), all on one port chosen at start, so that each source
is its own host to a crawler's per-domain politeness, as real outlets are
(``--hosts`` puts several sources on one address).

Like a real server it sends ``ETag``/``Last-Modified``, answers ``If-None-Match`` /
``If-Modified-Since`` with 304, gzips when the client accepts it (pages are
compressed once, at start), and serves ``/robots.txt`` (everything allowed).
Every response is counted by kind; ``GET /__stats`` returns the counts as JSON and
``GET /__reset`` zeroes them (neither is counted).

Run alone to look at it (``python bench/newssite_gen.py --sources 3``): it prints
one JSON line with the port and the feed URLs when it is ready, and serves until
its standard input closes or it is terminated.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import html
import json
import random
import re
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

import lxml.html

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "extraction"
GZIP_LEVEL = 6  # what news sites commonly configure (nginx gzip_comp_level 5-6)
MIN_RUN_CHARS = 25  # text runs at least this long get a varied prefix
SECTIONS = ("world", "politics", "business", "technology", "science", "culture")
LAST_MODIFIED = datetime(2024, 2, 14, 12, 0, tzinfo=UTC)

# Placeholders in a page template: plain ASCII, which no serializer escapes, and
# absent from the corpus.
_RUN = "@@NSG-RUN@@"  # a varied prefix before a text run
_URL = "@@NSG-URL@@"  # the page's own URL
_TAG = "@@NSG-TAG@@"  # the edition tag after the headline
_PLACEHOLDER = re.compile(f"({_RUN}|{_URL}|{_TAG})")
_SKIP = {"script", "style", "noscript", "template", "head", "title", "svg", "iframe"}
_JSON_HEADLINE = re.compile(r'("headline"\s*:\s*"(?:[^"\\]|\\.)*)(")')
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


@dataclass(frozen=True)
class CorpusPage:
    page_id: str
    url: str
    html: bytes
    body: str


def load_corpus(folder: Path = CORPUS) -> list[CorpusPage]:
    """The real pages, with their URL and true body from ground-truth.json."""
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        CorpusPage(
            page_id,
            page["url"],
            gzip.decompress((folder / f"{page_id}.html.gz").read_bytes()),
            page["articleBody"],
        )
        for page_id, page in sorted(truth.items())
    ]


class PageTemplate:
    """A corpus page with placeholders where each variant differs."""

    def __init__(self, page: CorpusPage) -> None:
        document = lxml.html.document_fromstring(
            page.html, parser=lxml.html.HTMLParser(encoding="utf-8")
        )
        self.title = _headline(document)
        self.runs = _mark_text_runs(document)
        _mark_headline(document)
        for element in document.xpath(
            "//link[@rel='canonical'] | //meta[@property='og:url' or @name='twitter:url']"
        ):
            element.set("href" if element.tag == "link" else "content", _URL)
        text = lxml.html.tostring(document, encoding="unicode", doctype="<!DOCTYPE html>")
        for original in _url_forms(page.url):
            text = text.replace(original, _URL)
        pieces = _PLACEHOLDER.split(text)
        self.parts = pieces[0::2]
        self.kinds = pieces[1::2]
        self.slug = _slug(page.url)

    def render(self, url: str, tag: str, prefixes: list[str]) -> bytes:
        """The page at ``url``, its headline followed by ``tag`` (plain ASCII), each
        text run preceded by the next prefix (plain text)."""
        out = [self.parts[0]]
        run = 0
        for kind, part in zip(self.kinds, self.parts[1:], strict=True):
            if kind == _URL:
                out.append(url)
            elif kind == _TAG:
                out.append(tag)
            else:
                out.append(html.escape(prefixes[run % len(prefixes)], quote=False))
                run += 1
            out.append(part)
        return "".join(out).encode("utf-8")


def _mark_text_runs(document: Any) -> int:
    """Put a placeholder before every text run of the body (element text or tail)."""
    body = document.find("body")
    if body is None:
        return 0
    runs = 0
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        skipped = any(a.tag in _SKIP for a in (element, *element.iterancestors()))
        if not skipped and element.text and len(element.text.strip()) >= MIN_RUN_CHARS:
            element.text = _RUN + element.text.lstrip()
            runs += 1
        parent = element.getparent()
        in_skipped = parent is None or any(
            a.tag in _SKIP for a in (parent, *parent.iterancestors())
        )
        if not in_skipped and element.tail and len(element.tail.strip()) >= MIN_RUN_CHARS:
            element.tail = _RUN + element.tail.lstrip()
            runs += 1
    return runs


def _headline(document: Any) -> str:
    for xpath in ("//meta[@property='og:title']/@content", "//h1", "//title"):
        for found in document.xpath(xpath):
            text = " ".join((found if isinstance(found, str) else found.text_content()).split())
            if text:
                return text
    return "Untitled"


def _mark_headline(document: Any) -> None:
    for element in document.xpath("//title | //h1"):
        if len(element):
            element[-1].tail = (element[-1].tail or "").rstrip() + _TAG
        elif element.text:
            element.text = element.text.rstrip() + _TAG
    for element in document.xpath(
        "//meta[@property='og:title' or @name='twitter:title'][@content]"
    ):
        element.set("content", element.get("content", "").rstrip() + _TAG)
    for script in document.xpath("//script[@type='application/ld+json']"):
        if script.text:
            script.text = _JSON_HEADLINE.sub(lambda m: m.group(1) + _TAG + m.group(2), script.text)


def _url_forms(url: str) -> list[str]:
    forms = {url, url.rstrip("/"), url.replace("/", "\\/")}
    return sorted((f for f in forms if len(f) > 10), key=len, reverse=True)


def _slug(url: str) -> str:
    last = [part for part in urlsplit(url).path.split("/") if part][-1:] or ["story"]
    slug = re.sub(r"[^a-z0-9]+", "-", last[0].lower().rsplit(".", 1)[0]).strip("-")
    return slug[:60].strip("-") or "story"


@dataclass(frozen=True)
class Resource:
    body: bytes  # gzip-compressed when ``gzipped``
    content_type: str
    etag: str
    gzipped: bool
    kind: str


class GeneratedSite:
    """Every page and feed of the site, rendered and compressed once."""

    def __init__(
        self,
        sources: int,
        articles: int,
        *,
        hosts: int | None = None,
        seed: int = 1,
        started: datetime | None = None,
    ) -> None:
        self.sources = sources
        self.articles = articles
        self.hosts = min(hosts or sources, sources)
        self.seed = seed
        self.started = (started or datetime.now(UTC)).replace(microsecond=0)
        self.port = 0
        self.resources: dict[str, Resource] = {}
        self.raw_bytes = 0

    def host(self, source: int) -> str:
        index = source % self.hosts
        return f"127.0.{index // 254}.{index % 254 + 1}"

    def base(self, source: int) -> str:
        return f"http://{self.host(source)}:{self.port}"

    def feed_path(self, source: int) -> str:
        return f"/feeds/{source:03d}.xml"

    def feed_urls(self) -> list[str]:
        return [self.base(s) + self.feed_path(s) for s in range(self.sources)]

    def build(self, port: int) -> None:
        """Render every page and feed for a server on ``port``."""
        self.port = port
        corpus = load_corpus()
        templates = [PageTemplate(page) for page in corpus]
        words = [_WORD.findall(page.body) for page in corpus]
        rng = random.Random(self.seed)
        order = list(range(len(corpus)))
        self.resources["/robots.txt"] = _resource(
            b"User-agent: *\nAllow: /\n", "text/plain; charset=utf-8", "robots"
        )
        for source in range(self.sources):
            section = SECTIONS[source % len(SECTIONS)]
            items = []
            for number in range(self.articles):
                if number % len(order) == 0:
                    rng.shuffle(order)
                page = order[number % len(order)]
                template = templates[page]
                path = f"/{section}/{source:03d}/{number:03d}-{template.slug}.html"
                url = self.base(source) + path
                tag = f" (edition {source + 1}, no. {number + 1})"
                prefixes = [_phrase(rng, words[page]) for _ in range(max(template.runs, 1))]
                prefixes[0] = f"Edition {source + 1}, no. {number + 1}. {prefixes[0]}"
                page_html = template.render(url, tag, prefixes)
                self.raw_bytes += len(page_html)
                self.resources[path] = _resource(page_html, "text/html; charset=utf-8", "article")
                published = self.started - timedelta(minutes=10 * number + source)
                summary = " ".join(corpus[page].body.split()[:40])
                items.append(_rss_item(url, template.title + tag, published, summary))
            feed = _rss(self.base(source), f"Desk {source + 1}", items)
            self.resources[self.feed_path(source)] = _resource(
                feed, "application/rss+xml; charset=utf-8", "feed"
            )


def _phrase(rng: random.Random, words: list[str]) -> str:
    """A few consecutive words of the article itself, as a lead-in: "Officials said: "."""
    if len(words) < 8:
        return "Meanwhile: "
    length = rng.randint(3, 6)
    start = rng.randrange(len(words) - length)
    run = " ".join(words[start : start + length])
    return run[:1].upper() + run[1:] + ": "


def _resource(body: bytes, content_type: str, kind: str) -> Resource:
    etag = '"' + hashlib.sha1(body, usedforsecurity=False).hexdigest()[:20] + '"'
    if kind == "robots":
        return Resource(body, content_type, etag, False, kind)
    return Resource(gzip.compress(body, GZIP_LEVEL, mtime=0), content_type, etag, True, kind)


def _rss_item(url: str, title: str, published: datetime, summary: str) -> str:
    return (
        f"<item><title>{xml_escape(title)}</title><link>{xml_escape(url)}</link>"
        f'<guid isPermaLink="true">{xml_escape(url)}</guid>'
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f"<description>{xml_escape(summary)}</description></item>"
    )


def _rss(base: str, title: str, items: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{xml_escape(title)}</title><link>{base}/</link>"
        f"<description>Generated desk for newswatch benchmarks</description>"
        + "".join(items)
        + "</channel></rss>\n"
    ).encode("utf-8")


# --- the server -------------------------------------------------------------------------


class SiteStats:
    """Requests and bytes sent, by kind of resource; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.bytes_sent = 0
            self.since = time.monotonic()

    def count(self, kind: str, status: int, sent: int) -> None:
        with self._lock:
            self.requests[kind] += 1
            self.statuses[status] += 1
            self.bytes_sent += sent

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self.requests.values()),
                "by_kind": dict(self.requests),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "bytes_sent": self.bytes_sent,
                "seconds": time.monotonic() - self.since,
            }


def make_handler(site: GeneratedSite, stats: SiteStats) -> type[BaseHTTPRequestHandler]:
    last_modified = format_datetime(LAST_MODIFIED, usegmt=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._reply(head=False)

        def do_HEAD(self) -> None:
            self._reply(head=True)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, *, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/__stats", "/__reset"):
                if path == "/__reset":
                    stats.reset()
                self._send(
                    200,
                    json.dumps(stats.snapshot()).encode(),
                    {"Content-Type": "application/json"},
                    head=head,
                )
                return
            resource = site.resources.get(path)
            if resource is None:
                sent = self._send(404, b"not found\n", {"Content-Type": "text/plain"}, head=head)
                stats.count("missing", 404, sent)
                return
            headers = {
                "ETag": resource.etag,
                "Last-Modified": last_modified,
                "Cache-Control": "max-age=60",
                "Vary": "Accept-Encoding",
            }
            if _not_modified(
                self.headers.get("If-None-Match"),
                self.headers.get("If-Modified-Since"),
                resource.etag,
            ):
                stats.count(resource.kind, 304, self._send(304, b"", headers, head=True))
                return
            body = resource.body
            headers["Content-Type"] = resource.content_type
            if resource.gzipped:
                if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                    headers["Content-Encoding"] = "gzip"
                else:
                    body = gzip.decompress(body)
            stats.count(resource.kind, 200, self._send(200, body, headers, head=head))

        def _send(self, status: int, body: bytes, headers: dict[str, str], *, head: bool) -> int:
            lines = [
                f"HTTP/1.1 {status} {self.responses[status][0]}",
                f"Date: {formatdate(usegmt=True)}",
                "Server: newssite-gen",
                *(f"{k}: {v}" for k, v in headers.items()),
            ]
            if status != 304:
                lines.append(f"Content-Length: {len(body)}")
            if self.close_connection:
                lines.append("Connection: close")
            data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            if not head and status != 304:
                data += body
            self.wfile.write(data)
            return len(data)

    return Handler


def _not_modified(if_none_match: str | None, if_modified_since: str | None, etag: str) -> bool:
    if if_none_match:
        return etag in {tag.strip() for tag in if_none_match.split(",")} or (
            if_none_match.strip() == "*"
        )
    if if_modified_since:
        try:
            return parsedate_to_datetime(if_modified_since) >= LAST_MODIFIED
        except (TypeError, ValueError):
            return False
    return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # many crawlers connect at once; the default 5 drops SYNs


def bind_servers(
    site: GeneratedSite, handler: type[BaseHTTPRequestHandler], attempts: int = 20
) -> list[_Server]:
    """One server per loopback address, all on one free port."""
    addresses = sorted(
        {site.host(s) for s in range(site.sources)},
        key=lambda a: tuple(int(p) for p in a.split(".")),
    )
    for _attempt in range(attempts):
        servers: list[_Server] = []
        try:
            first = _Server((addresses[0], 0), handler)
            servers.append(first)
            port = first.server_address[1]
            servers.extend(_Server((address, port), handler) for address in addresses[1:])
            return servers
        except OSError:
            for server in servers:
                server.server_close()
    raise OSError(f"no port free on all of {len(addresses)} loopback addresses")


def serve(sources: int, articles: int, hosts: int | None, seed: int) -> None:
    """Build the site, print one JSON line when ready, serve until stdin closes."""
    site = GeneratedSite(sources, articles, hosts=hosts, seed=seed)
    stats = SiteStats()
    servers = bind_servers(site, make_handler(site, stats))
    started = time.monotonic()
    site.build(servers[0].server_address[1])
    for server in servers:
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True
        ).start()
    pages = sum(r.kind == "article" for r in site.resources.values())
    print(
        json.dumps(
            {
                "port": site.port,
                "hosts": site.hosts,
                "feeds": site.feed_urls(),
                "pages": pages,
                "page_bytes": site.raw_bytes,
                "gzip_bytes": sum(
                    r.body.__len__() for r in site.resources.values() if r.kind == "article"
                ),
                "build_seconds": round(time.monotonic() - started, 2),
            }
        ),
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # returns when the parent closes the pipe (or dies)
    for server in servers:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument(
        "--hosts",
        type=int,
        default=None,
        help="loopback addresses to spread the sources over (default: one each)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    serve(args.sources, args.articles, args.hosts, args.seed)


if __name__ == "__main__":
    main()
