"""The CPU pool's workers: started by the first task, let go when idle, started again."""

from __future__ import annotations

import asyncio
import multiprocessing.forkserver
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from crawler.domain.config import ConfigError, load_config
from crawler.orchestration.workers import CpuPool, start_forkserver

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from pathlib import Path

# Long enough for a loaded machine to pass no task by mistake; the tests wait for
# the outcome, never for a time.
IDLE = timedelta(seconds=0.5)
PATIENCE = 60.0


def _alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _forkserver_pid() -> int | None:
    return multiprocessing.forkserver._forkserver._forkserver_pid


async def _until_gone(*pids: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _on_own_loop(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    # A thread of its own: another test's browser may keep this thread's loop busy.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(lambda: asyncio.run(main())).result(timeout=3 * PATIENCE)


def test_idle_workers_are_let_go_and_the_next_task_starts_them_again() -> None:
    pool = CpuPool(1, idle_close=IDLE)
    try:

        async def main() -> tuple[int, bool, bool, int, int]:
            first_worker = await pool.run(os.getpid)
            forkserver = _forkserver_pid()
            assert forkserver is not None
            await _until_gone(first_worker, forkserver)
            worker_gone, forkserver_gone = not _alive(first_worker), not _alive(forkserver)
            second_worker = await asyncio.wait_for(pool.run(os.getpid), PATIENCE)
            product = await pool.run(pow, 6, 2)
            return first_worker, worker_gone, forkserver_gone, second_worker, product

        first, worker_gone, forkserver_gone, second, product = _on_own_loop(main)
        assert worker_gone
        assert forkserver_gone
        assert second not in (first, os.getpid())
        assert _alive(second)
        assert product == 36
    finally:
        pool.shutdown()
    assert not _alive(second)


def test_a_task_longer_than_the_idle_time_is_not_cut_short() -> None:
    pool = CpuPool(1, idle_close=IDLE)
    try:

        async def main() -> tuple[int, int]:
            worker = await pool.run(os.getpid)
            # Runs for four idle times: the clock only counts while nothing runs.
            return worker, await pool.run(_sleep_then_pid, 4 * IDLE.total_seconds())

        before, during = _on_own_loop(main)
        assert during == before
    finally:
        pool.shutdown()


def test_a_forkserver_started_early_goes_when_no_page_comes() -> None:
    """``newswatch run`` starts the forkserver before its first polls; if they find
    nothing new, the idle clock the service starts lets it go too. The service
    starts the clock from the reactor's start-up trigger, before the loop runs."""
    start_forkserver(preload=())
    forkserver = _forkserver_pid()
    assert forkserver is not None
    pool = CpuPool(1, idle_close=IDLE)

    def service() -> int:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            pool.start_idle_clock()  # the loop is not running yet

            async def main() -> int:
                await _until_gone(forkserver)
                return await pool.run(pow, 2, 10)

            return loop.run_until_complete(main())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    try:
        # A thread of its own: another test's browser may keep this thread's loop busy.
        with ThreadPoolExecutor(max_workers=1) as thread:
            result = thread.submit(service).result(timeout=3 * PATIENCE)
        assert result == 1024
        assert not _alive(forkserver)
    finally:
        pool.shutdown()


def test_without_an_idle_time_the_workers_stay() -> None:
    """``workers_idle_close: null``, here set by a reload after a task armed the clock."""
    pool = CpuPool(1, idle_close=IDLE)
    try:

        async def main() -> tuple[int, int]:
            worker = await pool.run(os.getpid)  # the clock now counts IDLE
            pool.idle_close = None  # as NewswatchService.reload sets it
            pool.start_idle_clock()
            await asyncio.sleep(4 * IDLE.total_seconds())
            return worker, await pool.run(os.getpid)

        before, after = _on_own_loop(main)
        assert after == before
    finally:
        pool.shutdown()


CONFIG = """\
database: sqlite:///newswatch.db
user_agent_contact: https://example.org/newswatch
sources:
  - {name: wire, feed: "https://example.com/rss.xml"}
"""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", timedelta(minutes=2)),
        ("workers_idle_close: 30s\n", timedelta(seconds=30)),
        ("workers_idle_close: 1h\n", timedelta(hours=1)),
        ("workers_idle_close: null\n", None),
    ],
    ids=["default", "seconds", "hour", "never"],
)
def test_workers_idle_close_setting(tmp_path: Path, line: str, expected: timedelta | None) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + line, encoding="utf-8")
    assert load_config(path).workers_idle_close == expected


def test_a_zero_idle_close_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + "workers_idle_close: 0s\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "workers_idle_close" in message
    assert "line 5" in message
