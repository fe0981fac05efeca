"""Health that tells the truth: ``/healthz`` (liveness) and ``/readyz`` say when the
service is up but no source has succeeded for too long, and the log says once what
to try when every source fails on DNS."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import write_config
from test_web import _wait_for, running_service

from crawler.domain.config import Config
from crawler.faces.web.health import HealthChecks
from crawler.orchestration.health import (
    OFFLINE_HINT,
    OfflineHint,
    assess_readiness,
    blind_after,
)
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from crawler.faces.web.common import Reply

START = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


def _config(*everies: str, disabled: str | None = None) -> Config:
    sources: list[dict[str, Any]] = [
        {"name": f"s{index}", "feed": f"https://s{index}.example/rss", "every": every}
        for index, every in enumerate(everies)
    ]
    if disabled is not None:
        sources.append(
            {"name": "off", "feed": "https://off.example/rss", "every": disabled, "enabled": False}
        )
    return Config.model_validate({"sources": sources})


@pytest.mark.parametrize(
    ("everies", "disabled", "window"),
    [
        (("15m",), None, timedelta(hours=1)),  # 3 × 15 min is less than the hour
        (("30m", "2h"), None, timedelta(hours=6)),  # 3 × the longest
        (("30m",), "1d", timedelta(hours=1.5)),  # a disabled source does not count
        ((), None, timedelta(hours=1)),
    ],
    ids=["at-least-an-hour", "longest-every", "disabled-ignored", "no-sources"],
)
def test_blind_after_three_times_the_longest_every_and_at_least_an_hour(
    everies: tuple[str, ...], disabled: str | None, window: timedelta
) -> None:
    assert blind_after(_config(*everies, disabled=disabled)) == window


@pytest.mark.parametrize(
    ("last_success", "now", "state"),
    [
        (START + timedelta(minutes=50), START + timedelta(hours=1, minutes=10), "ok"),
        (None, START + timedelta(minutes=59), "waiting"),
        (None, START + timedelta(hours=1, minutes=1), "blind"),
        # A success before a restart, long ago: the time before the start is no silence.
        (START - timedelta(days=2), START + timedelta(minutes=30), "waiting"),
        (START + timedelta(minutes=5), START + timedelta(hours=2), "blind"),
    ],
    ids=["recent-success", "nothing-yet", "nothing-for-an-hour", "restarted", "silent-since"],
)
def test_readiness_from_the_last_success_and_the_start(
    last_success: datetime | None, now: datetime, state: str
) -> None:
    readiness = assess_readiness(_config("15m"), last_success, START, now)
    assert readiness.state == state
    assert readiness.ready is (state != "blind")
    if state == "blind":
        assert readiness.reason.startswith("up, but no source has succeeded for ")
        assert readiness.reason.endswith("(blind after 1 h 00 min)")


def test_readiness_without_sources_is_no_alarm() -> None:
    readiness = assess_readiness(_config(), None, START, START + timedelta(days=1))
    assert (readiness.state, readiness.ready) == ("no sources", True)


@pytest.mark.parametrize(
    ("polls", "hinted_at"),
    [
        ([("a", "dns", True), ("b", "dns", True), ("a", "dns", True)], 1),
        ([("a", "dns", True), ("b", None, False), ("a", "dns", True)], None),
        ([("a", "dns", True), ("b", "connect", True), ("b", "dns", True)], 2),
        ([("a", None, False), ("a", "dns", True), ("b", "dns", True)], None),
    ],
    ids=["every-source-on-dns", "one-succeeded", "other-failure-first", "network-worked"],
)
def test_the_offline_hint_comes_once_when_every_source_fails_on_dns(
    polls: list[tuple[str, str | None, bool]],
    hinted_at: int | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hint = OfflineHint(lambda: ["a", "b"])
    with caplog.at_level(logging.WARNING):
        said = [hint.poll_finished(source, kind, failed=failed) for source, kind, failed in polls]
        # Later polls failing the same way never repeat it.
        said += [hint.poll_finished(name, "dns", failed=True) for name in ("a", "b")]
    assert said == [index == hinted_at for index in range(len(said))]
    assert caplog.text.count("newswatch demo") == (1 if hinted_at is not None else 0)


class _Site:
    """What HealthChecks reads of the web UI: a real store, the rest fixed."""

    def __init__(self, store: Store, config: Config, started: datetime) -> None:
        self.store = store
        self.config = config
        self.started = started
        self.scheduler_running: Callable[[], bool] = lambda: True

    async def blocking(
        self, function: Callable[..., Any], *args: Any, timeout: float | None = None
    ) -> Any:
        return function(*args)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    yield store
    store.close()


def _ask(checks: HealthChecks, path: str) -> Reply:
    handler = checks.healthz if path == "/healthz" else checks.readyz

    def run() -> Reply:
        return asyncio.run(handler(None))  # type: ignore[arg-type]

    with ThreadPoolExecutor(1) as pool:  # the full run holds a running loop
        return pool.submit(run).result()


def test_healthz_stays_live_and_readyz_fails_when_no_source_succeeded_for_long(
    store: Store,
) -> None:
    config = _config("15m", "20m")
    store.sync_sources(config.sources)
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    store.record_poll("s0", error=None, state=None, at=two_hours_ago)
    site = _Site(store, config, started=two_hours_ago)
    checks = HealthChecks(site)  # type: ignore[arg-type]

    health, ready = _ask(checks, "/healthz"), _ask(checks, "/readyz")

    assert health.status == 200  # the container keeps it: a restart fixes no network
    assert ready.status == 503
    body = json.loads(health.body)
    assert json.loads(ready.body) == body
    assert body["status"] == "blind"
    assert body["sources"]["state"] == "blind"
    assert body["sources"]["blind_after_seconds"] == 3600
    assert body["sources"]["last_success"] == two_hours_ago.isoformat()
    assert (
        body["reason"] == "up, but no source has succeeded for 2 h 00 min (blind after 1 h 00 min)"
    )

    store.record_poll("s1", error=None, state=None)
    assert _ask(checks, "/readyz").status == 200
    assert json.loads(_ask(checks, "/healthz").body)["status"] == "ok"


@pytest.mark.slow
def test_a_service_whose_sources_all_fail_on_dns_says_so_once(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        database=f"sqlite:///{tmp_path / 'newswatch.db'}",
        user_agent_contact="https://example.org/newswatch-tests",
        workers=0,
        sources=[
            {"name": name, "feed": f"http://{name}.nonexistent.invalid/rss.xml", "every": "1h"}
            for name in ("world", "tech")
        ],
        rules=[{"name": "syria", "keywords": ["Palmyra"]}],
        delivery={"outbox": str(tmp_path / "outbox")},
        web={"port": 0},
    )
    with running_service(config) as service:
        _wait_for(lambda: OFFLINE_HINT in service.output(), 60, "the hint in the log")
        assert service.output().count("no internet? Try `newswatch demo`") == 1
        health = json.loads(service.get("/healthz").body)
        assert (health["status"], health["sources"]["state"]) == ("ok", "waiting")
        assert service.get("/readyz").status == 200  # not blind yet: it started just now
