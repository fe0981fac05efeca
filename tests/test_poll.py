"""Poll bookkeeping: what is remembered for the next poll, and how failing sources back off."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from crawler.domain.items import FetchState
from crawler.domain.wording import counted
from crawler.orchestration.poll import backoff_delay, describe, state_to_remember
from spiders.base import PollOutcome

STATE = FetchState(
    etag='"abc"',
    last_modified="Wed, 14 Feb 2024 12:00:00 GMT",
    content_hash="f" * 64,
    discovered_url="https://news.example/rss",
)


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        (0, timedelta(minutes=15)),
        (1, timedelta(minutes=30)),
        (2, timedelta(hours=1)),
        (3, timedelta(hours=2)),
        (5, timedelta(hours=6)),
        (40, timedelta(hours=6)),
    ],
)
def test_backoff_doubles_up_to_the_cap(failures: int, expected: timedelta) -> None:
    assert backoff_delay(timedelta(minutes=15), failures, timedelta(hours=6)) == expected


def test_backoff_honours_a_longer_retry_after_within_the_cap() -> None:
    every, cap = timedelta(minutes=15), timedelta(hours=6)
    assert backoff_delay(every, 1, cap, retry_after=7200) == timedelta(hours=2)
    assert backoff_delay(every, 1, cap, retry_after=86400) == cap


def test_backoff_never_polls_faster_than_the_interval() -> None:
    assert backoff_delay(timedelta(days=1), 3, timedelta(hours=6)) == timedelta(days=1)


@pytest.mark.parametrize(
    ("outcome", "remembered"),
    [
        (PollOutcome("s", state=STATE), STATE),
        (
            PollOutcome("s", state=STATE, page_errors=1),
            FetchState(discovered_url=STATE.discovered_url),
        ),
        (
            PollOutcome("s", state=STATE, deferred=True),
            FetchState(discovered_url=STATE.discovered_url),
        ),
        (
            PollOutcome("s", state=STATE, error="HTTP 500"),
            FetchState(discovered_url=STATE.discovered_url),
        ),
        (PollOutcome("s", not_modified=True), None),
        (
            PollOutcome("s", state=STATE, new_urls=3, stored=1),
            FetchState(discovered_url=STATE.discovered_url),
        ),
        (PollOutcome("s", state=STATE, new_urls=3, stored=1, duplicates=1, skipped=1), STATE),
    ],
    ids=[
        "clean",
        "page-error",
        "deferred-links",
        "failed",
        "not-modified",
        "interrupted",
        "all-settled",
    ],
)
def test_validators_are_remembered_only_after_a_clean_poll(
    outcome: PollOutcome, remembered: FetchState | None
) -> None:
    assert state_to_remember(outcome) == remembered


@pytest.mark.parametrize(
    ("number", "noun", "plural", "expected"),
    [
        (0, "article", None, "0 articles"),
        (1, "article", None, "1 article"),
        (2, "new article", None, "2 new articles"),
        (1, "copy", "copies", "1 copy"),
        (3, "copy", "copies", "3 copies"),
    ],
    ids=["none", "one", "many", "one-irregular", "many-irregular"],
)
def test_counts_take_the_form_their_number_wants(
    number: int, noun: str, plural: str | None, expected: str
) -> None:
    assert counted(number, noun, plural) == expected


@pytest.mark.parametrize(
    ("outcome", "summary"),
    [
        (PollOutcome("s", entries=3, new_urls=3, stored=3), "3 links, 3 new: 3 stored"),
        (
            PollOutcome("s", entries=3, new_urls=3, copies=3),
            "3 links, 3 new: 3 copies of known stories",
        ),
        (
            PollOutcome("s", entries=1, new_urls=1, copies=1),
            "1 link, 1 new: 1 copy of a known story",
        ),
        (
            PollOutcome("s", entries=9, new_urls=4, stored=1, duplicates=1, revised=1, skipped=1),
            "9 links, 4 new: 1 stored, 1 already stored, 1 revised, 1 not an article",
        ),
        (
            PollOutcome("s", entries=5, new_urls=3, stored=1, page_errors=1),
            "5 links, 3 new: 1 stored, 1 page error, 1 left for the next poll",
        ),
        (PollOutcome("s", entries=5), "5 links, 0 new"),
        (
            PollOutcome("s", entries=2, new_urls=2, page_errors=2, challenges=2),
            "2 links, 2 new: 2 page errors; 2 bot challenges",
        ),
        (PollOutcome("s", not_modified=True), "not modified (304)"),
        (PollOutcome("s", error="HTTP 500"), "FAILED: HTTP 500"),
    ],
    ids=[
        "stored",
        "all-known-copies",
        "one-copy",
        "each-fate",
        "interrupted",
        "nothing-new",
        "challenged",
        "not-modified",
        "failed",
    ],
)
def test_a_poll_summary_says_what_became_of_the_new_links(
    outcome: PollOutcome, summary: str
) -> None:
    assert describe(outcome) == summary


def test_the_cpu_pool_starts_its_workers_without_holding_up_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first task waits for the workers to start (the forkserver may still be
    importing the extraction stack), while the event loop goes on with other work."""
    import asyncio
    import operator
    import time
    from concurrent.futures import ThreadPoolExecutor

    from crawler.orchestration import workers

    start_workers = workers._start_workers

    def slow_start(*args: Any) -> None:
        time.sleep(1.0)  # a forkserver still loading what the workers need
        start_workers(*args)

    monkeypatch.setattr(workers, "_start_workers", slow_start)
    pool = workers.CpuPool(1)
    try:

        async def first_task_while_ticking() -> tuple[int, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.ensure_future(tick())
            result = await asyncio.wait_for(pool.run(operator.mul, 6, 7), 60)
            ticker.cancel()
            return result, ticks

        # A thread of its own: another test's browser may keep this thread's loop busy.
        with ThreadPoolExecutor(max_workers=1) as thread:
            result, ticks = thread.submit(lambda: asyncio.run(first_task_while_ticking())).result(
                timeout=90
            )
        assert result == 42
        assert ticks >= 50  # the loop ran on through the one-second start
    finally:
        pool.shutdown()


def test_the_cpu_pool_outlives_its_worker_recycling() -> None:
    """More tasks than one generation of workers may run: the pool is replaced, not hung."""
    import asyncio
    import operator
    from concurrent.futures import ThreadPoolExecutor

    from crawler.orchestration import workers

    pool = workers.CpuPool(2)
    original_limit = workers.TASKS_PER_WORKER
    workers.TASKS_PER_WORKER = 5
    try:

        async def many() -> list[int]:
            return list(
                await asyncio.wait_for(
                    asyncio.gather(*(pool.run(operator.mul, n, 2) for n in range(60))), 60
                )
            )

        # A thread of its own: another test's browser may keep this thread's loop busy.
        with ThreadPoolExecutor(max_workers=1) as thread:
            results = thread.submit(lambda: asyncio.run(many())).result(timeout=90)
        assert results == [n * 2 for n in range(60)]
    finally:
        workers.TASKS_PER_WORKER = original_limit
        pool.shutdown()


def test_poll_settings_copy_as_deepcopy_does() -> None:
    """Each poll's crawler copies the settings; the pickled copy is as independent."""
    import copy

    from spiders.settings import PollSettings

    settings = PollSettings(
        {"USER_AGENT": "newswatch-test", "DOWNLOAD_SLOTS": {"news.example": {"delay": 1.5}}}
    )
    copied = settings.copy()
    expected = copy.deepcopy(settings)

    assert type(copied) is PollSettings
    assert {name: (copied[name], copied.getpriority(name)) for name in copied} == {
        name: (expected[name], expected.getpriority(name)) for name in expected
    }
    assert copied["DOWNLOAD_SLOTS"] is not settings["DOWNLOAD_SLOTS"]
    copied.set("USER_AGENT", "changed")
    copied["DOWNLOAD_SLOTS"]["news.example"]["delay"] = 9.0
    assert settings["USER_AGENT"] == "newswatch-test"
    assert settings["DOWNLOAD_SLOTS"]["news.example"] == {"delay": 1.5}
