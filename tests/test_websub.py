"""WebSub push on loopback: a small hub in the test, the fixture site's feed naming it,
and `newswatch run` with a public URL. The pieces (signatures, what a feed
advertises, which verifications newswatch agrees to, renewal times) are checked
table-driven in-process."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import secrets
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
import yaml
from conftest import site_config, write_config
from newssite import Reply
from smtpserver import free_port
from test_web import _wait_for, running_service

from crawler.domain.config import parse_config
from crawler.domain.websub import (
    BAD_SIGNATURE,
    UNSIGNED,
    HubLinks,
    SubscriptionState,
    advertised_hub,
    agrees_to,
    link_header_targets,
    parse_lease,
    renewal_time,
    signature_refusal,
)
from crawler.orchestration.metrics import Metrics
from crawler.orchestration.websub import WebSubSubscriber
from crawler.orchestration.workers import DatabaseThread
from crawler.storage.store import Store
from spiders.feedparse import parse_feed

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

SECRET = "the-subscriptions-secret"
BODY = b"<rss>pushed</rss>"


# -- the pieces ----------------------------------------------------------------------


def _signed(method: str, secret: str = SECRET, body: bytes = BODY) -> str:
    digest = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
    return f"{method}={digest}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_signed("sha1"), None),
        (_signed("sha256"), None),
        (_signed("sha384"), None),
        (_signed("sha512"), None),
        (_signed("sha256").upper().replace("SHA256=", "sha256="), None),  # hex in capitals
        (_signed("sha256", secret="another secret"), BAD_SIGNATURE),
        (_signed("sha256", body=b"<rss>other</rss>"), BAD_SIGNATURE),
        ("md5=" + hashlib.md5(BODY).hexdigest(), BAD_SIGNATURE),  # noqa: S324 - the point
        ("sha256=", BAD_SIGNATURE),
        ("sha256", BAD_SIGNATURE),
        ("", UNSIGNED),
        (None, UNSIGNED),
    ],
    ids=[
        "sha1",
        "sha256",
        "sha384",
        "sha512",
        "capitals",
        "other-secret",
        "other-body",
        "unknown-method",
        "empty-digest",
        "no-digest",
        "empty",
        "missing",
    ],
)
def test_a_delivery_counts_only_when_signed_with_the_secret(
    header: str | None, expected: str | None
) -> None:
    assert signature_refusal(SECRET, header, BODY) == expected


RSS = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>W</title>
<link>https://news.example/</link>%s
<item><title>A</title><link>https://news.example/a</link></item></channel></rss>"""
ATOM = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
%s<entry><title>A</title><link href="https://news.example/a"/><id>a</id></entry></feed>"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            RSS % b'<atom:link rel="hub" href="https://hub.example/"/>'
            b'<atom:link rel="self" href="https://news.example/rss.xml"/>',
            HubLinks("https://hub.example/", "https://news.example/rss.xml"),
        ),
        (
            ATOM % b'<link rel="hub" href="/hub"/><link rel="self" href="atom.xml"/>',
            HubLinks("https://news.example/hub", "https://news.example/feeds/atom.xml"),
        ),
        (
            json.dumps(
                {
                    "version": "https://jsonfeed.org/version/1.1",
                    "title": "J",
                    "feed_url": "https://news.example/feed.json",
                    "hubs": [{"type": "WebSub", "url": "https://hub.example/"}],
                    "items": [{"id": "1", "url": "https://news.example/a"}],
                }
            ).encode(),
            HubLinks("https://hub.example/", "https://news.example/feed.json"),
        ),
        (
            RSS % b'<atom:link rel="hub" href="https://hub.example/"/>',
            HubLinks("https://hub.example/", None),
        ),
        (RSS % b'<atom:link rel="hub" href="javascript:alert(1)"/>', HubLinks(None, None)),
        (RSS % b"", HubLinks(None, None)),
    ],
    ids=["rss-atom-link", "atom-relative", "json-feed", "rss-no-self", "not-http", "none"],
)
def test_the_parsed_feed_names_its_hub_and_self(body: bytes, expected: HubLinks) -> None:
    feed = parse_feed(body, "https://news.example/feeds/")
    assert HubLinks(feed.hub, feed.self_url) == expected


