"""`newswatch channels test NAME`: send a test message on a channel and say how it went."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from crawler.faces.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, _load


def _channels_test(args: argparse.Namespace) -> int:
    from alerts.channel import ChannelError
    from alerts.channel_sending import make_channels, test_message

    config = _load(args)
    names = [channel.name for channel in config.channels]
    if args.name not in names:
        known = ", ".join(names) or "none"
        print(f"newswatch: no channel {args.name!r} in the configuration (channels: {known})")
        return EXIT_CONFIG
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
