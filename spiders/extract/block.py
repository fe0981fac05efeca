"""Short lines of the article block that trafilatura's precision setting dropped: the
headings of a list article or a recipe card, a product box's "£25 at Argos", a
one-line paragraph, and the last sentence or the credit line of a short article.
Each is put back where it stands on the page, inside the article's own block only
(a line beside the block, in the page's header, is never restored): a short line
when it sits between two lines the body kept, and after the body's last line the
lines that close an article (a sentence, a credit line), while each does. A line
before the body's first is as likely furniture as content, and stays out. The
other way round, a line the body kept from a box in the block that points to other
stories (an inline "related" card, a newsletter box) goes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lxml import etree

from spiders.extract.body import is_body_chunk, is_body_container, text_inside
from spiders.extract.fallback import NOTICE, PROSE_WORDS
from spiders.extract.furniture import is_prompt
from spiders.extract.metadata import clean_inline, normalise

if TYPE_CHECKING:
    from lxml.html import HtmlElement

# The elements that hold one line of text in an article block (and a ``<div>``
# with no block inside it, a line styled as one).
LINE_TAGS = ("p", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd")
_LINE_TEST = " or ".join(f"self::{tag}" for tag in (*LINE_TAGS, "div"))
_INNER_LINE = " or ".join(f".//{tag}" for tag in (*LINE_TAGS, "div"))
# The line elements of a block that hold no other line element (XPath, so that
# libxml2 walks the tree, not Python).
LEAF_LINES = etree.XPath(f".//*[{_LINE_TEST}][not({_INNER_LINE})]")
# A longer line that trafilatura dropped was dropped for a reason of its own (an
# ad text, a teaser): only short lines are restored.
MAX_RESTORED_WORDS = 20
# The last lines of an article, after what the body kept, come back while each is
# a sentence or a credit line (ends_article), up to this length.
MAX_ENDING_WORDS = 80
MIN_SENTENCE_WORDS = 5
SENTENCE_ENDS = frozenset('.!?"”’»)')
CREDIT_LINE = re.compile(
    r"^\(?(?:(?:additional )?reporting by|writing by|editing by|compiled by|with (?:reporting|"
    r"additional reporting) (?:by|from)|—|–|-)\s*\w",
    re.IGNORECASE,
)
# Where a line is furniture however short: inside these elements ...
FURNITURE_TAGS = frozenset(
    {"figure", "figcaption", "aside", "nav", "form", "button", "footer", "noscript", "a", "label"}
    | {"blockquote"}  # quotes and embedded posts: trafilatura keeps those it wants
)
# ... or inside an element whose class or id says so.
FURNITURE_CLASS = re.compile(
    r"share|social|related|newsletter|subscri|promo|advert|(?:^|[\s_-])ads?(?:$|[\s_-])"
    r"|sponsor|caption|credit|byline|author|(?:^|[\s_-])meta|(?:^|[\s_-])tags?(?:$|[\s_-])"
    r"|comment|toolbar|widget|breadcrumb|signup|sign-up|(?:^|[\s_-])cta(?:$|[\s_-])"
    r"|recommend|popular|trending|most-read|more-stories|outbrain|taboola|disclaimer|rating",
    re.IGNORECASE,
)
# Markup shown as text (an editor's escaped HTML), never article.
MARKUP = re.compile(r"<[a-z/]|&(?:lt|gt|amp);", re.IGNORECASE)
# Lines of the page's own machinery that an unclassed element in the block may
# hold: bylines, datelines, ad labels, photo credits, widget and cookie texts, and
# an author's one-line bio. Never restored (a kept one stays: trafilatura had its
# reason).
FURNITURE_TEXT = re.compile(
    r"^\W*(?:by\s+\S.{0,60}|(?:published|updated|posted)\b.{0,60}|ad\W*|advert(?:isement)?\W*"
    r"|this (?:story|article) (?:has been|was) updated\b.*"
    r"|(?:\w+day,?\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}\W*"
    r"|(?:story )?continues? (?:below|after)\b.*|continue reading\b.*|loading\W*|skip ad"
    r"|sponsored(?: content)?|(?:click|tap) to (?:expand|enlarge|play)\b.*|show (?:more|less)"
    r"|comments? \(\d+\)|(?:image|photo|slide) \d+ (?:of|/) \d+|scroll to continue\b.*"
    r"|(?:photo|image|picture|credit|foto|bild)s?\s*:.*|.*\b(?:getty images|ap photo|afp via)\b.*"
    r"|(?:we use|this site uses|accept(?: all)?) cookies\b.*|your (?:e-?mail|name)(?: address)?\W*"
    r"|\w+(?: \w+){1,2} (?:is|was) an? (?:\w+ ){0,3}(?:reporter|correspondent|writer|editor"
    r"|journalist|columnist|contributor)\b.*)$",
    re.IGNORECASE,
)
# Boxes inside the article block that point to other stories; a line the body kept
# from one of them goes.
# Not "read-more" (often the collapsed rest of the article), "subscriber" (the
# paywalled part of it) or "teaser" (its own lead, on some sites).
TEASER_CLASS = re.compile(
    r"(?<![a-z])related|(?<![a-z])recommended|recommendations|more-stories|morestories"
    r"|also-read|see-also|outbrain|taboola|newsletter|signup|sign-up",
    re.IGNORECASE,
)
# The teaser rule never takes more than this share of the body's lines: past it,
# the block's class names say something else.
MAX_TEASER_SHARE = 0.25
# A line this long found inside the body is there, split (is_in_body).
MIN_SPLIT_LINE = 60
# A block must share this many lines with the body to be the article's block.
MIN_SHARED_LINES = 2


def restore_block_lines(containers: list[HtmlElement], body: str) -> str:
    """The body (one paragraph a line) with the short lines of its article block
    that it lacks put back in place (see the module's docstring). ``containers``
    are the page's body containers (body.prepare_body), one of which is the block."""
    lines = body.splitlines()
    if len(lines) < MIN_SHARED_LINES:
        return body
    position: dict[str, int] = {}
    for index, line in enumerate(lines):
        position.setdefault(normalise(line.removeprefix("- ")), index)
    block_lines = _article_block_lines(containers, position)
    if not block_lines:
        return body
    whole = normalise(body)
    inserts: dict[int, list[str]] = {}
    teasers: set[int] = set()
    last_kept: int | None = None
    pending: list[str] = []  # missing lines since the last kept one
    ending: list[str] | None = []  # the same while each may end the article
    for element, raw, key in block_lines:
        if (kept_at := position.get(key)) is not None:
            if is_teaser(element) and not is_prose(element, clean_inline(raw)):
                teasers.add(kept_at)
                continue
            if last_kept is not None and kept_at > last_kept and pending:
                inserts.setdefault(last_kept, []).extend(pending)
            pending, ending = [], []
            last_kept = kept_at if last_kept is None else max(last_kept, kept_at)
            continue
        if last_kept is None or is_in_body(key, whole):
            continue
        text = clean_inline(raw)
        line = f"- {text}" if element.tag == "li" else text
        if is_restorable(element, text, MAX_RESTORED_WORDS):
            pending.append(line)
            ending = [*ending, line] if ending is not None and ends_article(text) else None
        elif ending is not None and ends_article(text) and is_restorable(element, text):
            ending.append(line)
        else:
            ending = None
    if last_kept == len(lines) - 1 and ending:
        inserts.setdefault(last_kept, []).extend(ending)
    if len(teasers) > MAX_TEASER_SHARE * len(lines):
        teasers = set()
    if not inserts and not teasers:
        return body
    restored: list[str] = []
    for index, line in enumerate(lines):
        if index not in teasers:
            restored.append(line)
        restored.extend(inserts.get(index, ()))
    return "\n".join(restored)


def _article_block_lines(
    containers: list[HtmlElement], position: dict[str, int]
) -> list[tuple[HtmlElement, str, str]]:
    """The line elements (with text and key) of the body container that shares the
    most lines with the body; [] when none shares MIN_SHARED_LINES."""
    best: list[tuple[HtmlElement, str, str]] = []
    best_shared = MIN_SHARED_LINES - 1
    scanned: list[HtmlElement] = []
    for container in containers:
        if any(outer in scanned for outer in container.iterancestors()):
            continue  # a container inside one scanned shares no more lines than it
        if not is_body_chunk(container):
            continue
        scanned.append(container)
        # the key only (normalise collapses whitespace); a line is cleaned when restored
        block_lines = [
            (element, text, key)
            for element in LEAF_LINES(container)
            if (key := normalise(text := element.text_content()))
        ]
        shared = sum(key in position for _, _, key in block_lines)
        if shared > best_shared:
            best, best_shared = block_lines, shared
    return best


def is_teaser(element: HtmlElement) -> bool:
    """True when a line the body kept sits, inside the article block, in a box that
    points to other stories (TEASER_CLASS): an inline "related" card beside the lead."""
    for node in element.iterancestors():
        if is_body_container(node):
            return False
        if TEASER_CLASS.search(f"{node.get('class', '')} {node.get('id', '')}"):
            return True
    return False


def is_prose(element: HtmlElement, text: str) -> bool:
    """True for a sentence of PROSE_WORDS words or more that is not mostly a link: in
    a teaser box ("product-recommendation", a paywall's "related" wrapper) it is the
    article's own text; a teaser's headline is shorter, or a link."""
    linked = text_inside(element)
    return (
        len(text.split()) >= PROSE_WORDS
        and text.rstrip()[-1:] in SENTENCE_ENDS
        and linked * 2 < len(text)
    )


def is_in_body(key: str, whole: str) -> bool:
    """True when a line the body lacks as a line is in it all the same (a paragraph
    with line breaks that trafilatura split); a short key found inside a longer
    line ("Pear jam" in "Making pear jam") is a coincidence, not the line."""
    return len(key) >= MIN_SPLIT_LINE and key in whole


def ends_article(text: str) -> bool:
    """True for a line that may close an article: a sentence (ending in . ! ? or a
    closing quote) of MIN_SENTENCE_WORDS words or more, or a credit line
    ("(Reporting by …)", "— AFP", "Additional reporting by …")."""
    return bool(CREDIT_LINE.match(text)) or (
        len(text.split()) >= MIN_SENTENCE_WORDS and text.rstrip()[-1:] in SENTENCE_ENDS
    )


def is_restorable(element: HtmlElement, text: str, max_words: int = MAX_ENDING_WORDS) -> bool:
    """True for a short line that is not mostly a link (or other FURNITURE_TAGS text:
    a button, a label), not markup, not page machinery (FURNITURE_TEXT, a prompt,
    a notice), and not inside furniture (FURNITURE_TAGS or FURNITURE_CLASS, on the
    element or any ancestor inside the block)."""
    if len(text.split()) > max_words or MARKUP.search(text) or FURNITURE_TEXT.match(text):
        return False
    if is_prompt(text) or NOTICE.search(text):
        return False
    inside = text_inside(element, *FURNITURE_TAGS)
    if inside * 2 >= len(text):
        return False  # a link to another page, a button's or a label's text, however short
    for node in (element, *element.iterancestors()):
        if is_body_container(node):
            return True
        if node.tag in FURNITURE_TAGS:
            return False
        if FURNITURE_CLASS.search(f"{node.get('class', '')} {node.get('id', '')}"):
            return False
    return True
