"""The web UI's pages: status, a source's health, delivery history, digest preview
and ``/metrics`` (``/healthz`` and ``/readyz``: health.py; stories and matches:
stories.py; search and the rule workbench: workbench.py)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alerts.channel_status import BADGES, ChannelStatus, channel_statuses
from alerts.digest import preview_digests
from crawler.domain.health import RHYTHM_MIN_ARTICLES, RHYTHM_MIN_WEEKS, RHYTHM_WEEKS, Rhythm, State
from crawler.domain.items import EMAIL_CHANNEL
from crawler.domain.urls import redact_text
from crawler.faces.web.charts import DayCount, render_daily_chart
from crawler.faces.web.common import (
    DELIVERIES_SHOWN,
    DIGEST_JOB,
    HTML,
    MAX_ERROR_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    NO_TIME,
    POLL_JOB,
    PREVIEW_CSP,
    TEXT,
    Reply,
    one_line,
    safe_link,
)
from crawler.faces.web.site import Route, relative
from crawler.faces.web.trends import TREND_DAYS, read_status_trends, size_text, took_text
from crawler.faces.web.websub import subscription_view

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import date

    from twisted.web.server import Request

    from crawler.domain.config import SourceConfig
    from crawler.domain.health import Health, PollRecord
    from crawler.faces.web.site import WebUI
    from crawler.faces.web.trends import StatusTrends
    from crawler.storage.health import HealthInputs

logger = logging.getLogger(__name__)

# A source's health as a badge: bad but perhaps harmless (warning), or blind (failing).
STATE_BADGES = {
    State.OK: "ok",
    State.QUIET: "warning",
    State.DEGRADED: "warning",
    State.FAILING: "failing",
    State.BLOCKED: "failing",
    State.MOVED: "failing",
}
CHART_DAYS = 30


class Pages:
    """The pages people read, over the site's store, configuration and threads."""

    def __init__(self, site: WebUI) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/", self.status_page),
            Route("/sources/(?P<name>[^/]+)", self.source_page),
            Route("/digests", self.digests_page),
            Route("/preview", self.preview_page),
            Route("/metrics", self.metrics_page),
            Route("/favicon.ico", self.no_icon),
        ]

    async def no_icon(self, request: Request) -> Reply:
        """Browsers ask for it (a digest preview has no <link rel=icon>): no noise in logs."""
        return Reply(204, b"", "image/x-icon")

    async def metrics_page(self, request: Request) -> Reply:
        if self.site.metrics is None:
            return Reply(404, b"404 no metrics in this process\n", TEXT)
        # Scraping reads the database-backed gauges: off the reactor thread.
        data = await self.site.blocking(generate_latest, self.site.metrics.registry)
        return Reply(200, data, CONTENT_TYPE_LATEST)

    async def status_page(self, request: Request) -> Reply:
        config = self.site.config

        def read() -> tuple[
            list[dict[str, Any]],
            dict[str, int],
            int,
            dict[str, int],
            list[ChannelStatus],
            dict[str, Health],
            StatusTrends,
        ]:
            return (
                self.site.store.source_statuses(),
                self.site.store.rule_match_counts(),
                self.site.store.count_articles(),
                self.site.store.unsent_delivery_counts(),
                channel_statuses(self.site.store, config),
                self.site.store.all_health(),
                read_status_trends(self.site.store, config, datetime.now(UTC)),
            )

        rows, match_counts, articles, unsent, channels, health, trends = await self.site.blocking(
            read
        )
        now = datetime.now(UTC)
        runs = self.site.next_runs()
        by_name = {row["name"]: row for row in rows}
        sources = [
            self._source_view(
                source, by_name.get(source.name, {}), health.get(source.name), runs, now
            )
            | {"trend": trends.sources.get(source.name, "")}
            for source in self.site.config.sources
        ]
        rules = [
            {
                "name": rule.name,
                "alert": rule.alert,
                "matches": match_counts.get(rule.name, 0),
                "trend": trends.rules.get(rule.name, ""),
            }
            for rule in self.site.config.rules
        ]
        recipients = [
            {
                "email": recipient.email,
                "schedule": recipient.schedule,
                "quiet_days": ", ".join(sorted(recipient.quiet_days)),
                "timezone": recipient.timezone,
                "next": _local(
                    runs.get(DIGEST_JOB.format(recipient.email)), recipient.timezone, now
                ),
            }
            for recipient in self.site.config.all_recipients()
        ]
        totals = {
            "articles": articles,
            "sources": sum(1 for s in sources if s["enabled"]),
            "sources_ok": sum(1 for s in sources if s["state"] == "ok"),
            "matches": sum(match_counts.values()),
            "unsent": sum(unsent.values()),
        }
        return self.site.page(
            "web/status.html.j2",
            "Status",
            "/",
            sources=sources,
            rules=rules,
            recipients=recipients,
            channels=[self._channel_view(channel, now) for channel in channels],
            totals=totals,
            trend_days=TREND_DAYS,
            now=self.site.when(now),
        )

    def _channel_view(self, channel: ChannelStatus, now: datetime) -> dict[str, Any]:
        ledger = channel.ledger
        condition = channel.condition
        if condition == "retrying":
            condition = f"retrying ({ledger.retrying} waiting)"
        return {
            "name": one_line(channel.name, MAX_TITLE_CHARS),
            "kind": channel.kind or "no longer configured",
            # Every reader of email can be many: cut, like a long title.
            "recipients": one_line(", ".join(channel.recipients), MAX_TITLE_CHARS),
            "state": condition,
            "state_class": BADGES[channel.condition],
            "last_sent": self.site.when(ledger.last_sent_at, now),
            "pending": ledger.pending,
            "unsent": ledger.unsent,
            "failed": ledger.failed,
            "last_error": one_line(ledger.last_error or "", MAX_ERROR_CHARS),
            "last_error_at": self.site.when(ledger.last_error_at, now),
        }

    def _source_view(
        self,
        source: SourceConfig,
        row: dict[str, Any],
        health: Health | None,
        runs: dict[str, datetime | None],
        now: datetime,
    ) -> dict[str, Any]:
        failures = row.get("consecutive_failures") or 0
        # Redacted again: a row written before userinfo was kept out of errors.
        error = redact_text(row.get("last_error") or "") if failures else ""
        since = None
        if not source.enabled:
            state, css = "disabled", "idle"
        elif health is not None:
            state, css = health.state.value, STATE_BADGES[health.state]
            since = self.site.when(health.since, now)
            if health.state.bad:
                error = redact_text(health.reason)
        elif row.get("last_polled_at") is None:
            state, css = "not polled yet", "idle"
        elif failures:
            state, css = f"failing ({failures} in a row)", "failing"
        else:
            state, css = "ok", "ok"
        discovered = row.get("discovered_url")
        return {
            "name": one_line(source.name, MAX_TITLE_CHARS),
            "page": source_path(source.name),
            "kind": source.kind,
            "url": one_line(source.url, MAX_URL_CHARS),
            "link": safe_link(source.url),
            "discovered": one_line(discovered, MAX_URL_CHARS) if discovered else None,
            "enabled": source.enabled,
            "state": state,
            "state_class": css,
            "since": since,
            "last_poll": self.site.when(row.get("last_polled_at"), now),
            "last_success": self.site.when(row.get("last_success_at"), now),
            "next_poll": self.site.when(runs.get(POLL_JOB.format(source.name)), now)
            if source.enabled
            else NO_TIME,
            "last_error": one_line(error, MAX_ERROR_CHARS),
            "articles": row.get("articles", 0),
            "interval": one_line(row.get("poll_reason") or "", MAX_ERROR_CHARS),
        }

    async def source_page(self, request: Request, name: str) -> Reply:
        """One source: its health with the evidence, its configuration, its last
        polls, and its new articles per day beside what its rhythm expects."""
        wanted = unquote(name, errors="replace")
        source = next((s for s in self.site.config.sources if s.name == wanted), None)
        if source is None:
            return self.site.page(
                "web/message.html.j2",
                "Source not found",
                "/",
                status=404,
                message="No configured source has this name.",
            )
        now = datetime.now(UTC)
        first_day = (now - timedelta(days=CHART_DAYS - 1)).date()
        chart_start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)

        def read() -> tuple[
            tuple[Health, str | None] | None, HealthInputs | None, dict[date, int], str | None
        ]:
            store = self.site.store
            row = store.source_state(source.name)
            return (
                store.source_health(source.name),
                store.health_inputs(source.name, now),
                store.new_articles_per_day(source.name, chart_start),
                row.poll_reason if row is not None else None,
            )

        kept, inputs, per_day, interval = await self.site.blocking(read)
        websub = await self.site.blocking(self.site.store.websub_subscription, source.name)
        health = kept[0] if kept is not None else None
        polls = inputs.polls if inputs is not None else []
        rhythm = Rhythm.from_times(inputs.published if inputs is not None else [], now)
        days = [first_day + timedelta(days=n) for n in range(CHART_DAYS)]
        chart = render_daily_chart(
            [
                DayCount(
                    day, per_day.get(day, 0), rhythm.expected_on(day) if rhythm.articles else None
                )
                for day in days
            ],
            title=f"New articles per day from {one_line(source.name, MAX_TITLE_CHARS)}, "
            f"last {CHART_DAYS} days",
            chart_id="new-articles",
        )
        return self.site.page(
            "web/source.html.j2",
            f"Source {one_line(source.name, MAX_TITLE_CHARS)}",
            "/",
            source={
                "name": one_line(source.name, MAX_TITLE_CHARS),
                "kind": source.kind,
                "url": one_line(source.url, MAX_URL_CHARS),
                "link": safe_link(source.url),
                "every": _duration(source.every),
                "interval": one_line(interval or "", MAX_ERROR_CHARS),
                "enabled": source.enabled,
            },
            health=self._health_view(health, now) if health is not None else None,
            polls=[self._poll_view(poll, now) for poll in polls],
            chart=chart,
            rhythm={
                "weeks": f"{rhythm.weeks:.1f}",
                "articles": rhythm.articles,
                "enough": rhythm.enough,
                "window_weeks": RHYTHM_WEEKS,
                "min_weeks": RHYTHM_MIN_WEEKS,
                "min_articles": RHYTHM_MIN_ARTICLES,
            },
            new_in_chart=sum(per_day.values()),
            chart_days=CHART_DAYS,
            websub=subscription_view(websub, lambda moment: self.site.when(moment, now)),
        )

    def _health_view(self, health: Health, now: datetime) -> dict[str, Any]:
        return {
            "state": health.state.value,
            "state_class": STATE_BADGES[health.state],
            "reason": one_line(redact_text(health.reason), MAX_ERROR_CHARS),
            "since": self.site.when(health.since, now),
            "evidence": _evidence_rows(health.evidence, lambda moment: self.site.when(moment, now)),
        }

    def _poll_view(self, poll: PollRecord, now: datetime) -> dict[str, Any]:
        return {
            "at": self.site.when(poll.at, now),
            "result": "error" if poll.failed else "ok",
            "result_class": "failing" if poll.failed else "ok",
            "status": poll.status if poll.status is not None else NO_TIME,
            "error_class": poll.error_class or "",
            "stored": poll.stored,
            "error": one_line(redact_text(poll.error or ""), MAX_ERROR_CHARS),
        }

    async def digests_page(self, request: Request) -> Reply:
        rows = await self.site.blocking(self.site.store.delivery_history, DELIVERIES_SHOWN)
        deliveries = [
            {
                "recipient": one_line(row["recipient"], MAX_TITLE_CHARS),
                "channel": one_line(row["channel"], MAX_TITLE_CHARS),
                "kind": row["kind"],
                "created": self.site.when(row["created_at"]),
                "sent": self.site.when(row["sent_at"]),
                "state": _delivery_state(row)[0],
                "state_class": _delivery_state(row)[1],
                "attempts": row["attempts"],
                "articles": row["articles"],
                "size": size_text(row["size_bytes"]),
                "bytes": row["size_bytes"],
                "took": took_text(row["created_at"], row["sent_at"]),
                "last_error": one_line(row["last_error"], MAX_ERROR_CHARS),
                # Email deliveries keep a copy as sent (crawler/faces/web/sent.py).
                "open": f"/digests/{row['id']}"
                if row["sent_at"] and row["channel"] == EMAIL_CHANNEL
                else None,
            }
            for row in rows
        ]
        return self.site.page(
            "web/digests.html.j2",
            "Delivery history",
            "/digests",
            deliveries=deliveries,
            shown=DELIVERIES_SHOWN,
        )

    async def preview_page(self, request: Request) -> Reply:
        """The next digest of one recipient, exactly the HTML that would be sent."""
        wanted = self.site.arg(request, "recipient").strip()
        recipients = [recipient.email for recipient in self.site.config.all_recipients()]
        if not wanted:
            return self.site.page(
                "web/preview.html.j2",
                "Digest preview",
                "/preview",
                recipients=recipients,
                recipient=None,
            )
        email = next((e for e in recipients if e.lower() == wanted.lower()), None)
        if email is None:
            return self.site.page(
                "web/message.html.j2",
                "Digest preview",
                "/preview",
                status=404,
                message="No recipient has this address.",
            )
        previews = await self.site.blocking(preview_digests, self.site.store, self.site.config)
        digest = previews.get(email)
        if digest is None:
            return self.site.page(
                "web/preview.html.j2",
                "Digest preview",
                "/preview",
                recipients=recipients,
                recipient=email,
            )
        return Reply(200, digest.html.encode(), HTML, {"Content-Security-Policy": PREVIEW_CSP})


