"""WebSub's guards, in-process on loopback (tests/test_websub.py has the whole path):
a push never polls inside a backoff or Retry-After and pushes of one source are
paced and replays ignored; the safety net starts with the first signed push and
ends with the subscription; the callback looks a subscription up before it reads a
body and limits each subscription, not each address; hubs off the feed's trust
zone are refused and a plain-http hub gets no secret; renewals back off and a tiny
lease is planned as ``websub.min_lease``."""

from __future__ import annotations

import asyncio
import io
import ipaddress
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from apscheduler.triggers.interval import IntervalTrigger
from test_websub import BODY, Hub, _signed

import crawler.faces.web.websub as websub_face
import spiders.hubs
from crawler.domain.config import parse_config
from crawler.domain.items import PollOutcome
from crawler.domain.websub import (
    RENEW_RETRY,
    HubLinks,
    ReplayMemory,
    SubscriptionState,
    may_send_secret,
    push_poll_time,
)
from crawler.faces.web.websub import WebSubCallbacks
from crawler.orchestration.metrics import Metrics
from crawler.orchestration.poll import backoff_delay
from crawler.orchestration.websub import WebSubSubscriber
from crawler.orchestration.workers import DatabaseThread
from crawler.storage.store import Store
from spiders.addresses import AddressPolicy, parse_address
from spiders.hubs import HubError, check_hub_address

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from pathlib import Path

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _run(work: Coroutine[Any, Any, None]) -> None:
    # A loop of its own in a thread of its own: the test run may hold a running loop.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, work).result(timeout=120)


# -- the pure rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("not_before", "last", "expected"),
    [
        (None, None, NOW),
        (None, NOW - 2 * MINUTE, NOW),  # the gap has passed
        (None, NOW - 20 * timedelta(seconds=1), NOW + 40 * timedelta(seconds=1)),
        (NOW + 30 * MINUTE, None, NOW + 30 * MINUTE),  # a backoff in force
        (NOW + 30 * MINUTE, NOW, NOW + 30 * MINUTE),
        (NOW - MINUTE, NOW - 30 * timedelta(seconds=1), NOW + 30 * timedelta(seconds=1)),
    ],
    ids=["free", "gap-passed", "within-gap", "backoff", "backoff-and-gap", "hold-passed"],
)
def test_a_push_polls_only_when_the_source_allows(
    not_before: datetime | None, last: datetime | None, expected: datetime
) -> None:
    assert push_poll_time(NOW, not_before=not_before, last_push_poll=last, gap=MINUTE) == expected


@pytest.mark.parametrize(
    ("hub", "allowed"),
    [
        ("https://hub.example/", True),
        ("http://127.0.0.1:8080/hub", True),
        ("http://[::1]:8080/hub", True),
        ("http://localhost/hub", True),
        ("http://hub.example/", False),
        ("http://10.0.0.5/hub", False),
    ],
    ids=["https", "loopback-v4", "loopback-v6", "localhost", "plain-http", "plain-http-lan"],
)
def test_a_secret_goes_only_over_https_or_loopback(hub: str, allowed: bool) -> None:
    assert may_send_secret(hub) is allowed


def test_a_body_delivered_again_within_the_hour_is_a_replay() -> None:
    memory = ReplayMemory()
    assert memory.replayed("cb", b"one", NOW) is False
    assert memory.replayed("cb", b"one", NOW + MINUTE) is True
    assert memory.replayed("other-cb", b"one", NOW) is False  # per subscription
    assert memory.replayed("cb", b"two", NOW) is False
    assert memory.replayed("cb", b"one", NOW + timedelta(hours=2)) is False  # forgotten


