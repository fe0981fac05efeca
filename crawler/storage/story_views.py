"""Stories and matches as the web UI's working pages read them: a page of stories
with their copies, revisions, matches and deliveries; one story in full; and the
matches of a filter (rule, source, date, sent or pending), each with its story.

A story is the key ``coalesce(story_id, id)`` of its articles (an article on its
own is a story of one copy). "Sent" is said of a story: once one of its copies
went out to a reader, the other copies are never sent to that reader again, so a
match is sent when a delivery accepted by its channel carried any copy of its
story. Read-only; the records are plain frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from crawler.storage.engine import StoreBase
from crawler.storage.listings import (
    MAX_ROW_ID,
    TimeKey,
    TimeWindow,
    _before,
    _in_stories,
    _story_of,
    _within,
)
from crawler.storage.models import (
    Article,
    ArticleRevision,
    Delivery,
    DeliveryItem,
    Match,
    Source,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_LATEST = datetime.max.replace(tzinfo=UTC)
MatchState = Literal["any", "sent", "pending"]


@dataclass(frozen=True, slots=True)
class StoryCopy:
    """One article of a story: where it was published and its current revision."""

    article_id: int
    url: str
    title: str
    source: str
    published_at: datetime | None
    fetched_at: datetime
    revision: int


@dataclass(frozen=True, slots=True)
class StoryRevision:
    """An earlier text of one copy (the current one is the copy itself)."""

    article_id: int
    revision: int
    title: str
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class StoryMatch:
    """A rule that matched one copy."""

    rule: str
    article_id: int
    terms: tuple[str, ...]
    matched_at: datetime


@dataclass(frozen=True, slots=True)
class StorySending:
    """A delivery that carried one copy of a story to one reader on one channel;
    ``sent_at`` is set once the channel accepted it, ``failed_at`` when it refused
    it for good."""

    delivery_id: int
    article_id: int
    revision: int
    recipient: str
    channel: str
    kind: str
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoryRecord:
    """A story with its copies (earliest published first, undated last), the rules
    that matched them, the deliveries that carried them and, on the story's own
    page, the earlier revisions of its copies."""

    id: int
    first_seen: datetime
    last_seen: datetime
    copies: tuple[StoryCopy, ...]
    matches: tuple[StoryMatch, ...]
    sendings: tuple[StorySending, ...]
    revisions: tuple[StoryRevision, ...] = ()

    @property
    def title(self) -> str:
        return self.copies[0].title if self.copies else ""

    @property
    def outlets(self) -> tuple[str, ...]:
        """The distinct sources of its copies, in the copies' order."""
        return tuple(dict.fromkeys(copy.source for copy in self.copies if copy.source))

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(sorted({match.rule for match in self.matches}))

    @property
    def earlier_revisions(self) -> int:
        """How many times its copies' texts changed materially since first stored."""
        return sum(copy.revision - 1 for copy in self.copies)


@dataclass(frozen=True, slots=True)
class StoryPage:
    """One page of stories; ``next_key`` (the last story's key) when more follow."""

    stories: list[StoryRecord]
    next_key: TimeKey | None


@dataclass(frozen=True, slots=True)
class MatchFilter:
    """Which matches to list: of ``rules`` (all when empty), from articles of
    ``source``, matched within ``window``; ``state`` "sent" or "pending" by whether
    the story went out (to ``recipient`` only, when given)."""

    rules: tuple[str, ...] = ()
    source: str | None = None
    recipient: str | None = None
    window: TimeWindow = field(default_factory=TimeWindow)
    state: MatchState = "any"


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """One match with what a listing and a score need: its article, the article's
    story key and body, and the number of distinct outlets of the story."""

    match_id: int
    rule: str
    terms: tuple[str, ...]
    matched_at: datetime
    article_id: int
    story_id: int
    url: str
    title: str
    source: str
    published_at: datetime | None
    body: str
    outlets: int


