"""Scale-out coordination: what the scheduler and worker processes share.

Two engines the user already runs hold the shared state (docs/scaling.md):

- **PostgreSQL** holds the articles, the sources' poll state and the digests, as in
  the all-in-one mode, and elects the active scheduler: ``LeaderLock`` takes a
  session-level advisory lock on a connection of its own.
- **Redis** holds the crawl frontier. Every key starts with ``cluster.queue_prefix``
  (``P`` below), so several installs (or test runs) share one Redis:

  ====================  ======  ==========================================================
  ``P:polls``           list    poll jobs, JSON ``{source, poll, enqueued}`` (PollQueue)
  ``P:queued``          set     sources with a job waiting in ``P:polls`` (one at most)
  ``P:ticket:<source>`` string  set when a poll is enqueued, gone after 0.9 × its shortest interval:
                                a new leader does not poll again what the old one just did
  ``P:lease:<source>``  string  the id of the poll running for the source (one at a time)
  ``P:poll:<id>``       hash    the poll's ledger: links found, settled, pending (PollLedger)
  ``P:requests``        zset    scrapy-redis's request queue, by priority
  ``P:dupefilter``      zset    request fingerprints → when queued (they expire)
  ``P:workers``         set     worker ids
  ``P:worker:<id>``     string  a worker's heartbeat, expires when it stops beating
  ``P:inflight:<id>``   hash    requests a worker took from the queue and has not settled:
                                put back in the queue when its heartbeat expires
  ``P:slots:<host>``    zset    one lease per request in flight to the host, all workers
  ``P:leader``          string  the active scheduler's id (for ``newswatch status``)
  ====================  ======  ==========================================================

Nothing here crawls: crawler/orchestration/roles.py runs the roles, spiders/cluster.py the worker's
spider, its scrapy-redis scheduler and the per-host politeness middleware.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import redis

from crawler.domain.failures import FailureClass
from crawler.domain.items import ChallengeSeen, FetchState, PollOutcome

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import psycopg

logger = logging.getLogger(__name__)

# Socket timeouts of the coordination clients: a Redis that does not answer fails a
# call in seconds instead of hanging the reactor.
REDIS_TIMEOUT_SECONDS = 5.0
# A poll enqueued less than this share of its interval ago is not enqueued again.
TICKET_SHARE = 0.9
# A running poll keeps its source's lease while its links settle; a poll that makes
# no progress for this long (its worker died after taking the last link) frees it.
POLL_LEASE_SECONDS = 600
# A poll's ledger outlives any poll by far.
LEDGER_TTL_SECONDS = 24 * 3600
# Worker heartbeats: beat every HEARTBEAT_SECONDS; a worker silent for
# WORKER_TTL_SECONDS is dead and the requests it held go back in the queue.
HEARTBEAT_SECONDS = 2.0
WORKER_TTL_SECONDS = 8.0

COUNTERS = (
    "entries",
    "new_urls",
    "stored",
    "copies",
    "duplicates",
    "revised",
    "skipped",
    "page_errors",
    "challenges",
)
FLAGS = ("deferred", "not_modified", "unchanged")


@dataclass(frozen=True)
class ClusterKeys:
    """The Redis key names of one install (see the module docstring)."""

    prefix: str

    @property
    def polls(self) -> str:
        return f"{self.prefix}:polls"

    @property
    def queued(self) -> str:
        return f"{self.prefix}:queued"

    @property
    def requests(self) -> str:
        return f"{self.prefix}:requests"

    @property
    def dupefilter(self) -> str:
        return f"{self.prefix}:dupefilter"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def leader(self) -> str:
        return f"{self.prefix}:leader"

    def ticket(self, source: str) -> str:
        return f"{self.prefix}:ticket:{source}"

    def lease(self, source: str) -> str:
        return f"{self.prefix}:lease:{source}"

    def poll(self, poll_id: str) -> str:
        return f"{self.prefix}:poll:{poll_id}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def inflight(self, worker_id: str) -> str:
        return f"{self.prefix}:inflight:{worker_id}"

    def slots(self, host: str) -> str:
        return f"{self.prefix}:slots:{host}"


def connect_redis(url: str, *, decode: bool = True) -> redis.Redis:
    """A Redis client with short timeouts (strings in and out unless ``decode`` is off)."""
    return redis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


# -- poll jobs -------------------------------------------------------------------------

_ENQUEUE = """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[4]) then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[2])
return 1
"""

_POP_JOB = """
local job = redis.call('LPOP', KEYS[1])
if not job then return false end
redis.call('SREM', KEYS[2], cjson.decode(job)['source'])
return job
"""

_REFRESH_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_DELETE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class PollJob:
    """One poll of one source, as the active scheduler hands it to the workers."""

    source: str
    poll: str
    enqueued: float  # Unix time

    def to_json(self) -> str:
        return json.dumps({"source": self.source, "poll": self.poll, "enqueued": self.enqueued})

    @classmethod
    def from_json(cls, text: str) -> PollJob:
        data = json.loads(text)
        return cls(str(data["source"]), str(data["poll"]), float(data["enqueued"]))


class PollQueue:
    """Poll jobs (scheduler → workers) and the per-source lease that keeps two polls
    of one source from running at once."""

    def __init__(self, client: redis.Redis, keys: ClusterKeys) -> None:
        self.client = client
        self.keys = keys
        self._enqueue = client.register_script(_ENQUEUE)
        self._pop = client.register_script(_POP_JOB)
        self._refresh = client.register_script(_REFRESH_IF_OWNER)
        self._delete = client.register_script(_DELETE_IF_OWNER)

    def enqueue(self, source: str, shortest: timedelta) -> PollJob | None:
        """Hand a poll of ``source`` to the workers, unless a job for it is still
        waiting or one was enqueued less than 0.9 × ``shortest`` ago (by this
        scheduler or the one before it; ``shortest``: the soonest the source may be
        polled again). Returns the job, or None when it was not needed."""
        job = PollJob(source, uuid.uuid4().hex, time.time())
        ticket_ms = max(1000, int(shortest.total_seconds() * 1000 * TICKET_SHARE))
        added = self._enqueue(
            keys=[self.keys.ticket(source), self.keys.queued, self.keys.polls],
            args=[source, job.to_json(), job.poll, ticket_ms],
        )
        return job if added else None

    def pop(self) -> PollJob | None:
        """The oldest waiting job, or None."""
        text = self._pop(keys=[self.keys.polls, self.keys.queued])
        return PollJob.from_json(text) if text else None

    def waiting(self) -> int:
        return int(self.client.llen(self.keys.polls))

    def take_lease(self, source: str, poll: str) -> bool:
        """True when no other poll of ``source`` runs; the source is then ``poll``'s."""
        return bool(self.client.set(self.keys.lease(source), poll, nx=True, ex=POLL_LEASE_SECONDS))

    def refresh_lease(self, source: str, poll: str) -> None:
        self._refresh(keys=[self.keys.lease(source)], args=[poll, POLL_LEASE_SECONDS])

    def release_lease(self, source: str, poll: str) -> None:
        self._delete(keys=[self.keys.lease(source)], args=[poll])


