"""A digest's or an alert's content, whatever the channel: matched items grouped by
rule and by story (copies of one wire story are one entry), the shown ones with
their snippets, and a link to the rest."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from alerts.follow_ups import find_follow_ups
from alerts.render import DigestEntry, DigestSection
from alerts.story_scores import RankedStory, StoryScorer
from alerts.story_text import best_headline, make_lede

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from alerts.learning import Taste
    from crawler.domain.config import Config, Recipient
    from crawler.storage.store import PendingItem, SentStory, Store

logger = logging.getLogger(__name__)


def count_stories(items: Sequence[PendingItem]) -> int:
    """Distinct stories among ``items`` (copies of one story count once)."""
    return len({_story_key(item) for item in items})


def matches_url(config: Config) -> Callable[[str], str] | None:
    """The web UI's page of one rule's matches, where a cut section points."""
    base = config.web.public_url
    if base is None:
        return None
    root = str(base).rstrip("/")
    return lambda rule: f"{root}/matches?{urlencode({'rule': rule})}"


# Stories in a digest's opening block.
TOP_STORIES = 3


def recipient_named(config: Config, email: str) -> Recipient | None:
    """The configured recipient (or channel recipient) a ledger row names, if any."""
    for recipient in (*config.all_recipients(), *config.channel_recipients()):
        if recipient.email.lower() == email.lower():
            return recipient
    return None


def digest_sections(
    items: Sequence[PendingItem],
    config: Config,
    recipient: Recipient | None,
    now: datetime,
    *,
    max_stories: int | None = None,
    bodies: Callable[[Sequence[int]], Mapping[int, str]] | None = None,
    follow_ups: Mapping[int, datetime] | None = None,
    tastes: Mapping[str, Taste] | None = None,
) -> list[DigestSection]:
    """``items`` as the recipient's digest lays them out, whatever the channel: the
    top stories, then one section per rule in the configured order, at most
    ``max_stories`` (default: the recipient's ``max_stories``, else
    ``digest.max_stories``) stories shown in each; ``follow_ups`` (``find_follow_ups_in``)
    marks the stories that continue one the reader was sent; ``tastes``
    (``alerts.learning.reader_tastes``) reorders by what the reader's votes taught."""
    cap = max_stories or (recipient.max_stories if recipient else None)
    return group_by_rule(
        _readers_rules_only(items, recipient),
        config.rule_names(),
        max_stories=cap or config.digest.max_stories,
        more_url=matches_url(config),
        bodies=bodies,
        now=now,
        repeat_stories=recipient.repeat_stories if recipient else False,
        top_stories=TOP_STORIES,
        follow_ups=follow_ups,
        tastes=tastes,
    )


def _readers_rules_only(
    items: Sequence[PendingItem], recipient: Recipient | None
) -> list[PendingItem]:
    """``items`` with only the recipient's own rules: a delivery's items come back
    with every rule that matched them, other readers' too, and a story belongs under
    one of this reader's rules (its answer links, "also matches"). An item none of
    whose rules is the reader's any more (the configuration changed since the
    delivery was made) keeps them all: it is still shown, never silently dropped."""
    if recipient is None:
        return list(items)
    mine = set(recipient.rules)
    kept = []
    for item in items:
        rules = tuple((rule, terms) for rule, terms in item.rules if rule in mine)
        kept.append(replace(item, rules=rules) if rules and rules != item.rules else item)
    return kept


def find_follow_ups_in(
    items: Sequence[PendingItem],
    sent: Sequence[SentStory],
    bodies: Callable[[Sequence[int]], Mapping[int, str]] | None = None,
) -> dict[int, datetime]:
    """The stories of ``items`` (by story key) that continue a story of ``sent``,
    with when that one was sent (alerts/follow_ups.py)."""
    if not sent:
        return {}
    stories = _stories(items)
    texts = bodies(sorted({c[0].article.id for c in stories})) if bodies is not None else {}
    return find_follow_ups(
        {
            _story_key(copies[0]): texts.get(copies[0].article.id, copies[0].article.body)
            for copies in stories
        },
        sent,
    )


