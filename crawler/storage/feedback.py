"""Readers' answers to their digests (docs/feedback.md): the one-time links used,
votes, muted stories and paused or unsubscribed rules; and what of them
``pending_items`` honours."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update

from crawler.storage.engine import StoreBase, _insert_ignoring_conflict
from crawler.storage.models import (
    Article,
    Delivery,
    DeliveryItem,
    FeedbackVote,
    Match,
    RuleHold,
    Source,
    StoryMute,
    UsedLink,
)
from crawler.storage.records import (
    HeldRule,
    LearningExample,
    MutedStory,
    MutedText,
    ReaderAnswer,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import CursorResult
    from sqlalchemy.orm import QueryableAttribute, Session

MORE = "more"
LESS = "less"
MUTE = "mute"
PAUSE = "pause"
UNSUBSCRIBE = "unsubscribe"
VOTES = frozenset({MORE, LESS})
ACTIONS = frozenset({MORE, LESS, MUTE, PAUSE, UNSUBSCRIBE})
MAX_TITLE_CHARS = 300
ORDINARY = "ordinary"
# What the learning reads of a story's body (its lede is the first 60 words), and
# how many of a reader's unvoted stories of a rule stand in for a class without votes.
LEARNING_BODY_CHARS = 1_000
MAX_ORDINARY_STORIES = 200


def story_key(story_id: int | None, article_id: int) -> int:
    """What a mute names: the article's story, or the article when it has none."""
    return story_id if story_id is not None else article_id


def not_muted(recipient: str | ColumnElement[str]) -> ColumnElement[bool]:
    """A condition on ``Article``: its story is not muted by ``recipient`` (an
    address, or a column of them)."""
    return ~exists().where(
        StoryMute.recipient == recipient,
        StoryMute.undone_at.is_(None),
        StoryMute.story_id == func.coalesce(Article.story_id, Article.id),
    )


def _unmute(session: Session, recipient: str, which: ColumnElement[bool], now: datetime) -> int:
    return cast(
        "CursorResult[Any]",
        session.execute(
            update(StoryMute)
            .where(StoryMute.recipient == recipient, StoryMute.undone_at.is_(None), which)
            .values(undone_at=now)
        ),
    ).rowcount


def _unmute_follow_ups(
    session: Session, recipient: str, stories: Sequence[int], now: datetime
) -> None:
    """Unmute the follow-ups muted because they continue one of ``stories`` (a
    reader who unmutes a story wants its follow-ups too), and theirs in turn."""
    while stories:
        stories = session.scalars(
            update(StoryMute)
            .where(
                StoryMute.recipient == recipient,
                StoryMute.undone_at.is_(None),
                StoryMute.follows_story_id.in_(list(stories)),
            )
            .values(undone_at=now)
            .returning(StoryMute.story_id)
        ).all()


def not_held(
    recipient: ColumnElement[str], rule: QueryableAttribute[str], now: datetime
) -> ColumnElement[bool]:
    """A condition: ``recipient`` has not paused or unsubscribed from ``rule``."""
    return ~exists().where(_holding(recipient, now), RuleHold.rule == rule)


def _holding(recipient: str | ColumnElement[str], now: datetime) -> ColumnElement[bool]:
    return and_(
        RuleHold.recipient == recipient,
        RuleHold.undone_at.is_(None),
        or_(RuleHold.until.is_(None), RuleHold.until > now),
    )


