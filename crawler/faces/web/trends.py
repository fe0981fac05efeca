"""What the status page and the delivery history draw or sum up: each source's new
articles and each rule's matches per day over the last 30 days as sparklines
(sparklines.py), and a delivery's size and how long it took to go out.

Two grouped queries for the whole status page (crawler/storage/trends.py),
whatever the number of sources or rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from crawler.faces.web.sparklines import render_sparkline

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date

    from markupsafe import Markup

    from crawler.domain.config import Config
    from crawler.storage.store import Store

TREND_DAYS = 30
ARTICLES = ("new article", "new articles")
MATCHES = ("match", "matches")


@dataclass(frozen=True)
class StatusTrends:
    """The status page's sparklines, by source and by rule name."""

    sources: dict[str, Markup]
    rules: dict[str, Markup]


def read_status_trends(store: Store, config: Config, now: datetime) -> StatusTrends:
    """The last ``TREND_DAYS`` UTC days, today included, of every configured source
    and rule (an empty month for one with nothing). Blocking: call it off the
    reactor."""
    first_day = (now - timedelta(days=TREND_DAYS - 1)).astimezone(UTC).date()
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    articles = store.new_articles_per_source_day(since)
    matches = store.matches_per_rule_day(since)
    return StatusTrends(
        sources={
            name: render_sparkline(
                daily(articles.get(name, {}), first_day), first_day, noun=ARTICLES
            )
            for name in (source.name for source in config.sources)
        },
        rules={
            name: render_sparkline(daily(matches.get(name, {}), first_day), first_day, noun=MATCHES)
            for name in (rule.name for rule in config.rules)
        },
    )


def daily(per_day: Mapping[date, int], first_day: date, days: int = TREND_DAYS) -> list[int]:
    """``per_day``'s counts for each of ``days`` days from ``first_day`` (0 where absent)."""
    return [per_day.get(first_day + timedelta(days=n), 0) for n in range(days)]


def size_text(size: int | None) -> str:
    """A message's size as people read one: "812 B", "14.2 kB", "1.3 MB" (decimal
    units, as mail servers' SIZE limits are written); "" when not measured."""
    if size is None:
        return ""
    if size < 1000:
        return f"{size} B"
    # Rounded to one decimal: 999,950 bytes already reads as 1.0 MB, not 1000.0 kB.
    if size < 999_950:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def took_text(created: datetime | None, sent: datetime | None) -> str:
    """From created to sent: "4 s", "2 min 5 s", "3 h 10 min"; "" when not sent."""
    if created is None or sent is None:
        return ""
    seconds = max(0, round((sent - created).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
