"""How each channel stands, for people: ``newswatch status``, the web UI's status
page and ``/metrics`` all read it from here, so they tell the same story.

A channel is the built-in ``email`` or a configured one; its figures come from the
delivery ledger (``Store.channel_states``), what it is and who reads it from the
configuration. A channel that is in the ledger but no longer configured is still
shown (its history stays), without a kind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from crawler.domain.items import EMAIL_CHANNEL
from crawler.domain.urls import redact_text
from crawler.storage.records import ChannelState

if TYPE_CHECKING:
    from crawler.domain.config import Config
    from crawler.storage.store import Store

# A channel's condition in a word, and the web UI's badge class for it.
BADGES = {
    "ok": "ok",
    "retrying": "failing",
    "refused": "failing",
    "waiting to be sent": "pending",
    "nothing sent yet": "idle",
    "not configured": "idle",
}


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """One channel: what it is, who reads it, and its ledger figures (``last_error``
    redacted: an error may quote a URL that carries a token)."""

    name: str
    kind: str | None  # None: in the ledger, no longer configured
    recipients: tuple[str, ...]
    ledger: ChannelState

    @property
    def condition(self) -> str:
        """``retrying`` (a delivery failed and waits for its retry), ``refused`` (the
        channel refused a delivery for good since it last took one), ``waiting to
        be sent``, ``ok``, ``nothing sent yet`` or ``not configured``; see BADGES."""
        ledger = self.ledger
        if self.kind is None:
            return "not configured"
        if ledger.retrying:
            return "retrying"
        if ledger.last_failed_at is not None and (
            ledger.last_sent_at is None or ledger.last_failed_at > ledger.last_sent_at
        ):
            return "refused"
        if ledger.unsent:
            return "waiting to be sent"
        return "ok" if ledger.last_sent_at is not None else "nothing sent yet"


def channel_kinds(config: Config) -> dict[str, str]:
    """Every channel recipients can name, by name: ``email`` and the configured ones."""
    return {EMAIL_CHANNEL: EMAIL_CHANNEL, **{c.name: c.kind for c in config.channels}}


def channel_statuses(store: Store, config: Config) -> list[ChannelStatus]:
    """Every channel in use: ``email`` when a recipient reads it or the ledger has it,
    each configured channel in the file's order, then those only the ledger knows."""
    kinds = channel_kinds(config)
    # The channels rules name read too (as ``channel:<name>``): what a throttle holds
    # back of their alerts is pending like a recipient's.
    readers = [
        (channel, recipient.email, recipient.rules)
        for recipient in [*config.all_recipients(), *config.channel_recipients()]
        for channel in recipient.channels
    ]
    states = store.channel_states(readers)
    names = [name for name in kinds if name != EMAIL_CHANNEL or name in states]
    names += sorted(set(states) - set(kinds))
    return [
        ChannelStatus(
            name=name,
            kind=kinds.get(name),
            recipients=tuple(email for channel, email, _ in readers if channel == name),
            ledger=_redacted(states.get(name, ChannelState(name))),
        )
        for name in names
    ]


def _redacted(state: ChannelState) -> ChannelState:
    if state.last_error is None:
        return state
    return replace(state, last_error=redact_text(state.last_error))
