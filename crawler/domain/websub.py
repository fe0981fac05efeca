"""WebSub (W3C Recommendation, 2018), the subscriber's side, as pure rules: what a
feed advertises (its hub and its ``rel="self"`` topic, from the HTTP ``Link`` header
or the document), which verification of intent newswatch agrees to, whether a
delivery's ``X-Hub-Signature`` is the HMAC of its body under the subscription's
secret, when a lease is renewed (and asked again when a hub does not answer), when
a push may poll its source, which deliveries are replays, and which hubs may be
sent a secret.

Layer 1, domain (part of crawler.domain). May import: crawler.domain only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urljoin, urlsplit

from crawler.domain.urls import is_web_url

# The signature methods the recommendation lets a hub choose (section 8).
SIGNATURE_METHODS: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
# A lease is renewed when this share of it has passed: a hub that answers a renewal
# late (or a service that was down a while) still has a fifth of the lease.
RENEW_AT_SHARE = 0.8
# A longer lease granted is taken as this long: renewed within a year, whatever it says.
MAX_LEASE_SECONDS = 366 * 24 * 3600
# The soonest a renewal is asked for after a verification, whatever lease a hub grants
# (the lease itself is first taken as at least ``websub.min_lease``: ``planned_lease``).
MIN_RENEW_DELAY = timedelta(seconds=1)
# A renewal the hub took but never verified is asked again after this long, doubling
# with each unanswered one up to the cap: a silent hub is not asked at every upkeep.
RENEW_RETRY = timedelta(minutes=10)
RENEW_RETRY_CAP = timedelta(hours=6)
# A delivery whose body was already taken for the same subscription this recently is
# a replay (or a hub's retry): answered and counted, but no reason to poll again.
REPLAY_WINDOW = timedelta(hours=1)
MAX_REMEMBERED_BODIES = 64  # per subscription: the newest ones are the ones replayed
# The longest hub or topic URL kept (the size of the database's URL columns).
MAX_LINK_CHARS = 2048
# Why a delivery was refused: the label values of newswatch_websub_pushes_total.
UNSIGNED = "unsigned"
BAD_SIGNATURE = "bad_signature"
REPLAYED = "replayed"

# One link of a Link header: its target, then its parameters up to the next link.
_LINK_RE = re.compile(r"<([^>]*)>([^<]*)")
_REL_RE = re.compile(r";\s*rel\s*=\s*(?:\"([^\"]*)\"|([^;,\s]+))", re.IGNORECASE)


class SubscriptionState(StrEnum):
    """Where a subscription stands.

    ``pending``: asked, the hub has not verified yet. ``active``: verified, pushes
    are taken until the lease ends. ``denied``: the hub refused it (its reason is
    kept); not asked again for the same hub and topic. ``failed``: the hub request
    itself failed (kept as the error); asked again later. ``unsubscribing``: asked
    to end; the row goes once the hub verifies that.
    """

    PENDING = "pending"
    ACTIVE = "active"
    DENIED = "denied"
    FAILED = "failed"
    UNSUBSCRIBING = "unsubscribing"


@dataclass(frozen=True, slots=True)
class HubLinks:
    """What a feed advertises for WebSub: its hub and its own URL (``rel="self"``,
    the topic). Either may be None; both are needed to subscribe."""

    hub: str | None = None
    topic: str | None = None

    @property
    def usable(self) -> bool:
        """Both links are there, http(s) and short enough to keep."""
        return all(
            link and len(link) <= MAX_LINK_CHARS and is_web_url(link)
            for link in (self.hub, self.topic)
        )


def link_header_targets(values: list[str], base: str) -> dict[str, str]:
    """The first target of each ``rel`` in HTTP ``Link`` header values (RFC 8288),
    made absolute against ``base``: ``{"hub": …, "self": …}``."""
    found: dict[str, str] = {}
    for value in values:
        for match in _LINK_RE.finditer(value):
            target, params = match.group(1).strip(), match.group(2)
            for rel_match in _REL_RE.finditer(params):
                for rel in (rel_match.group(1) or rel_match.group(2) or "").lower().split():
                    if target and rel not in found:
                        try:
                            found[rel] = urljoin(base, target)
                        except ValueError:  # e.g. a broken IPv6 host
                            continue
    return found


def advertised_hub(header_links: dict[str, str], document: HubLinks) -> HubLinks:
    """The hub and topic to subscribe to: the HTTP ``Link`` header's win over the
    document's (the recommendation's discovery order), each on its own."""
    return HubLinks(
        hub=header_links.get("hub") or document.hub,
        topic=header_links.get("self") or document.topic,
    )


def signature_refusal(secret: str, header: str | None, body: bytes) -> str | None:
    """Why a delivery must be ignored (``UNSIGNED``, ``BAD_SIGNATURE``), or None
    when ``header`` (``sha256=<hex>``, or sha1, sha384, sha512) is the HMAC of
    ``body`` keyed with ``secret``. Compared in constant time."""
    if not header or not header.strip():
        return UNSIGNED
    method, _, given = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.strip().lower())
    if digest is None or not given.strip():
        return BAD_SIGNATURE
    expected = hmac.new(secret.encode("utf-8"), body, digest).hexdigest()
    offered = given.strip().lower().encode("ascii", errors="replace")
    return None if hmac.compare_digest(expected.encode("ascii"), offered) else BAD_SIGNATURE


def agrees_to(mode: str, state: SubscriptionState, topic: str, wanted_topic: str) -> bool:
    """Whether newswatch confirms a hub's verification of intent: the topic is the
    subscription's, and the mode is what newswatch asked for: ``subscribe`` while
    the subscription is wanted (asked, active and being renewed, or asked by a
    request whose answer was lost), ``unsubscribe`` once newswatch asked to end it."""
    if topic != wanted_topic:
        return False
    if mode == "subscribe":
        return state in {
            SubscriptionState.PENDING,
            SubscriptionState.ACTIVE,
            SubscriptionState.FAILED,
        }
    if mode == "unsubscribe":
        return state is SubscriptionState.UNSUBSCRIBING
    return False


def parse_lease(value: str | None, requested: timedelta) -> timedelta:
    """The lease a hub granted (``hub.lease_seconds``, required on a subscribe
    verification), at most a year; ``requested`` when it sent none or nonsense."""
    try:
        seconds = int((value or "").strip())
    except ValueError:
        return requested
    return timedelta(seconds=min(seconds, MAX_LEASE_SECONDS)) if seconds > 0 else requested


def renewal_time(verified_at: datetime, lease: timedelta) -> datetime:
    """When to ask the hub again for a subscription verified at ``verified_at``."""
    return verified_at + max(lease * RENEW_AT_SHARE, MIN_RENEW_DELAY)


def planned_lease(granted: timedelta, minimum: timedelta) -> timedelta:
    """The lease newswatch plans renewals and expiry by: at least ``minimum``, so that
    a hub granting a tiny lease (1 s) cannot make newswatch ask again every second."""
    return max(granted, minimum)


def renewal_retry_time(requested_at: datetime, unanswered: int) -> datetime:
    """When to ask again after ``unanswered`` renewals (at least 1) the hub took at
    ``requested_at`` but never verified: ``RENEW_RETRY``, doubled for each, capped."""
    doublings = min(max(unanswered - 1, 0), 16)
    return requested_at + min(RENEW_RETRY * 2**doublings, RENEW_RETRY_CAP)


def push_poll_time(
    now: datetime, *, not_before: datetime | None, last_push_poll: datetime | None, gap: timedelta
) -> datetime:
    """When a push may poll its source: now, unless the source is held off (a backoff
    or a server's Retry-After in force, ``not_before``) or the last poll a push asked
    for is less than ``gap`` ago; then at the end of the later of the two (a push is
    moved, never dropped)."""
    at = now
    if not_before is not None:
        at = max(at, not_before)
    if last_push_poll is not None:
        at = max(at, last_push_poll + gap)
    return at


def may_send_secret(hub: str) -> bool:
    """Whether ``hub.secret`` may go to ``hub``: over HTTPS only (the recommendation:
    a secret sent in the clear signs nothing), or to a hub on this machine (loopback,
    where nothing travels a network)."""
    parts = urlsplit(hub)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class ReplayMemory:
    """The digests of the delivery bodies each subscription took lately: a body
    delivered again within ``REPLAY_WINDOW`` is a replay. In memory: a restart forgets."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[bytes, datetime]] = {}

    def replayed(self, callback_id: str, body: bytes, now: datetime) -> bool:
        """True when ``body`` came for ``callback_id`` within the window; remembers it."""
        digest = hashlib.sha256(body).digest()
        seen = self._seen.setdefault(callback_id, {})
        for old in [key for key, at in seen.items() if now - at > REPLAY_WINDOW]:
            del seen[old]
        if digest in seen:
            return True
        seen[digest] = now
        while len(seen) > MAX_REMEMBERED_BODIES:
            del seen[next(iter(seen))]
        return False

    def forget(self, callback_id: str) -> None:
        self._seen.pop(callback_id, None)
