"""Repairing malformed XML feeds: the root element, lossless repairs, hostile
DOCTYPEs, lxml's recovering parser, and entries a truncated document cut off."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from html.entities import html5 as HTML5_ENTITIES
from typing import Any

from lxml import etree

# Whitespace, declarations, processing instructions, comments and a DOCTYPE.
_PROLOG_ONLY = re.compile(
    r"\s*(?:(?:<\?.*?\?>|<!--.*?(?:-->|\Z)|<!DOCTYPE[^>\[]*(?:\[.*?\]\s*)?>)\s*)*",
    re.DOTALL | re.IGNORECASE,
)
_FIRST_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)")
_HTML_ROOTS = frozenset(
    {
        "html",
        "head",
        "body",
        "meta",
        "title",
        "div",
        "p",
        "br",
        "h1",
        "h2",
        "script",
        "style",
        "link",
        "table",
        "center",
        "pre",
        "a",
        "iframe",
    }
)
_XML_DECLARATION = re.compile(r"<\?xml\s[^>]*?\?>")
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A character reference XML may forbid (C0 controls, surrogates, U+FFFE/F, beyond
# U+10FFFF), and the reference after it (the second half of a surrogate pair).
# Only suspicious ones match, so that ordinary references cost nothing.
_CHARACTER_REFERENCE = re.compile(
    r"&#(?:[xX]0*([0-9a-fA-F]|1[0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF]"
    r"|1[1-9a-fA-F][0-9a-fA-F]{4}|[2-9a-fA-F][0-9a-fA-F]{5}|[0-9a-fA-F]{7,8})"
    r"|0*([0-9]|[12][0-9]|3[01]|5529[6-9]|55[3-9][0-9]{2}|56[0-9]{3}|57[0-2][0-9]{2}"
    r"|573[0-3][0-9]|5734[0-3]|6553[45]|[0-9]{7,10}));"
    r"(?:&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));)?"
)
_NAMED_REFERENCE_OR_CDATA = re.compile(
    r"<!\[CDATA\[.*?\]\]>|&(?!(?:amp|lt|gt|quot|apos);)([A-Za-z][A-Za-z0-9]{1,31});", re.DOTALL
)
_DOCTYPE = re.compile(r"<!DOCTYPE[^>\[]*(?:\[.*?\]\s*)?>", re.DOTALL | re.IGNORECASE)
_ENTITY_VALUE = re.compile(r"""<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(?:"([^"]*)"|'([^']*)')""")
_ENTITY_REFERENCE = re.compile(r"&([A-Za-z_][\w.-]*);")
_ENTITY_EXPANSION_LIMIT = 1_000_000
_ENTITY_REFERENCE_LIMIT = 10_000
# Entities nested deeper than this count as expanding without bound (real feeds nest
# none; a loop nests forever).
_ENTITY_MAX_DEPTH = 16
_PARAMETER_ENTITY_VALUE = re.compile(r"""<!ENTITY\s+%\s*[A-Za-z_][\w.-]*\s+["']""")
_DECLARED_ENTITY = re.compile(r"<!ENTITY\s+(?:%\s+)?([A-Za-z_][\w.-]*)")
_XML_PREDEFINED = frozenset({"amp", "lt", "gt", "quot", "apos"})


def _root_element_name(text: str) -> str | None:
    prolog = _PROLOG_ONLY.match(text)
    match = _FIRST_ELEMENT.match(text, prolog.end() if prolog else 0)
    if match is None:
        match = _FIRST_ELEMENT.search(text)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class _Repaired:
    document: bytes  # UTF-8 XML, declared as such
    removed_lines: int  # lines removed before the root element, to report original lines
    problem: str | None = None


