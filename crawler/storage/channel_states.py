"""How each channel stands, from the ledger: what it sent, refused and holds unsent,
its last error, and the articles its readers have yet to get (for ``newswatch
status``, the web UI and /metrics, through ``alerts/channel_status.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, func, select

from crawler.storage.engine import StoreBase
from crawler.storage.models import Delivery, DeliveryItem
from crawler.storage.records import ChannelState
from crawler.storage.undelivered import _undelivered_counts

if TYPE_CHECKING:
    pass

# (recipient, channel) pairs per statement when counting what readers have waiting:
# each pair is one SELECT of a UNION ALL, and SQLite allows 500 of those.
_READER_BATCH = 200


class ChannelStateQueries(StoreBase):
    """Each channel's figures, read from the delivery ledger."""

    def channel_states(
        self, readers: Iterable[tuple[str, str, Sequence[str]]] = ()
    ) -> dict[str, ChannelState]:
        """How each channel stands (see ``ChannelState``): every channel in the ledger
        and every one ``readers`` names, by name.

        ``readers`` are (channel, recipient, rules): who reads what on which channel
        (from the configuration); they decide ``undelivered``, counted as
        ``pending_items`` finds it (the latest notable revision of a matched article,
        unless its story already reached the reader through another copy). The ledger
        figures are one GROUP BY each; ``undelivered`` takes one statement per set of
        rules and one per reader with new articles (see ``_undelivered_counts``).
        """
        waiting = and_(Delivery.sent_at.is_(None), Delivery.failed_at.is_(None))
        ledger = select(
            Delivery.channel,
            func.count(Delivery.sent_at).label("sent"),
            func.count(Delivery.failed_at).label("failed"),
            func.sum(case((waiting, 1), else_=0)).label("unsent"),
            func.sum(case((and_(waiting, Delivery.attempts > 0), 1), else_=0)).label("retrying"),
            func.max(Delivery.sent_at).label("last_sent_at"),
            func.max(Delivery.failed_at).label("last_failed_at"),
        ).group_by(Delivery.channel)
        unsent_articles = (
            select(Delivery.channel, func.count())
            .join(DeliveryItem, DeliveryItem.delivery_id == Delivery.id)
            .where(waiting)
            .group_by(Delivery.channel)
        )
        latest_errors = (
            select(func.max(Delivery.id))
            .where(Delivery.last_error.is_not(None))
            .group_by(Delivery.channel)
        )
        errors = select(
            Delivery.channel, Delivery.last_error, Delivery.failed_at, Delivery.created_at
        ).where(Delivery.id.in_(latest_errors))
        by_rules: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for channel, recipient, rules in readers:
            by_rules.setdefault(tuple(sorted(set(rules))), []).append((recipient, channel))
        states: dict[str, ChannelState] = {
            channel: ChannelState(channel) for pairs in by_rules.values() for _, channel in pairs
        }
        with self._session() as session:
            for row in session.execute(ledger):
                states[row.channel] = replace(
                    states.get(row.channel, ChannelState(row.channel)),
                    sent=row.sent,
                    failed=row.failed,
                    unsent=row.unsent or 0,
                    retrying=row.retrying or 0,
                    last_sent_at=_utc(row.last_sent_at),
                    last_failed_at=_utc(row.last_failed_at),
                )
            for channel, count in session.execute(unsent_articles):
                states[channel] = replace(states[channel], unsent_articles=count)
            for channel, error, failed_at, created_at in session.execute(errors):
                states[channel] = replace(
                    states[channel], last_error=error, last_error_at=_utc(failed_at or created_at)
                )
            for rules, pairs in by_rules.items():
                for start in range(0, len(pairs) if rules else 0, _READER_BATCH):
                    batch = pairs[start : start + _READER_BATCH]
                    for channel, count in _undelivered_counts(session, batch, rules).items():
                        state = states[channel]
                        states[channel] = replace(state, undelivered=state.undelivered + count)
        return states


def _utc(moment: datetime | None) -> datetime | None:
    # An aggregate (max) of a UTC column comes back naive from SQLite.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
