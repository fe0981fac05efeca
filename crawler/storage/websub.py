"""Where the WebSub subscriptions are kept (crawler/orchestration/websub.py): one row
per subscription, found by its source or by its callback id. The secret leaves this
module only inside a ``WebSubRecord``, whose repr leaves it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from crawler.domain.websub import SubscriptionState
from crawler.storage.engine import StoreBase
from crawler.storage.models import WebSubSubscription

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class WebSubRecord:
    """One subscription as kept. ``secret`` keys the deliveries' signatures: never
    logged, never shown (it is left out of the repr)."""

    callback_id: str
    source: str
    hub: str
    topic: str
    callback: str
    state: SubscriptionState
    requested_at: datetime
    verified_at: datetime | None
    lease_expires_at: datetime | None
    last_push_at: datetime | None
    pushes: int
    refused: int
    last_error: str | None
    secret: str = field(repr=False)


def _record(row: WebSubSubscription) -> WebSubRecord:
    return WebSubRecord(
        callback_id=row.callback_id,
        source=row.source,
        hub=row.hub,
        topic=row.topic,
        callback=row.callback,
        state=SubscriptionState(row.state),
        requested_at=row.requested_at,
        verified_at=row.verified_at,
        lease_expires_at=row.lease_expires_at,
        last_push_at=row.last_push_at,
        pushes=row.pushes,
        refused=row.refused,
        last_error=row.last_error,
        secret=row.secret,
    )


class WebSubQueries(StoreBase):
    """Subscriptions to WebSub hubs, by source and by callback id."""

    def websub_subscriptions(self, source: str | None = None) -> list[WebSubRecord]:
        """Every subscription (of ``source`` only, if given), oldest first, those
        being ended included."""
        query = select(WebSubSubscription).order_by(WebSubSubscription.id)
        if source is not None:
            query = query.where(WebSubSubscription.source == source)
        with self._session() as session:
            return [_record(row) for row in session.scalars(query)]

    def websub_subscription(self, source: str) -> WebSubRecord | None:
        """The subscription of ``source`` that is not being ended, if any."""
        for record in reversed(self.websub_subscriptions(source)):
            if record.state is not SubscriptionState.UNSUBSCRIBING:
                return record
        return None

    def websub_by_callback(self, callback_id: str) -> WebSubRecord | None:
        with self._session() as session:
            row = session.scalar(
                select(WebSubSubscription).where(WebSubSubscription.callback_id == callback_id)
            )
            return _record(row) if row is not None else None

    def add_websub_subscription(
        self,
        *,
        source: str,
        hub: str,
        topic: str,
        callback_id: str,
        callback: str,
        secret: str,
        now: datetime,
    ) -> WebSubRecord:
        """Keep a new subscription, ``pending`` from ``now``."""
        row = WebSubSubscription(
            callback_id=callback_id,
            source=source,
            hub=hub,
            topic=topic,
            callback=callback,
            secret=secret,
            state=SubscriptionState.PENDING.value,
            requested_at=now,
            pushes=0,
            refused=0,
        )
        with self._session.begin() as session:
            session.add(row)
        return _record(row)

    def mark_websub_requested(
        self, callback_id: str, state: SubscriptionState, now: datetime
    ) -> None:
        """The hub was (or is about to be) asked again: ``state`` from ``now``."""
        self._update(callback_id, state=state.value, requested_at=now)

    def note_websub_error(self, callback_id: str, error: str, *, failed: bool) -> None:
        """A hub request failed: keep why; ``failed`` makes the subscription
        ``failed`` (asked again later), else its state stays (an active one whose
        renewal failed is still active until its lease ends)."""
        values: dict[str, object] = {"last_error": error[:MAX_ERROR_CHARS]}
        if failed:
            values["state"] = SubscriptionState.FAILED.value
        self._update(callback_id, **values)

    def mark_websub_denied(self, callback_id: str, reason: str) -> None:
        self._update(
            callback_id, state=SubscriptionState.DENIED.value, last_error=reason[:MAX_ERROR_CHARS]
        )

    def mark_websub_active(self, callback_id: str, lease: timedelta, now: datetime) -> None:
        """The hub verified the subscription at ``now`` for ``lease``."""
        self._update(
            callback_id,
            state=SubscriptionState.ACTIVE.value,
            verified_at=now,
            lease_seconds=int(lease.total_seconds()),
            lease_expires_at=now + lease,
            last_error=None,
        )

    def record_websub_push(self, callback_id: str, *, accepted: bool, now: datetime) -> None:
        """Count a delivery: a verified one (and when), or a refused one."""
        column = WebSubSubscription.pushes if accepted else WebSubSubscription.refused
        values: dict[str, object] = {column.key: column + 1}
        if accepted:
            values["last_push_at"] = now
        with self._session.begin() as session:
            session.execute(
                update(WebSubSubscription)
                .where(WebSubSubscription.callback_id == callback_id)
                .values(values)
            )

    def forget_websub_subscription(self, callback_id: str) -> None:
        with self._session.begin() as session:
            session.execute(
                delete(WebSubSubscription).where(WebSubSubscription.callback_id == callback_id)
            )

    def _update(self, callback_id: str, **values: object) -> None:
        with self._session.begin() as session:
            session.execute(
                update(WebSubSubscription)
                .where(WebSubSubscription.callback_id == callback_id)
                .values(**values)
            )