def _repair_xml(text: str) -> _Repaired:
    """Return the document as UTF-8 XML, with repairs that lose nothing.

    Removes the old declaration (also one after blank lines or a comment, which
    XML forbids), characters XML forbids, character references to code points XML
    forbids (a UTF-16 surrogate pair written as two references becomes its
    character), and writes HTML named entities (``&nbsp;``, ``&hellip;``) as
    numeric references unless the document declares them itself.

    The XML parser expands the DOCTYPE's entities, nested ones too, until expat's
    amplification limit stops it: a 1 KB "billion laughs" still cost seconds of
    callbacks. So a DOCTYPE is dropped, its entities left unexpanded, when they
    would expand to more than _ENTITY_EXPANSION_LIMIT characters or
    _ENTITY_REFERENCE_LIMIT references (counted through the nesting, before any
    parsing), or when it declares an internal parameter entity (which can declare
    further entities, out of reach of that count).
    """
    prolog = _PROLOG_ONLY.match(text)
    end = prolog.end() if prolog else 0
    head = _XML_DECLARATION.sub("", text[:end]).lstrip()
    problem = None
    # Character references in an entity value are replaced when it is declared, so
    # "&#38;lol;" in a value is a reference to &lol; when the entity is used.
    values = {
        match.group(1): _CHARACTER_REFERENCE_IN_VALUE.sub(
            _character, match.group(2) or match.group(3) or ""
        )
        for match in _ENTITY_VALUE.finditer(head)
    }
    characters = expansions = 0.0
    if values:
        sizes: dict[str, tuple[float, float]] = {}
        for name, count in Counter(_ENTITY_REFERENCE.findall(text, end)).items():
            if name in values:
                size, nested = _expanded_size(name, values, sizes)
                characters += size * count
                expansions += (nested + 1) * count
    if characters > _ENTITY_EXPANSION_LIMIT or expansions > _ENTITY_REFERENCE_LIMIT:
        head = _DOCTYPE.sub("", head)
        problem = (
            f"the DOCTYPE's entities would expand to {characters:.0f} characters "
            f"({expansions:.0f} references); they were not expanded"
        )
    elif _PARAMETER_ENTITY_VALUE.search(head):
        head = _DOCTYPE.sub("", head)
        problem = "the DOCTYPE declares internal parameter entities; its entities were not expanded"
    removed_lines = text.count("\n", 0, end) - head.count("\n")
    declared = set(_DECLARED_ENTITY.findall(head))
    text = _INVALID_XML_CHARS.sub("", head + text[end:])
    text = _CHARACTER_REFERENCE.sub(_fix_character_reference, text)

    def numeric(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None or name in _XML_PREDEFINED or name in declared:
            return match.group(0)
        value = HTML5_ENTITIES.get(name + ";")
        return "".join(f"&#{ord(char)};" for char in value) if value else match.group(0)

    text = _NAMED_REFERENCE_OR_CDATA.sub(numeric, text)
    declaration = b'<?xml version="1.0" encoding="utf-8"?>'
    return _Repaired(declaration + text.encode("utf-8", "replace"), removed_lines, problem)


_CHARACTER_REFERENCE_IN_VALUE = re.compile(r"&#(?:([0-9]{1,8})|[xX]([0-9a-fA-F]{1,8}));")


def _character(match: re.Match[str]) -> str:
    code = int(match.group(1)) if match.group(1) else int(match.group(2), 16)
    return chr(code) if _is_xml_char(code) else ""


def _expanded_size(
    name: str, values: dict[str, str], sizes: dict[str, tuple[float, float]], depth: int = 0
) -> tuple[float, float]:
    """How many characters entity ``name`` expands to, and how many entity
    references it expands on the way; infinite for a loop or deep nesting."""
    if name in sizes:
        return sizes[name]
    if depth > _ENTITY_MAX_DEPTH:
        return math.inf, math.inf
    value = values[name]
    characters, expansions = float(len(value)), 0.0
    for reference, count in Counter(_ENTITY_REFERENCE.findall(value)).items():
        if reference in values:
            size, nested = _expanded_size(reference, values, sizes, depth + 1)
            characters += size * count
            expansions += (nested + 1) * count
    sizes[name] = characters, expansions
    return sizes[name]


def _fix_character_reference(match: re.Match[str]) -> str:
    first = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    second = None
    if match.group(3) or match.group(4):
        second = int(match.group(3), 16) if match.group(3) else int(match.group(4))
    if second is not None and 0xD800 <= first <= 0xDBFF and 0xDC00 <= second <= 0xDFFF:
        return f"&#{0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)};"
    return "".join(
        f"&#{code};" if _is_xml_char(code) else "\ufffd" if 0xD800 <= code <= 0xDFFF else ""
        for code in (first, second)
        if code is not None
    )


def _is_xml_char(code: int) -> bool:
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _recover_xml(document: bytes) -> bytes:
    """Re-serialise what lxml's recovering parser makes of a broken document.

    No entity is expanded (no XXE, no billion laughs), no DTD is loaded, nothing
    is fetched. Ampersands that do not start a predefined or numeric reference
    are escaped first, so undefined entities stay as text and do not each add an
    entry to lxml's error log (which is kept in memory).
    """
    parser = etree.XMLParser(
        recover=True,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    escaped = _STRAY_AMPERSAND_OR_CDATA.sub(
        lambda match: match.group(0) if match.group(1) else b"&amp;", document
    )
    try:
        root = etree.fromstring(escaped, parser)
    except (etree.LxmlError, ValueError):
        return b""
    if root is None:
        return b""
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


_STRAY_AMPERSAND_OR_CDATA = re.compile(
    rb"(<!\[CDATA\[.*?\]\]>)|&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)", re.DOTALL
)


_CLOSED_ENTRY = re.compile(r"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.IGNORECASE)
_CLOSED_ROOT = re.compile(r"</(?:[\w.-]+:)?(?:rss|feed|rdf|channel)\s*>", re.IGNORECASE)


def _drop_unfinished_entries(entries: list[Any], text: str) -> tuple[list[Any], int]:
    """Drop the entries a truncated document never closed (they are always the last).

    Their link or title may be cut off mid-way, and a wrong URL is worse than none.
    """
    if _CLOSED_ROOT.search(text):
        return entries, 0
    closed = len(_CLOSED_ENTRY.findall(text))
    if len(entries) <= closed:
        return entries, 0
    return entries[:closed], len(entries) - closed