@pytest.mark.parametrize(
    ("hub", "feed", "refused"),
    [
        ("http://127.0.0.1:9/hub", "http://127.0.0.1:9/feed.xml", None),  # one trust zone
        ("http://10.1.2.3/hub", "http://192.168.1.9/feed.xml", None),
        ("http://127.0.0.1:9/hub", "http://93.184.216.34/feed.xml", "a loopback address"),
        ("http://10.1.2.3/hub", "http://93.184.216.34/feed.xml", "a private address"),
        ("http://169.254.169.254/hub", "http://93.184.216.34/f", "a link-local address"),
        ("http://[::1]/hub", "http://93.184.216.34/feed.xml", "a loopback address"),
        ("http://127.0.0.1:9/hub", "", "a loopback address"),  # no feed known
    ],
    ids=["loopback-both", "lan-both", "loopback-hub", "lan-hub", "metadata", "v6", "no-feed"],
)
def test_a_hub_off_the_feeds_trust_zone_is_refused(
    hub: str, feed: str, refused: str | None
) -> None:
    outcome: list[object] = []

    async def check() -> None:
        try:
            outcome.append(
                await check_hub_address(hub, AddressPolicy(deny_private=False), feed=feed)
            )
        except HubError as error:
            outcome.append(error)

    _run(check())
    (result,) = outcome
    if refused is None:
        assert not isinstance(result, HubError)
    else:
        assert isinstance(result, HubError)
        assert refused in str(result)


# -- a subscriber with a scheduler of its own ------------------------------------------


class _Job:
    def __init__(self, job_id: str, trigger: Any, next_run_time: datetime | None, **kw: Any):
        self.id, self.trigger, self.next_run_time, self.kw = job_id, trigger, next_run_time, kw

    def modify(self, **changes: Any) -> None:
        self.trigger = changes.get("trigger", self.trigger)
        self.next_run_time = changes.get("next_run_time", self.next_run_time)


class _Scheduler:
    """Just the jobs: the poll job of the source, and whatever the subscriber adds."""

    def __init__(self) -> None:
        every = IntervalTrigger(minutes=5, timezone=UTC)
        later = datetime.now(UTC) + timedelta(hours=10)
        self.jobs = {"poll:world": _Job("poll:world", every, later)}

    def get_job(self, job_id: str) -> _Job | None:
        return self.jobs.get(job_id)

    def add_job(self, _function: Any, trigger: Any, *, id: str, **kw: Any) -> None:
        self.jobs[id] = _Job(id, trigger, getattr(trigger, "run_date", None), **kw)

    def remove_job(self, job_id: str) -> None:
        del self.jobs[job_id]


def _subscriber(
    tmp_path: Path, store: Store, feed: str, **settings: object
) -> tuple[WebSubSubscriber, _Scheduler, Metrics]:
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
    scheduler, metrics = _Scheduler(), Metrics()
    context = SimpleNamespace(store=store, database=DatabaseThread())
    subscriber = WebSubSubscriber(lambda: config, context, metrics, lambda: scheduler)  # type: ignore[arg-type]
    return subscriber, scheduler, metrics


def _store(tmp_path: Path) -> Store:
    store = Store.from_url(f"sqlite:///{tmp_path / 'newswatch.db'}")
    store.upgrade()
    return store


async def _verified(subscriber: WebSubSubscriber, store: Store, hub: Hub, feed: str, lease: str):
    await subscriber.follow("world", HubLinks(hub.url, feed))
    callback_id = hub.requests[-1]["hub.callback"].rsplit("/", 1)[1]
    answer = await subscriber.verify_intent(
        callback_id, mode="subscribe", topic=feed, challenge="c", lease_seconds=lease, reason=None
    )
    assert answer == "c"
    record = store.websub_subscription("world")
    assert record is not None
    assert record.state is SubscriptionState.ACTIVE
    return record


def _pushed_count(metrics: Metrics, result: str) -> float:
    return metrics.websub_pushes.labels(result=result)._value.get()


