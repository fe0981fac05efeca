"""One extracted article into the database, top to bottom: canonicalise → dedup → store.

The decision for each article fetched:
- its URL, another URL it was reached under, or its exact body on the same site is
  already stored: the same article. If the page changed materially it becomes a
  new revision (the old text is kept); otherwise only the new URL is remembered
  as an alias;
- its exact body is stored from another site: a word-for-word copy (verbatim
  syndication of a wire story). It is stored as a member of that article's story
  (its own URL, outlet, time and matches), so "also reported by" names it, and
  readers who had the story are not sent it again;
- else it is new: it joins a story (near-duplicate copies of one wire story share
  one), the rules are matched, and article and matches are stored together.

Runs on the database thread, one article at a time, so the story index and the
database never disagree about what was seen first.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from crawler.domain.dedup import (
    BodyKeys,
    SignatureParams,
    body_keys,
    normalise_for_fingerprint,
)
from crawler.domain.items import IngestResult, Outcome, RuleMatch
from crawler.domain.stories import StoryCandidate
from crawler.domain.urls import canonicalize_url, same_site
from crawler.storage.store import ArticleRecord

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from crawler.domain.items import ArticleItem
    from crawler.storage.store import KnownArticle, Store

logger = logging.getLogger(__name__)

# Word-set similarity below which a re-fetched body counts as materially changed.
MATERIAL_SIMILARITY = 0.9


class ResendPolicy(StrEnum):
    """When a changed article that readers already had is sent again as "updated"."""

    HEADLINE = "headline"  # the headline changed, or a rule matches that did not before
    ANY = "any"  # any material change
    NEVER = "never"


class StoryAssigner(Protocol):
    """What ingest needs of the story index (crawler.domain.stories.StoryIndex)."""

    params: SignatureParams

    def signature(self, body: str) -> bytes: ...

    def assign(self, candidate: StoryCandidate, *, signature: bytes | None = None) -> int: ...

    def add_existing(
        self,
        article_id: int,
        story_id: int,
        signature: bytes,
        published: datetime | None,
        title: str,
        source: str,
    ) -> None: ...


def normalise_body(text: str) -> str:
    """The body as fingerprints see it (see crawler.domain.dedup.normalise_for_fingerprint)."""
    return normalise_for_fingerprint(text)


def content_fingerprint(text: str) -> str | None:
    """A key for the exact body (None when the body is too short to be telling)."""
    return body_keys(text, None).fingerprint


def keys_of(item: ArticleItem, stories: StoryAssigner | None) -> BodyKeys:
    """The item's dedup keys: as computed in the CPU worker, else computed here."""
    params = stories.params if stories is not None else None
    if item.keys is not None and (item.keys.signature is not None or params is None):
        return item.keys
    return body_keys(item.article.text, params)


def is_material_change(old_title: str, old_body: str, new_title: str, new_body: str) -> bool:
    """A changed headline, or a body whose words differ by more than a tenth."""
    if normalise_body(old_title) != normalise_body(new_title):
        return True
    old_words, new_words = (
        set(normalise_body(old_body).split()),
        set(normalise_body(new_body).split()),
    )
    if not old_words and not new_words:
        return False
    similarity = len(old_words & new_words) / len(old_words | new_words)
    return similarity < MATERIAL_SIMILARITY


def ingest_article(
    store: Store,
    item: ArticleItem,
    matches: list[RuleMatch],
    *,
    stories: StoryAssigner | None = None,
    resend: ResendPolicy = ResendPolicy.HEADLINE,
) -> IngestResult:
    """Store ``item`` as a new article, a revision, or an alias of one stored."""
    return ingest_batch(store, [(item, matches)], stories=stories, resend=resend)[0]


