"""A digest's or an alert's content, whatever the channel: matched items grouped by
rule and by story (copies of one wire story are one entry), the shown ones with
their snippets, and a link to the rest."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from alerts.render import DigestEntry, DigestSection, make_snippet

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from crawler.domain.config import Config
    from crawler.storage.store import PendingItem, Store

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


def group_by_rule(
    items: Sequence[PendingItem],
    rule_order: Sequence[str],
    *,
    max_stories: int | None = None,
    more_url: Callable[[str], str] | None = None,
    bodies: Callable[[Sequence[int]], Mapping[int, str]] | None = None,
) -> list[DigestSection]:
    """Sections in ``rule_order`` (rules no longer configured last); in each, one
    entry per story, newest story first, the first ``max_stories`` of them shown
    and the rest counted in ``more``. Snippets are made for the stories shown
    only, from ``bodies`` (article id → body) when the items came without theirs:
    the work and the memory are per story shown, not per match."""
    by_rule: dict[str, list[PendingItem]] = {}
    for item in items:
        for rule, _terms in item.rules:
            by_rule.setdefault(rule, []).append(item)
    order = {name: position for position, name in enumerate(rule_order)}
    layout = []
    for rule, rule_items in sorted(by_rule.items(), key=lambda kv: order.get(kv[0], len(order))):
        stories = _stories(rule_items)
        shown = stories if max_stories is None else stories[:max_stories]
        layout.append((rule, shown, len(stories) - len(shown)))
    texts: Mapping[int, str] = {}
    if bodies is not None:
        texts = bodies(sorted({copies[0].article.id for _, shown, _ in layout for copies in shown}))
    return [
        DigestSection(
            rule=rule,
            entries=tuple(
                _entry(rule, copies, texts.get(copies[0].article.id)) for copies in shown
            ),
            more=more,
            more_url=more_url(rule) if more and more_url is not None else None,
        )
        for rule, shown, more in layout
    ]


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


def _entry(rule: str, copies: Sequence[PendingItem], body: str | None = None) -> DigestEntry:
    main = copies[0]
    terms = dict(main.rules).get(rule, ())
    others = tuple(
        dict.fromkeys(
            c.article.source for c in copies[1:] if c.article.source != main.article.source
        )
    )
    return DigestEntry(
        title=main.article.title,
        url=main.article.url,
        source=main.article.source,
        published=main.article.published,
        snippet_text=make_snippet(main.article.body if body is None else body, terms),
        terms=terms,
        also_reported_by=others,
        updated=main.is_update,
        article_id=main.article.id,
        story_id=main.article.story_id,
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
