"""Knowing when we are blind: a bot wall's challenge page is recognised and never
stored, and every failed fetch says which kind of failure it was."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import run_newswatch, site_config, write_config
from newssite import Reply, site_file
from OpenSSL.SSL import Error as OpenSSLError
from scrapy import Request
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import HtmlResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionLost, DNSLookupError, TCPTimedOutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseNeverReceived

from crawler.domain.challenges import (
    STUB_MAX_TEXT,
    Challenge,
    ChallengeKind,
    detect_challenge,
)
from crawler.domain.config import load_config
from crawler.domain.failures import FailureClass
from crawler.storage.store import Store
from spiders.base import describe_failure
from spiders.failures import BotChallengeError, classify_failure

if TYPE_CHECKING:
    from newssite import NewsSite

FIXTURES = Path(__file__).parent / "fixtures"
CHALLENGES = FIXTURES / "challenges"
DEMO_SITE = Path(__file__).parent.parent / "crawler" / "demo_site"


def _page(name: str) -> bytes:
    return (CHALLENGES / name).read_bytes()


# -- recognising the walls ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "vendor", "kind"),
    [
        ("cloudflare-managed.html", "Cloudflare", ChallengeKind.CHALLENGE),
        ("cloudflare-connection-secure.html", "Cloudflare", ChallengeKind.CHALLENGE),
        ("cloudflare-attention-required.html", "Cloudflare", ChallengeKind.BLOCK),
        ("datadome-captcha.html", "DataDome", ChallengeKind.CAPTCHA),
        ("perimeterx-press-hold.html", "PerimeterX", ChallengeKind.CAPTCHA),
        ("akamai-access-denied.html", "Akamai", ChallengeKind.BLOCK),
        ("imperva-incident.html", "Imperva", ChallengeKind.BLOCK),
        ("imperva-js-challenge.html", "Imperva", ChallengeKind.CHALLENGE),
        ("sucuri-access-denied.html", "Sucuri", ChallengeKind.BLOCK),
        ("aws-waf-challenge.html", "AWS WAF", ChallengeKind.CHALLENGE),
        ("vercel-checkpoint.html", "Vercel", ChallengeKind.CHALLENGE),
        ("ddos-guard.html", "DDoS-Guard", ChallengeKind.CHALLENGE),
        ("anubis.html", "Anubis", ChallengeKind.CHALLENGE),
        ("recaptcha-only.html", "reCAPTCHA", ChallengeKind.CAPTCHA),
        ("hcaptcha-only.html", "hCaptcha", ChallengeKind.CAPTCHA),
        ("turnstile-only.html", "Cloudflare Turnstile", ChallengeKind.CAPTCHA),
        ("generic-enable-javascript.html", "unidentified", ChallengeKind.CHALLENGE),
    ],
    ids=lambda value: value if isinstance(value, str) and value.endswith(".html") else "",
)
@pytest.mark.parametrize("status", [200, 403, 503])
def test_each_wall_is_recognised_by_its_page(
    name: str, vendor: str, kind: ChallengeKind, status: int
) -> None:
    found = detect_challenge(status, {}, _page(name))
    assert found is not None
    assert (found.vendor, found.kind) == (vendor, kind)
    assert found.evidence  # the marker that gave it away, for the operator


def test_the_old_cloudflare_page_stored_as_an_article_is_a_challenge() -> None:
    """The page stored as 'Checking if the site connection is secure' with a
    41-character body, before challenges were recognised."""
    found = detect_challenge(200, {}, _page("cloudflare-connection-secure.html"))
    assert found == Challenge("Cloudflare", ChallengeKind.CHALLENGE, "title 'Just a moment...'")
    assert found.label == "bot challenge (Cloudflare)"


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (403, {"cf-mitigated": "challenge"}, ("Cloudflare", "header cf-mitigated: challenge")),
        (200, {"CF-Mitigated": "Challenge"}, ("Cloudflare", "header cf-mitigated: challenge")),
        (
            429,
            {"x-vercel-mitigated": "challenge"},
            ("Vercel", "header x-vercel-mitigated: challenge"),
        ),
        (403, {"x-vercel-mitigated": "deny"}, ("Vercel", "header x-vercel-mitigated: deny")),
        (
            202,
            {"x-amzn-waf-action": "challenge"},
            ("AWS WAF", "header x-amzn-waf-action: challenge"),
        ),
        (405, {"x-amzn-waf-action": "captcha"}, ("AWS WAF", "header x-amzn-waf-action: captcha")),
        (403, {"x-dd-b": "1"}, ("DataDome", "header x-dd-b: 1")),
        (403, {"x-datadome": "protected"}, ("DataDome", "HTTP 403 with x-datadome")),
        (403, {"server": "ddos-guard"}, ("DDoS-Guard", "HTTP 403 from server ddos-guard")),
        # What every response of a protected site carries is no challenge by itself.
        (200, {"x-datadome": "protected"}, None),
        (200, {"server": "ddos-guard"}, None),
        (403, {"server": "cloudflare", "cf-ray": "8f2a1c4d5e6f0a1b-FRA"}, None),
        (200, {"cf-mitigated": ""}, None),
    ],
    ids=[
        "cloudflare",
        "cloudflare-case",
        "vercel-challenge",
        "vercel-deny",
        "aws-challenge",
        "aws-captcha",
        "datadome-blocked",
        "datadome-refusal",
        "ddos-guard-refusal",
        "datadome-protected-200",
        "ddos-guard-200",
        "cloudflare-plain-403",
        "empty-header",
    ],
)
def test_documented_headers_mark_a_challenge_whatever_the_body(
    status: int, headers: dict[str, str], expected: tuple[str, str] | None
) -> None:
    found = detect_challenge(status, headers, b'{"items": []}')
    assert ((found.vendor, found.evidence) if found else None) == expected


def _corpus() -> list[Path]:
    """Every page, feed and sitemap the tests have, but the challenge pages."""
    files = [
        path
        for root in (FIXTURES, DEMO_SITE)
        for path in sorted(root.rglob("*"))
        if path.is_file() and CHALLENGES not in path.parents
    ]
    assert len(files) > 200  # the extraction corpus, the feed corpus, the site
    return files


def _body(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def test_no_article_feed_or_page_of_the_fixtures_is_taken_for_a_challenge() -> None:
    """Precision: 92 real article pages (4 with a reCAPTCHA in a form), the feed
    and sitemap corpus and the fixture site, at every status a wall uses."""
    mistaken = [
        (path.name, status, found)
        for path in _corpus()
        for status in (200, 403, 503)
        if (found := detect_challenge(status, {}, _body(path))) is not None
    ]
    assert mistaken == []


def _real_articles() -> list[bytes]:
    pages = [_body(path) for path in sorted((FIXTURES / "extraction").glob("*.html.gz"))]
    assert len(pages) >= 90
    return pages


@pytest.mark.parametrize(
    "insert",
    [
        '<div class="comments"><form><div class="g-recaptcha" data-sitekey="x"></div>'
        '<script src="https://www.google.com/recaptcha/api.js"></script></form></div>',
        '<form class="newsletter"><div class="cf-turnstile" data-sitekey="1x0"></div></form>',
        "<p>Scrapers are shown Cloudflare's page, whose script sets <code>window._cf_chl_opt"
        "</code>, or DataDome's from geo.captcha-delivery.com, with "
        '<code>&lt;div id="px-captcha"&gt;</code>: "Verify you are human".</p>',
        '<script src="/_Incapsula_Resource?SWJIYLWA=719d34d31c8e3a6e6fffd425f7e032f3"></script>'
        '<script src="/cdn-cgi/challenge-platform/scripts/jsd/main.js"></script>',
    ],
    ids=["captcha-comment-form", "turnstile-newsletter", "article-quoting-markers", "beacons"],
)
def test_a_real_article_with_a_widget_or_a_quoted_marker_is_still_an_article(
    insert: str,
) -> None:
    """What vendors add to the real pages they protect, and an article about the
    walls themselves, do not make a challenge of an article."""
    mistaken = 0
    for page in _real_articles():
        at = page.lower().rfind(b"</body>")
        at = at if at >= 0 else len(page)
        if detect_challenge(200, {}, page[:at] + insert.encode() + page[at:]) is not None:
            mistaken += 1
    assert mistaken == 0


def test_a_captcha_counts_only_on_a_page_with_little_else_to_read() -> None:
    page = _page("recaptcha-only.html")
    words = ("<p>" + "The council met on Tuesday to discuss the budget. " * 20 + "</p>").encode()
    assert len(words) > STUB_MAX_TEXT  # bytes of ASCII text
    with_text = page.replace(b"</main>", words + b"</main>")
    assert detect_challenge(200, {}, page) is not None
    assert detect_challenge(200, {}, with_text) is None


def test_a_feed_is_judged_by_its_headers_only() -> None:
    feed = (
        site_file("world/rss.xml")
        .read_bytes()
        .replace(b"</channel>", b"<item><title>Just a moment...</title></item></channel>")
    )
    assert detect_challenge(200, {}, feed) is None
    assert detect_challenge(403, {"cf-mitigated": "challenge"}, feed) is not None


# -- failure classes ----------------------------------------------------------------


def _failure(error: BaseException) -> Failure:
    failure = Failure(error)
    failure.request = Request("https://news.example/rss")  # type: ignore[attr-defined]
    return failure


def _response(status: int, body: bytes = b"") -> HtmlResponse:
    return HtmlResponse(
        "https://news.example/rss",
        status=status,
        body=body,
        request=Request("https://news.example/rss"),
    )


def _wrapped(cause: BaseException) -> DownloadFailedError:
    error = DownloadFailedError(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (CannotResolveHostError("nonexistent.invalid"), (FailureClass.DNS, None)),
        (DNSLookupError("nonexistent.invalid"), (FailureClass.DNS, None)),
        (DownloadConnectionRefusedError("refused"), (FailureClass.CONNECT, None)),
        (
            _wrapped(ResponseNeverReceived([Failure(ConnectionLost())])),
            (FailureClass.CONNECT, None),
        ),
        (ResponseDataLossError(), (FailureClass.CONNECT, None)),
        (ConnectionResetError(), (FailureClass.CONNECT, None)),
        (
            _wrapped(
                ResponseNeverReceived(
                    [Failure(OpenSSLError([("SSL routines", "", "wrong version number")]))]
                )
            ),
            (FailureClass.TLS, None),
        ),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER]"), (FailureClass.TLS, None)),
        (DownloadTimeoutError("took longer than 2.0 seconds"), (FailureClass.TIMEOUT, None)),
        (TCPTimedOutError(), (FailureClass.TIMEOUT, None)),
        (HttpError(_response(403), "Ignoring non-200 response"), (FailureClass.HTTP, 403)),
        (HttpError(_response(410), "Ignoring non-200 response"), (FailureClass.HTTP, 410)),
        (
            BotChallengeError(
                Challenge("Cloudflare", ChallengeKind.CHALLENGE, "title 'Just a moment...'"),
                _response(200),
            ),
            (FailureClass.CHALLENGE, 200),
        ),
        (IgnoreRequest("Forbidden by robots.txt"), (FailureClass.ROBOTS, None)),
        (IgnoreRequest("refused: 10.0.0.1 is a private address"), (FailureClass.OTHER, None)),
        (DownloadCancelledError(""), (FailureClass.OTHER, None)),
        (KeyError("bug"), (FailureClass.OTHER, None)),
    ],
    ids=[
        "scrapy-dns",
        "twisted-dns",
        "refused",
        "lost-before-response",
        "data-loss",
        "reset",
        "tls-wrapped",
        "tls-stdlib",
        "timeout",
        "tcp-timeout",
        "http-403",
        "http-410",
        "challenge",
        "robots",
        "refused-address",
        "cancelled",
        "bug",
    ],
)
def test_every_failure_has_a_class(
    error: BaseException, expected: tuple[FailureClass, int | None]
) -> None:
    assert classify_failure(_failure(error)) == expected


def test_a_challenge_failure_says_blocked_and_keeps_the_status() -> None:
    challenge = Challenge("Cloudflare", ChallengeKind.CHALLENGE, "header cf-mitigated: challenge")
    assert describe_failure(_failure(BotChallengeError(challenge, _response(200)))) == (
        "blocked by a bot challenge (Cloudflare)"
    )
    assert describe_failure(_failure(BotChallengeError(challenge, _response(403)))) == (
        "HTTP 403: blocked by a bot challenge (Cloudflare)"
    )


# -- on the fixture site ------------------------------------------------------------


def _outcomes(config: Path) -> dict[str, dict[str, Any]]:
    """Each source's PollOutcome (as JSON) from one poll of every source."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "poll_outcomes.py"), str(config)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {outcome["source"]: outcome | {"log": result.stderr} for outcome in outcomes}


