"""Article extraction: one fetched page, as (html, url), to an ExtractedArticle.

Everything here is a pure function of its arguments: nothing fetches, nothing is
stored (the word list for hyphenation is loaded once per process). The page is
decoded and parsed once; the one lxml tree is read for the structured metadata
(JSON-LD and microdata through extruct, OpenGraph and the other ``<meta>`` tags),
reworked where trafilatura would misread the body (embedded tweets, pop-up cards,
a body split into chunks), handed to trafilatura for the body, and searched for
visible "Published : ..." lines. The body then loses repeated headlines, captions
and navigation paragraphs, and gets its mojibake and (in English) its print
hyphenation repaired. Structured metadata wins over anything guessed from the
visible page, and the guesses run only for the fields the metadata left empty.

bench/extraction.py measures the body against plain trafilatura on the
article-extraction corpus (tests/fixtures/extraction).
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import logging
import re
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from html import unescape
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import charset_normalizer
import ftfy
import py3langid
import trafilatura
import wordfreq
from dateutil import parser as dateutil_parser
from extruct.jsonld import JsonLdExtractor
from extruct.opengraph import OpenGraphExtractor
from extruct.w3cmicrodata import MicrodataExtractor
from htmldate import find_date
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction
from lxml.html import HTMLParser as LxmlHtmlParser
from lxml.html import fromstring as html_fromstring
from trafilatura.metadata import extract_author, extract_title
from w3lib.encoding import html_to_unicode

from crawler.domain.items import ExtractedArticle
from crawler.domain.urls import canonicalize_url, is_web_url, same_site

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

logger = logging.getLogger(__name__)

# schema.org types whose node describes the article itself: Article and its
# subtypes (schema.org/Article lists them).
ARTICLE_TYPES: frozenset[str] = frozenset({
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
})
# Nodes that describe the page around the article; used only for dates and language
# when there is no article node (the Yoast @graph often dates only its WebPage).
PAGE_TYPES: frozenset[str] = frozenset({"WebPage", "ItemPage", "MedicalWebPage"})

# <meta> keys (name, property or itemprop, lower-cased), best first.
PUBLISHED_META: tuple[str, ...] = (
    "article:published_time",
    "og:article:published_time",
    "article.published",
    "datepublished",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date.created",
    "dcterms.created",
    "dc.date",
    "dcterms.date",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "parsely-pub-date",
    "sailthru.date",
    "date",
)
UPDATED_META: tuple[str, ...] = (
    "article:modified_time",
    "og:article:modified_time",
    "og:updated_time",
    "article.updated",
    "datemodified",
    "dc.date.modified",
    "dcterms.modified",
    "last-modified",
    "lastmod",
)
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

# The zone abbreviations news sites print in visible date lines ("7:16 am IST",
# "5:45 p.m. ET"), with the zone each stands for: a fixed offset in seconds, or an
# IANA zone where the abbreviation covers both standard and summer time (the offset
# then depends on the date). Abbreviations are ambiguous worldwide; each entry is the
# reading an English-language news page most likely means: IST is India (not Irish
# or Israel time), CST and PST are North American (not China or Philippine time),
# BST is British Summer Time. Abbreviations with no dominant news reading (AST:
# Atlantic or Arabia; BDT; ECT) are left out, and a date line using one is read
# without a zone (as UTC).
TIMEZONES: dict[str, int | tzinfo] = {
    # UTC
    "UTC": 0, "UT": 0, "GMT": 0, "Z": 0,
    # North America
    "ET": ZoneInfo("America/New_York"), "EST": -5 * 3600, "EDT": -4 * 3600,
    "CT": ZoneInfo("America/Chicago"), "CST": -6 * 3600, "CDT": -5 * 3600,
    "MT": ZoneInfo("America/Denver"), "MST": -7 * 3600, "MDT": -6 * 3600,
    "PT": ZoneInfo("America/Los_Angeles"), "PST": -8 * 3600, "PDT": -7 * 3600,
    "AKST": -9 * 3600, "AKDT": -8 * 3600, "HST": -10 * 3600,
    "ADT": -3 * 3600, "NST": -(3 * 3600 + 1800), "NDT": -(2 * 3600 + 1800),
    # Europe and Africa
    "WET": 0, "WEST": 3600, "BST": 3600, "IST": 5 * 3600 + 1800,  # IST: India, see above
    "CET": 3600, "CEST": 2 * 3600, "EET": 2 * 3600, "EEST": 3 * 3600,
    "MSK": 3 * 3600, "TRT": 3 * 3600,
    "WAT": 3600, "CAT": 2 * 3600, "SAST": 2 * 3600, "EAT": 3 * 3600,
    # Middle East and Asia
    "IDT": 3 * 3600, "IRST": 3 * 3600 + 1800, "GST": 4 * 3600, "AFT": 4 * 3600 + 1800,
    "PKT": 5 * 3600, "NPT": 5 * 3600 + 2700, "ICT": 7 * 3600, "WIB": 7 * 3600,
    "WITA": 8 * 3600, "WIT": 9 * 3600, "MYT": 8 * 3600, "PHT": 8 * 3600, "SGT": 8 * 3600,
    "HKT": 8 * 3600, "JST": 9 * 3600, "KST": 9 * 3600,
    # Oceania
    "AWST": 8 * 3600, "ACST": 9 * 3600 + 1800, "ACDT": 10 * 3600 + 1800,
    "AEST": 10 * 3600, "AEDT": 11 * 3600, "NZST": 12 * 3600, "NZDT": 13 * 3600,
}

# Soft hyphens and zero-width characters: invisible on the page, but they split
# words for search and dedup.
INVISIBLE_CHARACTERS = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
# Characters lxml refuses in a string (XML 1.0 forbids them); they only occur in
# broken pages.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
LONE_SURROGATES = re.compile("[\ud800-\udfff]")
CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])

# trafilatura's parser settings (trafilatura.utils.HTML_PARSER), but every element
# gets the plain HtmlElement class, looked up in C: lxml.html's default lookup calls
# back into Python for each element the tree hands out (to find forms and inputs,
# which nothing here uses), ~2,400 times per news page, ~1 ms of the page's time.
HTML_PARSER = LxmlHtmlParser(collect_ids=False, default_doctype=False, encoding="utf-8",
                             remove_comments=True, remove_pis=True)
HTML_PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
    element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction,
    entity=HtmlEntity))
# Repairs trafilatura makes before parsing (trafilatura.utils.repair_faulty_html):
# a doctype libxml2 misreads (lxml bug 1955915) and a self-closing <html/>.
FAULTY_DOCTYPE = re.compile("^< ?! ?DOCTYPE[^>]*/[^<>]*>", re.IGNORECASE)
SELF_CLOSING_HTML = re.compile(r"(<html.*?)\s*/>", re.IGNORECASE)

# A date without a time of day, as JSON-LD and meta tags write it.
BARE_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
YEAR = re.compile(r"(?<!\d)(?:1[89]\d\d|2[01]\d\d)(?!\d)")
DOTTED_TIME = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{2})(?![\d.])")
EPOCH = re.compile(r"\d{10}(?:\d{3})?")
# A line on the page such as "Published : Mar 30, 2016, 7:16 am IST". The keyword
# must start a text node or follow a separator, so that "a report published on
# 3 May 2015" inside a paragraph is not read as the article's date. "Last Update"
# without the "d" is deliberately absent: Indian sites print it in the page header
# next to the current date.
DATE_LINE = re.compile(
    r"(?:^|\n|[|•·])[ \t]*"
    r"(?P<kind>first\s+published|published|posted|last\s+updated|updated|last\s+modified|modified)"
    r"\b\s*(?:(?:on|at)\s+)?[:\-–—]?\s*(?:(?:on|at)\s+)?",
    re.IGNORECASE,
)
PUBLISHED_KINDS = frozenset({"first published", "published", "posted"})
DATE_LINE_LOOKAHEAD = 100
DATE_LINE_MAX_TOKENS = 10

# A <title> such as "Headline | Site" or "Site - Headline".
TITLE_SEPARATOR = re.compile(r"\s+(?:[|–—·•»«]|::|-)\s+")
# Text of a caption element longer than this is a container that happens to have
# "caption" in its class, not a caption.
MAX_CAPTION_LENGTH = 500
# A paragraph this long that is part of a caption's text is that caption (often
# without its photo credit); a shorter one may be a byline that happens to match.
MIN_CAPTION_FRAGMENT = 30

# Mojibake: UTF-8 decoded as windows-1252/Latin-1 always shows a lead byte as one of
# Â..ô, and decoded as windows-1251 as Р, С, Т or У, followed by a continuation byte
# (0x80-0xBF) as that charset shows it (or "Ã " once a no-break space is collapsed);
# text without such a pair is left alone without asking ftfy. (A lead letter alone
# is not enough: every "é" or "ç" would call ftfy, which takes milliseconds.) ftfy
# fixes only the encoding: quotes, ligatures, widths, line breaks and HTML entities
# stay as the page has them.
_CONTINUATIONS = "".join(sorted({
    bytes([byte]).decode(codec, errors="ignore")
    for codec in ("latin-1", "cp1252", "cp1251") for byte in range(0x80, 0xC0)} - {""}))
MOJIBAKE_HINT = re.compile(
    f"[\u00c2-\u00f4\u0420-\u0423][{re.escape(_CONTINUATIONS)}]|\u00c3 ")
MOJIBAKE_FIXES = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

# Print hyphenation: a word split at a line end in the print edition ("str-ategic"),
# two runs of letters joined by one hyphen, not part of a longer hyphenated chain.
HYPHENATED_WORD = re.compile(r"(?<![\w-])([^\W\d_]+)-([^\W\d_]+)(?![\w-])")
# Languages whose word list has been checked against real hyphenated compounds.
HYPHENATION_LANGUAGES: frozenset[str] = frozenset({"en"})
# A word of three letters or more is "known" from this wordfreq frequency
# (occurrences per word of running text; Zipf 2, which "razing" and "easterly" pass
# and the fragments "doz", "forc" and "nister" do not).
KNOWN_WORD_FREQUENCY = 1e-7
# Shorter parts count as words only when they are English words, prefixes or
# abbreviations that stand beside a hyphen ("co-operate", "e-mail", "en-suite",
# "sci-fi", "op-ed"): word lists rank fragments such as "ra", "mi" and "es" as
# frequent too, so frequency cannot tell them apart.
SHORT_WORDS: frozenset[str] = frozenset({
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q",
    "r", "s", "t", "u", "v", "w", "x", "y", "z",
    "ad", "al", "am", "an", "as", "at", "be", "bi", "by", "co", "de", "do", "ed", "el",
    "en", "ex", "fi", "go", "he", "hi", "if", "in", "is", "it", "la", "lo", "me", "my",
    "no", "of", "oh", "ok", "on", "op", "or", "ox", "re", "so", "to", "tv", "un", "up",
    "us", "we",
})

# Tweets embedded in the text, as Twitter's widget script finds them.
EMBEDDED_TWEETS = '//blockquote[contains(@class, "twitter-tweet")]'
# Cards that pop up over a name or a term inside a paragraph ("rollover",
# "tooltip", ...): hidden until hovered, and not part of the sentence. Only the
# innermost goes, so the name or term it pops up from stays.
_POPUP_CLASS = ('contains(@class, "rollover") or contains(@class, "tooltip") or '
                'contains(@class, "popover") or contains(@class, "hovercard")')
POPUP_CARDS = f"//p//*[{_POPUP_CLASS}]"
POPUP_CARDS_INSIDE = f".//*[{_POPUP_CLASS}]"
# Class names of the element that holds an article's body ("article__body",
# "story-body", "entry-content", ...), as in trafilatura's own body selectors.
ARTICLE_BODY_CLASS = re.compile(
    r"article[-_]{0,2}(?:body|content|text)|articlebody|story[-_]{0,2}(?:body|content)"
    r"|entry[-_]content|post[-_]{0,2}(?:body|content|text)|body[-_]text",
    re.IGNORECASE,
)
# How far above each chunk of a split body their common ancestor may be, and how
# much paragraph text a chunk has.
SPLIT_BODY_DEPTH = 3
MIN_CHUNK_TEXT = 200
# "Related: <headline>", "SEE MORE: <headline>": a label of up to three words (any
# language) before a link to another story.
LINK_LABEL = re.compile(r"(?P<label>[^\W\d_][\w' ]{0,24}?)\s*[:|]\s+(?P<link>\S.*)")
# A link whose text has fewer words is a name, not the headline of another story.
MIN_HEADLINE_WORDS = 4
# A body shorter than this (about 80 words) is less than an article: trafilatura's
# own extraction missed it, and its comparison with readability and jusText runs.
SHORT_BODY = 500

HTMLDATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# An author value that is a link (article:author often holds a profile URL).
LINK_LIKE = re.compile(r"(?:https?:|mailto:|/|www\.)", re.IGNORECASE)


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
    prepare_body(tree)
    keywords = choose_keywords(metadata)
    text = clean_body(extract_body(tree, url), headlines, captions)
    text = repair_mojibake(drop_link_paragraphs(text, lambda: link_texts_of(tree), keywords))
    published, updated = choose_dates(tree, metadata, url)
    language = choose_language(tree, metadata, text or title)
    description = choose_description(metadata)
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


# --- decoding and parsing -------------------------------------------------------


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


def decode_page(body: bytes, content_type: str | None = None) -> str:
    """Decode a fetched page the way it was really written, not only as labelled.

    A byte order mark wins. A page that is valid UTF-8 is UTF-8 whatever it says
    (servers often send a stale Latin-1 label). A page labelled UTF-8 (or not at
    all) that is not valid UTF-8 gets its charset detected; a Latin-1 label is read
    as Windows-1252, as browsers do. CONTROL_CHARACTERS are removed.
    """
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
                       (b"\xfe\xff", "utf-16-be")):
        if body.startswith(bom):
            return CONTROL_CHARACTERS.sub("", body[len(bom):].decode(codec, errors="replace"))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if is_free_of_control_characters(text, body):
            return text
        return CONTROL_CHARACTERS.sub("", text)
    declared = _declared_charset(body, content_type)
    if declared in {"latin-1", "iso8859-1", "ascii"}:
        declared = "cp1252"
    if declared == "utf-8":
        # Mislabelled: most often Windows-1252 (which fails only on a few bytes that
        # multi-byte encodings such as Shift_JIS use all the time).
        with contextlib.suppress(UnicodeDecodeError):
            return CONTROL_CHARACTERS.sub("", body.decode("cp1252"))
        declared = None
    if declared is None:
        best = charset_normalizer.from_bytes(body[:200_000]).best()
        declared = best.encoding if best is not None else "cp1252"
    try:
        return CONTROL_CHARACTERS.sub("", body.decode(declared, errors="replace"))
    except LookupError:
        return CONTROL_CHARACTERS.sub("", body.decode("cp1252", errors="replace"))


def is_free_of_control_characters(text: str, utf8: bytes) -> bool:
    """Whether ``text``, decoded from ``utf8``, has no CONTROL_CHARACTERS: the control
    bytes counted in the bytes, the two noncharacters searched in the text, ~6 times
    faster than the regular expression on the text (and nearly every page has none)."""
    return len(utf8.translate(None, CONTROL_BYTES)) == len(utf8) and (
        "\ufffe" not in text and "\uffff" not in text)


def _declared_charset(body: bytes, content_type: str | None) -> str | None:
    """The charset the HTTP header or the page's own <meta> names, as a codec name."""
    found = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.IGNORECASE)
    if found is None:
        found = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", body[:4096], re.IGNORECASE)
    if found is None:
        return None
    name = found.group(1)
    name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(html: str | bytes) -> str:
    """Return the page as text.

    Bytes are decoded by their BOM, else their ``<meta charset>``, else as UTF-8
    with undecodable bytes replaced. Characters that lxml cannot hold are removed.
    """
    if isinstance(html, bytes):
        _, html = html_to_unicode(None, html)
    return CONTROL_CHARACTERS.sub("", html)


