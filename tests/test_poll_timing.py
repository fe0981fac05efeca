"""What the service records and does about a source's next poll in the cases the
plan alone does not cover (README, "Adaptive polling"): a source a WebSub hub pushes
(its safety-net poll is what is recorded and judged), a reload that changes the
polling settings (the changed sources' jobs move; a backoff stays), and a server
asking to stay away for longer than any clock holds."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from conftest import write_config

from crawler.domain.config import Config, load_config
from crawler.domain.health import PollRecord
from crawler.domain.items import FetchState, PollOutcome
from crawler.domain.scheduling import LONGEST_WAIT, backoff_reason, next_poll
from crawler.orchestration.health import update_health
from crawler.orchestration.poll import backoff_delay
from crawler.orchestration.polling import POLL_JOB, AdaptivePolling, hints_of
from crawler.orchestration.workers import DatabaseThread
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path


def _in_a_thread(work: Callable[[], Awaitable[Any]]) -> Any:
    """``asyncio.run(work())`` in a thread of its own (a full test run may already
    hold a running event loop: Scrapy's reactor)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(lambda: asyncio.run(work())).result(timeout=120)  # type: ignore[arg-type]


def _store(path: Path, config: Config) -> Store:
    store = Store.from_url(f"sqlite:///{path}")
    store.upgrade()
    store.sync_sources(config.sources)
    return store


def test_a_pushed_source_records_its_safety_net_poll_and_is_not_taken_for_stalled(
    tmp_path: Path,
) -> None:
    """A hub pushes the source: it is polled every 6 h as a safety net, not at its
    15 min. The row says so, the job runs then, and 5 h of silence is no stall."""
    config = Config.model_validate(
        {"sources": [{"name": "wire", "feed": "https://wire.example/rss", "every": "15m"}]}
    )
    source = config.source("wire")
    store = _store(tmp_path / "pushed.db", config)
    database = DatabaseThread()
    net = timedelta(hours=6)

    async def poll_pushed() -> datetime | None:
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        scheduler.start(paused=True)
        try:
            scheduler.add_job(
                asyncio.sleep,
                IntervalTrigger(seconds=net.total_seconds(), timezone=UTC),
                args=[0],
                id=POLL_JOB.format("wire"),
            )
            polling = AdaptivePolling(store, config, database)
            await polling.after_poll(scheduler, source, PollOutcome("wire"), at_least=net)
            return scheduler.get_job(POLL_JOB.format("wire")).next_run_time  # type: ignore[union-attr]
        finally:
            scheduler.shutdown(wait=False)

    try:
        polled = datetime.now(UTC)
        store.log_poll("wire", PollRecord(at=polled, new_urls=0))
        runs_at = _in_a_thread(poll_pushed)
        row = store.source_state("wire")
        assert row is not None
        assert row.poll_interval_seconds == net.total_seconds()
        assert row.poll_reason == "WebSub push; safety-net poll every 6h"
        assert runs_at is not None
        assert abs((runs_at - (polled + net)).total_seconds()) < 30
        assert abs((row.next_poll_at.replace(tzinfo=UTC) - runs_at).total_seconds()) < 1  # type: ignore[union-attr]
        health = update_health(store, source, polled + timedelta(hours=5))
        assert health is not None
        assert health.now.state.value == "ok", health.now.reason
    finally:
        database.shutdown()
        store.close()


# -- a reload -------------------------------------------------------------------------


def test_a_reload_re_times_the_sources_whose_plan_changed_and_keeps_a_backoff(
    tmp_path: Path,
) -> None:
    """The jobs are set hours ahead by the old settings. After the reload:
    ``fixed`` (made ``adaptive: false``, every unchanged) runs 15 min after its last
    poll; ``faster`` (every 6h → 30m) 30 min after its last poll; ``failing`` (every
    6h → 10m) keeps its backoff; ``same`` is not touched."""
    from crawler.orchestration.service import NewswatchService

    def source(name: str, every: str, **more: Any) -> dict[str, Any]:
        return {"name": name, "feed": f"https://{name}.example/rss", "every": every} | more

    settings: dict[str, Any] = {
        "database": f"sqlite:///{tmp_path / 'newswatch.db'}",
        "workers": 0,
        "web": {"enabled": False},
        "sources": [
            source("fixed", "15m"),
            source("faster", "6h"),
            source("failing", "6h"),
            source("same", "1h"),
        ],
    }
    path = write_config(tmp_path, **settings)
    config = load_config(path)
    store = _store(tmp_path / "newswatch.db", config)
    now = datetime.now(UTC)
    polled = {"fixed": now - timedelta(minutes=10), "faster": now - timedelta(minutes=20)}
    for name, at in polled.items():
        store.record_poll(name, error=None, at=at)
    store.record_poll("failing", error="HTTP 500", at=now - timedelta(minutes=5))
    held = {
        "fixed": now + timedelta(hours=5),  # as an adaptive plan of a quiet rhythm set it
        "faster": now + timedelta(hours=5, minutes=40),
        "failing": now + timedelta(hours=12),
        "same": now + timedelta(minutes=50),
    }
    failed = backoff_reason("1 failed poll in a row", timedelta(hours=12))
    store.record_next_poll("failing", held["failing"], timedelta(hours=12), failed)

    async def reload() -> dict[str, datetime]:
        service = NewswatchService(config, store, cpu_workers=0, config_path=path)
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        service.scheduler = scheduler
        service.polling.load_planned()
        service._schedule_sources(scheduler, now)
        scheduler.start(paused=True)
        for name, at in held.items():
            scheduler.get_job(POLL_JOB.format(name)).modify(next_run_time=at)  # type: ignore[union-attr]
        await service.context.database.run(service.polling.refresh, now)
        settings["sources"][0]["adaptive"] = False
        settings["sources"][1]["every"] = "30m"
        settings["sources"][2]["every"] = "10m"
        write_config(tmp_path, **settings)
        assert await service.reload()
        times = {
            name: scheduler.get_job(POLL_JOB.format(name)).next_run_time  # type: ignore[union-attr]
            for name in held
        }
        await service.stop()
        return times

    times = _in_a_thread(reload)
    assert abs((times["fixed"] - (polled["fixed"] + timedelta(minutes=15))).total_seconds()) < 1
    assert abs((times["faster"] - (polled["faster"] + timedelta(minutes=30))).total_seconds()) < 1
    assert times["failing"] == held["failing"]
    assert times["same"] == held["same"]
    check = Store.from_url(config.database)
    try:
        row = check.source_state("faster")
        assert row is not None
        assert row.poll_interval_seconds == 30 * 60
        assert row.poll_reason is not None
        assert row.poll_reason.startswith("every 30m")
    finally:
        check.close()


# -- a server asking for forever ---------------------------------------------------------


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(1e12, id="10**12 s"),
        pytest.param(251_605_710_626.0, id="the year 9999"),
        pytest.param(1e20, id="10**20 s"),
        pytest.param(float("inf"), id="400 digits"),
    ],
)
def test_a_huge_retry_after_is_capped_not_a_traceback(tmp_path: Path, seconds: float) -> None:
    config = Config.model_validate(
        {
            "max_backoff": "6h",
            "sources": [{"name": "desk", "feed": "https://desk.example/rss", "every": "15m"}],
        }
    )
    source = config.source("desk")
    every, cap = timedelta(minutes=15), timedelta(hours=6)
    assert backoff_delay(every, 1, cap, seconds) == cap
    hints = hints_of(FetchState(retry_after=seconds, max_age=seconds))
    assert hints is not None
    assert hints.retry_after == LONGEST_WAIT
    store = _store(tmp_path / "huge.db", config)
    try:
        polling = AdaptivePolling(store, config, None)  # type: ignore[arg-type]
        now = datetime.now(UTC)
        polling.refresh(now)
        failed = PollOutcome("desk", error="HTTP 503", retry_after=seconds, failures=1)
        backoff = polling.next_poll_after(source, failed, now).upcoming
        assert (backoff.interval, backoff.reason) == (cap, "backoff: Retry-After 365d → every 6h")
        asked = PollOutcome("desk", state=FetchState(retry_after=seconds))
        later = polling.next_poll_after(source, asked, now).upcoming
        assert later.interval == cap
        assert later.reason == "Retry-After 365d, capped at max_interval 6h"
        assert next_poll(polling.plan(source, now), now, hints=hints).at == now + cap
    finally:
        store.close()


