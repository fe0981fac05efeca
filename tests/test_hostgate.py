"""Per-host politeness across polls (spiders/hostgate.py): the gate itself, then real
polls of many sources on one loopback host, as `newswatch crawl` runs them and as
polls that bypass the service's per-host poll turns."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import run_newswatch, site_config, write_config
from newssite import NewsSite, Reply

from spiders.hostgate import HostGate, HostGateStopped

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

EMPTY_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Quiet</title><link>{base}/</link>
<description>nothing new</description></channel></rss>
"""


def run_async(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine on a loop of its own, in a thread (the full run holds one)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(lambda: asyncio.run(asyncio.wait_for(make(), 60))).result()


async def _crowd(gate: HostGate, host: str, callers: int, concurrency: int) -> int:
    """``callers`` requests to ``host`` at once, each holding its turn a moment; the
    most that held one at the same time."""
    holding = most = 0

    async def one() -> None:
        nonlocal holding, most
        await gate.acquire(host, concurrency, 0.0)
        holding += 1
        most = max(most, holding)
        for _ in range(3):
            await asyncio.sleep(0)
        holding -= 1
        gate.release(host)

    await asyncio.gather(*(one() for _ in range(callers)))
    return most


@pytest.mark.parametrize("concurrency", [1, 2, 5], ids=["one", "two", "five"])
def test_a_host_gets_at_most_its_concurrency_from_every_caller(concurrency: int) -> None:
    gate = HostGate()
    most = run_async(lambda: _crowd(gate, "news.example", 40, concurrency))
    assert most == concurrency
    assert len(gate) == 0  # nothing in flight or waited for: the host is forgotten


def test_a_busy_host_does_not_hold_up_another() -> None:
    gate = HostGate()

    async def scenario() -> list[str]:
        await gate.acquire("busy.example", 1, 0.0)
        stuck = asyncio.ensure_future(gate.acquire("busy.example", 1, 0.0))
        await gate.acquire("other.example", 1, 0.0)  # at once, though busy.example is full
        order = ["other got its turn", f"busy waiter done: {stuck.done()}"]
        gate.release("busy.example")
        await stuck
        gate.release("busy.example")
        gate.release("other.example")
        return order

    assert run_async(scenario) == ["other got its turn", "busy waiter done: False"]
    assert len(gate) == 0


def test_turns_keep_the_host_delay_apart() -> None:
    gate = HostGate()

    async def starts() -> list[float]:
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def one() -> None:
            await gate.acquire("slow.example", 4, 0.2)
            times.append(loop.time())
            gate.release("slow.example")

        await asyncio.gather(*(one() for _ in range(4)))
        return times

    times = run_async(starts)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 3
    assert all(gap >= 0.2 for gap in gaps), gaps


def test_a_stopped_crawl_stops_waiting_and_leaves_no_turn_behind() -> None:
    gate = HostGate()
    stopping = False

    async def scenario() -> str:
        nonlocal stopping
        await gate.acquire("news.example", 1, 0.0)
        waiting = asyncio.ensure_future(gate.acquire("news.example", 1, 0.0, lambda: stopping))
        cancelled = asyncio.ensure_future(gate.acquire("news.example", 1, 0.0))
        await asyncio.sleep(0)
        stopping = True  # the waiting crawl is being stopped (shutdown, poll_timeout)
        cancelled.cancel()  # and another's task is cancelled outright
        with pytest.raises(HostGateStopped):
            await waiting
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        gate.release("news.example")
        # Neither of them holds a turn: the host is free again at once.
        await asyncio.wait_for(gate.acquire("news.example", 1, 0.0), 5)
        gate.release("news.example")
        return "free"

    assert run_async(scenario) == "free"
    assert len(gate) == 0


def test_idle_hosts_are_forgotten() -> None:
    gate = HostGate()

    async def scenario() -> tuple[int, int, int]:
        for number in range(10_000):
            host = f"site{number}.example"
            await gate.acquire(host, 2, 0.0)
            gate.release(host)
        after_many = len(gate)
        await gate.acquire("delayed.example", 2, 0.3)
        gate.release("delayed.example")
        # Remembered while its delay runs (the next request must keep its distance) ...
        within_delay = len(gate)
        await asyncio.sleep(0.5)
        return after_many, within_delay, len(gate)  # ... and forgotten after it

    assert run_async(scenario) == (0, 1, 0)


def test_polls_of_one_host_take_turns_and_other_hosts_go_at_once() -> None:
    gate = HostGate()

    async def scenario() -> tuple[int, list[str]]:
        running = most = 0
        order: list[str] = []
        release = asyncio.Event()

        async def poll(host: str, name: str) -> None:
            nonlocal running, most
            async with gate.poll_turn(host, 2):
                order.append(name)
                if host == "crowded.example":
                    running += 1
                    most = max(most, running)
                    await release.wait()
                    running -= 1

        crowd = [asyncio.ensure_future(poll("crowded.example", f"c{n}")) for n in range(6)]
        await asyncio.sleep(0)
        await poll("quiet.example", "q")  # not held up by the crowd
        release.set()
        await asyncio.gather(*crowd)
        return most, order

    most, order = run_async(scenario)
    assert most == 2
    assert order[:3] == ["c0", "c1", "q"]
    assert sorted(order) == ["c0", "c1", "c2", "c3", "c4", "c5", "q"]
    assert len(gate) == 0


# -- real polls on loopback ----------------------------------------------------------


@pytest.fixture
def two_hosts() -> Iterator[tuple[NewsSite, NewsSite]]:
    """The fixture site on 127.0.0.1 and another on 127.0.0.2 (distinct hosts)."""
    first, second = NewsSite().start(), NewsSite(host="127.0.0.2").start()
    yield first, second
    first.stop()
    second.stop()


def _quiet_sources(site: NewsSite, prefix: str, count: int, delay: float) -> list[dict[str, str]]:
    """``count`` sources on ``site``, each an empty feed answered after ``delay``."""
    site.set_content("quiet.xml", EMPTY_FEED, "application/rss+xml")
    site.script("quiet.xml", [Reply(delay=delay)])
    return [
        {"name": f"{prefix}{n}", "feed": site.url(f"quiet.xml?source={n}"), "every": "1h"}
        for n in range(count)
    ]


def _overlapped(site: NewsSite, other: NewsSite, delay: float) -> bool:
    """Whether ``other`` answered a feed while ``site`` was answering one."""
    busy = [(seen.at, seen.at + delay) for seen in site.requests_for("quiet.xml")]
    return any(
        start <= seen.at <= end for seen in other.requests_for("quiet.xml") for start, end in busy
    )


def test_many_sources_on_one_host_never_exceed_its_concurrency(
    two_hosts: tuple[NewsSite, NewsSite], tmp_path: Path
) -> None:
    """Eight sources on 127.0.0.1 polled at once by `newswatch crawl`: the host never
    has more than its 2 requests at a time; the sources on 127.0.0.2 go meanwhile."""
    crowded, other = two_hosts
    sources = _quiet_sources(crowded, "crowd", 8, 0.3) + _quiet_sources(other, "other", 2, 0.3)
    config = write_config(
        tmp_path,
        **site_config(crowded, tmp_path, sources=sources, concurrent_requests_per_domain=2),
    )
    crawl = run_newswatch(config, "crawl")
    assert crawl.returncode == 0, crawl.stderr
    assert len(crowded.requests_for("quiet.xml")) == 8
    assert crowded.most_in_flight == 2  # the cap, reached, across all eight polls
    assert len(other.requests_for("quiet.xml")) == 2
    assert _overlapped(crowded, other, 0.3)  # the other host was not made to wait


def test_polls_that_start_together_still_share_the_host(
    news_site: NewsSite, tmp_path: Path
) -> None:
    """The request gate alone, without the service's per-host poll turns: eight polls
    crawling at once through the service's runner and context (poll_source)."""
    sources = _quiet_sources(news_site, "crowd", 8, 0.3)
    config = write_config(
        tmp_path,
        **site_config(news_site, tmp_path, sources=sources, concurrent_requests_per_domain=2),
    )
    assert _poll_at_once(config) == ["ok"] * 8
    assert news_site.most_in_flight == 2


def _poll_at_once(config: Path) -> list[str]:
    """Every source of ``config`` polled at once with poll_source (the service's
    runner and context, not its per-host poll turns): each poll's error, or ok."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "poll_outcomes.py"), str(config), "--at-once"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcomes = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return sorted(outcome["error"] or "ok" for outcome in outcomes)


def test_a_poll_stopped_while_waiting_for_its_host_ends(
    news_site: NewsSite, tmp_path: Path
) -> None:
    """Four polls at once on a host that takes one request at a time, whose feed takes
    3 s, with a 1 s poll_timeout: the three waiting behind the first stop waiting when
    their time is up (no deadlock, nothing sent late), and say why."""
    sources = _quiet_sources(news_site, "crowd", 4, 3.0)
    config = write_config(
        tmp_path,
        **site_config(
            news_site,
            tmp_path,
            sources=sources,
            concurrent_requests_per_domain=1,
            poll_timeout="1s",
        ),
    )
    assert _poll_at_once(config) == [
        "ok",
        *["the crawl stopped while waiting for 127.0.0.1"] * 3,
    ]
    assert len(news_site.requests_for("quiet.xml")) == 1


def test_a_host_delay_holds_between_polls(news_site: NewsSite, tmp_path: Path) -> None:
    """``domains.<host>.delay`` apart, whichever poll a request belongs to."""
    sources = _quiet_sources(news_site, "crowd", 4, 0.0)
    config = write_config(
        tmp_path,
        **site_config(news_site, tmp_path, sources=sources, domains={"127.0.0.1": {"delay": "1s"}}),
    )
    crawl = run_newswatch(config, "crawl")
    assert crawl.returncode == 0, crawl.stderr
    starts = sorted(seen.at for seen in news_site.requests)
    assert len(news_site.requests_for("quiet.xml")) == 4, news_site.paths_requested()
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # The server notes a request a moment after it was sent: a little slack.
    assert min(gaps) >= 0.95, gaps