def parse_page(text: str) -> HtmlElement | None:
    """Parse a decoded page (without CONTROL_CHARACTERS) as trafilatura's load_html
    would, with HTML_PARSER; None when it is not HTML at all."""
    if "<" not in text:
        return None
    beginning = text[:50].lower()
    if "doctype" in beginning:
        first_line, newline, rest = text.partition("\n")
        text = FAULTY_DOCTYPE.sub("", first_line, count=1) + newline + rest
    if any("<html" in line and line.endswith("/>") for line in text[:4096].splitlines()[:4]):
        text = SELF_CLOSING_HTML.sub(r"\1>", text, count=1)
    try:
        tree = _parse_html(text)
    except etree.ParserError:  # "Document is empty": "<?", a lone processing instruction
        return None
    # Not HTML at all: without "html" at the start, lxml wraps any text in elements.
    if tree is None or ("html" not in beginning and len(tree) < 2):
        return None
    if not tree.text_content().strip():
        return None
    return tree


def _parse_html(text: str) -> HtmlElement:
    try:
        return html_fromstring(text, parser=HTML_PARSER)
    except ValueError:  # a string with an XML encoding declaration: parsed as bytes
        return html_fromstring(text.encode("utf-8", "surrogatepass"), parser=HTML_PARSER)


