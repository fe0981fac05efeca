"""The article's fields other than body and dates: URL, title, authors, language,
image, description, section and keywords."""

from __future__ import annotations

import logging
import re
from html import unescape
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import py3langid
from lxml.html import HtmlElement
from trafilatura.metadata import extract_author, extract_title

from crawler.domain.urls import canonicalize_url, is_web_url, same_site
from spiders.extract.metadata import (
    PageMetadata,
    clean_inline,
    first_meta,
    jsonld_text,
    meta_values,
    normalise,
    resolve,
    safe_canonical_url,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

# <meta> keys (name, property or itemprop, lower-cased), best first.
AUTHOR_META: tuple[str, ...] = (
    "author",
    "article:author",
    "og:article:author",
    "dc.creator",
    "dcterms.creator",
    "parsely-author",
    "sailthru.author",
)
TITLE_META: tuple[str, ...] = ("og:title", "twitter:title", "dc.title", "dcterms.title")
DESCRIPTION_META: tuple[str, ...] = (
    "og:description",
    "description",
    "twitter:description",
    "dc.description",
    "dcterms.description",
)
IMAGE_META: tuple[str, ...] = (
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "twitter:image",
    "twitter:image:src",
)
LANGUAGE_META: tuple[str, ...] = ("og:locale", "dc.language", "dcterms.language", "language")
SECTION_META: tuple[str, ...] = (
    "article:section",
    "og:article:section",
    "parsely-section",
    "sailthru.section",
    "section",
)
# Keyword meta tags, best first: the first one the page has gives the keywords
# (article:tag repeats, one tag a meta element; the others are comma lists).
KEYWORD_META: tuple[str, ...] = (
    "news_keywords",
    "article:tag",
    "og:article:tag",
    "keywords",
    "parsely-tags",
    "sailthru.tags",
)
MAX_KEYWORDS = 50
MAX_KEYWORD_LENGTH = 100

# A <title> such as "Headline | Site" or "Site - Headline".
TITLE_SEPARATOR = re.compile(r"\s+(?:[|–—·•»«]|::|-)\s+")
# An author value that is a link (article:author often holds a profile URL).
LINK_LIKE = re.compile(r"(?:https?:|mailto:|/|www\.)", re.IGNORECASE)


def choose_url(metadata: PageMetadata, fetched_url: str) -> str:
    """The page's own canonical link or og:url when on the same site as the fetched
    URL, else the fetched URL; canonicalised either way.

    A canonical link to the site's front page from an article is a template bug, not
    the article's address, and is ignored; so is one too broken to canonicalise
    (``https://news.example.com:99999/x``).
    """
    fetched_path = url_path(fetched_url)
    for href in (*metadata.canonical_links, *metadata.meta.get("og:url", [])):
        candidate = absolute_url(fetched_url, href)
        if candidate is None or not is_same_site(candidate, fetched_url):
            continue
        if fetched_path and not url_path(candidate):
            continue
        try:
            return canonicalize_url(candidate)
        except ValueError:  # a port out of range, a broken host: not the page's address
            continue
    return safe_canonical_url(fetched_url)


def absolute_url(base: str, href: str) -> str | None:
    """``href`` resolved against ``base`` when that gives an http(s) URL, else None."""
    try:
        joined = urljoin(base, href.strip())
        return joined if is_web_url(joined) else None
    except ValueError:  # urllib rejects some broken hosts, such as "http://[x"
        return None


def is_same_site(url_a: str, url_b: str) -> bool:
    """crawler.domain.urls.same_site, False for URLs too broken to compare."""
    try:
        return same_site(url_a, url_b)
    except ValueError:
        return False


def url_path(url: str) -> str:
    """The URL's path without its outer slashes; "" for a broken URL."""
    try:
        return urlsplit(url).path.strip("/")
    except ValueError:
        return ""


def metadata_titles(metadata: PageMetadata) -> list[str]:
    """The article's title as the structured metadata states it, best first."""
    titles = [jsonld_text(metadata.article.get(key)) for key in ("headline", "name")]
    titles += [clean_inline(value) for value in meta_values(metadata, TITLE_META)]
    return [title for title in titles if title]


def heading_texts(tree: HtmlElement) -> list[str]:
    """The text of the page's first few ``<h1>`` elements."""
    return [clean_inline(h1.text_content()) for h1 in tree.xpath("(//h1)[position() <= 3]")]


def choose_title(tree: HtmlElement, metadata: PageMetadata) -> str:
    """JSON-LD headline > og:title > trafilatura's title > ``<title>`` without the
    site name; "" when the page has none.

    trafilatura's title is taken when it found one on the page (a lone ``<h1>``, an
    element classed as a title); when all it did was cut the ``<title>``, it keeps
    the first part whatever it is, so strip_site_name cuts it instead.
    """
    headline = jsonld_text(metadata.article.get("headline"))
    og_title = first_meta(metadata, ("og:title",))
    if title := headline or (clean_inline(og_title) if og_title else ""):
        return title
    title_element = tree.find(".//title")
    page_title = clean_inline(title_element.text_content()) if title_element is not None else ""
    found = clean_inline(extract_title(tree) or "")
    if found and normalise(found) not in normalise(page_title):
        return found
    return strip_site_name(page_title, heading_texts(tree)) if page_title else found


def strip_site_name(title: str, headings: Iterable[str] = ()) -> str:
    """Drop a site name joined to a ``<title>`` ("Headline | Site").

    A title that is itself a heading on the page is kept whole (a headline may hold
    a dash). Else, of the parts, keep the one that is also a heading, else the longest.
    """
    parts = [part.strip() for part in TITLE_SEPARATOR.split(title) if part.strip()]
    if len(parts) < 2:
        return title
    wanted = {normalise(heading) for heading in headings}
    if normalise(title) in wanted:
        return title
    for part in parts:
        if normalise(part) in wanted:
            return part
    return max(parts, key=len)


def choose_authors(tree: HtmlElement, metadata: PageMetadata) -> tuple[str, ...]:
    """JSON-LD author > author meta tags (not URLs) > trafilatura's byline guess;
    deduplicated case-insensitively, in page order."""
    authors = jsonld_authors(metadata.article.get("author"), metadata.nodes_by_id)
    if not authors:
        authors = [
            name for value in meta_values(metadata, AUTHOR_META) for name in value.split(";")
        ]
    if not authors:
        authors = (extract_author(tree) or "").split(";")
    return unique_names(authors)


def jsonld_authors(value: Any, nodes_by_id: dict[str, dict[str, Any]]) -> list[str]:
    """The names in a JSON-LD ``author``: a string, a node, or a list of either."""
    if isinstance(value, list):
        return [name for item in value for name in jsonld_authors(item, nodes_by_id)]
    value = resolve(value, nodes_by_id)
    if isinstance(value, dict):
        value = value.get("name")
        if isinstance(value, list):
            return [name for item in value if (name := jsonld_text(item))]
    name = jsonld_text(value)
    return [name] if name else []


def unique_names(names: Iterable[str]) -> tuple[str, ...]:
    """Clean names: no URLs, no "By " prefix, no repeats (case-insensitive)."""
    seen: set[str] = set()
    result = []
    for raw in names:
        name = re.sub(r"^by\s+", "", clean_inline(raw), flags=re.IGNORECASE)
        if not name or LINK_LIKE.match(name):
            continue
        if (key := normalise(name)) not in seen:
            seen.add(key)
            result.append(name)
    return tuple(result)


def choose_language(tree: HtmlElement, metadata: PageMetadata, text: str) -> str | None:
    """JSON-LD inLanguage > ``<html lang>`` > og:locale and similar meta > the
    language py3langid hears in ``text``; a lower-case primary subtag like "en"."""
    candidates: list[Any] = [
        metadata.article.get("inLanguage"),
        metadata.page.get("inLanguage"),
        tree.getroottree().getroot().get("lang"),
        tree.getroottree().getroot().get("xml:lang"),
        first_meta(metadata, LANGUAGE_META),
    ]
    for candidate in candidates:
        if isinstance(candidate, dict):
            candidate = candidate.get("alternateName") or candidate.get("name")
        if language := primary_language(candidate):
            return language
    if not text.strip():
        return None
    language, _ = py3langid.classify(text)
    return str(language)


def primary_language(tag: Any) -> str | None:
    """The primary subtag of a language tag ("en-IN" or "en_US" give "en")."""
    if not isinstance(tag, str):
        return None
    primary = re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def choose_image(metadata: PageMetadata, url: str) -> str | None:
    """JSON-LD image > og:image, as an absolute http(s) URL."""
    image = metadata.article.get("image")
    if isinstance(image, list):
        image = image[0] if image else None
    image = resolve(image, metadata.nodes_by_id)
    if isinstance(image, dict):
        image = image.get("url") or image.get("contentUrl")
    if not isinstance(image, str) or not image.strip():
        image = first_meta(metadata, IMAGE_META)
    if not image:
        return None
    return absolute_url(url, unescape(image))


def choose_description(metadata: PageMetadata) -> str | None:
    """og:description > meta description > JSON-LD description."""
    value = first_meta(metadata, DESCRIPTION_META)
    description = clean_inline(value) if value else jsonld_text(metadata.article.get("description"))
    return description or None


def choose_section(metadata: PageMetadata) -> str | None:
    """JSON-LD articleSection > article:section and similar meta tags; the first
    section when the page lists several (a JSON-LD list, or a string of three or
    more comma-separated categories, as some CMSs write it); never a URL."""
    candidates = [
        jsonld_text(metadata.article.get("articleSection")),
        *(unescape(value) for value in meta_values(metadata, SECTION_META)),
    ]
    for candidate in candidates:
        if not candidate or LINK_LIKE.match(candidate.strip()):
            continue
        parts = [part for part in map(clean_inline, candidate.split(",")) if part]
        section = parts[0] if len(parts) >= 3 else clean_inline(candidate)
        if section:
            return section
    return None


def choose_keywords(metadata: PageMetadata) -> tuple[str, ...]:
    """JSON-LD keywords (a list, or one comma-separated string) > news_keywords >
    article:tag > keywords meta; split at commas, deduplicated case-insensitively,
    in page order."""
    value = metadata.article.get("keywords")
    raw: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if text := jsonld_text(item):
            raw.append(text)
    if not raw:
        raw = next((values for key in KEYWORD_META if (values := metadata.meta.get(key))), [])
    seen: set[str] = set()
    keywords: list[str] = []
    for text in raw:
        for part in re.split(r"[,;]", text):
            keyword = clean_inline(unescape(part))
            if keyword and len(keyword) <= MAX_KEYWORD_LENGTH and normalise(keyword) not in seen:
                seen.add(normalise(keyword))
                keywords.append(keyword)
    return tuple(keywords[:MAX_KEYWORDS])


def metadata_body(metadata: PageMetadata) -> str:
    """The article's body as its JSON-LD or microdata gives it ('' without one): the
    evidence that the body extraction is measured against (fallback.BodyEvidence)."""
    return jsonld_text(metadata.article.get("articleBody")) or ""
