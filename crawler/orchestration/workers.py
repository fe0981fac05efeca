"""Where blocking and CPU-heavy work runs, so the reactor thread only does I/O.

``DatabaseThread`` serialises every database call on one thread (SQLite allows one
writer at a time anyway, and ordered writes keep a poll's effects easy to reason
about). ``CpuPool`` runs extraction and feed parsing in worker processes, one per
core by default, or inline when ``workers`` is 0 (for debugging and profiling).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from crawler.domain.wording import counted

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# What the CPU pool's forkserver imports before it forks a worker: the extraction,
# dedup and feed-parsing stacks, warmed up (crawler.orchestration.preload).
PRELOADED_MODULES = ("crawler.orchestration.preload",)

# Worker processes are recycled after this many tasks, so a page that makes a
# parser leak cannot grow a worker's memory without bound. (Measured: a worker stops
# growing after its first hundred pages; the models it reads come warmed up, shared
# with the others, from the forkserver.)
TASKS_PER_WORKER = 2000
# Seconds between the attempts of a batch write that failed for a passing reason
# (SQLite still locked after its busy timeout, a PostgreSQL connection killed by a
# restart): three more tries within ~8 s, then the articles count as not stored and
# the poll does not remember the index, so the next poll fetches them again.
WRITE_RETRY_DELAYS = (0.5, 2.0, 5.0)


# glibc's mallopt parameters (malloc.h) and the size from which a block gets its own
# mapping, returned to the system as soon as it is freed.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 128 * 1024


def return_large_blocks_promptly() -> None:
    """Give every block of LARGE_BLOCK or more its own mapping, for good.

    glibc starts with that threshold but raises it each time such a block is freed,
    up to 32 MB; after a few pages the crawl's response bodies and the workers'
    parse buffers (~100-200 KB each) come from the heap, where the holes they leave
    stay with the process. Fixed, they go back to the system when freed: the
    benchmark's crawl peaks ~35 MB lower (PSS over the process tree), for a few
    more page faults. Called once per process before its threads start (the CPU
    pool's workers inherit it from their forkserver); a no-op without glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)
    mallopt(M_TRIM_THRESHOLD, LARGE_BLOCK)


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system now (glibc's malloc_trim)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def start_forkserver(preload: Sequence[str] = PRELOADED_MODULES) -> None:
    """Start the CPU pool's forkserver now, if it is not running yet.

    It spends ~1.5 s of one core importing and warming up ``preload`` before it can
    fork the first worker. The long-lived commands call this as soon as their
    configuration says they will use a pool, so that this happens on the other core
    while they import Scrapy, open the database and fetch the first feeds, instead
    of after them. ``CpuPool`` uses the same forkserver (and starts it with its
    first task otherwise).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    multiprocessing.forkserver.ensure_running()


def is_transient_database_error(error: BaseException) -> bool:
    """True for database errors that a later attempt may not meet: SQLAlchemy's
    OperationalError (locked, connection lost or killed, server restarting) or any
    error it recognised as a dropped connection. Constraint violations and bugs are
    not: repeating them changes nothing."""
    if isinstance(error, OperationalError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


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
    """Runs pure functions in worker processes (or inline with ``workers=0``).

    At most two tasks per worker are handed over at once, so pages wait (small) in
    the crawl rather than (large, copied) in the pool's queue. The pool and its
    workers are made with the first task (a crawl of sources that have not changed
    needs none), the workers on a thread of their own (``_start_workers``): tasks
    wait for them without holding up the event loop. The pool is replaced by a
    fresh one after ``TASKS_PER_WORKER`` tasks per worker, so a parser that leaks
    cannot grow the workers without bound. (Not with ``max_tasks_per_child``: on
    Python 3.11 an exiting worker is sometimes not replaced, and the pool hangs.)

    With ``idle_close``, the workers and their forkserver are let go once no task
    has been running for that long, and made again by the next task: an idle
    service then holds its own process only (the forkserver and one worker hold
    ~190 MB of PSS between them: the extraction stack and its models), for ~1.5 s
    of one core to load them again when pages come.
    """

    def __init__(
        self,
        workers: int | None = None,
        preload: tuple[str, ...] = (),
        idle_close: timedelta | None = None,
    ) -> None:
        count = (os.cpu_count() or 1) if workers is None else workers
        self.workers = count
        self.idle_close = idle_close
        self._preload = preload
        self._executor: ProcessPoolExecutor | None = None
        self._started: Future[None] = Future()
        self._starters: list[threading.Thread] = []
        self._tasks = 0
        self._retired: list[Executor] = []
        self._slots: asyncio.Semaphore | None = None
        self._shut_down = False
        self._running = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        # Done once the workers let go for idleness have exited and the forkserver
        # has stopped; a task that comes meanwhile waits for it before starting anew.
        self._releasing: Future[None] | None = None
        self._releaser: threading.Thread | None = None

    def _new_executor(self) -> tuple[ProcessPoolExecutor, Future[None]]:
        """A new pool, its workers starting; the future is done once they have."""
        # forkserver: workers fork from a clean, single-threaded server process that
        # imported the parsers once, never from the reactor process with its threads.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(self._preload))
        executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        started: Future[None] = Future()
        starter = threading.Thread(
            target=_start_workers,
            args=(executor, self.workers, started),
            name="newswatch-cpu-start",
            daemon=True,
        )
        self._starters = [*(thread for thread in self._starters if thread.is_alive()), starter]
        starter.start()
        return executor, started

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self.workers == 0:
            return function(*args)
        if self._shut_down:
            raise RuntimeError("the CPU pool is shut down")
        if self._slots is None:
            self._slots = asyncio.Semaphore(2 * self.workers)
        async with self._slots:
            self._running += 1
            self._stop_idle_clock()
            try:
                executor, started = await self._current_executor()
                if not started.done():
                    await asyncio.wrap_future(started)
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(executor, function, *args)
            finally:
                self._running -= 1
                if self._running == 0:
                    self.start_idle_clock()

    async def _current_executor(self) -> tuple[ProcessPoolExecutor, Future[None]]:
        """The pool to hand the next task to: made now if there is none (the first
        task, or the first since the workers were let go) or if it has run its
        share of tasks."""
        while self._releasing is not None:
            releasing = self._releasing
            await asyncio.wrap_future(releasing)
            if self._releasing is releasing:
                self._releasing = None
        self._tasks += 1
        if self._executor is None or self._tasks > TASKS_PER_WORKER * self.workers:
            if self._executor is not None:
                # Tasks already running finish in the old pool; it is shut down after.
                self._retired.append(self._executor)
                self._executor.shutdown(wait=False)
            self._executor, self._started = self._new_executor()
            self._tasks = 1
        return self._executor, self._started

    def start_idle_clock(self) -> None:
        """Let the workers go after ``idle_close`` seconds unless a task comes first.

        Called after each task that leaves none running, and by the service as it
        starts: a forkserver started early (``start_forkserver``) for polls that then
        find nothing new goes too. Called on the event loop's thread; not necessarily
        while it runs (the service starts from the reactor's start-up trigger).
        """
        self._stop_idle_clock()
        if self.idle_close is None or self.workers == 0 or self._shut_down:
            return
        self._idle_timer = asyncio.get_event_loop().call_later(
            self.idle_close.total_seconds(), self._let_go_if_idle
        )

    def set_idle_close(self, idle_close: timedelta | None) -> None:
        """A new idle time (a reloaded configuration), counted from now."""
        self.idle_close = idle_close
        self.start_idle_clock()

    def _stop_idle_clock(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _let_go_if_idle(self) -> None:
        self._idle_timer = None
        if self._running or self._shut_down or self._releasing is not None:
            return
        executors = [*self._retired, *([self._executor] if self._executor is not None else [])]
        if not executors and not _forkserver_running():
            return  # nothing to let go (a scheduler role, or gone already)
        self._executor, self._retired, self._tasks = None, [], 0
        releasing: Future[None] = Future()
        self._releasing = releasing
        self._releaser = threading.Thread(
            target=_release_workers,
            args=(executors, releasing),
            name="newswatch-cpu-release",
            daemon=True,
        )
        self._releaser.start()
        logger.info("extraction workers stopped after %s with nothing to extract", self.idle_close)

    def shutdown(self) -> None:
        self._shut_down = True
        if self._idle_timer is not None:
            # From any thread: a timer that still fires finds the pool shut down.
            self._idle_timer = None
        if self._releaser is not None:
            self._releaser.join()
        for executor in self._retired:
            executor.shutdown(wait=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        for starter in self._starters:
            starter.join()


def _release_workers(executors: list[Executor], done: Future[None]) -> None:
    """Stop an idle pool's workers, then its forkserver (off the event loop: it waits
    for them to exit). Their memory goes back to the system, and so does what this
    process's heap keeps free (the pages it handed over); the next task starts a
    forkserver again, which loads the extraction stack anew."""
    try:
        for executor in executors:
            executor.shutdown(wait=True)
        stop_forkserver()
        release_free_memory()
    finally:
        done.set_result(None)


def _forkserver_running() -> bool:
    return getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None) is not None


def stop_forkserver() -> None:
    """Stop this process's forkserver, if it runs; ``ensure_running`` starts it again.

    multiprocessing has no public way to stop it; ``_stop`` is what its own tests
    use (closing the pipe the server watches, then waiting for it to exit). Without
    it, the forkserver and the extraction stack it loaded stay in memory.
    """
    forkserver = multiprocessing.forkserver._forkserver
    stop = getattr(forkserver, "_stop", None)
    if stop is None:
        return
    try:
        stop()
    except OSError as error:
        logger.warning("the CPU pool's forkserver did not stop: %s", error)


def _start_workers(executor: ProcessPoolExecutor, count: int, started: Future[None]) -> None:
    """Start the pool's worker processes, off the event loop.

    The executor starts a worker when a task arrives and none is idle, and the first
    one waits for the forkserver to finish its imports (~1.5 s); the first task
    handed over from the event loop would block it that long. So the pool hands
    itself ``count`` empty tasks here, on a thread of its own, and ``run`` hands
    over nothing before this is done. (A worker that finishes its empty task first
    counts as idle, so fewer may start now; the others then start with later tasks,
    a fork of the ready forkserver taking milliseconds.)
    """
    try:
        for _ in range(count):
            executor.submit(int)
    except BaseException as error:  # shut down meanwhile, or the forkserver failed
        started.set_exception(error)
    else:
        started.set_result(None)


class BatchWriter(Generic[T, R]):
    """Collects items from many coroutines and writes them in batches.

    Each ``submit`` waits for its own result, but the write happens once per batch
    (``max_size`` items, or whatever arrived within ``max_wait`` seconds) on the
    database thread: one transaction per batch instead of one per article.
    ``max_wait`` is half a second: a batch costs a few milliseconds whatever its size
    (the lookups, the transaction, the story index catching up), and at the ~45 pages
    a second two cores extract, 50 ms made batches of two or three; the benchmark's
    database thread needed 5.0 ms of CPU per article with those, 2.8 ms with 0.5 s.

    A write that fails for a passing reason (``retry_if``) is tried again after
    each of ``retry_delays``; only then do the waiters get the error. ``write``
    must therefore be safe to repeat: ingesting is, since a repeated batch finds
    whatever a failed attempt managed to commit and treats it as already stored.
    """

    def __init__(
        self,
        write: Callable[[list[T]], list[R]],
        database: DatabaseThread,
        *,
        max_size: int = 50,
        max_wait: float = 0.5,
        retry_delays: Sequence[float] = WRITE_RETRY_DELAYS,
        retry_if: Callable[[BaseException], bool] = is_transient_database_error,
    ) -> None:
        self._write = write
        self._database = database
        self.max_size = max_size
        self.max_wait = max_wait
        self.retry_delays = tuple(retry_delays)
        self._retry_if = retry_if
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait, self._flush)
        return await future

    async def drain(self) -> None:
        """Write what is pending and wait for every write in flight."""
        self._flush()
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        attempt = 0
        while True:
            try:
                results = await self._database.run(self._write, items)
                break
            except Exception as error:
                if attempt >= len(self.retry_delays) or not self._retry_if(error):
                    for _item, future in batch:  # every waiter learns it was not written
                        if not future.done():
                            future.set_exception(error)
                    return
                delay = self.retry_delays[attempt]
                attempt += 1
                logger.warning(
                    "database write of %s failed (%s); trying again in %.1fs (retry %d of %d)",
                    counted(len(items), "item"),
                    _first_line(error),
                    delay,
                    attempt,
                    len(self.retry_delays),
                )
                await asyncio.sleep(delay)
        for (_item, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _first_line(error: BaseException) -> str:
    """The gist of a database error: its first line, without the SQL and parameters."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
