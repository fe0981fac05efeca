"""All of newswatch's SQL: every query the service runs is a method here.

The rest of the code speaks in domain terms (``new_urls``, ``save_article``,
``pending_items``, ``mark_sent``) and never builds a query itself. Methods are
blocking; the service calls them from its one database thread, never from the
reactor thread.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    bindparam,
    column,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crawler.domain.items import FetchState
from crawler.storage.models import (
    Article,
    ArticleAlias,
    ArticleRevision,
    Delivery,
    DeliveryItem,
    Match,
    RobotsTxt,
    ScheduleRun,
    Source,
    utcnow,
)

if TYPE_CHECKING:
    from crawler.domain.config import SourceConfig
    from crawler.domain.items import ExtractedArticle, RuleMatch

MIGRATIONS = "crawler.storage:migrations"
# The newest migration (tests/test_store.py checks it is Alembic's head). A database
# already there is not handed to Alembic at all: importing and running it costs half
# a second on every start of every command.
SCHEMA_REVISION = "0008"
# An index's "updated" time must be this much later than our fetch to fetch again
# (feeds that stamp every entry with the time of the request must not cost a
# refetch of everything at every poll).
REFETCH_GRACE = timedelta(minutes=10)
_URL_BATCH = 500
# C0 controls and DEL: no database string or full-text query takes a NUL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """An extracted article ready to store, with its keys for deduplication."""

    source: str
    article: ExtractedArticle
    aliases: tuple[str, ...] = ()  # other canonical URLs it was reached under
    content_hash: str | None = None
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class KnownArticle:
    """What deduplication needs to know of an article already stored."""

    id: int
    url: str
    title: str
    body: str
    revision: int
    story_id: int | None
    rules: frozenset[str]
    content_hash: str | None
    found_by_body: bool = False  # none of the URLs asked for is its URL or an alias


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article as the digest and the CLI read it back."""

    id: int
    url: str
    source: str
    title: str
    body: str
    published: datetime | None
    authors: tuple[str, ...]
    language: str | None
    story_id: int | None = None