# --- structured metadata --------------------------------------------------------


def read_metadata(tree: HtmlElement, url: str) -> PageMetadata:
    """Collect JSON-LD, microdata, OpenGraph and ``<meta>`` tags from the page.

    Malformed JSON-LD blocks are skipped one by one; the others still count.
    """
    nodes = list(jsonld_nodes(tree))
    nodes_by_id = {node["@id"]: node for node in nodes if isinstance(node.get("@id"), str)}
    articles = [node for node in nodes if schema_types(node) & ARTICLE_TYPES]
    if not articles:
        articles = [node for node in microdata_nodes(tree, url)
                    if schema_types(node) & ARTICLE_TYPES]
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
        return {_without_surrogates(key, depth + 1): _without_surrogates(item, depth + 1)
                for key, item in value.items()}
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


# --- fields ---------------------------------------------------------------------


def clean_inline(text: str) -> str:
    """Remove invisible characters and collapse whitespace to single spaces."""
    return " ".join(text.translate(INVISIBLE_CHARACTERS).split())


def normalise(text: str) -> str:
    """The form two texts are compared in: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def safe_canonical_url(url: str) -> str:
    """canonicalize_url, or the URL as given when it is too broken to canonicalise."""
    try:
        return canonicalize_url(url)
    except ValueError:
        return url


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
        authors = [name for value in meta_values(metadata, AUTHOR_META)
                   for name in value.split(";")]
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
    description = clean_inline(value) if value else jsonld_text(
        metadata.article.get("description"))
    return description or None



def choose_section(metadata: PageMetadata) -> str | None:
    """JSON-LD articleSection > article:section and similar meta tags; the first
    section when the page lists several (a JSON-LD list, or a string of three or
    more comma-separated categories, as some CMSs write it); never a URL."""
    candidates = [jsonld_text(metadata.article.get("articleSection")),
                  *(unescape(value) for value in meta_values(metadata, SECTION_META))]
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


# --- body -----------------------------------------------------------------------


def prepare_body(tree: HtmlElement) -> None:
    """Rework the page, in place, where trafilatura would misread its body: embedded
    tweets become plain quotations (trafilatura drops them as social widgets, but
    they are quotes the article reports), pop-up cards inside paragraphs go, and a
    body split into chunks is merged (merge_split_bodies)."""
    for quote in tree.xpath(EMBEDDED_TWEETS):
        quote.attrib.pop("class")
        # and out of the wrappers that hold only it and the widget script
        while (wrapper := quote.getparent()) is not None and wrapper.tag in {"div", "figure"} \
                and not (wrapper.text or "").strip() and [
                    child for child in wrapper
                    if isinstance(child.tag, str) and child.tag != "script"] == [quote]:
            wrapper.drop_tag()
    for card in tree.xpath(POPUP_CARDS):
        if not card.xpath(POPUP_CARDS_INSIDE):
            card.drop_tree()
    merge_split_bodies(tree)


def merge_split_bodies(tree: HtmlElement) -> None:
    """Join an article body that the page splits into several containers of the same
    class, in place, so that trafilatura (which takes the first body container)
    reads all of it.

    Some sites cut the body into chunks between ads ("article__body" repeated,
    each in its own grid row). Chunks are merged into the first when they share
    tag and class (or are all itemprop=articleBody), none contains another, each
    holds at least MIN_CHUNK_TEXT characters of paragraphs and is not inside a link,
    they sit at most SPLIT_BODY_DEPTH levels below a common ancestor that is not
    itself a body container, in the same ``<article>`` (if any), and no ``<h1>``
    stands between them (a second article on the same page has its own headline).
    """
    groups: dict[tuple[str, str], list[HtmlElement]] = {}
    for element in tree.iter("div", "section", "article"):
        if element.get("itemprop") == "articleBody":
            groups.setdefault(("", "articleBody"), []).append(element)
        elif (classes := element.get("class")) and ARTICLE_BODY_CLASS.search(classes):
            groups.setdefault((element.tag, classes), []).append(element)
    for members in groups.values():
        if len(members) > 1 and len(chunks := list(filter(is_body_chunk, members))) > 1:
            _merge_chunks(chunks)


def is_body_chunk(element: HtmlElement) -> bool:
    """True when the element holds paragraphs of text and is not inside a link (a
    teaser card whose class names the body of the article it links to)."""
    if next(element.iterancestors("a"), None) is not None:
        return False
    return sum(len(paragraph.text_content()) for paragraph in element.iter("p")) >= (
        MIN_CHUNK_TEXT)


def _merge_chunks(members: list[HtmlElement]) -> None:
    first = members[0]
    first_ancestors = list(first.iterancestors())
    article = next(first.iterancestors("article"), None)
    for member in members[1:]:
        member_ancestors = list(member.iterancestors())
        common = next((ancestor for ancestor in member_ancestors
                       if ancestor in first_ancestors), None)
        if (common is None or first in member_ancestors
                or first_ancestors.index(common) >= SPLIT_BODY_DEPTH
                or member_ancestors.index(common) >= SPLIT_BODY_DEPTH
                or is_body_container(common)
                or next(member.iterancestors("article"), None) is not article):
            continue
        order = {element: index for index, element in enumerate(common.iter())}
        if any(order[first] < order[h1] < order[member] for h1 in common.iter("h1")):
            continue
        if member.text and member.text.strip():
            if len(first):
                first[-1].tail = (first[-1].tail or "") + " " + member.text
            else:
                first.text = (first.text or "") + " " + member.text
        first.extend(list(member))
        member.drop_tree()


def is_body_container(element: HtmlElement) -> bool:
    classes = element.get("class")
    return element.get("itemprop") == "articleBody" or bool(
        classes and ARTICLE_BODY_CLASS.search(classes))




def extract_body(tree: HtmlElement, url: str) -> str:
    """The article body as trafilatura finds it, one paragraph a line.

    favor_precision without comments scored best on the article-extraction corpus
    (F1 0.964 against 0.955 for the defaults); tables stay in because dropping them
    loses body text on pages that lay their article out in a table. trafilatura
    runs first without its readability/jusText comparison (``fast``, half the
    time); only a body shorter than SHORT_BODY, where its own extraction has
    missed the article, pays for the comparison. On longer bodies the comparison
    mostly swapped a clean body for readability's longer one with the teasers in.
    """
    options = {
        "url": url or None,
        "output_format": "txt",
        "favor_precision": True,
        "include_comments": False,
        "include_tables": True,
        "with_metadata": False,
    }
    text = trafilatura.extract(tree, fast=True, **options) or ""
    if len(text) < SHORT_BODY:
        text = trafilatura.extract(tree, **options) or text
    return text


def caption_texts(tree: HtmlElement) -> list[str]:
    """Normalised text of ``<figcaption>`` elements and of elements whose class
    contains "caption" or "Caption" (ignoring any too long to be a caption)."""
    elements = tree.xpath(
        '//figcaption | //*[contains(@class, "caption") or contains(@class, "Caption")]')
    texts = (normalise(element.text_content()) for element in elements)
    return [text for text in texts if text and len(text) <= MAX_CAPTION_LENGTH]


def clean_body(text: str, headlines: Iterable[str], captions: Iterable[str]) -> str:
    """Tidy an extracted body into paragraphs separated by blank lines.

    Each line of ``text`` is a paragraph. Invisible characters go and whitespace is
    collapsed; then a paragraph is dropped when it equals a headline, is (a long part
    of) a photo caption from ``captions`` (normalised texts), or is the second
    occurrence of a paragraph that occurs exactly twice. A paragraph that recurs
    three or more times is page structure, such as the questions of a series of
    interviews, and every occurrence is kept: dropping those cost recall on the
    article-extraction corpus, while dropping pairs (a standfirst repeated as the
    first paragraph) gained precision.
    """
    headline_keys = {normalise(headline) for headline in headlines if headline}
    caption_keys = list(captions)
    paragraphs = [(paragraph, normalise(paragraph))
                  for paragraph in map(clean_inline, text.splitlines())]
    counts = Counter(key for _, key in paragraphs)
    seen: set[str] = set()
    kept: list[str] = []
    for paragraph, key in paragraphs:
        if not key or key in headline_keys or is_caption(key, caption_keys):
            continue
        if key in seen and counts[key] == 2:
            continue
        seen.add(key)
        kept.append(paragraph)
    return "\n\n".join(kept)


def is_caption(key: str, captions: list[str]) -> bool:
    """True when a normalised paragraph is a caption or a long part of one."""
    return any(
        key == caption or (len(key) >= MIN_CAPTION_FRAGMENT and key in caption)
        for caption in captions
    )


def drop_link_paragraphs(
    text: str, link_texts: Callable[[], set[str]], keywords: Iterable[str] = (),
) -> str:
    """Drop the paragraphs of ``text`` (blank-line separated) that are navigation
    rather than article: a labelled link to another story ("Related: <headline>",
    "READ MORE: <headline>"), a run of two or more list items ("- <headline>") that
    are each a whole link, and a list of the page's own keywords (its tags).

    ``link_texts`` gives the normalised texts of the page's links; it is called
    only when a paragraph looks like one, and a link counts only when its text has
    at least MIN_HEADLINE_WORDS words (so "Account: @name" or "Partner: Acme
    Systems" stay).
    """
    paragraphs = text.split("\n\n") if text else []
    tags = {normalise(keyword) for keyword in keywords}
    links: set[str] | None = None

    def is_link(fragment: str) -> bool:
        nonlocal links
        if links is None:
            links = link_texts()
        key = normalise(fragment)
        return len(key.split()) >= MIN_HEADLINE_WORDS and key in links

    def is_link_item(index: int) -> bool:
        return 0 <= index < len(paragraphs) and paragraphs[index].startswith("- ") and (
            is_link(paragraphs[index][2:]))

    kept = []
    for index, paragraph in enumerate(paragraphs):
        key = normalise(paragraph)
        if tags and all(part.strip() in tags for part in key.split(",")):
            continue
        if (labelled := LINK_LABEL.match(paragraph)) and is_link(labelled["link"]):
            continue
        if is_link_item(index) and (is_link_item(index - 1) or is_link_item(index + 1)):
            continue
        kept.append(paragraph)
    return "\n\n".join(kept)


def link_texts_of(tree: HtmlElement) -> set[str]:
    """The normalised texts of the page's links."""
    return {normalise(link.text_content()) for link in tree.iter("a")}


# --- text repair ----------------------------------------------------------------


def repair_mojibake(text: str) -> str:
    """Undo mojibake from a mislabelled charset ("cafÃ©" -> "café", "itâ€™s" ->
    "it’s") with ftfy, changing nothing else in the text."""
    if not MOJIBAKE_HINT.search(text):
        return text
    return ftfy.fix_text(text, MOJIBAKE_FIXES)


@functools.cache
def known_words(language: str) -> frozenset[str]:
    """The lower-case words of ``language`` that wordfreq's large list gives at least
    KNOWN_WORD_FREQUENCY (loaded once per process, about 0.1 s for English); empty
    when the list cannot be read, which leaves hyphenation alone rather than costing
    the article.

    Only these ~96,000 English words (of 321,000) are kept, as a set: the whole
    frequency table took ~29 MB in every process that repairs hyphenation, the set
    ~11 MB. wordfreq's own cache of the list is emptied once the set is made.
    """
    try:
        # Buckets of words, most frequent first; bucket i holds the words of
        # frequency 10^(-i/100) (wordfreq's centibels). The frequent words come
        # first in memory too, so dropping the rest leaves no holes behind.
        buckets = wordfreq.get_frequency_list(language, wordlist="large")
    except Exception:  # a broken or missing data file; the text just stays as it is
        logger.warning("no word list for %r; hyphenation not repaired", language, exc_info=True)
        return frozenset()
    known = frozenset(
        word
        for index, bucket in enumerate(buckets)
        if wordfreq.cB_to_freq(-index) >= KNOWN_WORD_FREQUENCY
        for word in bucket
    )
    wordfreq.get_frequency_list.cache_clear()
    return known


def repair_hyphenation(text: str, language: str | None) -> str:
    """Join words split by print hyphenation ("str-ategic" -> "strategic") and keep
    real hyphenated compounds ("pro-government", "south-west", "Al-Qaryatain").

    ``a-b`` becomes ``ab`` when ``b`` is lower-case, ``a`` is lower-case or
    capitalised, the joined word is known (in the language's word list, or written
    unhyphenated elsewhere in ``text``), and ``a`` and ``b`` are not both words on
    their own (which makes it a compound: "co-operate", "south-easterly"). Only for
    HYPHENATION_LANGUAGES; other text is returned as is.
    """
    if language not in HYPHENATION_LANGUAGES or "-" not in text:
        return text
    known = known_words(language)
    vocabulary: set[str] = set()

    def is_word(part: str) -> bool:
        if len(part) <= 2:
            return part in SHORT_WORDS
        return part in known

    def join(match: re.Match[str]) -> str:
        first, second = match[1], match[2]
        if not second.islower() or not (first.islower() or first.istitle()):
            return match[0]
        if is_word(first.lower()) and is_word(second):
            return match[0]
        joined = (first + second).lower()
        if joined in known:
            return first + second
        if not vocabulary:
            vocabulary.update(word.lower() for word in re.findall(r"[^\W\d_]+", text))
        return first + second if joined in vocabulary else match[0]

    return HYPHENATED_WORD.sub(join, text)


# --- dates ----------------------------------------------------------------------


def choose_dates(
    tree: HtmlElement, metadata: PageMetadata, url: str,
) -> tuple[datetime | None, datetime | None]:
    """(published, updated) in UTC.

    Each comes from JSON-LD, else from the meta tags, else from a visible
    "Published : ..." / "Updated : ..." line; only a missing published date falls
    back to htmldate's guess, which may be a bare date (read as midnight UTC).
    """
    nodes = (metadata.article, metadata.page)
    published = first_date([
        *(node.get(key) for node in nodes for key in ("datePublished", "dateCreated")),
        *meta_values(metadata, PUBLISHED_META),
    ])
    updated = first_date([
        *(node.get("dateModified") for node in nodes),
        *meta_values(metadata, UPDATED_META),
    ])
    if published is None or updated is None:
        visible_published, visible_updated = find_date_lines(visible_text(tree))
        published = published or visible_published
        updated = updated or visible_updated
    if published is None:
        published = htmldate_guess(tree, url)
    return published, updated


def first_date(values: Iterable[Any]) -> datetime | None:
    """The first of ``values`` that parses as a date (see parse_datetime).

    When that one is a bare day ("2017-12-06"), a later value on the same day that
    also has the time of day is taken instead: an article node often dates only the
    day while the WebPage node or a meta tag has the full timestamp.
    """
    texts = [text for value in values if (text := jsonld_text(value))]
    for index, text in enumerate(texts):
        moment = parse_datetime(text)
        if moment is None:
            continue
        if BARE_DAY.fullmatch(text):
            for later in texts[index + 1:]:
                if later.startswith(text) and later != text and (
                        precise := parse_datetime(later)):
                    return precise
        return moment
    return None


def parse_datetime(value: str) -> datetime | None:
    """Read a date from metadata or from the page, in UTC; None when it does not
    read as a date with a year.

    ISO 8601 first, then epoch seconds or milliseconds, then dateutil with the zone
    abbreviations of TIMEZONES. A value without a zone is taken as UTC.
    """
    value = value.strip()
    if not value or len(value) > 100:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        pass
    if EPOCH.fullmatch(value):
        seconds = int(value) / (1000 if len(value) == 13 else 1)
        return as_utc(datetime.fromtimestamp(seconds, tz=UTC))
    if not YEAR.search(value):
        return None  # dateutil would fill the missing year from today
    try:
        with warnings.catch_warnings():
            # An unknown zone name makes dateutil warn and return a naive time,
            # which is then read as UTC like any other zone-less value.
            warnings.simplefilter("ignore")
            parsed = dateutil_parser.parse(
                DOTTED_TIME.sub(r"\1:\2", value),
                tzinfos=TIMEZONES,
                default=datetime(2000, 1, 1),  # only fills fields the text lacks
            )
    except (ValueError, OverflowError, TypeError, LookupError):
        return None
    return as_utc(parsed)


def as_utc(moment: datetime) -> datetime | None:
    """The same moment in UTC; a naive time is taken to be UTC already."""
    if not 1900 <= moment.year <= 2200:
        return None
    try:
        # utcoffset() raises for an offset of a day or more ("+9999", "+24:00").
        if moment.tzinfo is None or moment.utcoffset() is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def visible_text(tree: HtmlElement) -> str:
    """The text a reader sees, one text node a line (no scripts, styles or head)."""
    nodes = tree.xpath(
        "//body//text()[not(parent::script or parent::style or parent::noscript"
        " or parent::template)]")
    return "\n".join(str(node) for node in nodes)


def find_date_lines(text: str) -> tuple[datetime | None, datetime | None]:
    """(published, updated) from the first "Published : <date>"-like and
    "Updated : <date>"-like lines in ``text`` whose date includes a year; lines
    such as "Posted: 2 hours ago" are passed over."""
    published: datetime | None = None
    updated: datetime | None = None
    matches = list(DATE_LINE.finditer(text))
    for index, match in enumerate(matches):
        is_published = " ".join(match["kind"].lower().split()) in PUBLISHED_KINDS
        if (published if is_published else updated) is not None:
            continue
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fragment = text[match.end():min(end, match.end() + DATE_LINE_LOOKAHEAD)]
        moment = parse_date_prefix(fragment.split("|", 1)[0])
        if is_published:
            published = published or moment
        else:
            updated = updated or moment
        if published and updated:
            break
    return published, updated


def parse_date_prefix(fragment: str) -> datetime | None:
    """The longest run of leading words in ``fragment`` that reads as a date."""
    words = fragment.split()[:DATE_LINE_MAX_TOKENS]
    for count in range(len(words), 0, -1):
        candidate = " ".join(words[:count]).rstrip(",;-–—")
        if YEAR.search(candidate) and (moment := parse_datetime(candidate)):
            return moment
    return None


def htmldate_guess(tree: HtmlElement, url: str) -> datetime | None:
    """htmldate's reading of the original publication date, or None."""
    try:
        found = find_date(
            tree,
            url=url or None,
            original_date=True,
            outputformat=HTMLDATE_FORMAT,
            extensive_search=False,
        )
    except Exception:  # htmldate on a broken page; the date just stays unknown
        logger.debug("htmldate failed", exc_info=True)
        return None
    return parse_datetime(found) if found else None