def test_pushes_are_paced_held_off_and_replays_poll_nothing(tmp_path: Path) -> None:
    hub = Hub(verifies=False).start()
    store = _store(tmp_path)
    feed = "http://127.0.0.1:9/world/rss.xml"
    subscriber, scheduler, metrics = _subscriber(tmp_path, store, feed)
    source = subscriber._config().sources[0]
    job = scheduler.jobs["poll:world"]

    async def push(record_id: str, secret: str, body: bytes) -> None:
        signed = _signed("sha256", secret, body)
        assert await subscriber.receive_push(record_id, lambda: body, signed, "hub") == 202

    async def scenario() -> None:
        record = await _verified(subscriber, store, hub, feed, "3600")
        # The safety net waits for the first push (the hub may verify and never deliver).
        assert subscriber.poll_interval(source) == timedelta(minutes=5)
        before = datetime.now(UTC)
        await push(record.callback_id, record.secret, b"<rss>1</rss>")
        first = job.next_run_time
        assert first is not None
        assert before <= first <= datetime.now(UTC)  # the first push polls at once
        assert subscriber.poll_interval(source) == timedelta(hours=1)
        job.next_run_time = datetime.now(UTC) + timedelta(hours=1)  # as after that poll

        # A second push within the gap polls at the gap's end, not now, not never.
        await push(record.callback_id, record.secret, b"<rss>2</rss>")
        assert job.next_run_time == first + timedelta(seconds=60)
        # The same body again: answered, counted, not polled again.
        job.next_run_time = datetime.now(UTC) + timedelta(hours=1)
        await push(record.callback_id, record.secret, b"<rss>2</rss>")
        assert job.next_run_time > datetime.now(UTC) + timedelta(minutes=59)
        assert _pushed_count(metrics, "replayed") == 1

        # Backoff after failed polls (and the server's Retry-After): a push waits for it.
        failed = PollOutcome(source="world", error="HTTP 503", failures=3, retry_after=5400)
        subscriber.poll_finished(source, failed)
        hold = datetime.now(UTC) + backoff_delay(
            source.every, 3, subscriber._config().max_backoff, 5400
        )
        job.next_run_time = datetime.now(UTC) + timedelta(hours=10)
        await push(record.callback_id, record.secret, b"<rss>3</rss>")
        assert job.next_run_time >= hold - timedelta(seconds=5)
        assert job.next_run_time > datetime.now(UTC) + timedelta(minutes=30)

    try:
        _run(scenario())
    finally:
        hub.stop()


def test_a_push_after_a_restart_waits_for_the_backoff_kept_on_the_row(tmp_path: Path) -> None:
    hub = Hub(verifies=False).start()
    store = _store(tmp_path)
    feed = "http://127.0.0.1:9/world/rss.xml"
    subscriber, scheduler, _metrics = _subscriber(tmp_path, store, feed)
    store.sync_sources(subscriber._config().sources)
    for _ in range(4):  # four failed polls before the restart
        store.record_poll("world", error="HTTP 503", at=datetime.now(UTC))

    async def scenario() -> None:
        record = await _verified(subscriber, store, hub, feed, "3600")
        body = b"<rss>after a restart</rss>"
        signed = _signed("sha256", record.secret, body)
        assert await subscriber.receive_push(record.callback_id, lambda: body, signed, "h") == 202
        at = scheduler.jobs["poll:world"].next_run_time
        assert at is not None
        assert at >= datetime.now(UTC) + timedelta(minutes=59)  # 5m doubled 4 times, capped

    try:
        _run(scenario())
    finally:
        hub.stop()


