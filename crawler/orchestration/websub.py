"""WebSub push (README, "WebSub push"): subscribe to the hub a feed advertises, answer
the hub's verification of intent, take a signed delivery as the sign to poll the
source now, renew leases before they end, unsubscribe when a source goes.

- After each poll that read its feed (``PollOutcome.websub``), ``poll_finished``
  compares what the feed advertises with the source's kept subscription and
  subscribes (a new unguessable callback id and a new secret), replaces (the hub or
  topic changed: unsubscribe the old, subscribe the new) or unsubscribes (the feed
  names no hub any more).
- The web UI's ``/websub/<callback id>`` (crawler/faces/web/websub.py) hands the
  hub's GETs to ``verify_intent`` and its POSTs to ``receive_push``.
- A delivery whose ``X-Hub-Signature`` is not the HMAC of its body under the
  subscription's secret is ignored, counted and logged in one line; the hub still
  gets a 2xx (the recommendation's choice: a refusal would tell a forger, try after
  try, nothing it needs, and a hub nothing it can act on).
- A verified delivery is only a hint: its body is never parsed or stored. The
  source's poll job runs as soon as the source allows (never inside a backoff or a
  server's Retry-After) and at least ``websub.push_gap`` after the last poll a push
  asked for (a push within the gap polls at its end); a delivery while that poll
  runs leads to one more poll after it, however many came. A body the subscription
  took within the last hour (a replay) polls nothing. A subscription to a plain
  ``http://`` hub elsewhere than loopback gets no secret (it would travel in the
  clear): its deliveries are unsigned hints, polled as above.
- A source is polled at the longer of its ``every`` and ``websub.safety_interval``
  (the safety net, in case a push is lost) once a signed push came for its active
  subscription, and at its normal schedule again as soon as the subscription is no
  longer active (failed, denied, lapsed, ended).
- One scheduler job per active subscription renews it when 80% of its lease (at
  least ``websub.min_lease``) has passed; a renewal the hub takes but never verifies
  is asked again after 10 minutes, doubling up to 6 hours. ``sync`` (at start,
  every few minutes and after a configuration reload) unsubscribes the sources that
  were removed or disabled, moves callbacks to a new ``web.public_url``, asks again
  after a failed request, and notices lapsed leases.

Only the all-in-one service subscribes: the scale-out workers do not report what
their polls read here.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
)
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.domain.urls import redact_url
from crawler.domain.websub import (
    REPLAYED,
    UNSIGNED,
    ReplayMemory,
    SubscriptionState,
    agrees_to,
    may_send_secret,
    parse_lease,
    planned_lease,
    renewal_retry_time,
    renewal_time,
    signature_refusal,
)
from crawler.orchestration.push_polls import POLL_JOB, PushPolls
from spiders.addresses import AddressPolicy
from spiders.hubs import HubError, ask_hub
from spiders.settings import user_agent

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from crawler.domain.config import Config, SourceConfig
    from crawler.domain.items import PollOutcome
    from crawler.domain.websub import HubLinks
    from crawler.orchestration.context import CrawlContext
    from crawler.orchestration.metrics import Metrics
    from crawler.storage.store import WebSubRecord

logger = logging.getLogger(__name__)
T = TypeVar("T")

CALLBACK_PATH = "websub/"
SYNC_JOB = "websub:sync"
RENEW_JOB = "websub:renew:{}"
SYNC_SECONDS = 300
CALLBACK_ID_BYTES = 24  # 32 URL-safe characters: the callback URL cannot be guessed
SECRET_BYTES = 32
# A subscription whose hub request failed is asked again after this long; one the
# hub never verified, after the longer wait; one being ended is forgotten after a day
# (its hub never confirmed: its deliveries then find no callback).
RETRY_FAILED = timedelta(minutes=10)
RETRY_PENDING = timedelta(hours=1)
FORGET_UNSUBSCRIBING = timedelta(days=1)


class WebSubSubscriber:
    """The service's WebSub subscriptions: kept in the store, asked of hubs, answered
    on the web UI's callback, renewed and ended.

    Takes callables for what changes while the service runs (the configuration and
    the scheduler, None before it starts).
    """

    def __init__(
        self,
        config: Callable[[], Config],
        context: CrawlContext,
        metrics: Metrics,
        scheduler: Callable[[], AsyncIOScheduler | None],
    ) -> None:
        self._config = config
        self._store = context.store
        self._database = context.database
        self._metrics = metrics
        self._scheduler = scheduler
        self._active: dict[str, datetime] = {}  # source → lease end, while verified
        self._pushed: set[str] = set()  # of those, the ones a signed push came for
        self._unanswered: dict[str, int] = {}  # renewals taken but not verified yet
        self._replays = ReplayMemory()
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listened_to: AsyncIOScheduler | None = None
        self._polls = PushPolls(config, self._store, self._database, scheduler, self._spawn)

    # -- what the service calls ------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Subscribing is on: ``websub.enabled`` and a web UI with a public URL."""
        config = self._config()
        return config.websub.enabled and config.web.enabled and config.web.public_url is not None

    def pushes(self, source: SourceConfig) -> bool:
        """True while a hub pushes ``source``: its subscription is verified, its lease
        has not ended, and a signed push came for it (a hub that verifies and never
        delivers does not slow the source down)."""
        end = self._active.get(source.name)
        return source.name in self._pushed and end is not None and end > datetime.now(UTC)

    def poll_interval(self, source: SourceConfig) -> timedelta:
        """How often ``source`` is polled: the safety net's interval while hubs push it."""
        if self.pushes(source):
            return max(source.every, self._config().websub.safety_interval)
        return source.every

    def schedule(self, scheduler: AsyncIOScheduler, now: datetime) -> None:
        """Follow the poll jobs (to coalesce pushes), and run ``sync`` now and then."""
        if scheduler is not self._listened_to:  # once (a scheduler role takes over again)
            self._listened_to = scheduler
            scheduler.add_listener(
                self._polls.job_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
            )
        scheduler.add_job(
            _logged(self.sync),
            IntervalTrigger(seconds=SYNC_SECONDS, timezone=UTC),
            id=SYNC_JOB,
            name="websub subscriptions",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )

    def sync_soon(self) -> None:
        """After a configuration reload: ``sync`` now (in the background)."""
        self._spawn(self.sync())

    def poll_finished(self, source: SourceConfig, outcome: PollOutcome) -> None:
        """After a poll: note how long the source asked to be left alone (a push
        never polls inside that), and follow what a feed read advertises, in the
        background (a poll never waits for a hub)."""
        self._polls.poll_finished(source, outcome)
        # Not from a one-shot `newswatch crawl` (no scheduler): no callback would answer.
        if outcome.websub is not None and self.enabled and self._scheduler() is not None:
            self._spawn(self.follow(source.name, outcome.websub))

    # -- the hub's requests (the web UI's callback) ------------------------------------

    async def verify_intent(
        self,
        callback_id: str,
        *,
        mode: str,
        topic: str,
        challenge: str,
        lease_seconds: str | None,
        reason: str | None,
    ) -> str | None:
        """The body that confirms a hub's verification of intent (the challenge), ""
        to acknowledge a denial, or None to refuse it (answered 404)."""
        record = await self._db(self._store.websub_by_callback, callback_id)
        if record is None:
            return None
        now = datetime.now(UTC)
        if mode == "denied" and topic == record.topic:
            reason = " ".join((reason or "no reason given").split())[:500]
            await self._db(self._store.mark_websub_denied, callback_id, reason)
            self._leave_push_mode(record.source)
            logger.warning(
                "source %s: the WebSub hub %s denied the subscription: %s",
                record.source,
                redact_url(record.hub),
                reason,
            )
            return ""
        if not challenge or not agrees_to(mode, record.state, topic, record.topic):
            logger.info(
                "source %s: refused a WebSub %s verification for a subscription that is %s",
                record.source,
                mode if mode in {"subscribe", "unsubscribe"} else "unknown",
                record.state,
            )
            return None
        if mode == "unsubscribe":
            await self._db(self._store.forget_websub_subscription, callback_id)
            logger.info("source %s: the WebSub hub confirmed the unsubscription", record.source)
            return challenge
        websub = self._config().websub
        lease = planned_lease(parse_lease(lease_seconds, websub.lease), websub.min_lease)
        await self._db(self._store.mark_websub_active, callback_id, lease, now)
        self._unanswered.pop(record.source, None)
        self._activate(record.source, now + lease, pushed=record.last_push_at is not None)
        self._schedule_renewal(record.source, renewal_time(now, lease))
        logger.info(
            "source %s: WebSub subscription to %s verified, lease %s",
            record.source,
            redact_url(record.hub),
            lease,
        )
        return challenge

    async def receive_push(
        self,
        callback_id: str,
        read_body: Callable[[], bytes | None],
        signature: str | None,
        client: str,
    ) -> int:
        """Take a delivery: poll its source when it is signed with the subscription's
        secret (or is a hint to one without a secret), as soon as the source allows.
        The subscription is looked up before ``read_body`` is called (None: too large,
        413). Returns the status to answer (2xx for any delivery to an active
        subscription, signed or not; 410 for one no longer active; 404)."""
        record = await self._db(self._store.websub_by_callback, callback_id)
        if record is None:
            return 404
        if record.state is not SubscriptionState.ACTIVE:
            self._metrics.push_received("not_active")
            return 410
        body = read_body()
        if body is None:
            return 413
        now = datetime.now(UTC)
        refusal = signature_refusal(record.secret, signature, body) if record.secret else None
        result = refusal or ("accepted" if record.secret else "hint")
        if refusal is None and self._replays.replayed(callback_id, body, now):
            result = REPLAYED
            logger.info(
                "source %s: a WebSub delivery already taken; not polled again", record.source
            )
        elif refusal is None:
            logger.info("source %s: WebSub %s from its hub; polling", record.source, result)
            if record.secret:  # a hint without a secret proves no hub pushes
                self._activate(record.source, record.lease_expires_at, pushed=True)
            await self._polls.poll(record.source)
        else:
            logger.warning(
                "source %s: ignored a WebSub delivery from %s: %s",
                record.source,
                client,
                "no X-Hub-Signature"
                if refusal == UNSIGNED
                else "its X-Hub-Signature is not the subscription's",
            )
        self._metrics.push_received(result)
        await self._db(
            self._store.record_websub_push, callback_id, accepted=refusal is None, now=now
        )
        return 202

    # -- keeping the subscriptions in line ---------------------------------------------

    async def sync(self) -> None:
        """Bring every kept subscription in line with the configuration and time."""
        records = await self._db(self._store.websub_subscriptions)
        config = self._config()
        wanted = {s.name for s in config.sources if s.enabled} if self.enabled else set()
        for record in records:
            try:
                if self._upkeep(record, wanted, datetime.now(UTC)) is None:
                    continue
                async with self._lock(record.source):  # as it is now, not as listed
                    fresh = await self._db(self._store.websub_by_callback, record.callback_id)
                    now = datetime.now(UTC)
                    if fresh is not None and (upkeep := self._upkeep(fresh, wanted, now)):
                        await self._settle(fresh, upkeep)
            except Exception:  # one subscription's trouble never stops the others
                logger.exception("source %s: WebSub upkeep failed", record.source)
        kept = await self._db(self._store.websub_subscriptions)
        active = {r.source for r in kept if r.state is SubscriptionState.ACTIVE}
        for name in set(self._active) - active:  # failed, denied, ended meanwhile
            self._leave_push_mode(name)

    def _upkeep(self, record: WebSubRecord, wanted: set[str], now: datetime) -> str | None:
        """What ``record`` needs now, if anything (the names of ``_settle``'s cases)."""
        state, since = record.state, now - record.requested_at
        base = self._callback_base()
        if state is SubscriptionState.UNSUBSCRIBING:
            return "forget" if since >= FORGET_UNSUBSCRIBING else None
        if record.source not in wanted:
            return "unsubscribe"
        if base is not None and not record.callback.startswith(base):
            return "move"
        if state is SubscriptionState.ACTIVE and record.lease_expires_at is not None:
            return "lapsed" if record.lease_expires_at <= now else "active"
        if (state is SubscriptionState.FAILED and since >= RETRY_FAILED) or (
            state is SubscriptionState.PENDING and since >= RETRY_PENDING
        ):
            return "retry"
        return None

    async def _settle(self, record: WebSubRecord, upkeep: str) -> None:
        name = record.source
        if upkeep == "forget":
            await self._db(self._store.forget_websub_subscription, record.callback_id)
        elif upkeep == "unsubscribe":
            logger.info("source %s: no longer polled; ending its WebSub subscription", name)
            await self._unsubscribe(record)
        elif upkeep == "move":
            logger.info("source %s: web.public_url changed; subscribing again", name)
            await self._unsubscribe(record)
            await self._subscribe(name, record.hub, record.topic)
        elif upkeep == "lapsed":
            logger.warning("source %s: its WebSub lease lapsed; asking again", name)
            self._leave_push_mode(name)
            await self._request(record, "subscribe", SubscriptionState.PENDING)
        elif upkeep == "active" and record.lease_expires_at is not None:
            # After a start: pushed (if a push came), and renewed in time; a renewal
            # the hub took but has not verified is asked again only after a while.
            self._activate(name, record.lease_expires_at, pushed=record.last_push_at is not None)
            verified = record.verified_at or record.requested_at
            at = renewal_time(verified, record.lease_expires_at - verified)
            if record.requested_at > verified:
                unanswered = max(self._unanswered.get(name, 0), 1)
                at = max(at, renewal_retry_time(record.requested_at, unanswered))
            self._schedule_renewal(name, at)
        elif upkeep == "retry":
            await self._request(record, "subscribe", SubscriptionState.PENDING)

    async def follow(self, name: str, links: HubLinks) -> None:
        """Make ``name``'s subscription match what its feed advertises now."""
        async with self._lock(name):
            config = self._config()
            enabled = any(s.name == name and s.enabled for s in config.sources)
            wanted = links if self.enabled and enabled and links.usable else None
            current = await self._db(self._store.websub_subscription, name)
            base = self._callback_base()
            if current is not None:
                same = wanted is not None and (current.hub, current.topic) == (
                    wanted.hub,
                    wanted.topic,
                )
                if same and base is not None and current.callback.startswith(base):
                    if current.state is SubscriptionState.FAILED and (
                        datetime.now(UTC) - current.requested_at >= RETRY_FAILED
                    ):
                        await self._request(current, "subscribe", SubscriptionState.PENDING)
                    return
                why = "advertises another hub or topic" if wanted else "advertises no hub now"
                logger.info("source %s: its feed %s; ending its WebSub subscription", name, why)
                await self._unsubscribe(current)
            if wanted is not None and wanted.hub and wanted.topic:
                await self._subscribe(name, wanted.hub, wanted.topic)

    async def _subscribe(self, name: str, hub: str, topic: str) -> None:
        base = self._callback_base()
        if base is None:
            return
        callback_id = secrets.token_urlsafe(CALLBACK_ID_BYTES)
        # No secret for a plain-http hub elsewhere: it would travel in the clear.
        secret = secrets.token_urlsafe(SECRET_BYTES) if may_send_secret(hub) else ""
        if not secret:
            logger.info(
                "source %s: WebSub hub %s is plain http: no secret sent, its pushes are hints",
                name,
                redact_url(hub),
            )
        record = await self._db(
            self._store.add_websub_subscription,
            source=name,
            hub=hub,
            topic=topic,
            callback_id=callback_id,
            callback=base + callback_id,
            secret=secret,
            now=datetime.now(UTC),
        )
        logger.info(
            "source %s: subscribing to WebSub hub %s for %s",
            name,
            redact_url(hub),
            redact_url(topic),
        )
        await self._request(record, "subscribe", SubscriptionState.PENDING)

    async def _unsubscribe(self, record: WebSubRecord) -> None:
        """End ``record``: ask its hub (when it may be subscribed there), or forget it."""
        self._leave_push_mode(record.source)
        self._replays.forget(record.callback_id)
        if record.state in {SubscriptionState.DENIED, SubscriptionState.FAILED}:
            await self._db(self._store.forget_websub_subscription, record.callback_id)
            return
        await self._request(record, "unsubscribe", SubscriptionState.UNSUBSCRIBING)

    async def _renew(self, name: str) -> None:
        async with self._lock(name):
            record = await self._db(self._store.websub_subscription, name)
            if record is not None and record.state is SubscriptionState.ACTIVE:
                unanswered = self._unanswered.get(name, 0) + 1
                self._unanswered[name] = unanswered
                logger.info("source %s: renewing its WebSub subscription", name)
                # Asked again later unless the hub verifies first (which replaces this).
                retry = renewal_retry_time(datetime.now(UTC), unanswered)
                self._schedule_renewal(name, retry)
                await self._request(record, "subscribe", SubscriptionState.ACTIVE)

    async def _request(self, record: WebSubRecord, mode: str, state: SubscriptionState) -> None:
        """Ask the hub for ``mode``; ``state`` is kept from before the request (the
        hub may verify before it answers)."""
        config = self._config()
        now = datetime.now(UTC)
        await self._db(self._store.mark_websub_requested, record.callback_id, state, now)
        form = {"hub.mode": mode, "hub.topic": record.topic, "hub.callback": record.callback}
        if mode == "subscribe":
            if record.secret:
                form["hub.secret"] = record.secret
            form["hub.lease_seconds"] = str(int(config.websub.lease.total_seconds()))
        # The hub is judged by the zone of the source's own URL, never the feed's
        # word: a removed source's is still on its row.
        source = next((s for s in config.sources if s.name == record.source), None)
        if source is not None:
            feed = source.url
        else:
            row = await self._db(self._store.source_state, record.source)
            feed = row.url if row is not None else ""
        policy = AddressPolicy(
            deny_private=config.fetch_policy.deny_private_addresses,
            networks=config.fetch_policy.deny_networks,
        )
        try:
            await ask_hub(
                record.hub,
                form,
                policy=policy,
                feed=feed,
                user_agent=user_agent(config.user_agent_contact),
            )
        except HubError as error:
            logger.warning("source %s: WebSub %s failed: %s", record.source, mode, error)
            renewing = state is SubscriptionState.ACTIVE
            failed = mode == "subscribe" and not renewing
            await self._db(
                self._store.note_websub_error, record.callback_id, str(error), failed=failed
            )
            if failed:
                self._leave_push_mode(record.source)
            # A renewal's own retry (``_renew``) stays: still active until the lease ends.

    # -- pieces ------------------------------------------------------------------------

    def _callback_base(self) -> str | None:
        """``<web.public_url>/websub/``, or None when subscribing is off."""
        if not self.enabled:
            return None
        return str(self._config().web.public_url).rstrip("/") + "/" + CALLBACK_PATH

    def _activate(self, name: str, lease_end: datetime | None, *, pushed: bool) -> None:
        """``name``'s subscription is verified until ``lease_end``; ``pushed``: a
        signed push came for it (the safety net's interval then follows)."""
        before = name in self._pushed
        if lease_end is not None:
            self._active[name] = lease_end
        if pushed and name in self._active:
            self._pushed.add(name)
        if (name in self._pushed) != before:
            self._retime(name)

    def _leave_push_mode(self, name: str) -> None:
        """``name`` has no active subscription now: no renewal, its normal schedule."""
        self._active.pop(name, None)
        self._unanswered.pop(name, None)
        scheduler = self._scheduler()
        if scheduler is not None and scheduler.get_job(RENEW_JOB.format(name)) is not None:
            scheduler.remove_job(RENEW_JOB.format(name))
        if name in self._pushed:
            self._pushed.discard(name)
            self._retime(name)

    def _retime(self, name: str) -> None:
        """Give the poll job of ``name`` its interval now; a shorter one takes effect
        at once, a longer one after the poll already due (a poll at start stays)."""
        scheduler = self._scheduler()
        job = scheduler.get_job(POLL_JOB.format(name)) if scheduler is not None else None
        source = next((s for s in self._config().sources if s.name == name), None)
        if job is None or source is None or not isinstance(job.trigger, IntervalTrigger):
            return
        interval = self.poll_interval(source)
        if job.trigger.interval == interval:
            return
        changes: dict[str, Any] = {
            "trigger": IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC)
        }
        soonest = datetime.now(UTC) + interval
        if job.next_run_time is not None and job.next_run_time > soonest:
            changes["next_run_time"] = soonest
        job.modify(**changes)

    def _schedule_renewal(self, name: str, at: datetime) -> None:
        scheduler = self._scheduler()
        if scheduler is None:
            return
        scheduler.add_job(
            _logged(self._renew),
            DateTrigger(at, timezone=UTC),
            args=[name],
            id=RENEW_JOB.format(name),
            name=f"renew websub {name}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def _db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._database.run(function, *args, **kwargs)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                logger.exception("WebSub: a background task failed")

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)  # kept until done: the loop holds tasks weakly
        task.add_done_callback(self._tasks.discard)


def _logged(job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
    """A job or task that logs its crash instead of losing it."""

    async def run(*args: Any) -> None:
        try:
            await job(*args)
        except Exception:
            logger.exception("WebSub: %s failed", getattr(job, "__name__", "a task"))

    run.__name__ = getattr(job, "__name__", "websub")
    return run
