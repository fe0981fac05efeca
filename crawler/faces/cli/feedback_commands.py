"""`newswatch feedback show [RECIPIENT]`: what each reader's answers did — what
their votes taught per rule (the words and outlets that move stories up and
down), their muted stories and their paused or unsubscribed rules."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler.faces.cli.common import EXIT_CONFIG, EXIT_OK, _load, _open_store

if TYPE_CHECKING:
    from crawler.domain.config import Recipient
    from crawler.storage.store import Store

# Features listed each way per rule.
SHOWN_FEATURES = 8


def _feedback_show(args: argparse.Namespace) -> int:
    config = _load(args)
    recipients = config.all_recipients()
    if args.recipient:
        chosen = [r for r in recipients if r.email.lower() == args.recipient.lower()]
        if not chosen:
            known = ", ".join(r.email for r in recipients) or "none"
            print(f"newswatch: no recipient {args.recipient!r} (recipients: {known})")
            return EXIT_CONFIG
        recipients = chosen
    if not recipients:
        print("newswatch: no recipients in the configuration")
        return EXIT_OK
    store = _open_store(config)
    try:
        for recipient in recipients:
            for line in _reader_lines(store, recipient, config.feedback.learn_after):
                print(line)
    finally:
        store.close()
    return EXIT_OK


def _reader_lines(store: Store, recipient: Recipient, learn_after: int) -> list[str]:
    from alerts.learning import reader_tastes

    now = datetime.now(UTC)
    tastes = reader_tastes(store, recipient.email, recipient.rules, learn_after, now)
    lines = [recipient.email]
    for rule in recipient.rules:
        taste = tastes.get(rule)
        if taste is None:
            lines.append(f"  {rule}: no votes")
            continue
        lines.append(f"  {rule}: {taste.summary()}")
        up, down = taste.strongest(SHOWN_FEATURES)
        if taste.active:
            lines.append(f"    moves up:   {_listed(up)}")
            lines.append(f"    moves down: {_listed(down)}")
    muted = store.muted_stories(recipient.email)
    lines.append(f"  muted stories: {len(muted) or 'none'}")
    lines.extend(f"    {story.title or '(untitled)'}" for story in muted)
    held = store.held_rules(recipient.email, now)
    holds = ", ".join(
        f"{hold.rule} (until {hold.until:%Y-%m-%d %H:%M} UTC)"
        if hold.until
        else f"{hold.rule} (unsubscribed)"
        for hold in held
    )
    lines.append(f"  paused or unsubscribed: {holds or 'none'}")
    return lines


def _listed(features: list[tuple[str, float]]) -> str:
    """E.g. "parliament +1.25, outlet:Daily Wire +0.41" (nothing: "—")."""
    return ", ".join(f"{feature} {weight:+.2f}" for feature, weight in features) or "—"