def test_push_mode_ends_with_the_subscription(tmp_path: Path) -> None:
    hub = Hub(verifies=False).start()
    store = _store(tmp_path)
    feed = "http://127.0.0.1:9/world/rss.xml"
    subscriber, scheduler, _metrics = _subscriber(tmp_path, store, feed)
    source = subscriber._config().sources[0]
    job = scheduler.jobs["poll:world"]

    async def scenario() -> None:
        record = await _verified(subscriber, store, hub, feed, "3600")
        signed = _signed("sha256", record.secret, BODY)
        assert await subscriber.receive_push(record.callback_id, lambda: BODY, signed, "h") == 202
        assert subscriber.pushes(source)
        assert job.trigger.interval == timedelta(hours=1)
        # The subscription fails (a hub request failed, noted by another process or
        # before a restart): the next upkeep ends push mode and the slow interval.
        store.note_websub_error(record.callback_id, "hub answered HTTP 500", failed=True)
        await subscriber.sync()
        assert not subscriber.pushes(source)
        assert subscriber.poll_interval(source) == timedelta(minutes=5)
        assert job.trigger.interval == timedelta(minutes=5)
        assert "websub:renew:world" not in scheduler.jobs
        # A lease that ended: out of push mode at once, upkeep or not.
        second = await _verified(subscriber, store, hub, feed, "3600")
        assert second.callback_id == record.callback_id  # the hub verified it again
        body = b"<rss>again</rss>"
        signed = _signed("sha256", second.secret, body)
        assert await subscriber.receive_push(second.callback_id, lambda: body, signed, "h") == 202
        assert subscriber.pushes(source)
        subscriber._active["world"] = datetime.now(UTC) - timedelta(seconds=1)  # as if later
        assert not subscriber.pushes(source)
        assert subscriber.poll_interval(source) == timedelta(minutes=5)

    try:
        _run(scenario())
    finally:
        hub.stop()


def test_renewals_back_off_and_a_tiny_lease_is_planned_as_the_minimum(tmp_path: Path) -> None:
    hub = Hub(verifies=False).start()
    store = _store(tmp_path)
    feed = "http://127.0.0.1:9/world/rss.xml"
    subscriber, scheduler, _metrics = _subscriber(tmp_path, store, feed)

    def renewal_at() -> datetime:
        return scheduler.jobs["websub:renew:world"].next_run_time

    async def scenario() -> None:
        record = await _verified(subscriber, store, hub, feed, "1")  # a 1 s lease
        kept = store.websub_subscription("world")
        assert kept is not None
        assert kept.verified_at is not None
        assert kept.lease_expires_at - kept.verified_at == timedelta(minutes=10)
        assert renewal_at() == kept.verified_at + timedelta(minutes=8)

        # Verified 9 minutes ago: the renewal is due; the hub takes it, never verifies.
        store.mark_websub_active(
            record.callback_id, timedelta(minutes=10), datetime.now(UTC) - timedelta(minutes=9)
        )
        asked = len(hub.requests)
        await subscriber._renew("world")
        assert len(hub.requests) == asked + 1
        assert renewal_at() >= datetime.now(UTC) + RENEW_RETRY - timedelta(seconds=5)
        for _ in range(3):  # upkeep after upkeep: no renewal due meanwhile
            await subscriber.sync()
            assert renewal_at() >= datetime.now(UTC) + RENEW_RETRY - timedelta(seconds=5)
        assert len(hub.requests) == asked + 1
        await subscriber._renew("world")  # the retry, unanswered again: twice as long
        assert renewal_at() >= datetime.now(UTC) + 2 * RENEW_RETRY - timedelta(seconds=5)

    try:
        _run(scenario())
    finally:
        hub.stop()