# -- the poll ledger ---------------------------------------------------------------------


def outcome_delta(
    outcome: PollOutcome, flushed: PollOutcome
) -> tuple[dict[str, int], dict[str, str]]:
    """What changed in ``outcome`` since ``flushed``, as ledger increments and fields."""
    changes = {name: getattr(outcome, name) - getattr(flushed, name) for name in COUNTERS}
    changes |= {name: 1 for name in FLAGS if getattr(outcome, name) and not getattr(flushed, name)}
    fields: dict[str, str] = {}
    if outcome.error is not None and outcome.error != flushed.error:
        fields["error"] = outcome.error
        fields["error_class"] = str(outcome.error_class or "")
        fields["status"] = str(outcome.status or "")
    if outcome.challenge is not None and outcome.challenge != flushed.challenge:
        fields["challenge"] = json.dumps(dataclasses.astuple(outcome.challenge))
    if outcome.retry_after is not None and outcome.retry_after != flushed.retry_after:
        fields["retry_after"] = repr(outcome.retry_after)
    if outcome.state != flushed.state:
        fields["state"] = json.dumps(
            dataclasses.astuple(outcome.state) if outcome.state is not None else None
        )
    return {name: value for name, value in changes.items() if value}, fields


def outcome_from_ledger(source: str, fields: Mapping[str, str]) -> PollOutcome:
    """The poll's outcome as every worker that took part in it recorded it."""
    outcome = PollOutcome(source=source)
    for name in COUNTERS:
        setattr(outcome, name, int(fields.get(name, 0)))
    for name in FLAGS:
        setattr(outcome, name, int(fields.get(name, 0)) > 0)
    outcome.error = fields.get("error")
    if fields.get("error_class"):
        outcome.error_class = FailureClass(fields["error_class"])
    if fields.get("status"):
        outcome.status = int(fields["status"])
    if "challenge" in fields:
        outcome.challenge = ChallengeSeen(*json.loads(fields["challenge"]))
    if "retry_after" in fields:
        outcome.retry_after = float(fields["retry_after"])
    state = json.loads(fields["state"]) if "state" in fields else None
    outcome.state = FetchState(*state) if state is not None else None
    return outcome