@dataclass(frozen=True, slots=True)
class PendingItem:
    """A matched article not yet in any digest for one recipient, with its rules."""

    article: StoredArticle
    rules: tuple[tuple[str, tuple[str, ...]], ...]  # (rule, terms that hit)
    revision: int = 1  # above 1: an update of an article the reader may have had

    @property
    def is_update(self) -> bool:
        return self.revision > 1


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A digest email that was created; ``sent_at`` is None until it was accepted."""

    id: int
    recipient: str
    kind: str
    message_id: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    article_ids: tuple[int, ...]
    claimed_by: str | None = None  # the run sending it now, until claimed_until
    claimed_until: datetime | None = None


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision`` (the only way tables are made)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, revision)


def make_message_id(
    recipient: str, items: Iterable[tuple[int, int]], domain: str
) -> str:
    """A Message-ID that is the same whenever the same items (article, revision) go
    to the same person."""
    keys = ",".join(f"{article}.{revision}" for article, revision in sorted(items))
    digest = hashlib.sha256(f"{recipient.lower()}|{keys}".encode()).hexdigest()[:32]
    return f"<digest.{digest}@{domain}>"


class Store:
    """The database, spoken to in domain terms."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(create_database_engine(url))

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (nothing to do when it is there)."""
        if self.schema_revision() != SCHEMA_REVISION:
            upgrade_database(self.engine)

    def schema_revision(self) -> str | None:
        """The migration the database is at (None for a database without one)."""
        # A database that does not answer raises here: only a missing table means new.
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.scalar(text("SELECT version_num FROM alembic_version"))

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise when the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(select(1))

    # -- sources ---------------------------------------------------------------

    def sync_sources(self, sources: Sequence[SourceConfig]) -> None:
        """Make a row for every configured source; update URLs that changed."""
        with self._session.begin() as session:
            existing = {s.name: s for s in session.scalars(select(Source))}
            for config in sources:
                row = existing.get(config.name)
                if row is None:
                    session.add(Source(name=config.name, kind=config.kind, url=config.url,
                                       consecutive_failures=0))
                elif (row.url, row.kind) != (config.url, config.kind):
                    row.url, row.kind = config.url, config.kind
                    row.etag = row.last_modified = row.content_hash = row.discovered_url = None

    def fetch_state(self, source: str) -> FetchState:
        """The validators and discovered feed remembered from the last good poll."""
        with self._session() as session:
            row = session.execute(
                select(Source.etag, Source.last_modified, Source.content_hash,
                       Source.discovered_url).where(Source.name == source)
            ).first()
        return FetchState(*row) if row else FetchState()

    def record_poll(
        self,
        source: str,
        *,
        error: str | None,
        state: FetchState | None = None,
        at: datetime | None = None,
    ) -> int:
        """Note a finished poll of ``source``: a success resets the failure count.

        ``state``, when given, replaces what is remembered for the next
        conditional poll (the poll decides when it is safe to remember it).
        Returns the number of failed polls in a row, this one included.
        """
        at = at or utcnow()
        values: dict[str, Any] = {"last_polled_at": at}
        if state is not None:
            values |= {
                "etag": state.etag,
                "last_modified": state.last_modified,
                "content_hash": state.content_hash,
                "discovered_url": state.discovered_url,
            }
        if error is None:
            values |= {"last_success_at": at, "last_error": None, "consecutive_failures": 0}
        else:
            values |= {
                "last_error": error[:2000],
                "consecutive_failures": Source.consecutive_failures + 1,
            }
        with self._session.begin() as session:
            session.execute(update(Source).where(Source.name == source).values(**values))
            failures = session.scalar(
                select(Source.consecutive_failures).where(Source.name == source)
            )
        return failures or 0

    def source_state(self, source: str) -> Source | None:
        with self._session() as session:
            return session.scalar(select(Source).where(Source.name == source))

    # -- articles --------------------------------------------------------------

    def new_urls(self, urls: Sequence[str]) -> list[str]:
        """Return, in order, the canonical URLs that are not stored yet (nor aliases)."""
        return self.urls_to_fetch([(url, None) for url in urls])

    def urls_to_fetch(self, links: Sequence[tuple[str, datetime | None]]) -> list[str]:
        """The URLs, in order, worth fetching: not stored under that URL or an alias,
        or stored but fetched before the index says the page was updated."""
        unique = list(dict.fromkeys(url for url, _updated in links))
        updated = {url: moment for url, moment in links if moment is not None}
        fetched: dict[str, datetime] = {}
        with self._session() as session:
            for start in range(0, len(unique), _URL_BATCH):
                chunk = unique[start : start + _URL_BATCH]
                rows = [
                    *session.execute(
                        select(Article.url, Article.fetched_at).where(Article.url.in_(chunk))
                    ),
                    *session.execute(
                        select(ArticleAlias.url, Article.fetched_at)
                        .join(Article, Article.id == ArticleAlias.article_id)
                        .where(ArticleAlias.url.in_(chunk))
                    ),
                ]
                fetched.update((url, moment) for url, moment in rows)
        return [
            url for url in unique
            if url not in fetched
            or (url in updated and updated[url] > fetched[url] + REFETCH_GRACE)
        ]

    def find_article(self, urls: Sequence[str], content_hash: str | None) -> KnownArticle | None:
        """The stored article with one of these URLs (or aliases), or this body."""
        return self.find_articles([(urls, content_hash)])[0]

    def find_articles(
        self, keys: Sequence[tuple[Sequence[str], str | None]]
    ) -> list[KnownArticle | None]:
        """For each (URLs, body fingerprint): the stored article it is, or None.

        A URL (the article's own or an alias) decides before the fingerprint.
        Three queries for the whole batch, whatever its size.
        """
        urls = list({url for candidates, _hash in keys for url in candidates})
        hashes = list({content_hash for _urls, content_hash in keys if content_hash})
        with self._session() as session:
            by_url: dict[str, int] = {}
            by_hash: dict[str, int] = {}
            for start in range(0, len(urls), _URL_BATCH):
                chunk = urls[start : start + _URL_BATCH]
                by_url.update((url, article_id) for url, article_id in session.execute(
                    select(ArticleAlias.url, ArticleAlias.article_id)
                    .where(ArticleAlias.url.in_(chunk))))
                by_url.update((url, article_id) for url, article_id in session.execute(
                    select(Article.url, Article.id).where(Article.url.in_(chunk))))
            for start in range(0, len(hashes), _URL_BATCH):
                chunk = hashes[start : start + _URL_BATCH]
                by_hash.update((h, article_id) for h, article_id in session.execute(
                    select(Article.content_hash, Article.id)
                    .where(Article.content_hash.in_(chunk))))
            by_address = [next((by_url[url] for url in candidates if url in by_url), None)
                          for candidates, _hash in keys]
            found = [
                article_id or (by_hash.get(content_hash) if content_hash else None)
                for article_id, (_urls, content_hash) in zip(by_address, keys, strict=True)
            ]
            ids = list({article_id for article_id in found if article_id is not None})
            known = {row.id: row for row in session.scalars(
                select(Article).where(Article.id.in_(ids)))} if ids else {}
            rules: dict[int, set[str]] = {}
            for article_id, rule in session.execute(
                select(Match.article_id, Match.rule).where(Match.article_id.in_(ids))
            ):
                rules.setdefault(article_id, set()).add(rule)
        return [
            None if article_id is None else _known_article(
                known[article_id], rules.get(article_id, set()), by_body=address is None)
            for article_id, address in zip(found, by_address, strict=True)
        ]

    def insert_article(
        self, record: ArticleRecord, matches: Sequence[RuleMatch]
    ) -> int | None:
        """Store one new article (see insert_articles)."""
        return self.insert_articles([(record, matches)])[0]

    def insert_articles(
        self, batch: Sequence[tuple[ArticleRecord, Sequence[RuleMatch]]]
    ) -> list[int | None]:
        """Store new articles with their aliases and rule matches, in one transaction.

        Each article starts as its own story. Returns the new ids, in order; None
        where the URL or body was stored meanwhile (by another process or earlier
        in the batch): for those nothing is written.
        """
        ids: list[int | None] = []
        aliases: list[dict[str, Any]] = []
        matched: list[tuple[int, Sequence[RuleMatch]]] = []
        with self._session.begin() as session:
            sources = {name: id_ for name, id_ in session.execute(
                select(Source.name, Source.id))}
            # One statement, compiled once; its values bound per row.
            insert_article = _insert_ignoring_conflict(session, Article, None).returning(
                Article.id)
            for record, matches in batch:
                # One by one: the id comes back, or None when the URL or body is taken.
                article_id = session.scalar(
                    insert_article, _article_values(record, sources.get(record.source)))
                ids.append(article_id)
                if article_id is None:
                    continue
                aliases += [{"url": alias, "article_id": article_id}
                            for alias in record.aliases if alias != record.article.url]
                matched.append((article_id, matches))
            # The rest in a few statements for the whole batch, not a few per article.
            new_ids = [article_id for article_id in ids if article_id is not None]
            if new_ids:
                session.execute(update(Article).where(Article.id.in_(new_ids))
                                .values(story_id=Article.id))
            if aliases:
                session.execute(_insert_ignoring_conflict(session, ArticleAlias, None), aliases)
            _insert_matches_of(session, matched)
        return ids

    def set_stories(self, stories: dict[int, int]) -> None:
        """Put articles into stories: {article id: story id}."""
        if not stories:
            return
        table = Article.__table__
        statement = update(table).where(table.c.id == bindparam("moved")).values(
            story_id=bindparam("story"))
        with self._session.begin() as session:
            session.execute(statement, [{"moved": article_id, "story": story_id}
                                        for article_id, story_id in stories.items()])

    def add_aliases(self, article_id: int, urls: Sequence[str]) -> None:
        """Remember other URLs of a stored article, so they are not fetched again."""
        with self._session.begin() as session:
            stored = session.scalar(select(Article.url).where(Article.id == article_id))
            for url in urls:
                if url != stored:
                    session.execute(_insert_ignoring_conflict(
                        session, ArticleAlias, {"url": url, "article_id": article_id}
                    ))

    def save_revision(
        self,
        known: KnownArticle,
        record: ArticleRecord,
        matches: Sequence[RuleMatch],
        *,
        notify: bool,
    ) -> int:
        """Keep the old text as a revision and store the new one; returns the new
        revision number. With ``notify`` the article is pending again, as updated,
        for recipients who had it."""
        article = record.article
        with self._session.begin() as session:
            row = session.get_one(Article, known.id)
            session.add(ArticleRevision(
                article_id=row.id, revision=row.revision, title=row.title, body=row.body,
                fetched_at=row.fetched_at,
            ))
            row.revision += 1
            row.title, row.body = article.title, article.text
            row.updated_at = article.updated or row.updated_at
            row.fetched_at = utcnow()
            row.signature = record.signature or row.signature
            if record.content_hash != row.content_hash:
                taken = session.scalar(select(Article.id).where(
                    Article.content_hash == record.content_hash, Article.id != row.id))
                row.content_hash = None if taken else record.content_hash
            if notify:
                row.notify_revision = row.revision
            session.flush()
            _insert_matches(session, row.id, matches)
            return row.revision

    def touch_article(self, article_id: int) -> None:
        """Note that the article was fetched again and had not changed materially."""
        with self._session.begin() as session:
            session.execute(
                update(Article).where(Article.id == article_id).values(fetched_at=utcnow())
            )

    def purge(self, *, bodies_before: datetime, rows_before: datetime) -> tuple[int, int]:
        """Retention: empty the text of articles fetched before ``bodies_before`` and
        delete articles (matches, revisions, aliases) fetched before ``rows_before``.

        Returns (bodies purged, articles deleted). Articles still waiting in an
        unsent delivery are kept whole, so nothing pending is lost.
        """
        pending = select(DeliveryItem.article_id).join(
            Delivery, Delivery.id == DeliveryItem.delivery_id
        ).where(Delivery.sent_at.is_(None))
        with self._session.begin() as session:
            old_rows = select(Article.id).where(
                Article.fetched_at < rows_before, Article.id.not_in(pending)
            )
            session.execute(
                delete(DeliveryItem).where(DeliveryItem.article_id.in_(old_rows))
            )
            deleted = session.execute(
                delete(Article).where(Article.id.in_(old_rows.scalar_subquery()))
                .execution_options(synchronize_session=False)
            ).rowcount
            session.execute(
                delete(ArticleRevision).where(ArticleRevision.fetched_at < bodies_before)
            )
            purged = session.execute(
                update(Article)
                .where(Article.fetched_at < bodies_before, Article.purged_at.is_(None),
                       Article.id.not_in(pending))
                .values(body="", signature=None, purged_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
        return purged, deleted

    def story_signatures(
        self, since: datetime, after_id: int = 0
    ) -> list[tuple[int, int, bytes, datetime | None, str, str]]:
        """(id, story, signature, published, title, source) of the articles the story
        index holds: published (or, undated, fetched) since ``since``, with an id above
        ``after_id``, oldest first."""
        with self._session() as session:
            rows = session.execute(
                select(Article.id, Article.story_id, Article.signature, Article.published_at,
                       Article.title, func.coalesce(Source.name, ""))
                .outerjoin(Source, Source.id == Article.source_id)
                .where(Article.signature.is_not(None), Article.id > after_id,
                       func.coalesce(Article.published_at, Article.fetched_at) >= since)
                .order_by(Article.id)
            )
            return [
                (article_id, story_id or article_id, signature, published, title, source)
                for article_id, story_id, signature, published, title, source in rows
            ]

    def stories(self, since: datetime) -> list[list[StoredArticle]]:
        """Stories with an article fetched since ``since``: each a list of its member
        articles, earliest published first; stories newest first."""
        recent = select(Article.story_id).where(Article.fetched_at >= since)
        with self._session() as session:
            rows = session.execute(
                _article_query().where(Article.story_id.in_(recent)).order_by(Article.id)
            ).all()
        grouped: dict[int, list[StoredArticle]] = {}
        for row in rows:
            article = _stored_article(row)
            grouped.setdefault(article.story_id or article.id, []).append(article)
        oldest = datetime.min.replace(tzinfo=UTC)
        stories = [
            sorted(members, key=lambda a: (a.published or oldest, a.id))
            for members in grouped.values()
        ]
        stories.sort(key=lambda members: max(a.published or oldest for a in members),
                     reverse=True)
        return stories

    def revisions(self, article_id: int) -> list[tuple[int, str, str]]:
        """Earlier (revision, title, body) of an article, oldest first."""
        with self._session() as session:
            rows = session.execute(
                select(ArticleRevision.revision, ArticleRevision.title, ArticleRevision.body)
                .where(ArticleRevision.article_id == article_id)
                .order_by(ArticleRevision.revision)
            )
            return [(revision, title, body) for revision, title, body in rows]

    def count_articles(self) -> int:
        with self._session() as session:
            return session.scalar(select(func.count()).select_from(Article)) or 0

    def articles(self, since: datetime | None = None) -> list[StoredArticle]:
        """Stored articles (fetched since ``since``, if given), oldest first."""
        query = _article_query().order_by(Article.id)
        if since is not None:
            query = query.where(Article.fetched_at >= since)
        with self._session() as session:
            return [_stored_article(row) for row in session.execute(query)]

    def matches(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """Every stored (rule, article URL, terms), in the order they were made."""
        with self._session() as session:
            rows = session.execute(
                select(Match.rule, Article.url, Match.terms)
                .join(Article, Article.id == Match.article_id)
                .order_by(Match.id)
            )
            return [(rule, url, tuple(terms)) for rule, url, terms in rows]

    # -- digests ---------------------------------------------------------------

    def pending_items(self, recipient: str, rules: Sequence[str], *,
                      with_bodies: bool = True) -> list[PendingItem]:
        """Matched articles (for the given rules) that ``recipient`` has yet to get.

        An article is pending until a digest to the recipient holds its latest
        notable revision, unless the recipient already got its story through
        another copy (a syndicated wire story is delivered once). Without
        ``with_bodies`` each body is "" (``article_bodies`` reads the ones needed).
        """
        mine = DeliveryItem.recipient == recipient
        has_this_revision = exists().where(
            mine, DeliveryItem.article_id == Article.id,
            DeliveryItem.revision == Article.notify_revision,
        )
        had_it = exists().where(mine, DeliveryItem.article_id == Article.id)
        story_delivered = exists().where(
            mine, DeliveryItem.story_id == Article.story_id, DeliveryItem.article_id != Article.id
        )
        with self._session() as session:
            rows = session.execute(
                _article_query(with_bodies)
                .add_columns(
                    Match.rule, Match.terms, Article.notify_revision.label("item_revision")
                )
                .join(Match, Match.article_id == Article.id)
                .where(
                    Match.rule.in_(list(rules)),
                    ~has_this_revision,
                    or_(had_it, ~story_delivered),
                )
                .order_by(Article.id, Match.id)
            ).all()
        return _group_matches(rows)

    def items_of(self, delivery: DeliveryRecord, *,
                 with_bodies: bool = True) -> list[PendingItem]:
        """The articles of an existing delivery, at the revisions it holds, with
        all their matches (bodies "" without ``with_bodies``)."""
        with self._session() as session:
            rows = session.execute(
                _article_query(with_bodies)
                .add_columns(Match.rule, Match.terms, DeliveryItem.revision.label("item_revision"))
                .join(Match, Match.article_id == Article.id)
                .join(DeliveryItem, DeliveryItem.article_id == Article.id)
                .where(DeliveryItem.delivery_id == delivery.id)
                .order_by(Article.id, Match.id)
            ).all()
        return _group_matches(rows)

    def article_bodies(self, article_ids: Sequence[int]) -> dict[int, str]:
        """The bodies of these articles, by id (a digest reads only those it shows)."""
        bodies: dict[int, str] = {}
        with self._session() as session:
            for start in range(0, len(article_ids), _URL_BATCH):
                batch = list(article_ids[start:start + _URL_BATCH])
                bodies.update(session.execute(
                    select(Article.id, Article.body).where(Article.id.in_(batch))
                ).all())
        return bodies

    def unsent_deliveries(self, recipient: str) -> list[DeliveryRecord]:
        """Deliveries to ``recipient`` that were created but never accepted, oldest first."""
        with self._session() as session:
            deliveries = session.scalars(
                select(Delivery)
                .where(Delivery.recipient == recipient, Delivery.sent_at.is_(None))
                .order_by(Delivery.id)
            ).all()
            return [_delivery_record(session, d) for d in deliveries]

    def create_delivery(
        self,
        recipient: str,
        items: Sequence[PendingItem],
        domain: str,
        kind: str = "digest",
        *,
        claim: tuple[str, datetime] | None = None,
    ) -> DeliveryRecord | None:
        """Create a delivery holding ``items``, before anything is sent.

        The items are claimed in the same transaction; if another process claimed
        any of them first, nothing is created and None is returned. ``claim``
        (run, until) makes the new delivery that run's to send (see claim_delivery).
        """
        keys = [(item.article.id, item.revision) for item in items]
        message_id = make_message_id(recipient, keys, domain)
        owner, until = claim if claim is not None else (None, None)
        try:
            with self._session.begin() as session:
                delivery = Delivery(
                    recipient=recipient, kind=kind, message_id=message_id, attempts=0,
                    created_at=utcnow(), claimed_by=owner, claimed_until=until,
                )
                session.add(delivery)
                session.flush()
                session.execute(
                    insert(DeliveryItem),
                    [
                        {
                            "delivery_id": delivery.id,
                            "recipient": recipient,
                            "article_id": item.article.id,
                            "revision": item.revision,
                            "story_id": item.article.story_id,
                        }
                        for item in items
                    ],
                )
                return _delivery_record(session, delivery)
        except IntegrityError:
            return None

    def claim_delivery(
        self, delivery_id: int, owner: str, until: datetime, *, now: datetime,
        replacing: str | None = None,
    ) -> bool:
        """Make an unsent delivery ``owner``'s to send until ``until``; False when
        it was sent meanwhile or another run holds it.

        A claim is free when nobody holds it, its lease ran out, or it is held by
        ``replacing`` (a run the caller knows is dead). One statement: of two runs
        claiming at once, exactly one wins.
        """
        free = or_(Delivery.claimed_by.is_(None), Delivery.claimed_until < now)
        if replacing is not None:
            free = or_(free, Delivery.claimed_by == replacing)
        with self._session.begin() as session:
            claimed = session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.sent_at.is_(None), free)
                .values(claimed_by=owner, claimed_until=until)
            )
            return claimed.rowcount == 1

    def mark_sent(self, delivery_id: int, at: datetime | None = None) -> None:
        """Record that the server accepted the delivery; it is never sent again."""
        with self._session.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(sent_at=at or utcnow(), attempts=Delivery.attempts + 1, last_error=None,
                        claimed_by=None, claimed_until=None)
            )

    def record_send_failure(self, delivery_id: int, error: str) -> None:
        """Count a failed attempt and release the claim; the delivery stays pending
        for the next run."""
        with self._session.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(attempts=Delivery.attempts + 1, last_error=error[:2000],
                        claimed_by=None, claimed_until=None)
            )

    def release_delivery(self, delivery_id: int, owner: str) -> None:
        """Give up ``owner``'s claim without counting an attempt (nothing was tried)."""
        with self._session.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.claimed_by == owner)
                .values(claimed_by=None, claimed_until=None)
            )

    def count_sent(self, recipient: str, kind: str, since: datetime) -> tuple[int, datetime | None]:
        """How many ``kind`` messages ``recipient`` was sent since ``since``, and the
        time of the oldest of them."""
        with self._session() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(Delivery.sent_at)).where(
                    Delivery.recipient == recipient, Delivery.kind == kind,
                    Delivery.sent_at >= since,
                )
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return count, oldest

    def record_run(self, job_id: str, at: datetime) -> None:
        """Remember that a scheduled job ran (for catching up after downtime)."""
        with self._session.begin() as session:
            row = session.get(ScheduleRun, job_id)
            if row is None:
                session.add(ScheduleRun(job_id=job_id, last_run_at=at))
            elif row.last_run_at < at:
                row.last_run_at = at

    def forget_runs(self) -> None:
        """Forget when scheduled jobs ran (the next start treats them as new)."""
        with self._session.begin() as session:
            session.execute(delete(ScheduleRun))

    def last_run(self, job_id: str) -> datetime | None:
        with self._session() as session:
            row = session.get(ScheduleRun, job_id)
            return row.last_run_at if row else None

    def robots_txt(self, origin: str) -> tuple[bytes, datetime] | None:
        """The robots.txt last fetched from ``origin``, and when."""
        with self._session() as session:
            row = session.get(RobotsTxt, origin)
            return (row.body, row.fetched_at) if row is not None else None

    def save_robots_txt(self, origin: str, body: bytes, at: datetime) -> None:
        """Remember the robots.txt just fetched from ``origin``."""
        with self._session.begin() as session:
            row = session.get(RobotsTxt, origin)
            if row is None:
                session.execute(_insert_ignoring_conflict(
                    session, RobotsTxt, {"origin": origin, "body": body, "fetched_at": at}))
            else:
                row.body, row.fetched_at = body, at

    def deliveries(self) -> list[DeliveryRecord]:
        """Every delivery, oldest first."""
        with self._session() as session:
            rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
            return [_delivery_record(session, d) for d in rows]

    # -- web UI queries --------------------------------------------------------
    # Read-only, for the status pages (crawler/faces/web.py) and /metrics
    # (crawler/orchestration/metrics.py). Rows are plain dicts with the keys each docstring names.

    def source_statuses(self, *, with_article_counts: bool = True) -> list[dict[str, Any]]:
        """Every source row, by name: ``name``, ``kind``, ``url``, ``discovered_url``,
        ``last_polled_at``, ``last_success_at``, ``consecutive_failures``,
        ``last_error`` and, with counts, ``articles`` (stored from it now)."""
        query = select(
            Source.name, Source.kind, Source.url, Source.discovered_url, Source.last_polled_at,
            Source.last_success_at, Source.consecutive_failures, Source.last_error,
        )
        if with_article_counts:
            counts = (
                select(Article.source_id, func.count().label("articles"))
                .group_by(Article.source_id).subquery()
            )
            query = query.add_columns(
                func.coalesce(counts.c.articles, 0).label("articles")
            ).outerjoin(counts, counts.c.source_id == Source.id)
        with self._session() as session:
            return [row._asdict() for row in session.execute(query.order_by(Source.name))]

    def rule_match_counts(self) -> dict[str, int]:
        """How many stored articles each rule matched (rules without one are absent)."""
        with self._session() as session:
            rows = session.execute(select(Match.rule, func.count()).group_by(Match.rule))
            return {rule: count for rule, count in rows}

    def recent_matches(self, per_rule: int = 50, rule: str | None = None
                       ) -> list[dict[str, Any]]:
        """The latest ``per_rule`` matches of each rule (or of ``rule`` only), by rule,
        newest first: ``rule``, ``terms``, ``matched_at`` and the article's ``url``,
        ``title``, ``source``, ``published_at``."""
        rank = func.row_number().over(
            partition_by=Match.rule, order_by=(Match.matched_at.desc(), Match.id.desc())
        ).label("rank")
        matches = select(Match.id, rank)
        if rule is not None:
            matches = matches.where(Match.rule == rule)
        ranked = matches.subquery()
        query = (
            select(
                Match.rule, Match.terms, Match.matched_at, Article.url, Article.title,
                func.coalesce(Source.name, "").label("source"), Article.published_at,
            )
            .join(ranked, ranked.c.id == Match.id)
            .join(Article, Article.id == Match.article_id)
            .outerjoin(Source, Source.id == Article.source_id)
            .where(ranked.c.rank <= per_rule)
            .order_by(Match.rule, Match.matched_at.desc(), Match.id.desc())
        )
        with self._session() as session:
            return [row._asdict() for row in session.execute(query)]

    def delivery_history(self, limit: int = 200) -> list[dict[str, Any]]:
        """The latest ``limit`` deliveries, newest first: ``id``, ``recipient``,
        ``kind``, ``created_at``, ``sent_at``, ``attempts``, ``last_error``,
        ``articles`` (items still stored)."""
        counts = (
            select(DeliveryItem.delivery_id, func.count().label("articles"))
            .group_by(DeliveryItem.delivery_id).subquery()
        )
        query = (
            select(
                Delivery.id, Delivery.recipient, Delivery.kind, Delivery.created_at,
                Delivery.sent_at, Delivery.attempts, Delivery.last_error,
                func.coalesce(counts.c.articles, 0).label("articles"),
            )
            .outerjoin(counts, counts.c.delivery_id == Delivery.id)
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
        with self._session() as session:
            return [row._asdict() for row in session.execute(query)]

    def unsent_delivery_counts(self) -> dict[str, int]:
        """Deliveries created but not accepted yet, per kind (digest, alert)."""
        with self._session() as session:
            rows = session.execute(
                select(Delivery.kind, func.count())
                .where(Delivery.sent_at.is_(None)).group_by(Delivery.kind)
            )
            return {kind: count for kind, count in rows}

    def search_articles(self, terms: Sequence[str], limit: int = 50) -> list[dict[str, Any]]:
        """Articles whose title or body holds every one of ``terms`` (each a word or
        a phrase of whole words, any case), newest first: ``id``, ``url``, ``title``,
        ``body``, ``source``, ``published_at``, ``fetched_at``.

        The terms go to the database as data, never as query syntax, so nothing a
        user types is an operator or a syntax error. Uses the full-text index of
        migration 0006 (FTS5 on SQLite, a GIN index on PostgreSQL). Control
        characters count as spaces: neither database takes a NUL in a string.
        """
        terms = [term for term in (" ".join(CONTROL_CHARACTERS.sub(" ", t).split())
                                   for t in terms) if term]
        if not terms:
            return []
        with self._session() as session:
            dialect = session.get_bind().dialect.name
            if dialect == "sqlite":
                # An FTS5 string is a phrase; a doubled quote is a quote inside it.
                expression = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
                hits = text(
                    "SELECT rowid FROM articles_fts WHERE articles_fts MATCH :expression"
                ).bindparams(expression=expression).columns(column("rowid"))
                condition: Any = Article.id.in_(hits)
            elif dialect == "postgresql":
                # The very expression of the index, or PostgreSQL will not use it.
                wanted = " && ".join(
                    f"phraseto_tsquery('simple', :term{n})" for n in range(len(terms))
                )
                condition = text(
                    f"to_tsvector('simple', articles.title || ' ' || articles.body) "
                    f"@@ ({wanted})"
                ).bindparams(**{f"term{n}": term for n, term in enumerate(terms)})
            else:
                raise NotImplementedError(f"no search on {dialect}")
            rows = session.execute(
                select(
                    Article.id, Article.url, Article.title, Article.body,
                    func.coalesce(Source.name, "").label("source"),
                    Article.published_at, Article.fetched_at,
                )
                .outerjoin(Source, Source.id == Article.source_id)
                .where(condition)
                .order_by(
                    func.coalesce(Article.published_at, Article.fetched_at).desc(),
                    Article.id.desc(),
                )
                .limit(limit)
            )
            return [row._asdict() for row in rows]


def _insert_ignoring_conflict(
    session: Session, model: type[Any], values: dict[str, Any] | None
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING (any unique key) in the session's dialect; with
    ``values`` None, the statement is executed with a list of rows (executemany)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Imported here: the PostgreSQL dialect package imports all its drivers'
        # modules (~0.06 s), which an SQLite installation never needs.
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(model)
    elif dialect == "sqlite":
        statement = sqlite.insert(model)
    else:
        raise NotImplementedError(f"newswatch supports SQLite and PostgreSQL, not {dialect}")
    if values is not None:
        statement = statement.values(**values)
    return statement.on_conflict_do_nothing()


def _insert_matches(session: Session, article_id: int, matches: Sequence[RuleMatch]) -> None:
    _insert_matches_of(session, [(article_id, matches)])


def _insert_matches_of(
    session: Session, matched: Sequence[tuple[int, Sequence[RuleMatch]]]
) -> None:
    """The rule matches of several articles, in one statement."""
    now = utcnow()
    rows = [{"rule": match.rule, "article_id": article_id, "terms": list(match.terms),
             "matched_at": now}
            for article_id, matches in matched for match in matches]
    if rows:
        session.execute(_insert_ignoring_conflict(session, Match, None), rows)


def _article_query(with_bodies: bool = True) -> Any:
    return select(
        Article.id,
        Article.url,
        func.coalesce(Source.name, "").label("source"),
        Article.title,
        Article.body if with_bodies else literal("").label("body"),
        Article.published_at,
        Article.authors,
        Article.language,
        Article.story_id,
    ).outerjoin(Source, Source.id == Article.source_id)


def _article_values(record: ArticleRecord, source_id: int | None) -> dict[str, Any]:
    article = record.article
    return {
        "url": article.url,
        "source_id": source_id,
        "title": article.title,
        "published_at": article.published,
        "updated_at": article.updated,
        "authors": list(article.authors),
        "language": article.language,
        "body": article.text,
        "image_url": article.image,
        "section": article.section,
        "keywords": list(article.keywords),
        "description": article.description,
        "fetched_at": utcnow(),
        "content_hash": record.content_hash,
        "signature": record.signature,
        "revision": 1,
        "notify_revision": 1,
    }


def _known_article(row: Article, rules: set[str], *, by_body: bool = False) -> KnownArticle:
    return KnownArticle(
        id=row.id, url=row.url, title=row.title, body=row.body, revision=row.revision,
        story_id=row.story_id, rules=frozenset(rules), content_hash=row.content_hash,
        found_by_body=by_body,
    )


def _stored_article(row: Any) -> StoredArticle:
    return StoredArticle(
        id=row.id,
        url=row.url,
        source=row.source,
        title=row.title,
        body=row.body,
        published=row.published_at,
        authors=tuple(row.authors or ()),
        language=row.language,
        story_id=row.story_id,
    )


def _group_matches(rows: Sequence[Any]) -> list[PendingItem]:
    grouped: dict[int, tuple[StoredArticle, int, list[tuple[str, tuple[str, ...]]]]] = {}
    for row in rows:
        entry = grouped.setdefault(row.id, (_stored_article(row), row.item_revision, []))
        entry[2].append((row.rule, tuple(row.terms or ())))
    return [
        PendingItem(article, tuple(rules), revision)
        for article, revision, rules in grouped.values()
    ]


def _delivery_record(session: Session, delivery: Delivery) -> DeliveryRecord:
    article_ids = session.scalars(
        select(DeliveryItem.article_id)
        .where(DeliveryItem.delivery_id == delivery.id)
        .order_by(DeliveryItem.article_id)
    ).all()
    return DeliveryRecord(
        id=delivery.id,
        recipient=delivery.recipient,
        kind=delivery.kind,
        message_id=delivery.message_id,
        created_at=delivery.created_at,
        sent_at=delivery.sent_at,
        attempts=delivery.attempts,
        article_ids=tuple(article_ids),
        claimed_by=delivery.claimed_by,
        claimed_until=delivery.claimed_until,
    )
