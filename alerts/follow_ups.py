"""Follow-ups: a new story that continues one the reader was sent (or muted) before.

News reports of a developing story repeat their background: the same paragraphs
("Palmyra, a UNESCO World Heritage site, was seized by ISIS in May 2015 …") under a
new top. A new story is a follow-up of an earlier story when at least
``MIN_SHARED_PARAGRAPHS`` of its background paragraphs (of at least
``MIN_PARAGRAPH_WORDS`` words) are in the earlier story's text: each paragraph as its
word ``SHINGLE_WORDS``-grams, found when ``MIN_CONTAINMENT`` of them are in the
earlier story (an edited or re-cut paragraph still counts). Copies of one story are
grouped elsewhere (crawler/domain/stories.py), so a follow-up here is another story.

The few new stories are indexed, and the reader's history (up to thousands of
stories) streams past that index one story at a time: memory grows with the new
stories, not with the history (bench/follow_ups.py). Pure functions; the history
comes from storage (``Store.sent_stories``, ``Store.muted_story_texts``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from crawler.domain.query import tokenise

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from datetime import datetime

    from crawler.storage.records import SentStory

MIN_SHARED_PARAGRAPHS = 2
MIN_PARAGRAPH_WORDS = 20
SHINGLE_WORDS = 5
MIN_CONTAINMENT = 0.8
# How far back a reader's history is read.
FOLLOW_UP_WINDOW = timedelta(days=30)

Shingle = tuple[str, ...]


class EarlierStory(Protocol):
    """A story told before: its key and its text."""

    @property
    def story(self) -> int: ...

    @property
    def body(self) -> str: ...


Earlier = TypeVar("Earlier", bound=EarlierStory)


def paragraph_shingles(body: str) -> list[frozenset[Shingle]]:
    """The shingles of each paragraph of ``body`` (blank-line separated) long enough
    to be background; words as the matcher folds them."""
    shingled = []
    for paragraph in body.split("\n\n"):
        words = tokenise(paragraph)
        if len(words) >= MIN_PARAGRAPH_WORDS:
            shingled.append(frozenset(_shingles(words)))
    return shingled


def _shingles(words: list[str]) -> Iterator[Shingle]:
    # zip builds the tuples in C: a tenth of the time of joining and hashing each one.
    return zip(*(words[start:] for start in range(SHINGLE_WORDS)), strict=False)


def _all_shingles(body: str) -> set[Shingle]:
    """Every shingle of ``body``'s background-length paragraphs, as one set."""
    shingles: set[Shingle] = set()
    for paragraph in body.split("\n\n"):
        words = tokenise(paragraph)
        if len(words) >= MIN_PARAGRAPH_WORDS:
            shingles.update(_shingles(words))
    return shingles


def stories_continued(
    new_stories: Mapping[int, str], earlier: Iterable[Earlier]
) -> Iterator[tuple[int, Earlier]]:
    """(new story's key, earlier story) for each pair where the new story (key →
    body) continues the earlier one, in the order of ``earlier``. A story never
    continues itself.

    ``earlier`` is read once, one story at a time (a generator keeps memory flat)."""
    # shingle → (new story, paragraph) pairs holding it; and each paragraph's size.
    index: dict[Shingle, list[tuple[int, int]]] = {}
    sizes: dict[tuple[int, int], int] = {}
    for key, body in new_stories.items():
        for number, paragraph in enumerate(paragraph_shingles(body)):
            sizes[key, number] = len(paragraph)
            for shingle in paragraph:
                index.setdefault(shingle, []).append((key, number))
    if not index:
        return
    for story in earlier:
        told = _all_shingles(story.body)
        hits: dict[tuple[int, int], int] = {}
        # Whichever side is smaller is walked; the other is looked up.
        held = (s for s in index if s in told) if len(index) < len(told) else told
        for shingle in held:
            for place in index.get(shingle, ()):
                hits[place] = hits.get(place, 0) + 1
        shared: dict[int, int] = {}  # new story → its paragraphs the earlier one holds
        for (key, number), count in hits.items():
            if count >= MIN_CONTAINMENT * sizes[key, number]:
                shared[key] = shared.get(key, 0) + 1
        for key, count in shared.items():
            if count >= MIN_SHARED_PARAGRAPHS and key != story.story:
                yield key, story


def find_follow_ups(
    new_stories: Mapping[int, str], sent: Iterable[SentStory]
) -> dict[int, datetime]:
    """For each new story (key → body) that continues a sent one, when the earliest
    such sent story was sent. A story is never its own follow-up."""
    found: dict[int, datetime] = {}
    for key, story in stories_continued(new_stories, sent):
        found[key] = min(found.get(key, story.sent_at), story.sent_at)
    return found


def continued_stories(
    new_stories: Iterable[tuple[int, str]], earlier: Iterable[Earlier]
) -> dict[int, Earlier]:
    """``stories_continued`` the other way round, for many new stories against a
    few earlier ones (a reader's pending stories against the stories they muted):
    the earlier stories indexed, the new (key, body) pairs read once, one at a time.
    For each new story that continues one, the first of ``earlier`` it continues."""
    told = list(earlier)
    index: dict[Shingle, list[int]] = {}  # shingle → positions in ``told``
    for position, story in enumerate(told):
        for shingle in _all_shingles(story.body):
            index.setdefault(shingle, []).append(position)
    found: dict[int, Earlier] = {}
    if not index:
        return found
    for key, body in new_stories:
        shared: dict[int, int] = {}  # position → paragraphs of ``body`` it holds
        for paragraph in paragraph_shingles(body):
            hits: dict[int, int] = {}
            for shingle in paragraph:
                for position in index.get(shingle, ()):
                    hits[position] = hits.get(position, 0) + 1
            for position, count in hits.items():
                if count >= MIN_CONTAINMENT * len(paragraph):
                    shared[position] = shared.get(position, 0) + 1
        continued = [
            position
            for position, count in shared.items()
            if count >= MIN_SHARED_PARAGRAPHS and told[position].story != key
        ]
        if continued:
            found[key] = told[min(continued)]
    return found