class PollLedger:
    """Per-poll accounting shared by the workers: a Redis hash per poll.

    ``pending`` counts the poll's requests not settled yet (the index first, then
    every request a callback yields). Each settle applies what the callback changed
    and ``added - 1`` to ``pending`` in one transaction, together with removing the
    request from its worker's in-flight record; the worker whose settle brings
    ``pending`` to 0 records the poll in the database.
    """

    def __init__(self, client: redis.Redis, keys: ClusterKeys) -> None:
        self.client = client
        self.keys = keys

    def open(self, job: PollJob) -> None:
        key = self.keys.poll(job.poll)
        with self.client.pipeline() as pipe:
            pipe.hset(
                key, mapping={"source": job.source, "started": repr(time.time()), "pending": 1}
            )
            pipe.expire(key, LEDGER_TTL_SECONDS)
            pipe.execute()

    def settle(
        self,
        poll: str,
        changes: Mapping[str, int],
        fields: Mapping[str, str],
        added: int,
        inflight: tuple[str, str] | None = None,
        fingerprint: str | None = None,
    ) -> int:
        """Apply one settled request; returns the poll's pending requests after it.

        ``inflight`` is (key, token) of the request's in-flight record, removed in
        the same transaction: a request is either settled or still in flight. Its
        dupefilter ``fingerprint`` goes too: the same URL may be queued again.
        """
        key = self.keys.poll(poll)
        with self.client.pipeline() as pipe:
            for name, value in changes.items():
                pipe.hincrby(key, name, value)
            if fields:
                pipe.hset(key, mapping=dict[Any, str](fields))
            if inflight is not None:
                pipe.hdel(*inflight)
            if fingerprint is not None:
                pipe.zrem(self.keys.dupefilter, fingerprint)
            pipe.hincrby(key, "pending", added - 1)
            pipe.expire(key, LEDGER_TTL_SECONDS)
            results = pipe.execute()
        return int(results[-2])

    def read(self, poll: str) -> tuple[str, PollOutcome, float] | None:
        """(source, outcome, started) of a poll, or None if its ledger is gone."""
        # The client decodes responses (connect_redis): keys and values are str.
        fields = cast("dict[str, str]", self.client.hgetall(self.keys.poll(poll)))
        if "source" not in fields:
            return None
        return (
            fields["source"],
            outcome_from_ledger(fields["source"], fields),
            float(fields.get("started", time.time())),
        )

    def close(self, poll: str) -> None:
        self.client.delete(self.keys.poll(poll))


# -- worker membership and in-flight requests --------------------------------------------

# Take the first request of the queue and note it in the worker's in-flight hash, as
# "<score>\n<request>", under a token: one step, so a request is always somewhere.
TAKE_REQUEST = """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return false end
redis.call('ZREM', KEYS[1], first[1])
redis.call('HSET', KEYS[2], ARGV[1], first[2] .. '\\n' .. first[1])
return first[1]
"""

# Put every request of a (dead) worker's in-flight hash back in the queue.
_REQUEUE = """
local entries = redis.call('HGETALL', KEYS[1])
local moved = 0
for i = 2, #entries, 2 do
  local value = entries[i]
  local cut = string.find(value, '\\n', 1, true)
  redis.call('ZADD', KEYS[2], tonumber(string.sub(value, 1, cut - 1)),
             string.sub(value, cut + 1))
  moved = moved + 1
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return moved
"""


class Membership:
    """A worker's heartbeat, and the recovery of the requests a dead worker held."""

    def __init__(self, client: redis.Redis, keys: ClusterKeys, worker_id: str) -> None:
        self.client = client
        self.keys = keys
        self.worker_id = worker_id
        self._requeue = client.register_script(_REQUEUE)

    @property
    def inflight_key(self) -> str:
        return self.keys.inflight(self.worker_id)

    def beat(self) -> None:
        with self.client.pipeline() as pipe:
            pipe.sadd(self.keys.workers, self.worker_id)
            pipe.set(self.keys.worker(self.worker_id), "1", px=int(WORKER_TTL_SECONDS * 1000))
            pipe.execute()

    def reap(self) -> dict[str, int]:
        """Requeue what workers that stopped beating held; returns {worker: requests}."""
        reaped: dict[str, int] = {}
        for worker in cast("set[str]", self.client.smembers(self.keys.workers)):
            if worker == self.worker_id or self.client.exists(self.keys.worker(worker)):
                continue
            reaped[worker] = self.requeue(worker)
        return reaped

    def requeue(self, worker: str) -> int:
        """Put ``worker``'s in-flight requests back in the queue (atomically: two
        reapers never both do it); forget the worker."""
        return int(
            self._requeue(
                keys=[self.keys.inflight(worker), self.keys.requests, self.keys.workers],
                args=[worker],
            )
        )

    def leave(self) -> int:
        """On a clean stop: what this worker still held goes back in the queue."""
        moved = self.requeue(self.worker_id)
        self.client.delete(self.keys.worker(self.worker_id))
        return moved


