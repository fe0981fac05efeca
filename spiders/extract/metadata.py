"""The page's structured metadata (JSON-LD, microdata, OpenGraph and ``<meta>`` tags),
read once into PageMetadata, and the text and URL helpers every part of
extraction shares (clean_inline, normalise, safe_canonical_url)."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from html import unescape
from typing import TYPE_CHECKING, Any

from extruct.jsonld import JsonLdExtractor
from extruct.opengraph import OpenGraphExtractor
from extruct.w3cmicrodata import MicrodataExtractor
from lxml.html import HtmlElement

from crawler.domain.urls import canonicalize_url

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

logger = logging.getLogger(__name__)

# schema.org types whose node describes the article itself: Article and its
# subtypes (schema.org/Article lists them).
ARTICLE_TYPES: frozenset[str] = frozenset(
    {
        "Article",
        "NewsArticle",
        "ReportageNewsArticle",
        "AnalysisNewsArticle",
        "OpinionNewsArticle",
        "BackgroundNewsArticle",
        "ReviewNewsArticle",
        "AskPublicNewsArticle",
        "BlogPosting",
        "LiveBlogPosting",
        "SocialMediaPosting",
        "Report",
        "TechArticle",
        "ScholarlyArticle",
        "SatiricalArticle",
        "AdvertiserContentArticle",
    }
)
# Nodes that describe the page around the article; used only for dates and language
# when there is no article node (the Yoast @graph often dates only its WebPage).
PAGE_TYPES: frozenset[str] = frozenset({"WebPage", "ItemPage", "MedicalWebPage"})

# Soft hyphens and zero-width characters: invisible on the page, but they split
# words for search and dedup.
# (A character class, not str.translate: translating with a dict costs ~25 µs a
# paragraph of non-ASCII text, the regex next to nothing where none is found.)
INVISIBLE_CHARACTERS = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# Characters lxml refuses in a string (XML 1.0 forbids them); they only occur in
# broken pages.
LONE_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class PageMetadata:
    """The structured metadata of one page, read once.

    ``article`` is the JSON-LD (or microdata) node describing the article, ``page``
    the WebPage node around it, ``nodes_by_id`` every JSON-LD node with an ``@id``
    (to resolve references such as ``"author": {"@id": "#person"}``), and ``meta``
    maps lower-cased ``<meta>`` keys to their values in page order.
    """

    article: dict[str, Any]
    page: dict[str, Any]
    nodes_by_id: dict[str, dict[str, Any]]
    meta: dict[str, list[str]]
    canonical_links: tuple[str, ...]


def read_metadata(tree: HtmlElement, url: str) -> PageMetadata:
    """Collect JSON-LD, microdata, OpenGraph and ``<meta>`` tags from the page.

    Malformed JSON-LD blocks are skipped one by one; the others still count.
    """
    nodes = list(jsonld_nodes(tree))
    nodes_by_id = {node["@id"]: node for node in nodes if isinstance(node.get("@id"), str)}
    articles = [node for node in nodes if schema_types(node) & ARTICLE_TYPES]
    if not articles:
        articles = [
            node for node in microdata_nodes(tree, url) if schema_types(node) & ARTICLE_TYPES
        ]
    pages = [node for node in nodes if schema_types(node) & PAGE_TYPES]
    return PageMetadata(
        article=choose_article_node(articles, url),
        page=pages[0] if pages else {},
        nodes_by_id=nodes_by_id,
        meta=meta_tags(tree),
        canonical_links=canonical_links(tree),
    )


def jsonld_nodes(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    """Yield every JSON-LD object on the page, flattening lists, ``@graph`` and
    ``mainEntity``; a block that does not parse is skipped."""
    extractor = JsonLdExtractor()
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            items = extractor.extract_items(script)
        except Exception:  # any malformed block; the page's other blocks still count
            logger.debug("skipping malformed JSON-LD", exc_info=True)
            continue
        yield from _flatten_jsonld(_without_surrogates(items))


def _without_surrogates(value: Any, depth: int = 0) -> Any:
    """``value`` with each lone surrogate, which JSON can write ("\\ud800") but
    UTF-8 and the database cannot hold, replaced by U+FFFD."""
    if isinstance(value, str):
        return LONE_SURROGATES.sub("\ufffd", value)
    if depth > 20:  # deeper than _flatten_jsonld reads
        return value
    if isinstance(value, list):
        return [_without_surrogates(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            _without_surrogates(key, depth + 1): _without_surrogates(item, depth + 1)
            for key, item in value.items()
        }
    return value


def _flatten_jsonld(value: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 5:  # real pages nest two or three levels; deeper is a loop or junk
        return
    if isinstance(value, list):
        for item in value:
            yield from _flatten_jsonld(item, depth + 1)
    elif isinstance(value, dict):
        yield value
        for key in ("@graph", "mainEntity"):
            if isinstance(value.get(key), list | dict):
                yield from _flatten_jsonld(value[key], depth + 1)


def microdata_nodes(tree: HtmlElement, url: str) -> list[dict[str, Any]]:
    """Return the page's microdata items shaped like JSON-LD nodes."""
    try:
        items = MicrodataExtractor().extract_items(tree, base_url=url)
    except Exception:  # extruct on a broken page; microdata is only a fallback
        logger.debug("skipping microdata", exc_info=True)
        return []
    return [_microdata_as_jsonld(item) for item in items if isinstance(item, dict)]