def test_the_link_header_wins_over_the_document() -> None:
    headers = ['<https://hub.example/a>; rel="hub", </topic.xml>; rel=self; type="x"']
    found = link_header_targets(headers, "https://news.example/feeds/rss.xml")
    assert found == {"hub": "https://hub.example/a", "self": "https://news.example/topic.xml"}
    document = HubLinks("https://other-hub.example/", "https://news.example/rss.xml")
    assert advertised_hub(found, document) == HubLinks(
        "https://hub.example/a", "https://news.example/topic.xml"
    )
    only_hub = link_header_targets(['<https://hub.example/b>; rel="hub"'], "https://x.example/")
    assert advertised_hub(only_hub, document) == HubLinks(
        "https://hub.example/b", "https://news.example/rss.xml"
    )


@pytest.mark.parametrize(
    ("mode", "state", "topic", "agreed"),
    [
        ("subscribe", SubscriptionState.PENDING, "t", True),
        ("subscribe", SubscriptionState.ACTIVE, "t", True),  # a renewal
        ("subscribe", SubscriptionState.FAILED, "t", True),  # the hub's answer was lost
        ("subscribe", SubscriptionState.PENDING, "other", False),
        ("subscribe", SubscriptionState.UNSUBSCRIBING, "t", False),
        ("subscribe", SubscriptionState.DENIED, "t", False),
        ("unsubscribe", SubscriptionState.UNSUBSCRIBING, "t", True),
        ("unsubscribe", SubscriptionState.ACTIVE, "t", False),  # newswatch did not ask
        ("unsubscribe", SubscriptionState.UNSUBSCRIBING, "other", False),
        ("publish", SubscriptionState.ACTIVE, "t", False),
    ],
)
def test_newswatch_confirms_only_what_it_asked_for(
    mode: str, state: SubscriptionState, topic: str, agreed: bool
) -> None:
    assert agrees_to(mode, state, topic, "t") is agreed


def test_a_lease_is_renewed_at_four_fifths_of_what_the_hub_granted() -> None:
    verified = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_lease("3600", timedelta(days=10)) == timedelta(hours=1)
    assert parse_lease(None, timedelta(days=10)) == timedelta(days=10)
    assert parse_lease("soon", timedelta(days=10)) == timedelta(days=10)
    assert parse_lease("9" * 400, timedelta(days=10)) == timedelta(days=366)
    assert renewal_time(verified, timedelta(hours=1)) == verified + timedelta(minutes=48)
    assert renewal_time(verified, timedelta(seconds=0)) == verified + timedelta(seconds=1)


# -- a hub on loopback ---------------------------------------------------------------


