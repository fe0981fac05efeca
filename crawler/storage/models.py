"""The database schema as typed SQLAlchemy models.

The tables are created only by the Alembic migrations in ``crawler/storage/migrations``;
these classes describe them for queries (all of which live in ``crawler/storage/``,
one module per entity).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike.

    SQLite has no time zone type, so values are stored as naive UTC and tagged on
    the way out; a naive value going in is a programming error.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Source(Base):
    """A polled news source and the state of its last polls."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="feed", server_default="feed")
    url: Mapped[str] = mapped_column(String(2048))
    # Conditional polling: validators of the last good fetch of ``url``, and a hash
    # of its body for servers that send no validators.
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # For ``site`` sources: the feed found on the homepage, polled until it fails.
    discovered_url: Mapped[str | None] = mapped_column(String(2048))
    last_polled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # What the server asked at the last poll, in seconds (crawler.domain.items.FetchState).
    retry_after_seconds: Mapped[float | None] = mapped_column(Float)
    max_age_seconds: Mapped[float | None] = mapped_column(Float)
    ttl_seconds: Mapped[float | None] = mapped_column(Float)
    update_period_seconds: Mapped[float | None] = mapped_column(Float)
    # The next poll the scheduler set after the last one, its interval and why
    # (crawler.orchestration.polling): shown by `newswatch status`, kept over a restart.
    next_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    poll_interval_seconds: Mapped[float | None] = mapped_column(Float)
    poll_reason: Mapped[str | None] = mapped_column(String(300))