def test_a_challenge_article_is_not_stored_and_is_fetched_again_next_poll(
    news_site: NewsSite, tmp_path: Path
) -> None:
    news_site.script(
        "articles/cup-final.html",
        [
            Reply(
                200,
                body=_page("cloudflare-connection-secure.html"),
                headers={"Content-Type": "text/html"},
            )
        ],
    )
    config = write_config(
        tmp_path,
        **site_config(
            news_site, tmp_path, sources=[{"name": "world", "feed": news_site.url("world/rss.xml")}]
        ),
    )

    outcome = _outcomes(config)["world"]

    store = Store.from_url(load_config(config).database)
    titles = {article.title for article in store.articles()}
    assert "Checking if the site connection is secure" not in titles
    assert not any(article.url.endswith("cup-final.html") for article in store.articles())
    assert outcome["error"] is None  # the poll worked: one page was blocked
    assert (outcome["challenges"], outcome["page_errors"], outcome["stored"]) == (1, 1, 2)
    assert outcome["challenge"] == {
        "url": news_site.url("articles/cup-final.html"),
        "vendor": "Cloudflare",
        "status": 200,
        "evidence": "title 'Just a moment...'",
    }
    lines = [
        line for line in outcome["log"].splitlines() if "bot challenge (Cloudflare) at" in line
    ]
    assert len(lines) == 1
    assert (
        f"source world: bot challenge (Cloudflare) at {news_site.url('articles/cup-final.html')}"
        in lines[0]
    )
    assert "not stored, retried next poll" in lines[0]

    # The wall lifts: the next poll fetches the page again, though the feed is unchanged.
    news_site.script("articles/cup-final.html", [Reply(200)])
    result = run_newswatch(config, "crawl")
    assert result.returncode == 0, result.stderr
    assert any(article.url.endswith("cup-final.html") for article in store.articles())