class FeedbackQueries(StoreBase):
    """What readers answered through the links in their digests."""

    def record_answer(self, token_id: str, answer: ReaderAnswer, now: datetime) -> bool:
        """Do what a one-time link asks, once: False (and nothing done) when the link
        ``token_id`` was used before. The use and the answer are one transaction."""
        with self._session.begin() as session:
            # RETURNING, not rowcount: drivers differ on what an ignored insert counts.
            used = session.scalar(
                _insert_ignoring_conflict(
                    session, UsedLink, {"token_id": token_id, "used_at": now}
                ).returning(UsedLink.token_id)
            )
            if used is None:
                return False
            common = {"recipient": answer.recipient, "token_id": token_id, "created_at": now}
            if answer.action in VOTES:
                session.add_all(
                    FeedbackVote(
                        **common,
                        story_id=answer.story_id,
                        article_id=answer.article_id,
                        rule=rule,
                        vote=answer.action,
                    )
                    for rule in answer.rules
                )
            elif answer.action == MUTE and answer.story_id is not None:
                session.add(
                    StoryMute(
                        **common, story_id=answer.story_id, title=answer.title[:MAX_TITLE_CHARS]
                    )
                )
            elif answer.action in {PAUSE, UNSUBSCRIBE}:
                until = answer.until if answer.action == PAUSE else None
                session.add_all(RuleHold(**common, rule=rule, until=until) for rule in answer.rules)
        return True

    def unsubscribe_by_link(
        self, token_id: str, recipient: str, rules: Sequence[str], now: datetime
    ) -> list[str]:
        """RFC 8058 one-click through the link ``token_id``: leave ``recipient``
        unsubscribed from each of ``rules``, however often the link is posted (a
        mailbox provider may replay it, a reader may re-subscribe and click it again).
        Returns the rules this unsubscribed, those without a standing unsubscription
        (a paused rule is unsubscribed too); their holds carry the link, whose undo
        takes them back. The link's first use is recorded like any link's."""
        with self._session.begin() as session:
            session.execute(
                _insert_ignoring_conflict(session, UsedLink, {"token_id": token_id, "used_at": now})
            )
            standing = set(
                session.scalars(
                    select(RuleHold.rule).where(
                        RuleHold.recipient == recipient,
                        RuleHold.undone_at.is_(None),
                        RuleHold.until.is_(None),
                        RuleHold.rule.in_(list(rules)),
                    )
                )
            )
            added = [rule for rule in dict.fromkeys(rules) if rule not in standing]
            session.add_all(
                RuleHold(recipient=recipient, token_id=token_id, created_at=now, rule=rule)
                for rule in added
            )
        return added

    def hold_rule(self, recipient: str, rule: str, until: datetime | None, now: datetime) -> None:
        """Pause ``rule`` for ``recipient`` until ``until`` (None: unsubscribe), from
        the reader's own page (no one-time link involved)."""
        with self._session.begin() as session:
            session.add(RuleHold(recipient=recipient, rule=rule, until=until, created_at=now))

    def link_used(self, token_id: str) -> bool:
        with self._session() as session:
            return session.get(UsedLink, token_id) is not None

    def undo_answer(self, recipient: str, token_id: str, now: datetime) -> int:
        """Take back what the link ``token_id`` did (votes, a mute, holds); returns
        how many answers were taken back (0: none stood)."""
        undone = 0
        with self._session.begin() as session:
            unmuted = session.scalars(
                select(StoryMute.story_id).where(
                    StoryMute.recipient == recipient,
                    StoryMute.token_id == token_id,
                    StoryMute.undone_at.is_(None),
                )
            ).all()
            for model in (FeedbackVote, StoryMute, RuleHold):
                undone += cast(
                    "CursorResult[Any]",
                    session.execute(
                        update(model)
                        .where(
                            model.recipient == recipient,
                            model.token_id == token_id,
                            model.undone_at.is_(None),
                        )
                        .values(undone_at=now)
                    ),
                ).rowcount
            _unmute_follow_ups(session, recipient, unmuted, now)
        return undone

    def forget_votes(self, recipient: str, rule: str, now: datetime) -> int:
        """Take back every standing vote of ``recipient`` on ``rule`` (the reader's
        page: "forget what my votes taught")."""
        with self._session.begin() as session:
            return cast(
                "CursorResult[Any]",
                session.execute(
                    update(FeedbackVote)
                    .where(
                        FeedbackVote.recipient == recipient,
                        FeedbackVote.rule == rule,
                        FeedbackVote.undone_at.is_(None),
                    )
                    .values(undone_at=now)
                ),
            ).rowcount

    def unmute_story(self, recipient: str, story_id: int, now: datetime) -> int:
        """Unmute ``story_id`` for ``recipient``, and the follow-ups muted because
        they continue it (and theirs); returns how many of the story's mutes stood."""
        with self._session.begin() as session:
            unmuted = _unmute(session, recipient, StoryMute.story_id == story_id, now)
            _unmute_follow_ups(session, recipient, [story_id], now)
        return unmuted

    def muted_story_texts(self, recipient: str, since: datetime) -> list[MutedText]:
        """The stories ``recipient`` muted since ``since`` and did not unmute (the
        mutes of follow-ups included), each with the text of its earliest copy whose
        body is still stored; a story with none is left out."""
        with self._session() as session:
            muted = dict(
                session.execute(
                    select(StoryMute.story_id, StoryMute.title)
                    .where(
                        StoryMute.recipient == recipient,
                        StoryMute.undone_at.is_(None),
                        StoryMute.created_at >= since,
                    )
                    .order_by(StoryMute.created_at, StoryMute.id)
                ).all()
            )
            if not muted:
                return []
            keys = list(muted)
            story = func.coalesce(Article.story_id, Article.id)
            earliest = (
                select(story.label("story"), func.min(Article.id).label("article_id"))
                .where(
                    or_(Article.story_id.in_(keys), and_(Article.story_id.is_(None),
                                                          Article.id.in_(keys))),
                    Article.purged_at.is_(None),
                )
                .group_by(story)
                .subquery()
            )  # fmt: skip
            rows = session.execute(
                select(earliest.c.story, Article.body).join(
                    Article, Article.id == earliest.c.article_id
                )
            ).all()
        bodies: dict[int, str] = {story: body for story, body in rows}
        return [
            MutedText(story=key, title=title, body=bodies[key])
            for key, title in muted.items()
            if bodies.get(key)
        ]

    def mute_follow_ups(
        self, recipient: str, follow_ups: Sequence[tuple[int, str, int]], now: datetime
    ) -> int:
        """Mute for ``recipient`` each (story, its title, the muted story it follows)
        of ``follow_ups``, but not a story they muted or unmuted before (an unmuted
        follow-up stays unmuted). Returns the mutes made."""
        if not follow_ups:
            return 0
        with self._session.begin() as session:
            known = set(
                session.scalars(
                    select(StoryMute.story_id).where(
                        StoryMute.recipient == recipient,
                        StoryMute.story_id.in_([story for story, _, _ in follow_ups]),
                    )
                )
            )
            made = [
                StoryMute(
                    recipient=recipient,
                    story_id=story,
                    title=title[:MAX_TITLE_CHARS],
                    follows_story_id=follows,
                    created_at=now,
                )
                for story, (title, follows) in {s: (t, f) for s, t, f in follow_ups}.items()
                if story not in known
            ]
            session.add_all(made)
        return len(made)

    def release_rule(self, recipient: str, rule: str, now: datetime) -> int:
        """End ``recipient``'s pause of, or unsubscription from, ``rule``."""
        with self._session.begin() as session:
            return cast(
                "CursorResult[Any]",
                session.execute(
                    update(RuleHold)
                    .where(_holding(recipient, now), RuleHold.rule == rule)
                    .values(undone_at=now)
                ),
            ).rowcount

    def muted_stories(self, recipient: str) -> list[MutedStory]:
        """The stories ``recipient`` muted and did not unmute, newest first."""
        with self._session() as session:
            rows = session.execute(
                select(
                    StoryMute.story_id,
                    StoryMute.title,
                    StoryMute.created_at,
                    StoryMute.follows_story_id,
                )
                .where(StoryMute.recipient == recipient, StoryMute.undone_at.is_(None))
                .order_by(StoryMute.created_at.desc(), StoryMute.id.desc())
            ).all()
        titles = {story_id: title for story_id, title, _, _ in reversed(rows)}
        shown: dict[int, MutedStory] = {}
        for story_id, title, created_at, follows in rows:
            followed = None if follows is None else titles.get(follows, "(a muted story)")
            shown.setdefault(story_id, MutedStory(story_id, title, created_at, followed))
        return list(shown.values())

    def held_rules(self, recipient: str, now: datetime) -> list[HeldRule]:
        """The rules ``recipient`` paused (until a time still to come) or unsubscribed
        from, one each (an unsubscription outweighs a pause, a later pause an earlier)."""
        with self._session() as session:
            rows = session.execute(
                select(RuleHold.rule, RuleHold.until, RuleHold.created_at)
                .where(_holding(recipient, now))
                .order_by(RuleHold.rule, RuleHold.created_at)
            ).all()
        held: dict[str, HeldRule] = {}
        for rule, until, created_at in rows:
            before = held.get(rule)
            if before is not None and (before.until is None or (until and until < before.until)):
                continue
            held[rule] = HeldRule(rule, until, created_at)
        return list(held.values())

    def votes(self, recipient: str) -> list[tuple[str, int | None, int | None, str]]:
        """``recipient``'s standing votes: (rule, story, article, vote), oldest first."""
        with self._session() as session:
            rows = session.execute(
                select(
                    FeedbackVote.rule,
                    FeedbackVote.story_id,
                    FeedbackVote.article_id,
                    FeedbackVote.vote,
                )
                .where(FeedbackVote.recipient == recipient, FeedbackVote.undone_at.is_(None))
                .order_by(FeedbackVote.id)
            ).all()
        return [(rule, story, article, vote) for rule, story, article, vote in rows]

    def learning_examples(
        self, recipient: str, rules: Sequence[str], until: datetime
    ) -> dict[str, list[LearningExample]]:
        """Per rule of ``rules`` with a vote of ``recipient`` standing at ``until``:
        the voted stories (the latest vote per story) and up to
        ``MAX_ORDINARY_STORIES`` of the reader's ordinary stories of the rule (sent to
        them before ``until`` on any channel, not voted on), newest first. Stories
        whose article is gone are left out."""
        standing = and_(
            FeedbackVote.recipient == recipient,
            FeedbackVote.rule.in_(list(rules)),
            FeedbackVote.created_at <= until,
            or_(FeedbackVote.undone_at.is_(None), FeedbackVote.undone_at > until),
        )
        text = (
            Article.title,
            func.substr(Article.body, 1, LEARNING_BODY_CHARS),
            func.coalesce(Source.name, ""),
            Article.language,
        )
        with self._session() as session:
            votes = session.execute(
                select(FeedbackVote.rule, FeedbackVote.story_id, FeedbackVote.vote, *text)
                .join(Article, Article.id == FeedbackVote.article_id)
                .outerjoin(Source, Source.id == Article.source_id)
                .where(standing)
                .order_by(FeedbackVote.id)
            ).all()
            latest: dict[str, dict[int | None, LearningExample]] = {}
            voted: dict[str, set[int]] = {}
            for rule, story, vote, title, body, outlet, language in votes:
                example = LearningExample(vote, title or "", body or "", outlet, language)
                # A story voted twice counts once, as last voted (None: each its own).
                key = story if story is not None else -len(latest.get(rule, {})) - 1
                latest.setdefault(rule, {})[key] = example
                if story is not None:
                    voted.setdefault(rule, set()).add(story)
            examples = {rule: list(by_story.values()) for rule, by_story in latest.items()}
            for rule, rule_examples in examples.items():
                story = func.coalesce(DeliveryItem.story_id, DeliveryItem.article_id)
                recent = (
                    select(func.min(DeliveryItem.article_id).label("article_id"))
                    .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
                    .join(
                        Match, and_(Match.article_id == DeliveryItem.article_id, Match.rule == rule)
                    )
                    .where(
                        DeliveryItem.recipient == recipient,
                        Delivery.sent_at.is_not(None),
                        Delivery.sent_at <= until,
                        story.not_in(voted.get(rule, set())),
                    )
                    .group_by(story)
                    .order_by(func.max(Delivery.sent_at).desc())
                    .limit(MAX_ORDINARY_STORIES)
                    .subquery()
                )
                ordinary = session.execute(
                    select(*text)
                    .join(recent, recent.c.article_id == Article.id)
                    .outerjoin(Source, Source.id == Article.source_id)
                    .order_by(Article.id.desc())
                ).all()
                rule_examples.extend(
                    LearningExample(ORDINARY, title or "", body or "", outlet, language)
                    for title, body, outlet, language in ordinary
                )
        return examples

    def purge_feedback(
        self, *, answers_before: datetime, undone_before: datetime, links_before: datetime
    ) -> int:
        """Retention: delete votes and mutes made before ``answers_before`` (their
        stories are gone by then too), answers undone and pauses ended before
        ``undone_before``, and used links older than any link can be
        (``links_before``: past the links' lifetime a replay is refused anyway).
        An unsubscription stands until it is undone, however old. Returns the rows
        deleted."""
        stale = [
            delete(FeedbackVote).where(
                or_(
                    FeedbackVote.created_at < answers_before,
                    FeedbackVote.undone_at < undone_before,
                )
            ),
            delete(StoryMute).where(
                or_(StoryMute.created_at < answers_before, StoryMute.undone_at < undone_before)
            ),
            delete(RuleHold).where(
                or_(RuleHold.undone_at < undone_before, RuleHold.until < undone_before)
            ),
            delete(UsedLink).where(UsedLink.used_at < links_before),
        ]
        deleted = 0
        with self._session.begin() as session:
            for statement in stale:
                deleted += cast("CursorResult[Any]", session.execute(statement)).rowcount
        return deleted
