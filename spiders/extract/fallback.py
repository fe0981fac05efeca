"""When the precise body is not the article: the evidence that it fell short, and
the choice among the bodies trafilatura's other settings find on the same page.

trafilatura's precision setting (what newswatch reads first) sometimes keeps only
a reprint notice, a copyright line and a URL, or half the article, where its
default setting keeps all of it. The choice is made on evidence from the page,
not on length alone (a longer body is often the same article with teasers in):
the page's own ``articleBody`` metadata where it has one, else how much of the
extra text is prose rather than links or notices.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spiders.extract.metadata import normalise

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# A body shorter than this (about 80 words) is less than an article.
SHORT_BODY = 500
# The page's articleBody metadata counts as evidence from this length on (shorter
# ones are summaries); the precise body covering less than MIN_COVERAGE of its
# words has lost part of the article.
MIN_METADATA_BODY = 400
MIN_COVERAGE = 0.6
# A candidate replaces the precise body when its extra text is at least this
# share prose (lines of PROSE_WORDS words or more that are not links) ...
MIN_PROSE_SHARE = 0.6
PROSE_WORDS = 8
# ... and, with articleBody metadata, agrees with it this much better.
MIN_GAIN = 0.05

# Lines that are notices about the article rather than the article: reprint and
# source notices, copyright and rights lines, and bare URLs.
NOTICE = re.compile(
    r"(?:©|\(c\)|copyright\b|all rights reserved|tous droits réservés|alle rechte vorbehalten"
    r"|riproduzione riservata|todos los derechos reservados"
    r"|\b(?:re)?(?:printed|published|posted) (?:here )?(?:with|by) (?:kind )?permission"
    r"|\b(?:originally|first) (?:published|appeared|posted)\b|\bthis (?:article|story|post) "
    r"(?:was|is|first|originally)\b.{0,40}\b(?:published|appeared|posted|republished)"
    r"|\brepublished\b|\breprinted\b|^https?://\S+$|^source: )",
    re.IGNORECASE,
)
# Notices about an article take a few lines; a longer text is more than notices.
MAX_NOTICES = 2000
WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class BodyEvidence:
    """What the page says about its own body, besides its HTML: the articleBody of
    its JSON-LD or microdata ('' when it has none)."""

    article_body: str = ""


def needs_second_look(precise: str, evidence: BodyEvidence) -> bool:
    """True when the precise body may have missed the article: it is short, it is
    mostly notices, or it covers too little of the page's articleBody metadata."""
    if len(precise) < SHORT_BODY or is_notice_only(precise):
        return True
    if len(evidence.article_body) >= MIN_METADATA_BODY:
        return coverage(precise, evidence.article_body) < MIN_COVERAGE
    return False


def is_notice_only(text: str) -> bool:
    """True when at least half of the text is notice lines (reprint, copyright, URL);
    a text longer than MAX_NOTICES never is (and is not searched)."""
    if len(text) > MAX_NOTICES:
        return False
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    notices = sum(len(line) for line in lines if NOTICE.search(line))
    return bool(lines) and notices * 2 >= sum(map(len, lines))


def choose_body(
    precise: str,
    candidates: Sequence[str],
    evidence: BodyEvidence,
    is_link: Callable[[str], bool],
) -> str:
    """The precise body, or the candidate the evidence prefers.

    With articleBody metadata, the candidate whose words agree best with it (by
    MIN_GAIN at least) wins. Without, when the precise body is short or only
    notices, the first candidate (candidates go from the most precise setting to
    the least) that is longer, not only notices, and whose text beyond the precise
    body is mostly prose (MIN_PROSE_SHARE: not links, not notices). A body never
    comes back empty while a candidate has text.
    """
    choices = [candidate for candidate in candidates if candidate and candidate != precise]
    if not choices:
        return precise
    if len(evidence.article_body) >= MIN_METADATA_BODY:
        agreement = {text: _word_f1(text, evidence.article_body) for text in (precise, *choices)}
        best = max(choices, key=agreement.__getitem__)
        return best if agreement[best] >= agreement[precise] + MIN_GAIN else precise
    if not (len(precise) < SHORT_BODY or is_notice_only(precise)):
        return precise
    known = {normalise(line) for line in precise.splitlines()}
    for candidate in choices:
        if (
            len(candidate) > len(precise)
            and not is_notice_only(candidate)
            and prose_share(candidate, known, is_link) >= MIN_PROSE_SHARE
        ):
            return candidate
    # no evidence either way: the first candidate (the precise setting with its own
    # readability and jusText comparison) when it found anything
    return candidates[0] or precise or max(choices, key=len)


def prose_share(text: str, known: set[str], is_link: Callable[[str], bool]) -> float:
    """The share of the text's new lines (not in ``known``) that is prose: lines of
    PROSE_WORDS words or more that are neither a link on the page nor a notice."""
    extra = [
        line.strip() for line in text.splitlines() if line.strip() and normalise(line) not in known
    ]
    total = sum(map(len, extra))
    prose = sum(
        len(line)
        for line in extra
        if len(line.split()) >= PROSE_WORDS and not NOTICE.search(line) and not is_link(line)
    )
    return prose / total if total else 0.0


def coverage(text: str, reference: str) -> float:
    """The share of the reference's words (as a multiset, case-folded) in the text."""
    wanted = _words(reference)
    return (_words(text) & wanted).total() / max(1, wanted.total())


def _word_f1(text: str, reference: str) -> float:
    found, wanted = _words(text), _words(reference)
    common = (found & wanted).total()
    if not common:
        return 0.0
    precision, recall = common / found.total(), common / wanted.total()
    return 2 * precision * recall / (precision + recall)


def _words(text: str) -> Counter[str]:
    return Counter(WORD.findall(text.casefold()))