def group_by_rule(
    items: Sequence[PendingItem],
    rule_order: Sequence[str],
    *,
    max_stories: int | None = None,
    more_url: Callable[[str], str] | None = None,
    bodies: Callable[[Sequence[int]], Mapping[int, str]] | None = None,
    now: datetime | None = None,
    repeat_stories: bool = False,
    top_stories: int = 0,
    follow_ups: Mapping[int, datetime] | None = None,
    tastes: Mapping[str, Taste] | None = None,
) -> list[DigestSection]:
    """Sections in ``rule_order`` (rules no longer configured last); in each, one
    entry per story, best score first (alerts/ranking.py; ties newest first), the
    first ``max_stories`` of them shown and the rest counted in ``more``.

    A story that matches several rules is shown once, in the section of the rule
    it scores best for (the first in ``rule_order`` of equals), naming the others
    (``also_matches``); ``repeat_stories`` shows it in each. With ``top_stories``,
    the best stories of the whole digest open it in a section of their own
    (``top``), when it has more stories than that and more than one section; they
    are not repeated below unless ``repeat_stories``.

    Bodies come from ``bodies`` (article id → body) when the items came without
    theirs; scoring reads the body of each story's earliest copy, and only the
    stories that can be shown are scored (alerts/story_scores.py). ``follow_ups``
    (story key → when the story it continues was sent) marks follow-ups. ``tastes``
    (rule → what the reader's votes on it taught) multiply each story's score for
    the rule by its learned factor."""
    now = now or datetime.now(UTC)
    order = {name: position for position, name in enumerate(rule_order)}
    stories = [RankedStory.of(copies, n) for n, copies in enumerate(_stories(items))]
    scorer = StoryScorer(bodies, now, order, tastes)
    scorer.score([story for story in stories if _placed_by_score(story, order, repeat_stories)])
    by_rule: dict[str, list[RankedStory]] = {}
    for story in stories:
        rules = _rules_best_first(story)
        if not repeat_stories:
            rules = rules[:1]
        for rule in rules:
            by_rule.setdefault(rule, []).append(story)
    top: list[RankedStory] = []
    if top_stories and len(stories) > top_stories and len(by_rule) > 1:
        top = scorer.best(stories, top_stories)
    on_top = {id(story) for story in top} if not repeat_stories else set()
    sections = []
    if top:
        sections.append(
            DigestSection(
                rule=TOP_STORIES_HEADING,
                entries=tuple(
                    _entry(story, story.scores[0][0], scorer, follow_ups) for story in top
                ),
                top=True,
            )
        )
    for rule, rule_stories in sorted(by_rule.items(), key=lambda kv: order.get(kv[0], len(order))):
        listed = [story for story in rule_stories if id(story) not in on_top]
        shown = scorer.best(listed, len(listed) if max_stories is None else max_stories, rule)
        more = len(listed) - len(shown)
        sections.append(
            DigestSection(
                rule=rule,
                entries=tuple(_entry(story, rule, scorer, follow_ups) for story in shown),
                more=more,
                more_url=more_url(rule) if more and more_url is not None else None,
            )
        )
    return sections


TOP_STORIES_HEADING = "Top stories"


def _placed_by_score(story: RankedStory, order: Mapping[str, int], repeat_stories: bool) -> bool:
    """Whether where the story goes depends on its scores: the section of a story
    of several rules is the one it scores best for; shown in each, the rules'
    order still places the sections of rules no longer configured (in the order
    they come, after the others)."""
    if repeat_stories:
        return sum(rule not in order for rule in story.terms) > 1
    return len(story.terms) > 1


def _rules_best_first(story: RankedStory) -> list[str]:
    """The story's rules, best score first when that was needed (_placed_by_score)."""
    if story.scored:
        return [rule for rule, _score in story.scores]
    return list(story.terms)


def _story_key(item: PendingItem) -> int:
    return item.article.story_id if item.article.story_id is not None else -item.article.id


def _stories(items: Sequence[PendingItem]) -> list[list[PendingItem]]:
    """``items`` by story, each story's copies earliest first (the earliest copy,
    usually the wire original, is the main link), stories newest first."""
    oldest = datetime.max.replace(tzinfo=UTC)
    stories: dict[int, list[PendingItem]] = {}
    for item in items:
        stories.setdefault(_story_key(item), []).append(item)
    for copies in stories.values():
        copies.sort(key=lambda i: (i.article.published or oldest, i.article.id))
    earliest = datetime.min.replace(tzinfo=UTC)
    # sorted() is stable: stories of one moment keep the order they came in.
    return sorted(stories.values(), key=lambda c: c[0].article.published or earliest, reverse=True)


def _entry(
    story: RankedStory,
    rule: str,
    scorer: StoryScorer,
    follow_ups: Mapping[int, datetime] | None = None,
) -> DigestEntry:
    copies = story.copies
    main = copies[0]
    terms = tuple(dict.fromkeys(term for copy in copies for term in dict(copy.rules).get(rule, ())))
    others = tuple(
        dict.fromkeys(
            c.article.source for c in copies[1:] if c.article.source != main.article.source
        )
    )
    headline = best_headline([copy.article.title for copy in copies])
    return DigestEntry(
        title=headline,
        url=main.article.url,
        source=main.article.source,
        published=main.article.published,
        snippet_text=make_lede(scorer.text(story), main.article.title),
        terms=terms,
        also_reported_by=others,
        updated=main.is_update,
        article_id=main.article.id,
        story_id=main.article.story_id,
        also_matches=tuple(other for other, _ in story.scores if other != rule),
        score=story.score(rule),
        rule=rule,
        follow_up_to=(follow_ups or {}).get(_story_key(main)),
    )


def body_cache(store: Store) -> Callable[[Sequence[int]], Mapping[int, str]]:
    """``store.article_bodies``, reading each body once however often a digest is cut."""
    known: dict[int, str] = {}

    def bodies(article_ids: Sequence[int]) -> Mapping[int, str]:
        missing = [article_id for article_id in article_ids if article_id not in known]
        if missing:
            known.update(store.article_bodies(missing))
        return {article_id: known.get(article_id, "") for article_id in article_ids}

    return bodies