def source_path(name: str) -> str:
    """The address of a source's page (any name: quoted whole, "/" too)."""
    return "/sources/" + quote(name, safe="")


def _evidence_rows(
    evidence: Mapping[str, Any], when: Callable[[datetime], str]
) -> list[dict[str, Any]]:
    """A state's evidence as rows of a key/value table: the value as one line of
    text (redacted: an error may quote a URL with a password; a time ``when`` shows
    it), and a link where the value is a web address."""
    rows = []
    for key, value in evidence.items():
        moment = _time(value) if str(key).endswith("_at") else None
        if moment is not None:
            text = when(moment)
        elif value is None or value == []:
            text = NO_TIME
        elif isinstance(value, list | tuple):
            text = ", ".join(str(item) for item in value)
        elif isinstance(value, dict):
            text = json.dumps(value, ensure_ascii=False, default=str)
        else:
            text = str(value)
        text = one_line(redact_text(text), MAX_ERROR_CHARS)
        rows.append(
            {
                "key": one_line(str(key), MAX_TITLE_CHARS).replace("_", " "),
                "value": text,
                "link": safe_link(redact_text(value))
                if isinstance(value, str) and moment is None
                else None,
            }
        )
    return rows


def _time(value: Any) -> datetime | None:
    """An evidence's time (kept as ISO 8601 text), or None."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _duration(span: timedelta) -> str:
    """A poll interval as the configuration writes one: "30m", "2h", "1d"."""
    seconds = int(span.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _local(moment: datetime | None, timezone: str, now: datetime) -> str:
    if moment is None:
        return NO_TIME
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({relative(moment, now)})"


def _delivery_state(row: dict[str, Any]) -> tuple[str, str]:
    """How a delivery stands, and its badge's class."""
    if row["sent_at"]:
        return "sent", "ok"
    if row.get("failed_at"):
        return "refused, not retried", "failing"
    return "waiting to be sent", "pending"