class Article(Base):
    """One article, unique by its canonical URL."""

    __tablename__ = "articles"
    __table_args__ = (
        Index("ix_articles_fetched_at", "fetched_at"),
        # A source's health after each poll (crawler/storage/health.py): its newest
        # pages and its publish times, without a scan of every source's articles.
        Index("ix_articles_source_fetched_at", "source_id", "fetched_at"),
        Index("ix_articles_source_published_at", "source_id", "published_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    section: Mapped[str | None] = mapped_column(String(200))
    keywords: Mapped[list[str] | None] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Exact duplicates: a fingerprint of the normalised body (None for bodies too
    # short to tell articles apart), unique, so the same text under another URL is
    # the same article.
    content_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Near duplicates: the story (the id of its first article) and the MinHash
    # signature the story index is rebuilt from at start.
    story_id: Mapped[int | None] = mapped_column(Integer, index=True)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Revisions: the current one, and the one that last warranted telling readers
    # (a digest item is per recipient, article and this revision).
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    notify_revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Retention: set when the body was purged; the URL and fingerprint stay.
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ArticleAlias(Base):
    """Another URL under which a stored article was found (redirects, mobile or
    tracking links, syndicated copies with the same body), so it is not fetched
    or stored again."""

    __tablename__ = "article_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )


class ArticleRevision(Base):
    """An earlier text of an article whose page changed materially."""

    __tablename__ = "article_revisions"
    __table_args__ = (
        UniqueConstraint("article_id", "revision", name="uq_article_revisions_article_revision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Match(Base):
    """A rule that matched an article, stored once per (rule, article)."""

    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("rule", "article_id", name="uq_matches_rule_article"),
        # The JSON API's newest-first pages (crawler/storage/listings.py).
        Index("ix_matches_matched_at_id", "matched_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(200))
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    matched_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Delivery(Base):
    """One digest or alert to one recipient on one channel, created before it is sent.

    ``message_id`` is derived from the recipient, the channel and the items, so a
    retry after a crash sends the very same Message-ID (a webhook's idempotency key).
    ``sent_at`` is set only once the receiver accepted the message (the SMTP server,
    the outbox file, a webhook's 2xx). While a run
    sends it, ``claimed_by`` names that run and ``claimed_until`` ends its lease:
    no other run, in this process or another, sends it meanwhile.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        # The JSON API's newest-first pages of the ledger (crawler/storage/listings.py).
        Index("ix_deliveries_created_at_id", "created_at", "id"),
        # A channel's throttle: its messages of the last minute or hour.
        Index("ix_deliveries_channel_sent_at", "channel", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    kind: Mapped[str] = mapped_column(String(10), default="digest", server_default="digest")
    # The channel it goes out on (a `channels[].name`, or "email"): the ledger is kept
    # per (recipient, channel).
    channel: Mapped[str] = mapped_column(String(60), default="email", server_default="email")
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Refused for good by its channel (a webhook's 4xx): kept and shown, never retried.
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The message's bytes as its receiver accepted it (email only; None: not measured).
    size_bytes: Mapped[int | None] = mapped_column(Integer)


class ScheduleRun(Base):
    """When a scheduled job last ran, so windows missed during downtime are noticed."""

    __tablename__ = "schedule_runs"

    job_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RobotsTxt(Base):
    """A site's robots.txt as last fetched, reused for a day (RFC 9309 allows caching
    up to 24 hours), so a poll of an unchanged source is one request, not two."""

    __tablename__ = "robots_txt"

    origin: Mapped[str] = mapped_column(String(400), primary_key=True)  # scheme://host:port
    body: Mapped[bytes] = mapped_column(LargeBinary)
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ServiceKey(Base):
    """A secret the service made for itself once (32 random bytes), by name: it signs
    the URLs it hands out (private feeds, links in emails), so they stay valid across
    restarts and are the same for every process of a cluster."""

    __tablename__ = "service_keys"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DeliveryItem(Base):
    """An article (revision) in a delivery: per recipient and channel, at most one
    digest, ever.

    ``story_id`` records the story it stood for, so later copies of a delivered
    story are not sent to the same recipient again.
    """

    __tablename__ = "delivery_items"
    __table_args__ = (
        UniqueConstraint(
            "recipient",
            "channel",
            "article_id",
            "revision",
            name="uq_delivery_items_recipient_channel_article",
        ),
        # "Did this reader get the story through another copy?" for every pending
        # article (pending_items): without it, a scan of the reader's whole history.
        Index("ix_delivery_items_recipient_channel_story", "recipient", "channel", "story_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(320))
    channel: Mapped[str] = mapped_column(String(60), default="email", server_default="email")
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    story_id: Mapped[int | None] = mapped_column(Integer)


class UsedLink(Base):
    """A one-time link from a digest that has been acted on (the hash of its token):
    the same link posted again does nothing. Kept as long as the link would work."""

    __tablename__ = "used_links"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class FeedbackVote(Base):
    """A reader's "more like this" or "not relevant" on a story under one rule: what
    a later model of the reader's taste learns from."""

    __tablename__ = "feedback_votes"
    __table_args__ = (Index("ix_feedback_votes_recipient_rule", "recipient", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    story_id: Mapped[int | None] = mapped_column(Integer)
    article_id: Mapped[int | None] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(200))
    vote: Mapped[str] = mapped_column(String(20))  # "more" or "less"
    # The link that cast it (its undo takes it back).
    token_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StoryMute(Base):
    """A story a reader never wants again: its copies and revisions are not pending
    for them while the mute stands (``undone_at`` unset). A mute of a follow-up (a
    new story continuing a muted one, alerts/follow_ups.py) names the muted story
    it follows and has no link (``token_id`` unset)."""

    __tablename__ = "story_mutes"
    __table_args__ = (Index("ix_story_mutes_recipient_story", "recipient", "story_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    # The story key: the article's story, or the article itself when it has none.
    story_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")  # shown on the reader's page
    token_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    follows_story_id: Mapped[int | None] = mapped_column(Integer)


class RuleHold(Base):
    """A rule a reader paused (``until`` a time) or unsubscribed from (``until``
    unset): nothing of that rule is pending for them while it stands."""

    __tablename__ = "rule_holds"
    __table_args__ = (Index("ix_rule_holds_recipient_rule", "recipient", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    rule: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    token_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# What the delivery history shows of each delivery (the web UI's page and the JSON
# API's listing), beside its count of articles.
DELIVERY_HISTORY_COLUMNS = (
    Delivery.id,
    Delivery.recipient,
    Delivery.channel,
    Delivery.kind,
    Delivery.created_at,
    Delivery.sent_at,
    Delivery.failed_at,
    Delivery.attempts,
    Delivery.last_error,
    Delivery.size_bytes,
)


class SourcePoll(Base):
    """One finished poll of a source, as its health reads it (crawler/domain/health.py):
    how it ended, the class of its error, the status, what it found. Kept
    ``POLL_HISTORY`` (7 days; retention), enough for every state's window."""

    __tablename__ = "source_polls"
    __table_args__ = (Index("ix_source_polls_source_at", "source", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[int | None] = mapped_column(Integer)
    new_urls: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    challenges: Mapped[int] = mapped_column(Integer, default=0)
    sample_url: Mapped[str | None] = mapped_column(String(2048))
    moved_to: Mapped[str | None] = mapped_column(String(2048))


class SourceHealthRow(Base):
    """A source's current health state, its reason and evidence, since when; and the
    state its operators were last told of (one message per change)."""

    __tablename__ = "source_health"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    told_state: Mapped[str | None] = mapped_column(String(20))
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Changes of state since the operators were last told (a flapping source's count).
    changes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WebSubSubscription(Base):
    """A subscription to a WebSub hub for a source's feed (crawler/domain/websub.py):
    the hub, the topic, the callback newswatch gave (``callback_id`` is its last,
    unguessable part), the secret deliveries are signed with, its state and lease,
    and what came of its pushes. A source has at most one that is not being ended."""

    __tablename__ = "websub_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    callback_id: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(200), index=True)
    hub: Mapped[str] = mapped_column(String(2048))
    topic: Mapped[str] = mapped_column(String(2048))
    callback: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_push_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    pushes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refused: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)


class SentMessage(Base):
    """An email delivery as it was sent: its HTML and text bodies, zlib-compressed, for
    the "view in browser" link and the delivery history. Kept as long as article
    bodies (``retention.bodies``); deleted with its delivery."""

    __tablename__ = "sent_messages"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    html: Mapped[bytes] = mapped_column(LargeBinary)
    text: Mapped[bytes] = mapped_column(LargeBinary)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