def new_worker_id(host: str, pid: int) -> str:
    """``<host>-<pid>-<random>``: readable in logs, unique across restarts."""
    return f"{host}-{pid}-{uuid.uuid4().hex[:6]}"


# -- the active scheduler ----------------------------------------------------------------


def lock_key(name: str) -> int:
    """A PostgreSQL advisory lock's 64-bit key for ``name``."""
    digest = hashlib.sha256(f"newswatch {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def psycopg_conninfo(database_url: str) -> str:
    """A libpq URL from the SQLAlchemy one (``postgresql+psycopg://…``)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def startup_lock(database_url: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while this process migrates the schema and
    syncs the sources: processes started together do it one after the other (two
    migrations at once on a new database fail on the tables the other made)."""
    import psycopg

    key = lock_key("schema migration")
    with psycopg.connect(psycopg_conninfo(database_url), autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


class LeaderLock:
    """One active scheduler among several: a PostgreSQL session-level advisory lock,
    held on a connection of its own (not from the pool).

    Every ``interval`` (a third of the failover bound) a standby tries to take the
    lock and the holder checks that its connection still answers. The holder
    counts as leader only for ``valid_for`` (half the bound) after its last good
    check, and the server ends the lock's session when it has been idle for two
    thirds of the bound (``idle_session_timeout``), so a holder that hangs or loses
    its network has stopped acting before the server frees the lock. A holder that
    dies outright frees it at once (its connection closes); a standby then takes
    over at its next try: within ``interval``, and within the bound in every case.
    The blocking calls run in a thread, never on the reactor.
    """

    def __init__(self, database_url: str, prefix: str, failover: timedelta) -> None:
        self.conninfo = psycopg_conninfo(database_url)
        self.key = lock_key(f"scheduler {prefix}")  # one per install
        self.failover = failover.total_seconds()
        self.interval = max(1.0, self.failover / 3)
        self.valid_for = self.failover / 2
        self._connection: psycopg.Connection[Any] | None = None
        self._held = False
        self._confirmed_at: float | None = None

    def check(self) -> bool:
        """Take the lock or confirm it is still ours (blocking); True while leader."""
        import psycopg

        try:
            if self._connection is None or self._connection.closed:
                self._held = False
                self._connection = self._connect()
            if self._held:
                self._connection.execute("SELECT 1")
            else:
                row = self._connection.execute(
                    "SELECT pg_try_advisory_lock(%s)", (self.key,)
                ).fetchone()
                self._held = bool(row and row[0])
        except psycopg.Error as error:
            if self._held:
                logger.warning(
                    "scheduler lock: the database connection failed (%s); "
                    "no longer the active scheduler",
                    error,
                )
            self._drop_connection()
            return False
        if self._held:
            self._confirmed_at = time.monotonic()
        return self._held

    def is_leader(self) -> bool:
        """True if the lock was confirmed recently enough to act on it."""
        return (
            self._held
            and self._confirmed_at is not None
            and time.monotonic() - self._confirmed_at < self.valid_for
        )

    def release(self) -> None:
        import psycopg

        if self._connection is not None and not self._connection.closed and self._held:
            # A failure is harmless: closing the connection frees the lock anyway.
            with contextlib.suppress(psycopg.Error):
                self._connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._drop_connection()

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        timeout = max(1, int(self.interval))
        connection = psycopg.connect(
            self.conninfo,
            autocommit=True,
            connect_timeout=timeout,
            application_name="newswatch scheduler lock",
            keepalives=1,
            keepalives_idle=timeout,
            keepalives_interval=1,
            keepalives_count=3,
        )
        idle_ms = int(self.failover * 2000 / 3)
        connection.execute(f"SET idle_session_timeout = {idle_ms}")
        connection.execute(f"SET statement_timeout = {int(self.interval * 1000)}")
        return connection

    def _drop_connection(self) -> None:
        self._held = False
        self._confirmed_at = None
        if self._connection is not None:
            # A broken connection may fail to close; it is gone either way.
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


# -- for `newswatch status` ----------------------------------------------------------------


def cluster_status(url: str, prefix: str) -> dict[str, Any]:
    """The active scheduler, the queue lengths and the live workers (cheap reads)."""
    keys = ClusterKeys(prefix)
    client = connect_redis(url)
    try:
        workers = sorted(
            w
            for w in cast("set[str]", client.smembers(keys.workers))
            if client.exists(keys.worker(w))
        )
        return {
            "leader": client.get(keys.leader),
            "poll_jobs_waiting": int(client.llen(keys.polls)),
            "requests_queued": int(client.zcard(keys.requests)),
            "workers": workers,
        }
    finally:
        client.close()
