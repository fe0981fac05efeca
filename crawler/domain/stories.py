"""Stories: other outlets' copies of one wire story, grouped as they arrive.

Pure logic, no I/O. ``StoryIndex.assign(candidate)`` answers "is this another outlet's
copy of a story already indexed?" from the body's MinHash signature
(crawler/domain/dedup.py): a band index (locality-sensitive hashing) finds the indexed
articles likely to share many shingles with it; ``MatchRule`` then decides on the
estimated Jaccard similarity, the estimated containment (a copy with its ending cut,
or padded with another outlet's lines, lies mostly inside the other text), the
headlines and the publish times.
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from crawler.domain.dedup import (
    SIGNATURE_HEADER,
    SIGNATURE_VERSION,
    SignatureParams,
    normalise_for_fingerprint,
    signature_of,
    tokenize,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

# Function words left out of headline comparisons: "X says Y" and "Y, X said" agree.
_HEADLINE_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "in",
        "into",
        "is",
        "it",
        "its",
        "new",
        "not",
        "of",
        "on",
        "or",
        "over",
        "s",
        "said",
        "say",
        "says",
        "she",
        "than",
        "that",
        "the",
        "their",
        "they",
        "this",
        "to",
        "up",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
    }
)

_BAND_MIX = np.uint64(0x9E3779B97F4A7C15)


def headline_words(title: str) -> tuple[int, ...]:
    """The headline's content words (function words left out), as sorted 32-bit hashes:
    what ``MatchRule.headline`` compares, small enough to keep for every article."""
    words = {
        w
        for w in tokenize(normalise_for_fingerprint(title))
        if w not in _HEADLINE_STOPWORDS and (len(w) > 1 or not w.isascii())
    }
    return tuple(sorted({zlib.crc32(w.encode("utf-8")) for w in words}))


def headline_overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Share of the shorter headline's content words found in the other (0 if either
    has none)."""
    if not a or not b:
        return 0.0
    return len(set(a).intersection(b)) / min(len(a), len(b))


@dataclass(frozen=True, slots=True)
class StoryCandidate:
    """An article to place in a story; ``published`` is aware (UTC) or unknown."""

    article_id: int
    title: str
    body: str
    published: datetime | None
    source: str


@dataclass(frozen=True, slots=True)
class MatchRule:
    """When a new article joins an indexed article's story.

    Estimated from the two MinHash signatures: ``J`` the Jaccard similarity of the
    shingle sets, ``C`` the containment (shared shingles over the smaller set's size,
    from J and the two set sizes); ``H`` is the share of the shorter headline's content
    words found in the other. The texts agree when

    * ``J >= jaccard`` (most of the two texts is the same text), or
    * ``C >= containment`` (one text mostly inside the other: an ending cut, another
      outlet's header, footer, caption or local paragraph added) and either
      ``J >= containment_jaccard`` or ``H >= headline``.

    The headlines must agree as well (``H >= headline``) for two articles of the same
    source — an outlet wraps all its articles in the same header, footer and related
    links, which makes two of its short articles look alike, while its real second
    copy of a story (an update, another URL) keeps the headline — and when either text
    has fewer than ``min_shingles`` shingles (a caption, a paywall notice: too little
    text to say anything alone). When both publish times are known they must be at
    most ``max_gap`` apart. The thresholds, the shingle size and the bands are tuned on
    the labelled story set (``python bench/stories.py --tune``); ``min_shingles`` and
    ``max_gap`` are not (the set has no such texts, no copies days apart).
    """

    jaccard: float = 0.6
    containment: float = 0.35
    containment_jaccard: float = 0.2
    headline: float = 0.5
    min_shingles: int = 10
    max_gap: timedelta = timedelta(days=3)

    def matches(
        self,
        jaccard: float,
        containment: float,
        headline: float,
        *,
        same_source: bool = False,
        shortest: int | None = None,
    ) -> bool:
        """Whether two articles with these estimates are the same story (times aside);
        ``shortest`` is the smaller shingle count."""
        short = shortest is not None and shortest < self.min_shingles
        if (same_source or short) and headline < self.headline:
            return False
        return jaccard >= self.jaccard or (
            containment >= self.containment
            and (jaccard >= self.containment_jaccard or headline >= self.headline)
        )


@dataclass(slots=True)
class _Entry:
    article_id: int
    story_id: int
    values: np.ndarray
    size: int
    published: datetime | None
    headline: tuple[int, ...]
    source: str
    # For an undated article: when the first prune saw it; it is kept one window from then.
    seen: datetime | None = None