@dataclass
class Hub:
    """A WebSub hub: takes (un)subscription requests (202), verifies each with the
    subscriber's callback in the background, and delivers signed content on demand."""

    requests: list[dict[str, str]] = field(default_factory=list)
    # (mode, callback, whether the subscriber echoed the challenge)
    verifications: list[tuple[str, str, bool]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # callback → secret
    answer: int = 202  # the status of its answer to (un)subscription requests
    verifies: bool = True  # verify each request with the callback (a running service)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub"

    def start(self) -> Hub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                hub.requests.append(form)
                self.send_response(hub.answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if hub.verifies and hub.answer == 202:
                    threading.Thread(target=hub.verify, args=(form,), daemon=True).start()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def verify(self, form: dict[str, str], topic: str | None = None) -> int:
        """The verification of intent for ``form``; returns the callback's status."""
        challenge = secrets.token_urlsafe(16)
        query = {
            "hub.mode": form["hub.mode"],
            "hub.topic": topic or form["hub.topic"],
            "hub.challenge": challenge,
        }
        if form["hub.mode"] == "subscribe":
            query["hub.lease_seconds"] = form["hub.lease_seconds"]
        status, body = _call(form["hub.callback"], "GET", query=query)
        echoed = status == 200 and body == challenge.encode()
        if topic is None:
            self.verifications.append((form["hub.mode"], form["hub.callback"], echoed))
            if echoed and form["hub.mode"] == "subscribe":
                self.secrets[form["hub.callback"]] = form["hub.secret"]
        return status

    def deliver(self, callback: str, body: bytes, signature: str | None) -> int:
        headers = {"Content-Type": "application/rss+xml"}
        if signature is not None:
            headers["X-Hub-Signature"] = signature
        return _call(callback, "POST", body=body, headers=headers)[0]

    def verified(self, mode: str) -> list[str]:
        return [callback for m, callback, echoed in self.verifications if m == mode and echoed]


class _Scheduler:
    """No scheduler jobs in the in-process tests: the subscriber's jobs go nowhere."""

    def get_job(self, _job_id: str) -> None:
        return None

    def add_job(self, *_args: object, **_kwargs: object) -> None:
        pass


def test_subscriptions_follow_what_the_feed_advertises(tmp_path: Path) -> None:
    """In-process, the hub's verifications made by the test: subscribe, verify, stop
    naming a hub (unsubscribe), another topic (replace), a hub that refuses, a hub
    that denies, a hub refused by fetch_policy, deliveries to no active subscription."""
    hub = Hub(verifies=False).start()
    store = Store.from_url(f"sqlite:///{tmp_path / 'newswatch.db'}")
    store.upgrade()
    feed = "http://127.0.0.1:9/world/rss.xml"

    def make(**settings: object) -> WebSubSubscriber:
        config = parse_config(
            yaml.safe_dump(
                {
                    "sources": [{"name": "world", "feed": feed, "every": "5m"}],
                    "web": {"public_url": "https://news.example.org/watch/"},
                    **settings,
                }
            ),
            tmp_path / "config.yaml",
        )
        context = SimpleNamespace(store=store, database=DatabaseThread())
        return WebSubSubscriber(lambda: config, context, Metrics(), _Scheduler)  # type: ignore[arg-type]

    async def scenario() -> None:
        subscriber = make()
        source = subscriber._config().sources[0]
        links = HubLinks(hub.url, feed)
        await subscriber.follow("world", links)
        (asked,) = hub.requests
        assert asked["hub.callback"].startswith("https://news.example.org/watch/websub/")
        callback_id = asked["hub.callback"].rsplit("/", 1)[1]
        kept = store.websub_subscription("world")
        assert kept is not None
        assert kept.state is SubscriptionState.PENDING
        assert kept.secret == asked["hub.secret"]
        assert SECRET not in repr(kept)
        assert kept.secret not in repr(kept)
        # A delivery before the hub verified is no push.
        assert await subscriber.receive_push(callback_id, lambda: BODY, None, "hub") == 410
        assert await subscriber.receive_push("x" * 32, lambda: BODY, None, "hub") == 404
        answer = await subscriber.verify_intent(
            callback_id,
            mode="subscribe",
            topic=feed,
            challenge="c1",
            lease_seconds="600",
            reason=None,
        )
        assert answer == "c1"
        kept = store.websub_subscription("world")
        assert kept is not None
        assert kept.state is SubscriptionState.ACTIVE
        assert kept.lease_expires_at is not None
        assert kept.verified_at is not None
        assert kept.lease_expires_at - kept.verified_at == timedelta(minutes=10)
        # Verified, but no push yet: the normal schedule (a hub that never delivers
        # must not slow the source down).
        assert subscriber.poll_interval(source) == timedelta(minutes=5)
        assert subscriber.pushes(source) is False
        signed = _signed("sha256", kept.secret, BODY)
        assert await subscriber.receive_push(callback_id, lambda: BODY, signed, "hub") == 202
        assert subscriber.poll_interval(source) == timedelta(hours=1)  # the safety net
        await subscriber.follow("world", links)  # the same again: nothing to ask
        assert len(hub.requests) == 1

        # The feed stops naming a hub: unsubscribe; gone once the hub verifies.
        await subscriber.follow("world", HubLinks(None, None))
        assert hub.requests[-1]["hub.mode"] == "unsubscribe"
        assert hub.requests[-1]["hub.callback"] == asked["hub.callback"]
        assert subscriber.poll_interval(source) == timedelta(minutes=5)
        assert store.websub_subscription("world") is None
        answer = await subscriber.verify_intent(
            callback_id,
            mode="unsubscribe",
            topic=feed,
            challenge="c2",
            lease_seconds=None,
            reason=None,
        )
        assert answer == "c2"
        assert store.websub_subscriptions("world") == []

        # Another topic: the old subscription ends, a new one (new callback) starts.
        await subscriber.follow("world", links)
        await subscriber.follow("world", HubLinks(hub.url, feed + "?v=2"))
        modes = [(r["hub.mode"], r["hub.topic"]) for r in hub.requests[-3:]]
        assert modes == [
            ("subscribe", feed),
            ("unsubscribe", feed),
            ("subscribe", feed + "?v=2"),
        ]
        states = [r.state for r in store.websub_subscriptions("world")]
        assert states == [SubscriptionState.UNSUBSCRIBING, SubscriptionState.PENDING]

        # The hub denies it: kept with the reason, not asked again.
        current = store.websub_subscription("world")
        assert current is not None
        denied = await subscriber.verify_intent(
            current.callback_id,
            mode="denied",
            topic=feed + "?v=2",
            challenge="",
            lease_seconds=None,
            reason="not\nwelcome",
        )
        assert denied == ""
        current = store.websub_subscription("world")
        assert current is not None
        assert current.state is SubscriptionState.DENIED
        assert current.last_error == "not welcome"
        asked_before = len(hub.requests)
        await subscriber.follow("world", HubLinks(hub.url, feed + "?v=2"))
        assert len(hub.requests) == asked_before

        # A hub that refuses the request: failed, with the status, never the secret.
        hub.answer = 400
        await subscriber.follow("world", HubLinks(hub.url, feed + "?v=3"))
        current = store.websub_subscription("world")
        assert current is not None
        assert current.state is SubscriptionState.FAILED
        assert current.last_error is not None
        assert "answered HTTP 400" in current.last_error
        assert current.secret not in current.last_error

        # fetch_policy: a hub on loopback is refused before any request.
        hub.answer = 202
        guarded = make(fetch_policy={"deny_private_addresses": True})
        asked_before = len(hub.requests)
        await guarded.follow("world", HubLinks(hub.url, feed + "?v=4"))
        assert len(hub.requests) == asked_before
        current = store.websub_subscription("world")
        assert current is not None
        assert current.state is SubscriptionState.FAILED
        assert "refused by fetch_policy" in (current.last_error or "")

    try:
        # A loop of its own, in a thread of its own: the test run may hold a running
        # loop in this thread (the asyncio reactor of an in-process test).
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, scenario()).result(timeout=120)
    finally:
        hub.stop()


def _call(
    url: str,
    method: str,
    *,
    query: dict[str, str] | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    path = parts.path + ("?" + urllib.parse.urlencode(query) if query else "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _feed(site: NewsSite, hub: Hub, stories: list[str]) -> bytes:
    items = "".join(
        f"<item><title>Harbour story {name}</title>"
        f"<link>{site.url(f'daily/{name}.html')}</link></item>"
        for name in stories
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
        f"<channel><title>World</title><link>{site.url('')}</link>"
        f'<atom:link rel="hub" href="{hub.url}"/>'
        f'<atom:link rel="self" href="{site.url("world/rss.xml")}"/>'
        f"{items}</channel></rss>"
    ).encode()


def _publish(site: NewsSite, hub: Hub, stories: list[str]) -> bytes:
    for name in stories:
        # Words of its own: a story much like another would join that one's story,
        # and a story already alerted is not alerted again.
        words = [hashlib.sha256(f"{name}{n}".encode()).hexdigest()[:9] for n in range(120)]
        text = f"The harbour council met to vote. {' '.join(words)}."
        page = (
            f"<html><head><title>Harbour story {name}</title>"
            '<meta property="article:published_time" content="2026-02-13T10:00:00Z">'
            f"</head><body><article><h1>Harbour story {name}</h1><p>{text}</p>"
            "</article></body></html>"
        )
        site.set_content(f"daily/{name}.html", page.encode(), "text/html")
    feed = _feed(site, hub, stories)
    site.set_content("world/rss.xml", feed, "application/rss+xml")
    return feed


def _titles(store: Store) -> set[str]:
    return {article.title for article in store.articles()}


@pytest.mark.slow
def test_a_hub_pushes_and_newswatch_polls_at_once(news_site: NewsSite, tmp_path: Path) -> None:
    """Subscription and verification, a signed push that leads to a stored article
    and an alert, pushes with a bad or no signature refused and counted and polling
    nothing, lease renewal, and an unsubscription when the source leaves the config."""
    hub = Hub().start()
    port = free_port()
    _publish(news_site, hub, ["a"])
    settings = site_config(
        news_site,
        tmp_path,
        sources=[
            {"name": "world", "feed": news_site.url("world/rss.xml"), "every": "1h"},
            {"name": "tech", "feed": news_site.url("tech/atom.xml"), "every": "1h"},
        ],
        rules=[{"name": "harbour", "keywords": ["harbour council"], "alert": "immediate"}],
        alerts={"window": "1s"},
        web={"port": port, "public_url": f"http://127.0.0.1:{port}/"},
        websub={"lease": "4s", "min_lease": "4s", "push_gap": "1s"},
        download_maxsize=200_000,
    )
    config = write_config(tmp_path, **settings)
    store = Store.from_url(settings["database"])
    outbox = tmp_path / "outbox"
    try:
        with running_service(config) as service:
            # Subscribed at the first poll: the hub verified, newswatch echoed.
            _wait_for(lambda: hub.verified("subscribe"), 60, "the verified subscription")
            first = hub.requests[0]
            assert first["hub.mode"] == "subscribe"
            assert first["hub.topic"] == news_site.url("world/rss.xml")
            callback = first["hub.callback"]
            assert callback.startswith(f"http://127.0.0.1:{port}/websub/")
            assert len(first["hub.secret"]) >= 32
            assert first["hub.lease_seconds"] == "4"
            assert [r["hub.topic"] for r in hub.requests] == [first["hub.topic"]] * len(
                hub.requests
            )  # tech/atom.xml names no hub
            _wait_for(
                lambda: (
                    store.websub_subscription("world") is not None
                    and store.websub_subscription("world").state is SubscriptionState.ACTIVE
                ),  # type: ignore[union-attr]
                30,
                "the subscription to be kept as active",
            )
            kept = store.websub_subscription("world")
            assert kept is not None
            assert kept.lease_expires_at is not None
            assert kept.hub == hub.url
            assert first["hub.secret"] not in service.output()  # never logged
            page = service.get("/sources/world")
            assert page.status == 200
            assert "WebSub push" in page.text
            assert "State active" in page.text
            assert first["hub.secret"] not in page.body
            assert callback.rsplit("/", 1)[1] not in page.body
            # The wrong topic or mode is refused.
            assert hub.verify({**first}, topic="http://127.0.0.1:1/other.xml") == 404
            assert hub.verify({**first, "hub.mode": "unsubscribe"}) == 404

            # Renewed before the 4 s lease ends: the hub asks again and newswatch agrees.
            _wait_for(lambda: len(hub.verified("subscribe")) >= 2, 30, "a renewal")
            assert len({r["hub.callback"] for r in hub.requests}) == 1  # the same callback

            # A signed push: the source is polled at once; the new story is stored
            # and alerted.
            _wait_for(lambda: "Harbour story a" in _titles(store), 60, "the first poll's story")
            _wait_for(lambda: list(outbox.glob("*.eml")), 60, "the first alert")
            alerts_before = len(list(outbox.glob("*.eml")))
            feed = _publish(news_site, hub, ["b", "a"])
            secret = hub.secrets[callback]
            pushed = time.monotonic()
            assert hub.deliver(callback, feed, _signed("sha256", secret, feed)) == 202
            _wait_for(lambda: "Harbour story b" in _titles(store), 30, "the pushed story")
            stored = time.monotonic() - pushed
            _wait_for(
                lambda: len(list(outbox.glob("*.eml"))) > alerts_before, 30, "the pushed alert"
            )
            alerted = time.monotonic() - pushed
            print(f"\nWebSub on loopback: stored {stored:.2f}s, alerted {alerted:.2f}s after push")
            newest = max(outbox.glob("*.eml"), key=lambda path: path.stat().st_mtime)
            assert "Harbour story b" in newest.read_text()

            # Pushes without the secret's signature: acknowledged, counted, no poll.
            polls = service.metric("newswatch_polls_total", source="world")
            feed_requests = len(news_site.requests_for("world/rss.xml"))
            feed = _publish(news_site, hub, ["c", "b", "a"])
            forged = _signed("sha256", "a guessed secret", feed)
            assert hub.deliver(callback, feed, forged) == 202
            assert hub.deliver(callback, feed, None) == 202
            refused = service.metric("newswatch_websub_pushes_total", result="bad_signature")
            assert refused == 1
            assert service.metric("newswatch_websub_pushes_total", result="unsigned") == 1
            assert "its X-Hub-Signature is not the subscription's" in service.output()
            # A signed push now polls once: the refused ones polled nothing.
            assert hub.deliver(callback, feed, _signed("sha1", secret, feed)) == 202
            _wait_for(lambda: "Harbour story c" in _titles(store), 30, "the story after them")
            _wait_for(
                lambda: service.metric("newswatch_polls_total", source="world") == polls + 1,
                30,
                "the pushed poll to be counted",
            )
            assert len(news_site.requests_for("world/rss.xml")) == feed_requests + 1
            kept = store.websub_subscription("world")
            assert kept is not None
            assert kept.pushes == 2
            assert kept.refused == 2
            # A burst of pushes while the pushed poll runs (the feed answers slowly):
            # one more poll after it, not one per push.
            feed_requests = len(news_site.requests_for("world/rss.xml"))
            polls = service.metric("newswatch_polls_total", source="world")
            news_site.script("world/rss.xml", [Reply(delay=2)])
            # (Each delivery a body of its own: one delivered again is a replay.)
            bodies = [feed + f"<!-- {n} -->".encode() for n in range(5)]
            assert hub.deliver(callback, bodies[0], _signed("sha256", secret, bodies[0])) == 202
            _wait_for(
                lambda: len(news_site.requests_for("world/rss.xml")) > feed_requests,
                30,
                "the pushed poll to start",
            )
            assert [
                hub.deliver(callback, body, _signed("sha256", secret, body)) for body in bodies[1:4]
            ] == [202] * 3
            _wait_for(
                lambda: service.metric("newswatch_polls_total", source="world") >= polls + 2,
                60,
                "the poll after the burst",
            )
            news_site.script("world/rss.xml", [Reply()])
            assert hub.deliver(callback, bodies[4], _signed("sha256", secret, bodies[4])) == 202
            _wait_for(
                lambda: service.metric("newswatch_polls_total", source="world") >= polls + 3,
                60,
                "the poll of the next push",
            )
            assert len(news_site.requests_for("world/rss.xml")) == feed_requests + 3

            # A delivery may be as large as a feed (download_maxsize), not larger.
            large = b"<rss>" + b" " * 100_000 + b"</rss>"
            assert hub.deliver(callback, large, _signed("sha512", secret, large)) == 202
            huge = b"<rss>" + b" " * 300_000 + b"</rss>"
            assert hub.deliver(callback, huge, _signed("sha512", secret, huge)) == 413

            # The source leaves the configuration: newswatch unsubscribes, the hub
            # verifies, the subscription is gone and its callback with it.
            settings["sources"] = settings["sources"][1:]
            write_config(tmp_path, **settings)
            _wait_for(lambda: hub.verified("unsubscribe"), 60, "the verified unsubscription")
            assert hub.verified("unsubscribe") == [callback]
            _wait_for(
                lambda: store.websub_subscriptions("world") == [], 30, "the subscription to go"
            )
            assert hub.deliver(callback, feed, _signed("sha256", secret, feed)) == 404
            output = service.output()
    finally:
        hub.stop()
    assert secret not in output