class StoryViewQueries(StoreBase):
    """Read-only queries for the web UI's stories and matches pages."""

    def story_list(
        self,
        *,
        rule: str | None = None,
        matched_only: bool = False,
        after: TimeKey | None = None,
        limit: int = 25,
    ) -> StoryPage:
        """Stories by the time a copy was last fetched, newest first, after ``after``:
        every story, or only those a rule matched (``matched_only``), or only those
        ``rule`` matched. Each with copies, matches and deliveries (no revisions)."""
        conditions = []
        if rule is not None or matched_only:
            matched = select(_story_of()).join(Match, Match.article_id == Article.id)
            if rule is not None:
                matched = matched.where(Match.rule == rule)
            conditions.append(_in_stories(matched))
        last_seen = func.max(Article.fetched_at)
        query = (
            select(_story_of().label("id"), last_seen.label("last_seen"))
            .where(*conditions)
            .group_by(_story_of())
            .having(*_before(last_seen, _story_of(), after))
            .order_by(last_seen.desc(), _story_of().desc())
            .limit(limit + 1)
        )
        with self._session() as session:
            keys = [(row.id, row.last_seen) for row in session.execute(query)]
            shown = keys[:limit]
            stories = _load_stories(session, [story for story, _ in shown], revisions=False)
        by_id = {story.id: story for story in stories}
        next_key = (shown[-1][1], shown[-1][0]) if len(keys) > limit else None
        return StoryPage([by_id[story] for story, _ in shown if story in by_id], next_key)

    def story_record(self, story_id: int) -> StoryRecord | None:
        """One story with everything, revisions too; None when it has no article."""
        if not 0 < story_id <= MAX_ROW_ID:
            return None
        with self._session() as session:
            stories = _load_stories(session, [story_id], revisions=True)
        return stories[0] if stories else None

    def filtered_matches(self, wanted: MatchFilter, per_rule: int = 50) -> list[MatchRecord]:
        """The latest ``per_rule`` matches of each rule that pass ``wanted``, by rule,
        newest first."""
        conditions: list[Any] = [*_within(Match.matched_at, wanted.window)]
        if wanted.rules:
            conditions.append(Match.rule.in_(list(wanted.rules)))
        if wanted.source is not None:
            conditions.append(Source.name == wanted.source)
        if wanted.state != "any":
            sent = _story_was_sent(wanted.recipient)
            conditions.append(sent if wanted.state == "sent" else ~sent)
        rank = (
            func.row_number()
            .over(partition_by=Match.rule, order_by=(Match.matched_at.desc(), Match.id.desc()))
            .label("rank")
        )
        ranked = (
            select(Match.id, rank)
            .join(Article, Article.id == Match.article_id)
            .outerjoin(Source, Source.id == Article.source_id)
            .where(*conditions)
            .subquery()
        )
        copy = aliased(Article)
        outlets = select(func.count(func.distinct(copy.source_id))).where(
            copy.story_id == Article.story_id
        )
        query = (
            select(
                Match.id,
                Match.rule,
                Match.terms,
                Match.matched_at,
                Article.id.label("article_id"),
                _story_of().label("story_id"),
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
            rows = session.execute(query).all()
        return [
            MatchRecord(
                match_id=row.id,
                rule=row.rule,
                terms=tuple(row.terms or ()),
                matched_at=row.matched_at,
                article_id=row.article_id,
                story_id=row.story_id,
                url=row.url,
                title=row.title or "",
                source=row.source,
                published_at=row.published_at,
                body=row.body or "",
                outlets=row.outlets,
            )
            for row in rows
        ]

    def story_sendings(self, story_ids: Sequence[int]) -> dict[int, list[StorySending]]:
        """The deliveries that carried a copy of each of ``story_ids``, oldest first
        (a story never carried is absent)."""
        if not story_ids:
            return {}
        with self._session() as session:
            return _sendings(session, list(dict.fromkeys(story_ids)))


def _story_was_sent(recipient: str | None) -> Any:
    """Whether a channel accepted a delivery with a copy of the article's story (to
    ``recipient``, when given). A copy's item names the story it stood for, so the
    look-up is by article or by story id, each on an index."""
    return exists().where(
        Delivery.id == DeliveryItem.delivery_id,
        Delivery.sent_at.is_not(None),
        or_(
            DeliveryItem.article_id == Article.id,
            and_(Article.story_id.is_not(None), DeliveryItem.story_id == Article.story_id),
        ),
        *([DeliveryItem.recipient == recipient] if recipient is not None else []),
    )


def _sendings(session: Session, story_ids: list[int]) -> dict[int, list[StorySending]]:
    rows = session.execute(
        select(
            _story_of().label("story"),
            DeliveryItem.article_id,
            DeliveryItem.revision,
            Delivery.id,
            Delivery.recipient,
            Delivery.channel,
            Delivery.kind,
            Delivery.created_at,
            Delivery.sent_at,
            Delivery.failed_at,
        )
        .join(Article, Article.id == DeliveryItem.article_id)
        .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
        .where(_in_stories(story_ids))
        .order_by(Delivery.created_at, Delivery.id, DeliveryItem.id)
    ).all()
    grouped: dict[int, list[StorySending]] = {}
    for row in rows:
        grouped.setdefault(row.story, []).append(
            StorySending(
                delivery_id=row.id,
                article_id=row.article_id,
                revision=row.revision,
                recipient=row.recipient,
                channel=row.channel,
                kind=row.kind,
                created_at=row.created_at,
                sent_at=row.sent_at,
                failed_at=row.failed_at,
            )
        )
    return grouped


def _load_stories(session: Session, story_ids: list[int], *, revisions: bool) -> list[StoryRecord]:
    """The stories of ``story_ids`` that have an article, in no particular order."""
    if not story_ids:
        return []
    articles = session.execute(
        select(
            _story_of().label("story"),
            Article.id,
            Article.url,
            Article.title,
            func.coalesce(Source.name, "").label("source"),
            Article.published_at,
            Article.fetched_at,
            Article.revision,
        )
        .outerjoin(Source, Source.id == Article.source_id)
        .where(_in_stories(story_ids))
        .order_by(Article.id)
    ).all()
    article_ids = [row.id for row in articles]
    matches = session.execute(
        select(Match.rule, Match.article_id, Match.terms, Match.matched_at)
        .where(Match.article_id.in_(article_ids))
        .order_by(Match.matched_at, Match.id)
    ).all()
    earlier = (
        session.execute(
            select(
                ArticleRevision.article_id,
                ArticleRevision.revision,
                ArticleRevision.title,
                ArticleRevision.fetched_at,
            )
            .where(ArticleRevision.article_id.in_(article_ids))
            .order_by(ArticleRevision.article_id, ArticleRevision.revision)
        ).all()
        if revisions
        else []
    )
    sendings = _sendings(session, story_ids)
    story_of = {row.id: row.story for row in articles}
    copies: dict[int, list[StoryCopy]] = {}
    fetched: dict[int, list[datetime]] = {}
    for row in articles:
        copies.setdefault(row.story, []).append(
            StoryCopy(
                article_id=row.id,
                url=row.url,
                title=row.title or "",
                source=row.source,
                published_at=row.published_at,
                fetched_at=row.fetched_at,
                revision=row.revision,
            )
        )
        fetched.setdefault(row.story, []).append(row.fetched_at)
    matched: dict[int, list[StoryMatch]] = {}
    for rule, article_id, terms, matched_at in matches:
        matched.setdefault(story_of[article_id], []).append(
            StoryMatch(rule, article_id, tuple(terms or ()), matched_at)
        )
    texts: dict[int, list[StoryRevision]] = {}
    for article_id, revision, title, revised_at in earlier:
        texts.setdefault(story_of[article_id], []).append(
            StoryRevision(article_id, revision, title or "", revised_at)
        )
        # A revision moves its copy's fetch time on: the story was seen at the first.
        fetched[story_of[article_id]].append(revised_at)
    return [
        StoryRecord(
            id=story,
            first_seen=min(fetched[story]),
            last_seen=max(fetched[story]),
            # Undated copies last, then in the order they were stored.
            copies=tuple(sorted(members, key=lambda c: (c.published_at or _LATEST, c.article_id))),
            matches=tuple(matched.get(story, ())),
            sendings=tuple(sendings.get(story, ())),
            revisions=tuple(texts.get(story, ())),
        )
        for story, members in copies.items()
    ]
