"""The ``feed`` channel: a private Atom feed per recipient, served by the web UI.

Nothing leaves the machine. Delivering into a feed is recording the delivery in the
ledger: ``FeedChannel.send`` succeeds at once, so the delivery is marked sent, and
the feed is read back from the ledger (``alerts/atom.py``). Its URL carries a token
that is an HMAC of (channel, recipient) under the service's own key: unguessable,
stable across restarts and processes, and holding no address.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from alerts.channel import ChannelMessage
    from crawler.domain.config import Config, Recipient
    from crawler.domain.config.channels import ChannelConfig

FEED_PATH = "/feeds/"


class FeedChannel:
    """A feed: ``send`` has nothing to send, and the ledger records the delivery."""

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, message: ChannelMessage) -> None:
        """Accepted at once: the feed is built from the ledger when it is read."""


@dataclass(frozen=True)
class FeedAddress:
    """One (feed channel, recipient) pair and the token of its URL."""

    channel: ChannelConfig
    recipient: Recipient
    token: str


def feed_token(key: bytes, channel: str, recipient: str) -> str:
    """The token of a recipient's feed URL: hex HMAC-SHA256 of (channel, recipient)
    under ``key``. Changing the channel's name or the address gives a new URL."""
    message = f"newswatch feed\n{channel}\n{recipient.lower()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def feed_addresses(config: Config, key: bytes) -> list[FeedAddress]:
    """Every (feed channel, recipient who lists it) pair of the configuration."""
    feeds = {channel.name: channel for channel in config.channels if channel.kind == "feed"}
    return [
        FeedAddress(feeds[name], recipient, feed_token(key, name, recipient.email))
        for recipient in config.all_recipients()
        for name in recipient.channels
        if name in feeds
    ]


def find_feed(config: Config, key: bytes, token: str) -> FeedAddress | None:
    """The feed whose token ``token`` is, or None. Every token is compared in
    constant time, and all of them, so the answer's timing tells nothing."""
    offered = token.encode("utf-8", errors="replace")
    found = None
    for address in feed_addresses(config, key):
        if hmac.compare_digest(address.token.encode(), offered):
            found = address
    return found


def web_root(config: Config) -> str:
    """Where readers reach the web UI: ``web.public_url``, else its bind address."""
    web = config.web
    if web.public_url is not None:
        return str(web.public_url).rstrip("/")
    host = f"[{web.host}]" if ":" in web.host else web.host
    return f"http://{host}:{web.port}"


def feed_url(config: Config, token: str, rule: str | None = None) -> str:
    """The URL of a feed (of one of its rules when ``rule`` is given)."""
    query = f"?{urlencode({'rule': rule})}" if rule else ""
    return f"{web_root(config)}{FEED_PATH}{token}{query}"
