"""The lead (standfirst): the sentence or two at the top of the article's body that
sums it up. Sites style it apart from the paragraphs under it (a ``<header>`` in
the body block, a bold ``<div class="intro">``), and trafilatura's precision
setting drops it with the headers or as a non-paragraph; it is part of the
article, and often the one place a story's key words appear together."""

from __future__ import annotations

import re
from itertools import islice
from typing import TYPE_CHECKING

from spiders.extract.body import is_body_container, text_inside
from spiders.extract.metadata import clean_inline, normalise

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxml.html import HtmlElement

# Class or id words that name a lead: "standfirst", "article__lead", "dek",
# "c-subtitle", ... as whole parts of a class name, so "leaderboard" (an ad slot)
# or "subtitles" (video captions) are not leads.
LEAD_CLASS = re.compile(
    r"(?:^|[\s_-])(?:standfirst|stand-first|lead|lede|leadin|intro|dek|deck|subtitle|sub-title"
    r"|subhead|subheadline|sub-headline|subheading|strapline|chapo|chapeau|occhiello|sommario|catenaccio|entradilla|bajada|teaser-text)"
    r"(?:$|[\s_-])",
    re.IGNORECASE,
)
# Boxes that sum the article up beside it, where a lead opens it: the corpus leaves
# them out of the body, even when their text is the page's description.
SUMMARY_CLASS = re.compile(r"abstract|summary|excerpt|teaser|preview|description", re.IGNORECASE)
# Elements that wrap others: a lead only when classed as one.
WRAPPER_TAGS = frozenset({"div", "header", "section"})
LEAD_TAGS = frozenset({"p", "div", "header", "h2", "h3", "span", "section", "strong", "em"})
# Where the lead may be: among the first elements after the headline (a byline,
# a date, share buttons and a photo come between on many pages) ...
MAX_ELEMENTS_AFTER_HEADLINE = 60
# ... and what it is: a sentence or two, not a heading or a whole article.
MIN_LEAD_WORDS = 8
MAX_LEAD_CHARACTERS = 600
# Class words of the block that holds headline, byline and dek above the body.
PAGE_HEADER_CLASS = re.compile(r"header|hero|byline|masthead|headline|title", re.IGNORECASE)
# Boxes in the body block that point to other stories: an "intro" inside one is
# the other story's.
TEASER_BOX_CLASS = re.compile(
    r"(?<![a-z])related|(?<![a-z])recommended|more-stories|also-read|see-also|promo"
    r"|outbrain|taboola",
    re.IGNORECASE,
)
# Elements a lead is never inside.
NOT_LEAD_ANCESTORS = frozenset(
    {"a", "nav", "aside", "footer", "figure", "figcaption", "button", "form", "li", "time"}
)


def find_lead(
    tree: HtmlElement, description: str | None, containers: list[HtmlElement]
) -> str | None:
    """The page's lead, when it has one: after the main ``<h1>``, at the top of the
    body block (is_in_body_block; ``containers`` are the page's body containers,
    without which there is no block), an element classed as a lead (LEAD_CLASS, or
    itemprop=description), or one whose text is the page's own description."""
    if not containers:
        return None
    headline = next(iter(tree.xpath("(//h1)[1]")), None)
    if headline is None:
        return None
    described = normalise(description) if description else None
    for element in islice(following(headline), MAX_ELEMENTS_AFTER_HEADLINE):
        if element.tag not in LEAD_TAGS:
            continue
        names = f"{element.get('class', '')} {element.get('id', '')}"
        named = bool(LEAD_CLASS.search(names)) or element.get("itemprop") == "description"
        if not named and (element.tag in WRAPPER_TAGS or not described):
            continue  # a wrapper's text is only read when its class names a lead
        text = clean_inline(element.text_content())
        if element.tag == "p" and len(text) > MAX_LEAD_CHARACTERS:
            return None  # the body has begun
        if not (named or normalise(text) == described) or SUMMARY_CLASS.search(names):
            continue
        if is_lead_text(text) and is_in_flow(element) and is_in_body_block(element):
            return text
    return None


def following(element: HtmlElement) -> Iterator[HtmlElement]:
    """The elements after ``element`` in document order (its descendants excluded),
    as XPath's following axis, lazily."""
    for node in (element, *element.iterancestors()):
        for sibling in node.itersiblings():
            yield from (child for child in sibling.iter() if isinstance(child.tag, str))


def is_lead_text(text: str) -> bool:
    """True for a sentence or two: MIN_LEAD_WORDS words or more, at most
    MAX_LEAD_CHARACTERS characters."""
    return len(text.split()) >= MIN_LEAD_WORDS and len(text) <= MAX_LEAD_CHARACTERS


def is_in_body_block(element: HtmlElement) -> bool:
    """True when the element is inside the container of the article's body (an
    "article-body", "entry-content" or itemprop=articleBody element). A dek in the
    page's header, beside the headline and byline, is the page's furniture: the
    article-extraction corpus leaves those out of the body, where it keeps every
    lead that sits at the top of the body block. A body container that wraps the
    page's header too does not count for what is in that header (PAGE_HEADER_CLASS),
    and an element inside a box of teasers for other stories (TEASER_BOX_CLASS) is
    not in the block."""
    for ancestor in element.iterancestors():
        if is_body_container(ancestor):
            return True
        names = f"{ancestor.get('class', '')} {ancestor.get('id', '')}"
        if PAGE_HEADER_CLASS.search(names) or TEASER_BOX_CLASS.search(names):
            return False
    return False


def is_in_flow(element: HtmlElement) -> bool:
    """True when the element is not inside navigation, a figure, a link or a list,
    and is not mostly link text itself (a teaser for another story)."""
    if any(ancestor.tag in NOT_LEAD_ANCESTORS for ancestor in element.iterancestors()):
        return False
    return text_inside(element) * 2 < len(clean_inline(element.text_content()))


def with_lead(body: str, lead: str | None) -> str:
    """The body (one paragraph a line) with the lead first, unless the body already
    has its words."""
    if not lead:
        return body
    key = normalise(lead)
    if key in normalise(body):
        return body
    return f"{lead}\n{body}" if body else lead