@pytest.mark.parametrize(
    ("reply", "error", "status"),
    [
        (
            Reply(
                200, body=_page("cloudflare-managed.html"), headers={"Content-Type": "text/html"}
            ),
            "blocked by a bot challenge (Cloudflare)",
            200,
        ),
        (
            Reply(
                403,
                body=_page("cloudflare-managed.html"),
                headers={"Content-Type": "text/html", "cf-mitigated": "challenge"},
            ),
            "HTTP 403: blocked by a bot challenge (Cloudflare)",
            403,
        ),
    ],
    ids=["200-page", "403-header"],
)
def test_a_feed_behind_a_challenge_fails_as_blocked_not_as_unparseable(
    news_site: NewsSite, tmp_path: Path, reply: Reply, error: str, status: int
) -> None:
    news_site.script("world/rss.xml", [reply])
    config = write_config(
        tmp_path,
        **site_config(
            news_site, tmp_path, sources=[{"name": "world", "feed": news_site.url("world/rss.xml")}]
        ),
    )

    outcome = _outcomes(config)["world"]

    assert outcome["error"] == error
    assert (outcome["error_class"], outcome["status"], outcome["blocked"]) == (
        "challenge",
        status,
        True,
    )
    assert outcome["challenge"]["url"] == news_site.url("world/rss.xml")
    # Not retried at once: the wall answers the same until a later poll.
    assert len(news_site.requests_for("world/rss.xml")) == 1
    assert f"source world: feed {news_site.url('world/rss.xml')} failed: {error}" in outcome["log"]
    store = Store.from_url(load_config(config).database)
    assert store.source_state("world").last_error == error
    assert store.count_articles() == 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_failed_polls_say_which_kind_of_failure(news_site: NewsSite, tmp_path: Path) -> None:
    """One poll of sources failing every way, on loopback. The DNS case uses a
    ``.invalid`` name (RFC 6761: never resolves)."""
    news_site.script("hanging.xml", [Reply(200, delay=30)])
    news_site.set_content("broken/binary.xml", b"\x00\x01\x02 not a feed", "application/xml")
    port = news_site.server.server_address[1]
    feeds = {
        "refused": f"http://127.0.0.1:{_closed_port()}/rss.xml",
        "hanging": news_site.url("hanging.xml"),
        "not-tls": f"https://127.0.0.1:{port}/world/rss.xml",
        "unresolvable": "http://nonexistent.invalid/rss.xml",
        "forbidden": news_site.url("status/403"),
        "too-many": news_site.url("status/429"),
        "unavailable": news_site.url("status/503"),
        "gone": news_site.url("status/410"),
        "missing": news_site.url("status/404"),
        "html-page": news_site.url("broken/not-a-feed.html"),
        "disallowed": news_site.url("private/feed.xml"),
    }
    sources = [{"name": name, "feed": url} for name, url in feeds.items()]
    config = write_config(
        tmp_path, **site_config(news_site, tmp_path, sources=sources, download_timeout="2s")
    )

    outcomes = _outcomes(config)

    got = {
        name: (outcome["error_class"], outcome["status"], outcome["blocked"])
        for name, outcome in outcomes.items()
    }
    assert got == {
        "refused": ("connect", None, False),
        "hanging": ("timeout", None, False),
        "not-tls": ("tls", None, False),
        "unresolvable": ("dns", None, False),
        "forbidden": ("http", 403, True),
        "too-many": ("http", 429, True),
        "unavailable": ("http", 503, True),
        "gone": ("http", 410, False),
        "missing": ("http", 404, False),
        "html-page": ("unparseable", None, False),
        "disallowed": ("robots", None, False),
    }
    # The words users read are as before.
    assert outcomes["refused"]["error"] == "connection refused"
    assert outcomes["unresolvable"]["error"] == "DNS lookup failed"
    assert outcomes["gone"]["error"] == "HTTP 410"
    assert outcomes["hanging"]["error"].startswith("timed out")
    assert outcomes["html-page"]["error"].startswith("not a feed")