# -- the hourly refresh -------------------------------------------------------------------


def test_the_hourly_rhythm_refresh_reads_off_the_database_thread(tmp_path: Path) -> None:
    """10,000 sources' rhythms take seconds to read: the hourly refresh reads them in
    a thread of its own, so the polls' writes on the database thread go on. The
    first, at the start, is on the database thread (the first polls wait for it)."""
    import threading

    config = Config.model_validate(
        {"sources": [{"name": "desk", "feed": "https://desk.example/rss", "every": "15m"}]}
    )
    store = _store(tmp_path / "refresh.db", config)
    database = DatabaseThread()
    read_on: list[str] = []
    read = store.source_rhythms

    def source_rhythms(now: datetime) -> Any:
        read_on.append(threading.current_thread().name)
        return read(now)

    store.source_rhythms = source_rhythms  # type: ignore[method-assign]
    polling = AdaptivePolling(store, config, database)

    async def refresh_twice() -> None:
        await polling.refresh_soon()
        await polling.refresh_soon()

    try:
        _in_a_thread(refresh_twice)
        assert len(read_on) == 2
        assert read_on[0].startswith("newswatch-db")
        assert not read_on[1].startswith("newswatch-db")
        assert polling.refreshed_at is not None
        assert polling.plan(config.source("desk"), datetime.now(UTC)).learning
    finally:
        database.shutdown()
        store.close()


def test_a_reload_reads_the_file_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading and validating 10,000 sources takes seconds: not on the event loop,
    where every poll and the scheduler run. The new configuration still applies."""
    import threading

    from crawler.orchestration import service as service_module
    from crawler.orchestration.service import NewswatchService

    settings: dict[str, Any] = {
        "database": f"sqlite:///{tmp_path / 'newswatch.db'}",
        "workers": 0,
        "web": {"enabled": False},
        "sources": [{"name": "desk", "feed": "https://desk.example/rss", "every": "15m"}],
    }
    path = write_config(tmp_path, **settings)
    config = load_config(path)
    store = _store(tmp_path / "newswatch.db", config)
    read_on: list[threading.Thread] = []

    def load_config_spied(where: Path) -> Config:
        read_on.append(threading.current_thread())
        return load_config(where)

    monkeypatch.setattr(service_module, "load_config", load_config_spied)

    async def reload() -> tuple[bool, threading.Thread, list[str]]:
        service = NewswatchService(config, store, cpu_workers=0, config_path=path)
        settings["sources"].append({"name": "wire", "feed": "https://wire.example/rss"})
        write_config(tmp_path, **settings)
        reloaded = await service.reload()
        names = [source.name for source in service.config.sources]
        await service.stop()
        return reloaded, threading.current_thread(), names

    reloaded, loop_thread, names = _in_a_thread(reload)
    assert reloaded
    assert names == ["desk", "wire"]
    assert len(read_on) == 1
    assert read_on[0] is not loop_thread