def _microdata_as_jsonld(item: dict[str, Any]) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, dict) and "properties" in value:
            return _microdata_as_jsonld(value)
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    properties = item.get("properties")
    node = {}
    if isinstance(properties, dict):
        node = {key: convert(value) for key, value in properties.items()}
    node["@type"] = item.get("type", "")
    return node


def schema_types(node: dict[str, Any]) -> set[str]:
    """The node's schema.org type names, without any namespace prefix."""
    types = node.get("@type")
    names = types if isinstance(types, list) else [types]
    return {re.split(r"[/:#]", name)[-1] for name in names if isinstance(name, str)}


def choose_article_node(articles: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """The article node describing this page: the one whose URL is the page's,
    else the first with a headline, else the first; ``{}`` when there is none."""
    if not articles:
        return {}
    page_key = safe_canonical_url(url)
    for node in articles:
        entity = node.get("mainEntityOfPage")
        if isinstance(entity, dict):
            entity = entity.get("@id") or entity.get("url")
        for candidate in (node.get("url"), entity):
            if isinstance(candidate, str) and safe_canonical_url(candidate) == page_key:
                return node
    return next((node for node in articles if node.get("headline")), articles[0])


def meta_tags(tree: HtmlElement) -> dict[str, list[str]]:
    """Map lower-cased ``<meta>`` keys (property, name, itemprop) to their non-empty
    values in page order.

    OpenGraph comes from extruct; the wider scan adds what it skips: ``og:`` tags
    written with ``name=`` and tags outside ``<head>``.
    """
    found: dict[str, list[str]] = {}

    def add(key: str, value: str) -> None:
        key, value = key.strip().lower(), value.strip()
        if key and value and value not in found.setdefault(key, []):
            found[key].append(value)

    try:
        for item in OpenGraphExtractor().extract_items(tree):
            for prop, value in item["properties"]:
                add(prop, value)
    except Exception:  # extruct on a broken head; the scan below still reads the tags
        logger.debug("skipping OpenGraph", exc_info=True)
    for element in tree.iter("meta"):
        content = element.get("content")
        if content is None:
            continue
        for attribute in ("property", "name", "itemprop"):
            if key := element.get(attribute):
                add(key, content)
    return found


def canonical_links(tree: HtmlElement) -> tuple[str, ...]:
    """The hrefs of the page's ``<link rel="canonical">`` elements, in page order."""
    return tuple(
        link.get("href", "").strip()
        for link in tree.iter("link")
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href")
    )


def first_meta(metadata: PageMetadata, keys: Iterable[str]) -> str | None:
    """The first value of the first of ``keys`` that the page has."""
    for key in keys:
        if values := metadata.meta.get(key):
            return values[0]
    return None


def meta_values(metadata: PageMetadata, keys: Iterable[str]) -> list[str]:
    """Every value of ``keys``, key by key, in page order within a key."""
    return [value for key in keys for value in metadata.meta.get(key, [])]


def resolve(value: Any, nodes_by_id: dict[str, dict[str, Any]]) -> Any:
    """Replace a bare JSON-LD reference ``{"@id": ...}`` by the node it names."""
    if isinstance(value, dict) and set(value) <= {"@id", "@type"}:
        target = value.get("@id")
        if isinstance(target, str):
            return nodes_by_id.get(target, value)
    return value


def jsonld_text(value: Any) -> str | None:
    """A JSON-LD value as clean text: a string, a node's ``name`` or ``@value``, or
    the first of a list that has one."""
    if isinstance(value, list):
        return next((text for item in value if (text := jsonld_text(item))), None)
    if isinstance(value, dict):
        return jsonld_text(value.get("@value") or value.get("name"))
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return clean_inline(unescape(str(value))) or None
    return None


# --- text and URL helpers, shared by metadata, fields and body -------------------


def clean_inline(text: str) -> str:
    """Remove invisible characters and collapse whitespace to single spaces."""
    return " ".join(INVISIBLE_CHARACTERS.sub("", text).split())


def normalise(text: str) -> str:
    """The form two texts are compared in: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def safe_canonical_url(url: str) -> str:
    """canonicalize_url, or the URL as given when it is too broken to canonicalise."""
    try:
        return canonicalize_url(url)
    except ValueError:
        return url