def ingest_batch(
    store: Store,
    batch: Sequence[tuple[ArticleItem, list[RuleMatch]]],
    *,
    stories: StoryAssigner | None = None,
    resend: ResendPolicy = ResendPolicy.HEADLINE,
    settle_later: bool = True,
) -> list[IngestResult]:
    """Ingest a batch: one lookup for all, one transaction for all new articles.

    Known articles (by URL, alias or body) are handled one by one (aliases,
    copies, revisions: rare). An item that is a second copy of an earlier one in
    the batch (same URL or body), or that another process stored a moment ago, is
    settled in a second pass against what was just stored, like any known article.
    """
    body = [keys_of(item, stories) for item, _ in batch]
    keys = [(_aliases(item), key.fingerprint) for (item, _), key in zip(batch, body, strict=True)]
    known = store.find_articles(
        [
            ([item.article.url, *aliases], fingerprint)
            for (item, _), (aliases, fingerprint) in zip(batch, keys, strict=True)
        ]
    )
    results: list[IngestResult | None] = [None] * len(batch)
    fresh: list[int] = []
    later: list[int] = []
    claimed: set[str] = set()
    for index, ((item, matches), (aliases, fingerprint), stored) in enumerate(
        zip(batch, keys, known, strict=True)
    ):
        if stored is not None:
            results[index] = _update_known(
                store, stored, item, matches, aliases, body[index], resend, stories
            )
            continue
        identities = {item.article.url, *aliases} | ({fingerprint} if fingerprint else set())
        if identities & claimed:
            later.append(index)
            continue
        claimed |= identities
        fresh.append(index)

    records = []
    for index in fresh:
        item, matches = batch[index]
        aliases, fingerprint = keys[index]
        records.append(
            (
                ArticleRecord(
                    item.source, item.article, aliases, fingerprint, body[index].signature
                ),
                matches,
            )
        )
    ids = store.insert_articles(records)
    moved: dict[int, int] = {}
    for index, (record, _matches), article_id in zip(fresh, records, ids, strict=True):
        if article_id is None:  # another process stored it first
            later.append(index)
            continue
        story_id = article_id
        if stories is not None and record.signature is not None:
            article = record.article
            story_id = stories.assign(
                StoryCandidate(
                    article_id, article.title, article.text, article.published, record.source
                ),
                signature=record.signature,
            )
            if story_id != article_id:
                moved[article_id] = story_id
        results[index] = IngestResult(Outcome.NEW, article_id, story_id)
    store.set_stories(moved)
    if later:
        settled = (
            ingest_batch(
                store,
                [batch[index] for index in sorted(later)],
                stories=stories,
                resend=resend,
                settle_later=False,
            )
            if settle_later
            else [IngestResult(Outcome.DUPLICATE, None)] * len(later)
        )
        for index, result in zip(sorted(later), settled, strict=True):
            results[index] = result
    return [result for result in results if result is not None]


def _aliases(item: ArticleItem) -> tuple[str, ...]:
    fetched = canonicalize_url(item.fetched_url)
    return () if fetched == item.article.url else (fetched,)


def _update_known(
    store: Store,
    known: KnownArticle,
    item: ArticleItem,
    matches: list[RuleMatch],
    aliases: tuple[str, ...],
    keys: BodyKeys,
    resend: ResendPolicy,
    stories: StoryAssigner | None,
) -> IngestResult:
    article = item.article
    if known.found_by_body and not same_site(article.url, known.url):
        return _store_copy(store, known, item, matches, aliases, keys, stories)
    new_urls = [url for url in (article.url, *aliases) if url != known.url]
    store.add_aliases(known.id, new_urls)
    same_page = known.url in (article.url, *aliases)
    if not same_page or not is_material_change(
        known.title, known.body, article.title, article.text
    ):
        if same_page:
            store.touch_article(known.id)
        return IngestResult(Outcome.DUPLICATE, known.id, known.story_id)
    headline_changed = normalise_body(known.title) != normalise_body(article.title)
    newly_matching = {m.rule for m in matches} - known.rules
    notify = {
        ResendPolicy.HEADLINE: headline_changed or bool(newly_matching),
        ResendPolicy.ANY: True,
        ResendPolicy.NEVER: False,
    }[resend]
    record = ArticleRecord(item.source, article, aliases, keys.fingerprint, keys.signature)
    revision = store.save_revision(known, record, matches, notify=notify)
    logger.info(
        "article %s changed: stored as revision %d%s",
        known.url,
        revision,
        " (readers will get it as updated)" if notify else "",
    )
    return IngestResult(Outcome.REVISED, known.id, known.story_id)


def _store_copy(
    store: Store,
    known: KnownArticle,
    item: ArticleItem,
    matches: list[RuleMatch],
    aliases: tuple[str, ...],
    keys: BodyKeys,
    stories: StoryAssigner | None,
) -> IngestResult:
    """Store another outlet's word-for-word copy of ``known`` as a member of its story.

    The copy has no body fingerprint of its own (the fingerprint stays the first
    copy's, so the next verbatim copy finds that one too).
    """
    article = item.article
    record = ArticleRecord(item.source, article, aliases, None, keys.signature)
    (article_id,) = store.insert_articles([(record, matches)])
    if article_id is None:  # its URL was stored meanwhile
        return IngestResult(Outcome.DUPLICATE, None)
    story_id = known.story_id if known.story_id is not None else known.id
    store.set_stories({article_id: story_id})
    if stories is not None and keys.signature is not None:
        stories.add_existing(
            article_id, story_id, keys.signature, article.published, article.title, item.source
        )
    logger.info(
        "article %s is a word-for-word copy of %s: stored in its story", article.url, known.url
    )
    return IngestResult(Outcome.COPY, article_id, story_id)
