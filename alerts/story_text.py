"""What a digest entry says of a story: the headline of its most complete copy, a
two-sentence lede and its outlets in one line. Pure text functions."""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING

import pysbd

from crawler.domain.query import tokenise

if TYPE_CHECKING:
    from collections.abc import Sequence

# Outlets named before "and N more".
MAX_OUTLETS_SHOWN = 2
LEDE_SENTENCES = 2
# A lede longer than this (one run-on "sentence") is cut at a word with "…".
MAX_LEDE_CHARS = 400
# Only the start of a body is split into sentences: a lede is cut at
# MAX_LEDE_CHARS anyway, and pysbd takes ~20 ms on 2,000 characters.
_LEDE_WINDOW = MAX_LEDE_CHARS + 200
_ELLIPSIS = "…"
_CUT_MARKS = (_ELLIPSIS, "...")
_WHITESPACE_RE = re.compile(r"\s+")


def best_headline(titles: Sequence[str]) -> str:
    """The most complete of a story's headlines: the longest one not cut short (not
    ending in "…" or "..."), else the longest; the first of equals."""
    cleaned = [_WHITESPACE_RE.sub(" ", title).strip() for title in titles]
    whole = [title for title in cleaned if title and not title.endswith(_CUT_MARKS)]
    candidates = whole or [title for title in cleaned if title]
    return max(candidates, key=len, default="")


# A Segmenter keeps the text it is splitting on itself: one per thread, since
# digests for several channels are made at once.
_local = threading.local()


def _segmenter() -> pysbd.Segmenter:
    segmenter = getattr(_local, "segmenter", None)
    if segmenter is None:
        segmenter = _local.segmenter = pysbd.Segmenter(language="en", clean=False)
    return segmenter


def make_lede(body: str, headline: str = "", sentences: int = LEDE_SENTENCES) -> str:
    """The first ``sentences`` sentences of ``body`` on one line, split by pysbd
    (abbreviations such as "U.S." and "Dr." do not end a sentence), at most
    ``MAX_LEDE_CHARS`` characters. A first paragraph that only repeats the
    ``headline`` is skipped: the entry shows the headline already."""
    paragraphs = body.lstrip().split("\n\n", 1)
    if headline and len(paragraphs) == 2 and _same_text(paragraphs[0], headline):
        body = paragraphs[1]
    return _lede_of(_WHITESPACE_RE.sub(" ", body[:_LEDE_WINDOW]).strip(), sentences)


# A digest cut to fit its size budget is laid out again: each lede is split once.
@functools.lru_cache(maxsize=4096)
def _lede_of(text: str, sentences: int) -> str:
    if not text:
        return ""
    found = [part.strip() for part in _segmenter().segment(text) if part.strip()]
    lede = " ".join(found[:sentences])
    if len(lede) > MAX_LEDE_CHARS:
        lede = lede[: MAX_LEDE_CHARS - 1].rsplit(" ", 1)[0].rstrip() + _ELLIPSIS
    return lede


def _same_text(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are the same words, whatever the case, punctuation and
    invisible characters (the body's copy of a headline is cleaned differently)."""
    return tokenise(a) == tokenise(b)


def outlets_line(names: Sequence[str], shown: int = MAX_OUTLETS_SHOWN) -> str:
    """ "Reuters, Al Jazeera and 3 more"; "Reuters and AP"; "Reuters". Names are
    taken in order, each once."""
    distinct = list(dict.fromkeys(name for name in names if name))
    if len(distinct) <= shown + 1:
        if len(distinct) <= 1:
            return distinct[0] if distinct else ""
        return f"{', '.join(distinct[:-1])} and {distinct[-1]}"
    return f"{', '.join(distinct[:shown])} and {len(distinct) - shown} more"