class _BandTable:
    """Band key -> article ids, compact enough for 100,000 articles.

    The newest articles' keys wait in a dict; every ``seal_every`` articles they are
    sealed into a run: two numpy arrays (keys sorted, ids), 16 bytes per key where a
    dict costs about 80. Runs merge like a binary counter (a run absorbs the previous
    one when it is at least half its size), so there are O(log n) of them to search.
    Dropped articles stay in the runs until the stale keys are half of them, when the
    runs are rebuilt from the live ones; lookups skip them meanwhile.
    """

    def __init__(self, seal_every: int = 1024) -> None:
        self.seal_every = seal_every
        self._recent: dict[int, list[int]] = {}
        self._recent_articles: set[int] = set()
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self._stale = 0

    def add(self, article_id: int, keys: np.ndarray) -> None:
        for key in keys.tolist():
            self._recent.setdefault(key, []).append(article_id)
        self._recent_articles.add(article_id)
        if len(self._recent_articles) >= self.seal_every:
            self._seal()

    def find(self, keys: np.ndarray) -> set[int]:
        """Ids filed under any of the keys, dropped ones included (callers skip them)."""
        found: set[int] = set()
        for key in keys.tolist():
            found.update(self._recent.get(key, ()))
        for run_keys, run_ids in self._runs:
            starts = np.searchsorted(run_keys, keys, side="left")
            ends = np.searchsorted(run_keys, keys, side="right")
            for start, end in zip(
                starts[ends > starts].tolist(), ends[ends > starts].tolist(), strict=True
            ):
                found.update(run_ids[start:end].tolist())
        return found

    def discard(self, article_id: int, keys: np.ndarray, live: Iterable[int]) -> None:
        """Forget a dropped article; ``live`` are the ids still indexed."""
        if article_id in self._recent_articles:
            self._recent_articles.discard(article_id)
            for key in keys.tolist():
                waiting = self._recent[key]
                waiting.remove(article_id)
                if not waiting:
                    del self._recent[key]
            return
        self._stale += len(keys)
        if self._stale * 2 > sum(len(run_keys) for run_keys, _ in self._runs):
            self._rebuild(live)

    def _seal(self) -> None:
        keys = np.fromiter((key for key, ids in self._recent.items() for _ in ids), dtype=np.uint64)
        ids = np.fromiter((i for waiting in self._recent.values() for i in waiting), dtype=np.int64)
        self._recent, self._recent_articles = {}, set()
        self._runs.append(_sorted_run(keys, ids))
        while len(self._runs) > 1 and 2 * len(self._runs[-1][0]) >= len(self._runs[-2][0]):
            newer_keys, newer_ids = self._runs.pop()
            older_keys, older_ids = self._runs.pop()
            self._runs.append(
                _sorted_run(
                    np.concatenate([older_keys, newer_keys]), np.concatenate([older_ids, newer_ids])
                )
            )

    def _rebuild(self, live: Iterable[int]) -> None:
        if not self._runs:
            return
        keys = np.concatenate([run_keys for run_keys, _ in self._runs])
        ids = np.concatenate([run_ids for _, run_ids in self._runs])
        kept = np.isin(ids, np.fromiter(live, dtype=np.int64))
        self._runs = [_sorted_run(keys[kept], ids[kept])] if kept.any() else []
        self._stale = 0


