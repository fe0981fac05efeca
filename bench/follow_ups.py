"""Follow-up detection against a long reader history: time and peak memory of
``alerts.follow_ups.find_follow_ups`` (the new stories indexed, the history streamed
past them one story at a time) against the history-indexing version it replaced
(``find_follow_ups_indexed`` below, kept here for the comparison and for
tests/test_ranking.py), same run, same data, same answers.

The history is ``--history`` sent stories of ``--words`` words each (paragraphs of
30–80 words drawn from a Zipf-like vocabulary, as prose repeats its common words);
the digest is ``--new`` new stories, one in five a follow-up (two background
paragraphs of a history story, one lightly edited, under a new top). Python's peak
allocation is traced with tracemalloc (which also slows both down); the history's
bodies are made before tracing starts (both read the same list).

Promise: the same follow-ups; the streamed version in at most 0.5x the time and
0.1x the peak memory of the indexing one, and a digest against 2,000 stories of
800 words in under 1.5 s.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from alerts.follow_ups import (
    MIN_CONTAINMENT,
    MIN_PARAGRAPH_WORDS,
    MIN_SHARED_PARAGRAPHS,
    SHINGLE_WORDS,
    find_follow_ups,
)
from crawler.domain.query import tokenise
from crawler.storage.records import SentStory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
VOCABULARY = 20_000


def _paragraph_shingles_crc(body: str) -> list[frozenset[int]]:
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


def find_follow_ups_indexed(
    new_stories: Mapping[int, str], sent: Iterable[SentStory]
) -> dict[int, datetime]:
    """The version before: every shingle of the whole history indexed (memory grows
    with the history)."""
    index: dict[int, set[int]] = {}  # shingle → positions in ``history``
    history = list(sent)
    for position, story in enumerate(history):
        for shingle in {s for p in _paragraph_shingles_crc(story.body) for s in p}:
            index.setdefault(shingle, set()).add(position)
    found: dict[int, datetime] = {}
    if not index:
        return found
    for key, body in new_stories.items():
        shared: dict[int, int] = {}  # position → paragraphs of ``body`` it holds
        for paragraph in _paragraph_shingles_crc(body):
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


def make_corpus(
    history: int, new: int, words: int, seed: int = 19
) -> tuple[list[SentStory], dict[int, str]]:
    """``history`` sent stories and ``new`` new ones (every fifth a follow-up)."""
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(VOCABULARY)]
    weights = [1 / (rank + 1) for rank in range(VOCABULARY)]

    def paragraph() -> str:
        count = rng.randint(30, 80)
        return " ".join(rng.choices(vocabulary, weights, k=count)).capitalize() + "."

    def body(length: int) -> list[str]:
        paragraphs: list[str] = []
        while sum(len(p.split()) for p in paragraphs) < length:
            paragraphs.append(paragraph())
        return paragraphs

    sent_bodies = [body(words) for _ in range(history)]
    sent = [
        SentStory(story=n, sent_at=NOW - timedelta(minutes=n), body="\n\n".join(paragraphs))
        for n, paragraphs in enumerate(sent_bodies, start=1)
    ]
    new_stories: dict[int, str] = {}
    for n in range(new):
        paragraphs = body(words)
        if n % 5 == 0:
            source = sent_bodies[rng.randrange(history)]
            edited = source[1].replace(" w1 ", " changed ", 1)
            paragraphs = [paragraphs[0], edited, *paragraphs[1:-1], source[2]]
        new_stories[history + 1 + n] = "\n\n".join(paragraphs)
    return sent, new_stories


def measure(
    find: Callable[[Mapping[int, str], Iterable[SentStory]], dict[int, datetime]],
    new: dict[int, str],
    sent: list[SentStory],
) -> dict[str, Any]:
    started = time.perf_counter()
    find(new, sent)
    seconds = time.perf_counter() - started  # untraced: tracemalloc slows it down
    tracemalloc.start()
    found = find(new, sent)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": seconds, "peak_mb": peak / 1e6, "found": found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=2000, help="sent stories (2000)")
    parser.add_argument("--words", type=int, default=800, help="words per story (800)")
    parser.add_argument("--new", type=int, default=50, help="new stories in the digest (50)")
    options = parser.parse_args()
    sent, new = make_corpus(options.history, options.new, options.words)
    streamed = measure(find_follow_ups, new, sent)
    indexed = measure(find_follow_ups_indexed, new, sent)
    print(
        f"{options.new} new stories against {options.history:,} sent stories of "
        f"{options.words} words"
    )
    print()
    print("| version | s | peak MB (Python) | follow-ups found |")
    print("| --- | ---: | ---: | ---: |")
    for name, row in (("history indexed (before)", indexed), ("history streamed", streamed)):
        print(f"| {name} | {row['seconds']:.2f} | {row['peak_mb']:.1f} | {len(row['found'])} |")
    time_ratio = streamed["seconds"] / indexed["seconds"]
    memory_ratio = streamed["peak_mb"] / indexed["peak_mb"]
    expected = len(range(0, options.new, 5))
    checks = [
        (
            f"same follow-ups: {len(streamed['found'])} streamed, {len(indexed['found'])} "
            f"indexed, {expected} made (target: equal)",
            streamed["found"] == indexed["found"] and len(streamed["found"]) == expected,
        ),
        (f"time streamed / indexed = {time_ratio:.2f} (target ≤ 0.5)", time_ratio <= 0.5),
        (
            f"peak memory streamed / indexed = {memory_ratio:.3f} (target ≤ 0.1)",
            memory_ratio <= 0.1,
        ),
        (
            f"streamed digest = {streamed['seconds']:.2f} s (target < 1.5 s)",
            streamed["seconds"] < 1.5,
        ),
    ]
    print()
    print("targets:")
    for text, ok in checks:
        print(f"- {'met' if ok else 'MISSED'}: {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
