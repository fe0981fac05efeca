"""Follow-ups: a new story that continues one the reader was sent before.

News reports of a developing story repeat their background: the same paragraphs
("Palmyra, a UNESCO World Heritage site, was seized by ISIS in May 2015 …") under a
new top. A new story is a follow-up of a story already sent to the reader when at
least ``MIN_SHARED_PARAGRAPHS`` of its background paragraphs (of at least
``MIN_PARAGRAPH_WORDS`` words) are in the sent story's text: each paragraph as its
word ``SHINGLE_WORDS``-grams, found when ``MIN_CONTAINMENT`` of them are in the
sent story (an edited or re-cut paragraph still counts). Copies of one story are
grouped elsewhere (crawler/domain/stories.py), so a follow-up here is another story.
Pure functions; the reader's history comes from storage (``Store.sent_stories``).
"""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import TYPE_CHECKING

from crawler.domain.query import tokenise

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from crawler.storage.records import SentStory

MIN_SHARED_PARAGRAPHS = 2
MIN_PARAGRAPH_WORDS = 20
SHINGLE_WORDS = 5
MIN_CONTAINMENT = 0.8
# How far back a reader's history is read.
FOLLOW_UP_WINDOW = timedelta(days=30)


def paragraph_shingles(body: str) -> list[frozenset[int]]:
    """The shingles of each paragraph of ``body`` (blank-line separated) long enough
    to be background; words as the matcher folds them."""
    shingled = []
    for paragraph in body.split("\n\n"):
        words = tokenise(paragraph)
        if len(words) < MIN_PARAGRAPH_WORDS:
            continue
        shingled.append(
            frozenset(
                zlib.crc32(" ".join(words[start : start + SHINGLE_WORDS]).encode())
                for start in range(len(words) - SHINGLE_WORDS + 1)
            )
        )
    return shingled


def find_follow_ups(
    new_stories: Mapping[int, str], sent: Iterable[SentStory]
) -> dict[int, datetime]:
    """For each new story (key → body) that continues a sent one, when the earliest
    such sent story was sent. A story is never its own follow-up."""
    index: dict[int, set[int]] = {}  # shingle → positions in ``history``
    history = list(sent)
    for position, story in enumerate(history):
        for shingle in {s for p in paragraph_shingles(story.body) for s in p}:
            index.setdefault(shingle, set()).add(position)
    found: dict[int, datetime] = {}
    if not index:
        return found
    for key, body in new_stories.items():
        shared: dict[int, int] = {}  # position → paragraphs of ``body`` it holds
        for paragraph in paragraph_shingles(body):
            hits: dict[int, int] = {}
            for shingle in paragraph:
                for position in index.get(shingle, ()):
                    hits[position] = hits.get(position, 0) + 1
            for position, count in hits.items():
                if count >= MIN_CONTAINMENT * len(paragraph):
                    shared[position] = shared.get(position, 0) + 1
        earlier = [
            history[position].sent_at
            for position, count in shared.items()
            if count >= MIN_SHARED_PARAGRAPHS and history[position].story != key
        ]
        if earlier:
            found[key] = min(earlier)
    return found
