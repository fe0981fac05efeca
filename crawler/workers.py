"""Where blocking and CPU-heavy work runs, so the reactor thread only does I/O.

``DatabaseThread`` serialises every database call on one thread (SQLite allows one
writer at a time anyway, and ordered writes keep a poll's effects easy to reason
about). ``CpuPool`` runs extraction and feed parsing in worker processes, one per
core by default, or inline when ``workers`` is 0 (for debugging and profiling).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# Worker processes are recycled after this many tasks, so a page that makes a
# parser leak cannot grow a worker's memory without bound.
TASKS_PER_WORKER = 500


class DatabaseThread:
    """One thread for all database calls, awaited from the reactor's event loop."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newswatch-db")

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        future = self._executor.submit(function, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Wait for the calls already submitted (no half-done writes), then stop."""
        self._executor.shutdown(wait=True)


class CpuPool:
    """Runs pure functions in worker processes (or inline with ``workers=0``)."""

    def __init__(self, workers: int | None = None, preload: tuple[str, ...] = ()) -> None:
        count = (os.cpu_count() or 1) if workers is None else workers
        self.workers = count
        self._executor: Executor | None = None
        if count > 0:
            # forkserver: workers fork from a clean, single-threaded server process that
            # imported the parsers once, never from the reactor process with its threads.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(preload))
            self._executor = ProcessPoolExecutor(
                max_workers=count, mp_context=context, max_tasks_per_child=TASKS_PER_WORKER
            )

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            return function(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
