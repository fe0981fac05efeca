"""Decoding a fetched page to text and parsing the text into one lxml tree."""

from __future__ import annotations

import codecs
import contextlib
import logging
import re

import charset_normalizer
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction
from lxml.html import HTMLParser as LxmlHtmlParser
from lxml.html import fromstring as html_fromstring
from w3lib.encoding import html_to_unicode

logger = logging.getLogger(__name__)

# Characters lxml refuses in a string (XML 1.0 forbids them); they only occur in
# broken pages.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])

# trafilatura's parser settings (trafilatura.utils.HTML_PARSER), but every element
# gets the plain HtmlElement class, looked up in C: lxml.html's default lookup calls
# back into Python for each element the tree hands out (to find forms and inputs,
# which nothing here uses), ~2,400 times per news page, ~1 ms of the page's time.
HTML_PARSER = LxmlHtmlParser(
    collect_ids=False,
    default_doctype=False,
    encoding="utf-8",
    remove_comments=True,
    remove_pis=True,
)
HTML_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
    )
)
# Repairs trafilatura makes before parsing (trafilatura.utils.repair_faulty_html):
# a doctype libxml2 misreads (lxml bug 1955915) and a self-closing <html/>.
FAULTY_DOCTYPE = re.compile("^< ?! ?DOCTYPE[^>]*/[^<>]*>", re.IGNORECASE)
SELF_CLOSING_HTML = re.compile(r"(<html.*?)\s*/>", re.IGNORECASE)


def decode_page(body: bytes, content_type: str | None = None) -> str:
    """Decode a fetched page the way it was really written, not only as labelled.

    A byte order mark wins. A page that is valid UTF-8 is UTF-8 whatever it says
    (servers often send a stale Latin-1 label). A page labelled UTF-8 (or not at
    all) that is not valid UTF-8 gets its charset detected; a Latin-1 label is read
    as Windows-1252, as browsers do. CONTROL_CHARACTERS are removed.
    """
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if body.startswith(bom):
            return CONTROL_CHARACTERS.sub("", body[len(bom) :].decode(codec, errors="replace"))
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
        "\ufffe" not in text and "\uffff" not in text
    )


def _declared_charset(body: bytes, content_type: str | None) -> str | None:
    """The charset the HTTP header or the page's own <meta> names, as a codec name."""
    found: re.Match[str] | re.Match[bytes] | None = re.search(
        r"charset=[\"']?([\w.:-]+)", content_type or "", re.IGNORECASE
    )
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