def _sorted_run(keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    return keys[order], ids[order]


class StoryIndex:
    """Articles of the last ``window``, grouped into stories, for assigning new ones.

    A story's id is the article id of its first indexed article. Memory is bounded by
    the window: ``prune`` drops articles published more than ``window`` before ``now``
    (an undated article one window after the first prune that saw it).

    The band index hashes ``bands`` groups of ``rows`` MinHash values; two articles
    are compared when one group is equal, which happens with probability
    ``1 - (1 - J**rows)**bands``: with 48 bands of 2, 0.86 at J = 0.2, 0.99 at J = 0.3,
    0.004 at J = 0.01. Shingle size and bands are tuned with ``MatchRule``.
    """

    def __init__(
        self,
        *,
        window: timedelta = timedelta(days=7),
        rule: MatchRule | None = None,
        num_perm: int = 128,
        shingle: int = 4,
        bands: int = 48,
        rows: int = 2,
    ) -> None:
        if bands * rows > num_perm:
            raise ValueError(f"bands * rows ({bands * rows}) exceeds num_perm ({num_perm})")
        self.window = window
        self.rule = rule or MatchRule()
        self.num_perm = num_perm
        self.shingle = shingle
        self.bands = bands
        self.rows = rows
        self.params = SignatureParams(shingle, num_perm)
        self._band_salts = np.arange(1, bands + 1, dtype=np.uint64) * _BAND_MIX
        self._entries: dict[int, _Entry] = {}
        self._bands = _BandTable()

    def __len__(self) -> int:
        return len(self._entries)

    def newest_id(self) -> int:
        """The highest article id indexed (0 for an empty index)."""
        return max(self._entries, default=0)

    def signature(self, body: str) -> bytes:
        """The body's MinHash signature with its shingle count and parameters, to store
        with the article so that ``add_existing`` can rebuild the index without text."""
        return signature_of(normalise_for_fingerprint(body), self.params)

    def assign(self, candidate: StoryCandidate, *, signature: bytes | None = None) -> int:
        """Index the candidate and return its story id: the id of the story of the indexed
        article it matches best, or its own ``article_id`` when it matches none.
        ``signature`` (from ``signature(candidate.body)``) saves hashing the body twice.
        An article already indexed keeps its story."""
        if (known := self._entries.get(candidate.article_id)) is not None:
            return known.story_id
        if signature is None:
            signature = self.signature(candidate.body)
        values, size = self._parse(signature)
        entry = _Entry(
            candidate.article_id,
            candidate.article_id,
            values,
            size,
            candidate.published,
            headline_words(candidate.title),
            sys.intern(candidate.source),
        )
        entry.story_id = self._best_story(entry)
        self._insert(entry)
        return entry.story_id

    def add_existing(
        self,
        article_id: int,
        story_id: int,
        signature: bytes,
        published: datetime | None,
        title: str,
        source: str,
    ) -> None:
        """Put back an article assigned before (rebuilding the index from the database).
        Raises ValueError for a signature made with other parameters, which must be
        recomputed from the body."""
        if article_id in self._entries:
            return
        values, size = self._parse(signature)
        self._insert(
            _Entry(
                article_id,
                story_id,
                values,
                size,
                published,
                headline_words(title),
                sys.intern(source),
            )
        )

    def prune(self, now: datetime) -> int:
        """Drop the articles older than the window; return how many were dropped."""
        cutoff = now - self.window
        expired = []
        for entry in self._entries.values():
            if entry.published is None and entry.seen is None:
                entry.seen = now
            if (entry.published or entry.seen or now) < cutoff:
                expired.append(entry)
        for entry in expired:
            del self._entries[entry.article_id]
        for entry in expired:
            if entry.size:
                self._bands.discard(
                    entry.article_id, self._band_keys(entry.values), self._entries.keys()
                )
        return len(expired)

    def _best_story(self, entry: _Entry) -> int:
        """The story of the most similar indexed article that matches, else a new one."""
        best: tuple[float, int] | None = None
        for other in self._candidates(entry):
            if not self._close_in_time(entry, other):
                continue
            jaccard = float(np.count_nonzero(entry.values == other.values)) / self.num_perm
            shared = jaccard * (entry.size + other.size) / (1.0 + jaccard)
            containment = min(1.0, shared / min(entry.size, other.size))
            headline = headline_overlap(entry.headline, other.headline)
            # Candidates come in id order and only a strictly better one replaces the
            # best: the result does not depend on hash or set order.
            if self.rule.matches(
                jaccard,
                containment,
                headline,
                same_source=entry.source == other.source,
                shortest=min(entry.size, other.size),
            ) and (best is None or jaccard > best[0]):
                best = (jaccard, other.story_id)
        return entry.article_id if best is None else best[1]

    def _close_in_time(self, a: _Entry, b: _Entry) -> bool:
        if a.published is None or b.published is None:
            return True
        return abs(a.published - b.published) <= self.rule.max_gap

    def _candidates(self, entry: _Entry) -> Iterator[_Entry]:
        """Indexed articles sharing a band with ``entry`` (none for an empty text), in
        id order."""
        if entry.size == 0:
            return
        for article_id in sorted(self._bands.find(self._band_keys(entry.values))):
            if (other := self._entries.get(article_id)) is not None:
                yield other

    def _band_keys(self, values: np.ndarray) -> np.ndarray:
        grouped = values[: self.bands * self.rows].astype(np.uint64)
        grouped = grouped.reshape(self.bands, self.rows)
        keys = grouped[:, 0].copy()
        for row in range(1, self.rows):
            keys = keys * _BAND_MIX + grouped[:, row]
        # Salted per band, so that equal values in two bands are two keys.
        return keys ^ self._band_salts

    def _insert(self, entry: _Entry) -> None:
        self._entries[entry.article_id] = entry
        if entry.size:
            self._bands.add(entry.article_id, self._band_keys(entry.values))

    def _parse(self, signature: bytes) -> tuple[np.ndarray, int]:
        try:
            version, shingle, num_perm, size = SIGNATURE_HEADER.unpack_from(signature)
        except struct.error as error:
            raise ValueError(f"not a story signature: {error}") from error
        expected = SIGNATURE_HEADER.size + 4 * self.num_perm
        if (version, shingle, num_perm) != (SIGNATURE_VERSION, self.shingle, self.num_perm) or len(
            signature
        ) != expected:
            raise ValueError(
                f"signature version {version}, shingle {shingle}, num_perm {num_perm} "
                f"({len(signature)} bytes) does not fit this index (version "
                f"{SIGNATURE_VERSION}, shingle {self.shingle}, num_perm {self.num_perm})"
            )
        values = np.frombuffer(signature, dtype="<u4", offset=SIGNATURE_HEADER.size).astype(
            np.uint32
        )
        return values, size
