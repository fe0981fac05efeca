"""Readers' answers to their digests (docs/feedback.md): the one-time links used,
votes, muted stories and paused or unsubscribed rules; and what of them
``pending_items`` honours."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update

from crawler.storage.engine import StoreBase, _insert_ignoring_conflict
from crawler.storage.models import Article, FeedbackVote, RuleHold, StoryMute, UsedLink
from crawler.storage.records import HeldRule, MutedStory, ReaderAnswer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import CursorResult
    from sqlalchemy.orm import QueryableAttribute

MORE = "more"
LESS = "less"
MUTE = "mute"
PAUSE = "pause"
UNSUBSCRIBE = "unsubscribe"
VOTES = frozenset({MORE, LESS})
ACTIONS = frozenset({MORE, LESS, MUTE, PAUSE, UNSUBSCRIBE})
MAX_TITLE_CHARS = 300


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
        return undone

    def unmute_story(self, recipient: str, story_id: int, now: datetime) -> int:
        with self._session.begin() as session:
            return cast(
                "CursorResult[Any]",
                session.execute(
                    update(StoryMute)
                    .where(
                        StoryMute.recipient == recipient,
                        StoryMute.story_id == story_id,
                        StoryMute.undone_at.is_(None),
                    )
                    .values(undone_at=now)
                ),
            ).rowcount

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
                select(StoryMute.story_id, StoryMute.title, StoryMute.created_at)
                .where(StoryMute.recipient == recipient, StoryMute.undone_at.is_(None))
                .order_by(StoryMute.created_at.desc(), StoryMute.id.desc())
            ).all()
        shown: dict[int, MutedStory] = {}
        for story_id, title, created_at in rows:
            shown.setdefault(story_id, MutedStory(story_id, title, created_at))
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