def test_a_plain_http_hub_gets_no_secret_and_its_pushes_are_paced_hints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hub.test`` and ``news.test`` are names for loopback here: the hub's name is
    no loopback one, so no secret goes to it, and the POST goes to the address that
    was checked, not to the name looked up again."""
    hub = Hub(verifies=False).start()
    looked_up: list[str] = []

    async def resolve(host: str, _port: int) -> list[ipaddress.IPv4Address]:
        looked_up.append(host)
        if host in {"hub.test", "news.test"}:
            return [ipaddress.IPv4Address("127.0.0.1")]
        return [parse_address(host)]

    monkeypatch.setattr(spiders.hubs, "resolve", resolve)
    store = _store(tmp_path)
    feed = "http://news.test:9/world/rss.xml"
    subscriber, scheduler, metrics = _subscriber(tmp_path, store, feed)
    source = subscriber._config().sources[0]
    hub_url = f"http://hub.test:{hub.port}/hub"

    async def scenario() -> None:
        await subscriber.follow("world", HubLinks(hub_url, feed))
        (asked,) = hub.requests
        assert "hub.secret" not in asked
        assert looked_up.count("hub.test") == 1  # once: the POST went to that address
        record = store.websub_subscription("world")
        assert record is not None
        assert record.secret == ""
        await subscriber.verify_intent(
            record.callback_id,
            mode="subscribe",
            topic=feed,
            challenge="c",
            lease_seconds="3600",
            reason=None,
        )
        before = datetime.now(UTC)
        assert await subscriber.receive_push(record.callback_id, lambda: BODY, None, "h") == 202
        job = scheduler.jobs["poll:world"]
        assert before <= job.next_run_time <= datetime.now(UTC)  # a hint: polled
        assert _pushed_count(metrics, "hint") == 1
        assert not subscriber.pushes(source)  # unproven: the normal schedule stays

    try:
        _run(scenario())
    finally:
        hub.stop()


# -- the callback --------------------------------------------------------------------


class _Content(io.BytesIO):
    reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)


class _Request:
    def __init__(self, body: bytes, client: str = "10.0.0.1", length: int | None = None):
        self.method = b"POST"
        self.args: dict[bytes, list[bytes]] = {}
        self.content = _Content(body)
        self._client = client
        self._length = str(len(body) if length is None else length).encode()

    def getHeader(self, name: bytes) -> bytes | None:
        return self._length if name.lower() == b"content-length" else None

    def getClientAddress(self) -> SimpleNamespace:
        return SimpleNamespace(host=self._client)


def test_the_callback_looks_up_before_it_reads_and_limits_each_subscription(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def direct(work: Coroutine[Any, Any, Any]) -> Any:
        return await work

    monkeypatch.setattr(websub_face, "_on_reactor", direct)
    hub = Hub(verifies=False).start()
    store = _store(tmp_path)
    feed = "http://127.0.0.1:9/world/rss.xml"
    subscriber, _scheduler, _metrics = _subscriber(
        tmp_path, store, feed, websub={"rate_limit": 2}, download_maxsize=2000
    )
    callbacks = WebSubCallbacks(SimpleNamespace(config=subscriber._config()), subscriber)  # type: ignore[arg-type]

    async def scenario() -> None:
        record = await _verified(subscriber, store, hub, feed, "3600")
        unknown = _Request(BODY)
        assert (await callbacks.callback(unknown, "u" * 32)).status == 404
        assert unknown.content.reads == 0
        too_long = _Request(b"x" * 10, length=5000)  # declared past download_maxsize
        assert (await callbacks.callback(too_long, record.callback_id)).status == 413
        assert too_long.content.reads == 0
        # Every hub behind one proxy address: counted per subscription, not per address.
        signed = _signed("sha256", record.secret, BODY)

        def delivery() -> _Request:
            request = _Request(BODY)
            headers = {b"x-hub-signature": signed.encode(), b"content-length": b"%d" % len(BODY)}
            request.getHeader = lambda name: headers.get(name.lower())  # type: ignore[method-assign]
            return request

        assert (await callbacks.callback(delivery(), record.callback_id)).status == 202
        assert (await callbacks.callback(delivery(), record.callback_id)).status == 429
        assert (await callbacks.callback(_Request(BODY), "v" * 32)).status == 404
        assert (await callbacks.callback(_Request(BODY), "v" * 32)).status == 404
        assert (await callbacks.callback(_Request(BODY), "v" * 32)).status == 429

    try:
        _run(scenario())
    finally:
        hub.stop()
