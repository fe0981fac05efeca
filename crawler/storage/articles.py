"""Articles and stories: what is stored and fetched again, deduplication's
look-ups, revisions, retention, the story index and the rule matches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import bindparam, delete, func, literal, select, update
from sqlalchemy.orm import Session, aliased

from crawler.storage.engine import StoreBase, _insert_ignoring_conflict
from crawler.storage.models import (
    Article,
    ArticleAlias,
    ArticleRevision,
    Delivery,
    DeliveryItem,
    Match,
    Source,
    utcnow,
)
from crawler.storage.records import ArticleRecord, KnownArticle, StoredArticle

if TYPE_CHECKING:
    from sqlalchemy import CursorResult, Table

    from crawler.domain.items import RuleMatch

# An index's "updated" time must be this much later than our fetch to fetch again
# (feeds that stamp every entry with the time of the request must not cost a
# refetch of everything at every poll).
REFETCH_GRACE = timedelta(minutes=10)
_URL_BATCH = 500


class ArticleQueries(StoreBase):
    """The queries on articles, their aliases, revisions, stories and matches."""

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
            url
            for url in unique
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
                by_url.update(
                    (url, article_id)
                    for url, article_id in session.execute(
                        select(ArticleAlias.url, ArticleAlias.article_id).where(
                            ArticleAlias.url.in_(chunk)
                        )
                    )
                )
                by_url.update(
                    (url, article_id)
                    for url, article_id in session.execute(
                        select(Article.url, Article.id).where(Article.url.in_(chunk))
                    )
                )
            for start in range(0, len(hashes), _URL_BATCH):
                chunk = hashes[start : start + _URL_BATCH]
                by_hash.update(
                    (h, article_id)
                    for h, article_id in session.execute(
                        select(Article.content_hash, Article.id).where(
                            Article.content_hash.in_(chunk)
                        )
                    )
                    if h is not None
                )
            by_address = [
                next((by_url[url] for url in candidates if url in by_url), None)
                for candidates, _hash in keys
            ]
            found = [
                article_id or (by_hash.get(content_hash) if content_hash else None)
                for article_id, (_urls, content_hash) in zip(by_address, keys, strict=True)
            ]
            ids = list({article_id for article_id in found if article_id is not None})
            known = (
                {row.id: row for row in session.scalars(select(Article).where(Article.id.in_(ids)))}
                if ids
                else {}
            )
            rules: dict[int, set[str]] = {}
            for article_id, rule in session.execute(
                select(Match.article_id, Match.rule).where(Match.article_id.in_(ids))
            ):
                rules.setdefault(article_id, set()).add(rule)
        return [
            None
            if article_id is None
            else _known_article(
                known[article_id], rules.get(article_id, set()), by_body=address is None
            )
            for article_id, address in zip(found, by_address, strict=True)
        ]

    def insert_article(self, record: ArticleRecord, matches: Sequence[RuleMatch]) -> int | None:
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
            sources = {name: id_ for name, id_ in session.execute(select(Source.name, Source.id))}
            # One statement, compiled once; its values bound per row.
            insert_article = _insert_ignoring_conflict(session, Article, None).returning(Article.id)
            for record, matches in batch:
                # One by one: the id comes back, or None when the URL or body is taken.
                article_id = session.scalar(
                    insert_article, _article_values(record, sources.get(record.source))
                )
                ids.append(article_id)
                if article_id is None:
                    continue
                aliases += [
                    {"url": alias, "article_id": article_id}
                    for alias in record.aliases
                    if alias != record.article.url
                ]
                matched.append((article_id, matches))
            # The rest in a few statements for the whole batch, not a few per article.
            new_ids = [article_id for article_id in ids if article_id is not None]
            if new_ids:
                session.execute(
                    update(Article).where(Article.id.in_(new_ids)).values(story_id=Article.id)
                )
            if aliases:
                session.execute(_insert_ignoring_conflict(session, ArticleAlias, None), aliases)
            _insert_matches_of(session, matched)
        return ids

    def set_stories(self, stories: dict[int, int]) -> None:
        """Put articles into stories: {article id: story id}."""
        if not stories:
            return
        table = cast("Table", Article.__table__)
        statement = (
            update(table)
            .where(table.c.id == bindparam("moved"))
            .values(story_id=bindparam("story"))
        )
        with self._session.begin() as session:
            session.execute(
                statement,
                [
                    {"moved": article_id, "story": story_id}
                    for article_id, story_id in stories.items()
                ],
            )

    def add_aliases(self, article_id: int, urls: Sequence[str]) -> None:
        """Remember other URLs of a stored article, so they are not fetched again."""
        with self._session.begin() as session:
            stored = session.scalar(select(Article.url).where(Article.id == article_id))
            for url in urls:
                if url != stored:
                    session.execute(
                        _insert_ignoring_conflict(
                            session, ArticleAlias, {"url": url, "article_id": article_id}
                        )
                    )

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
            session.add(
                ArticleRevision(
                    article_id=row.id,
                    revision=row.revision,
                    title=row.title,
                    body=row.body,
                    fetched_at=row.fetched_at,
                )
            )
            row.revision += 1
            row.title, row.body = article.title, article.text
            row.updated_at = article.updated or row.updated_at
            row.fetched_at = utcnow()
            row.signature = record.signature or row.signature
            if record.content_hash != row.content_hash:
                taken = session.scalar(
                    select(Article.id).where(
                        Article.content_hash == record.content_hash, Article.id != row.id
                    )
                )
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
        pending = (
            select(DeliveryItem.article_id)
            .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
            .where(Delivery.sent_at.is_(None))
        )
        with self._session.begin() as session:
            old_rows = select(Article.id).where(
                Article.fetched_at < rows_before, Article.id.not_in(pending)
            )
            session.execute(delete(DeliveryItem).where(DeliveryItem.article_id.in_(old_rows)))
            deleted = cast(
                "CursorResult[Any]",
                session.execute(
                    delete(Article)
                    .where(Article.id.in_(old_rows.scalar_subquery()))
                    .execution_options(synchronize_session=False)
                ),
            ).rowcount
            session.execute(
                delete(ArticleRevision).where(ArticleRevision.fetched_at < bodies_before)
            )
            purged = cast(
                "CursorResult[Any]",
                session.execute(
                    update(Article)
                    .where(
                        Article.fetched_at < bodies_before,
                        Article.purged_at.is_(None),
                        Article.id.not_in(pending),
                    )
                    .values(body="", signature=None, purged_at=utcnow())
                    .execution_options(synchronize_session=False)
                ),
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
                select(
                    Article.id,
                    Article.story_id,
                    Article.signature,
                    Article.published_at,
                    Article.title,
                    func.coalesce(Source.name, ""),
                )
                .outerjoin(Source, Source.id == Article.source_id)
                .where(
                    Article.signature.is_not(None),
                    Article.id > after_id,
                    func.coalesce(Article.published_at, Article.fetched_at) >= since,
                )
                .order_by(Article.id)
            )
            return [
                (
                    article_id,
                    story_id or article_id,
                    cast("bytes", signature),
                    published,
                    title,
                    source,
                )
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
        stories.sort(key=lambda members: max(a.published or oldest for a in members), reverse=True)
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

    def newest_articles(self, limit: int, since: datetime | None = None) -> list[StoredArticle]:
        """At most ``limit`` stored articles (fetched since ``since``, if given), the
        most recently fetched first: a bounded scan for the web UI's query search and
        rule workbench, which evaluate queries on them outside the database."""
        query = _article_query().order_by(Article.fetched_at.desc(), Article.id.desc())
        if since is not None:
            query = query.where(Article.fetched_at >= since)
        with self._session() as session:
            return [_stored_article(row) for row in session.execute(query.limit(limit))]

    def matches(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """Every stored (rule, article URL, terms), in the order they were made."""
        with self._session() as session:
            rows = session.execute(
                select(Match.rule, Article.url, Match.terms)
                .join(Article, Article.id == Match.article_id)
                .order_by(Match.id)
            )
            return [(rule, url, tuple(terms)) for rule, url, terms in rows]

    # -- web UI queries --------------------------------------------------------
    # Read-only, for the status pages (crawler/faces/web/) and /metrics
    # (crawler/orchestration/metrics.py). Rows are plain dicts with the keys each docstring names.

    def rule_match_counts(self) -> dict[str, int]:
        """How many stored articles each rule matched (rules without one are absent)."""
        with self._session() as session:
            rows = session.execute(select(Match.rule, func.count()).group_by(Match.rule))
            return {rule: count for rule, count in rows}

    def recent_matches(self, per_rule: int = 50, rule: str | None = None) -> list[dict[str, Any]]:
        """The latest ``per_rule`` matches of each rule (or of ``rule`` only), by rule,
        newest first: ``rule``, ``terms``, ``matched_at`` and the article's ``url``,
        ``title``, ``source``, ``published_at``, ``body`` and ``outlets`` (distinct
        outlets of its story; 1 for an article on its own), what a score needs."""
        rank = (
            func.row_number()
            .over(partition_by=Match.rule, order_by=(Match.matched_at.desc(), Match.id.desc()))
            .label("rank")
        )
        matches = select(Match.id, rank)
        if rule is not None:
            matches = matches.where(Match.rule == rule)
        ranked = matches.subquery()
        copy = aliased(Article)
        outlets = select(func.count(func.distinct(copy.source_id))).where(
            copy.story_id == Article.story_id
        )
        query = (
            select(
                Match.rule,
                Match.terms,
                Match.matched_at,
                Article.url,
                Article.title,
                func.coalesce(Source.name, "").label("source"),
                Article.published_at,
                Article.body,
                func.coalesce(outlets.scalar_subquery(), 1).label("outlets"),
            )
            .join(ranked, ranked.c.id == Match.id)
            .join(Article, Article.id == Match.article_id)
            .outerjoin(Source, Source.id == Article.source_id)
            .where(ranked.c.rank <= per_rule)
            .order_by(Match.rule, Match.matched_at.desc(), Match.id.desc())
        )
        with self._session() as session:
            return [row._asdict() for row in session.execute(query)]


def _insert_matches(session: Session, article_id: int, matches: Sequence[RuleMatch]) -> None:
    _insert_matches_of(session, [(article_id, matches)])


def _insert_matches_of(
    session: Session, matched: Sequence[tuple[int, Sequence[RuleMatch]]]
) -> None:
    """The rule matches of several articles, in one statement."""
    now = utcnow()
    rows = [
        {
            "rule": match.rule,
            "article_id": article_id,
            "terms": list(match.terms),
            "matched_at": now,
        }
        for article_id, matches in matched
        for match in matches
    ]
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
        id=row.id,
        url=row.url,
        title=row.title,
        body=row.body,
        revision=row.revision,
        story_id=row.story_id,
        rules=frozenset(rules),
        content_hash=row.content_hash,
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
