"""`newswatch channels test NAME`: send a test message on a channel and say how it
went; `newswatch channels feeds`: the private feed URL of each reader."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler.domain.config import name_hint
from crawler.faces.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, _load, _open_store

if TYPE_CHECKING:
    from alerts.feed_channel import FeedAddress
    from crawler.domain.config import Config


def _channels_test(args: argparse.Namespace) -> int:
    from alerts.channel import ChannelError
    from alerts.channel_sending import make_channels, test_message

    config = _load(args)
    names = [channel.name for channel in config.channels]
    if args.name not in names:
        print(
            f"newswatch: no channel {args.name!r} in the configuration"
            + name_hint(args.name, names, "channels")
        )
        return EXIT_CONFIG
    if next(c for c in config.channels if c.name == args.name).kind == "feed":
        # Nothing is sent to a feed: readers fetch it. Where they do is the test.
        addresses = [a for a in _feed_addresses(config) if a.channel.name == args.name]
        print(f"{args.name}: a feed, nothing to send; readers fetch it from their URL:")
        _print_feeds(config, addresses)
        if not addresses:
            print(f"  (no recipient lists {args.name} in recipients[].channels)")
        return EXIT_OK
    channel = make_channels(config).get(args.name)
    if channel is None:  # make_channels logged why (its URL variable is empty)
        return EXIT_FAILED
    try:
        channel.send(test_message(args.name, config, datetime.now(UTC)))
    except ChannelError as error:
        kind = "temporary, a later try may work" if error.temporary else "refused"
        print(f"{args.name}: FAILED ({kind}): {error}")
        return EXIT_FAILED
    print(f"{args.name}: delivered")
    return EXIT_OK


def _channels_feeds(args: argparse.Namespace) -> int:
    config = _load(args)
    addresses = _feed_addresses(config)
    if not addresses:
        print("newswatch: no recipient lists a feed channel (channels[].kind: feed)")
        return EXIT_OK
    _print_feeds(config, addresses)
    return EXIT_OK


def _feed_addresses(config: Config) -> list[FeedAddress]:
    from alerts.feed_channel import feed_addresses
    from crawler.storage.store import LINK_SIGNING_KEY

    if not any(channel.kind == "feed" for channel in config.channels):
        return []
    store = _open_store(config)
    try:
        key = store.service_key(LINK_SIGNING_KEY)
    finally:
        store.close()
    return feed_addresses(config, key)


def _print_feeds(config: Config, addresses: list[FeedAddress]) -> None:
    """Each feed's URL, and one per rule of the recipient; they are credentials."""
    from alerts.feed_channel import feed_url

    for address in addresses:
        print(f"{address.channel.name}  {address.recipient.email}")
        print(f"  {feed_url(config, address.token)}")
        for rule in address.recipient.rules:
            print(f"  {feed_url(config, address.token, rule)}  (rule {rule})")
    if addresses and config.web.public_url is None:
        # The bind address may be 0.0.0.0 or port 0, and the Host check answers 421
        # to a name it does not know: say where the real address goes.
        print(
            "note: web.public_url is not set, so these URLs use the web UI's bind address "
            f"({config.web.host} port {config.web.port}); set web.public_url to the address "
            "feed readers reach"
        )
