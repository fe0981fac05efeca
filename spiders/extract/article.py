"""The entry points: one page, as (html, url) or a fetched body, to an
ExtractedArticle, and the warm-up that loads extraction's lazy parts before a fork."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import py3langid

from crawler.domain.items import ExtractedArticle
from spiders.extract.block import restore_block_lines
from spiders.extract.body import (
    caption_texts,
    clean_body,
    drop_link_paragraphs,
    extract_body,
    link_texts_of,
    prepare_body,
)
from spiders.extract.dates import choose_dates
from spiders.extract.decode import decode_html, decode_page, parse_page
from spiders.extract.fallback import BodyEvidence
from spiders.extract.fields import (
    choose_authors,
    choose_description,
    choose_image,
    choose_keywords,
    choose_language,
    choose_section,
    choose_title,
    choose_url,
    heading_texts,
    metadata_body,
    metadata_titles,
)
from spiders.extract.lead import find_lead, with_lead
from spiders.extract.metadata import normalise, read_metadata, safe_canonical_url
from spiders.extract.repair import known_words, repair_hyphenation, repair_mojibake

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)


def extract_article(html: str | bytes, url: str) -> ExtractedArticle:
    """Read one article page.

    Never raises: empty, binary or otherwise unreadable input gives an article with
    an empty title and text (and the fetched URL, canonicalised). See
    ExtractedArticle for the meaning of each field.
    """
    return _extract_safely(lambda: decode_html(html), url)


def extract_page(body: bytes, url: str, content_type: str | None = None) -> ExtractedArticle:
    """extract_article for a fetched page: decoded by decode_page first."""
    return _extract_safely(lambda: decode_page(body, content_type), url)


def _extract_safely(decode: Callable[[], str], url: str) -> ExtractedArticle:
    try:
        return _extract_article(decode(), url)
    except Exception:  # one broken page must not stop a crawl; it only loses its fields
        logger.warning("article extraction failed for %s", url, exc_info=True)
        return ExtractedArticle(url=safe_canonical_url(url), title="", text="")


def _extract_article(text: str, url: str) -> ExtractedArticle:
    """The article in a decoded page (without CONTROL_CHARACTERS)."""
    tree = parse_page(text)
    if tree is None:
        return ExtractedArticle(url=safe_canonical_url(url), title="", text="")
    metadata = read_metadata(tree, url)
    title = repair_mojibake(choose_title(tree, metadata))
    headlines = {title, *metadata_titles(metadata), *heading_texts(tree)}
    captions = caption_texts(tree)
    containers = prepare_body(tree)
    keywords = choose_keywords(metadata)
    links = functools.cache(lambda: link_texts_of(tree))
    evidence = BodyEvidence(article_body=metadata_body(metadata))
    description = choose_description(metadata)
    lead = find_lead(tree, description, containers)
    body = extract_body(tree, url, evidence, lambda line: normalise(line) in links())
    body = with_lead(restore_block_lines(containers, body), lead)
    text = clean_body(body, headlines, captions)
    text = repair_mojibake(drop_link_paragraphs(text, links, keywords))
    published, updated = choose_dates(tree, metadata, url)
    language = choose_language(tree, metadata, text or title)
    return ExtractedArticle(
        url=choose_url(metadata, url),
        title=title,
        text=repair_hyphenation(text, language),
        published=published,
        updated=updated,
        authors=tuple(map(repair_mojibake, choose_authors(tree, metadata))),
        language=language,
        image=choose_image(metadata, url),
        description=repair_mojibake(description) if description else None,
        section=choose_section(metadata),
        keywords=keywords,
    )


# A small English article page, to load what extraction otherwise loads lazily.
_WARM_UP_PAGE = b"""<html lang="en"><head><title>Warm-up</title>
<meta property="og:title" content="Warm-up">
<script type="application/ld+json">{"@type": "NewsArticle", "headline": "Warm-up",
"datePublished": "2024-03-01T10:00:00+05:30"}</script></head>
<body><article><h1>Warm-up</h1><p>Regime troops were locked in heavy fighting on
Tuesday with jihadists near the ancient city, a str-ategic prize, the monitor said.
</p><p>Published : March 1, 2024</p></article></body></html>"""


def warm_up() -> None:
    """Load the language model, the word list and the parsers' lazy parts now.

    The CPU pool's forkserver calls this (through crawler.orchestration.preload) before it forks
    the workers, so they share one copy of the language identifier's model (~70 MB)
    and the English word list (~11 MB) instead of loading their own.
    """
    py3langid.classify("Regime troops were locked in heavy fighting on Tuesday")
    known_words("en")
    extract_page(_WARM_UP_PAGE, "https://warm-up.example/article")