def test_a_permanent_redirect_on_the_feed_is_followed(news_site: NewsSite, tmp_path: Path) -> None:
    news_site.script(
        "old/rss.xml", [Reply(301, headers={"Location": news_site.url("world/rss.xml")})]
    )
    config = write_config(
        tmp_path,
        **site_config(
            news_site, tmp_path, sources=[{"name": "moved", "feed": news_site.url("old/rss.xml")}]
        ),
    )
    outcome = _outcomes(config)["moved"]
    assert (outcome["error"], outcome["error_class"]) == (None, None)
    assert outcome["stored"] == 3


@pytest.mark.timeout(20)
def test_crafted_pages_of_unclosed_tags_are_read_in_one_pass() -> None:
    """Detection runs on the reactor for every response: a page of unclosed
    ``<script``, ``<title>`` or ``<`` must not take seconds (a lazy match to a
    missing close tag rescans the rest of the page from every opening)."""
    head = b"<html><head><script>var _cf_chl_opt = {};</script>"
    cases = [
        # Cloudflare's marker, and no visible text: the rest is one open script.
        (head + b"<script " * 30_000, "Cloudflare"),
        (b"<html><head>" + b"<title>x " * 7_000, None),  # a title never closed
        (b"<html><body>verify you are human" + b"<a" * 120_000, None),  # too big a stub
        (b"<html><body>" + b"<!--" * 60_000, None),
    ]
    for body, vendor in cases:
        for _ in range(20):  # a crawl's worth: a hang shows as the test's timeout
            found = detect_challenge(200, {}, body)
            assert (found.vendor if found else None) == vendor
