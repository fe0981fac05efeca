"""The article body: the page reworked where trafilatura would misread it, the
body trafilatura finds, and its cleaning (headlines, captions, repeats and
navigation paragraphs dropped)."""

from __future__ import annotations

import bisect
import logging
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import trafilatura
from lxml.html import HtmlElement

from spiders.extract.fallback import BodyEvidence, choose_body, needs_second_look
from spiders.extract.furniture import is_prompt, is_related_link_line, strip_shortcodes
from spiders.extract.metadata import clean_inline, normalise

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

# Text of a caption element longer than this is a container that happens to have
# "caption" in its class, not a caption.
MAX_CAPTION_LENGTH = 500
# A paragraph this long that is part of a caption's text is that caption (often
# without its photo credit); a shorter one may be a byline that happens to match.
MIN_CAPTION_FRAGMENT = 30

# Tweets embedded in the text, as Twitter's widget script finds them.
EMBEDDED_TWEETS = '//blockquote[contains(@class, "twitter-tweet")]'
# Cards that pop up over a name or a term inside a paragraph ("rollover",
# "tooltip", ...): hidden until hovered, and not part of the sentence. Only the
# innermost goes, so the name or term it pops up from stays.
_POPUP_CLASS = (
    'contains(@class, "rollover") or contains(@class, "tooltip") or '
    'contains(@class, "popover") or contains(@class, "hovercard")'
)
# (descendant::, not //p//*: libxml2 evaluates that as //p/descendant-or-self::node()/*
# and merges the node sets, quadratic on a page of thousands of paragraphs; and
# not ancestor::p, which tests the class of every element of the page)
POPUP_CARDS = f"//p/descendant::*[{_POPUP_CLASS}]"
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
# Longer lines are article prose that quotes a headline, not a headline.
MAX_HEADLINE_WORDS = 25
# A tag after a linked headline ("<headline> [INSIGHT]|", "<headline> (VIDEO)").
TRAILING_TAG = re.compile(r"\s*(?:\[[^\]]{1,20}\]|\([A-Z ]{1,20}\))?[\s|»>]*$")
# A paragraph repeated within this many paragraphs of its first copy is a
# repeat of the page's furniture (standfirst, pull quote), not of its content.
REPEAT_SPAN = 3


def prepare_body(tree: HtmlElement) -> list[HtmlElement]:
    """Rework the page, in place, where trafilatura would misread its body: embedded
    tweets become plain quotations (trafilatura drops them as social widgets, but
    they are quotes the article reports), pop-up cards inside paragraphs go, and a
    body split into chunks is merged (merge_split_bodies). Returns the page's body
    containers (is_body_container) as they are after the merge, in page order."""
    for quote in tree.xpath(EMBEDDED_TWEETS):
        quote.attrib.pop("class")
        # and out of the wrappers that hold only it and the widget script
        while (
            (wrapper := quote.getparent()) is not None
            and wrapper.tag in {"div", "figure"}
            and not (wrapper.text or "").strip()
            and [child for child in wrapper if isinstance(child.tag, str) and child.tag != "script"]
            == [quote]
        ):
            wrapper.drop_tag()
    for card in tree.xpath(POPUP_CARDS):
        if not card.xpath(POPUP_CARDS_INSIDE):
            card.drop_tree()
    containers = [
        element for element in tree.iter("div", "section", "article") if is_body_container(element)
    ]
    merge_split_bodies(containers)
    return [container for container in containers if container.getparent() is not None]


def merge_split_bodies(containers: list[HtmlElement]) -> None:
    """Join an article body that the page splits into several of its body
    ``containers`` of the same class, in place, so that trafilatura (which takes the
    first body container) reads all of it.

    Some sites cut the body into chunks between ads ("article__body" repeated,
    each in its own grid row). Chunks are merged into the first when they share
    tag and class (or are all itemprop=articleBody), none contains another, each
    holds at least MIN_CHUNK_TEXT characters of paragraphs and is not inside a link,
    they sit at most SPLIT_BODY_DEPTH levels below a common ancestor that is not
    itself a body container, in the same ``<article>`` (if any), and no ``<h1>``
    stands between them (a second article on the same page has its own headline).
    """
    groups: dict[tuple[str, str], list[HtmlElement]] = {}
    for element in containers:
        if element.get("itemprop") == "articleBody":
            groups.setdefault(("", "articleBody"), []).append(element)
        else:
            groups.setdefault((element.tag, element.get("class", "")), []).append(element)
    for members in groups.values():
        if len(members) > 1 and len(chunks := list(filter(is_body_chunk, members))) > 1:
            _merge_chunks(chunks)


def is_body_chunk(element: HtmlElement) -> bool:
    """True when the element holds paragraphs of text and is not inside a link (a
    teaser card whose class names the body of the article it links to)."""
    if next(element.iterancestors("a"), None) is not None:
        return False
    return sum(len(paragraph.text_content()) for paragraph in element.iter("p")) >= (MIN_CHUNK_TEXT)


def _merge_chunks(members: list[HtmlElement]) -> None:
    first = members[0]
    first_ancestors = list(first.iterancestors())
    article = next(first.iterancestors("article"), None)
    # document order of the page as it is before any merge, read once: an <h1>
    # between two chunks stands between them in this order (quadratic per member)
    order = {element: index for index, element in enumerate(first.getroottree().iter())}
    headlines = sorted(order[h1] for h1 in first.getroottree().iter("h1"))
    for member in members[1:]:
        member_ancestors = list(member.iterancestors())
        common = next(
            (ancestor for ancestor in member_ancestors if ancestor in first_ancestors), None
        )
        if (
            common is None
            or first in member_ancestors
            or first_ancestors.index(common) >= SPLIT_BODY_DEPTH
            or member_ancestors.index(common) >= SPLIT_BODY_DEPTH
            or is_body_container(common)
            or next(member.iterancestors("article"), None) is not article
        ):
            continue
        if bisect.bisect_right(headlines, order[first]) < bisect.bisect_left(
            headlines, order[member]
        ):
            continue
        if member.text and member.text.strip():
            if len(first):
                first[-1].tail = (first[-1].tail or "") + " " + member.text
            else:
                first.text = (first.text or "") + " " + member.text
        first.extend(list(member))
        member.drop_tree()


def text_inside(element: HtmlElement, *tags: str) -> int:
    """How many characters of the element's text (whitespace collapsed) sit inside
    its ``tags`` elements (links by default): how much of a line is a link."""
    return sum(len(clean_inline(part.text_content())) for part in element.iter(*(tags or ("a",))))


def is_body_container(element: HtmlElement) -> bool:
    classes = element.get("class")
    return element.get("itemprop") == "articleBody" or bool(
        classes and ARTICLE_BODY_CLASS.search(classes)
    )


def extract_body(
    tree: HtmlElement,
    url: str,
    evidence: BodyEvidence,
    is_link: Callable[[str], bool],
) -> str:
    """The article body as trafilatura finds it, one paragraph a line.

    favor_precision without comments scored best on the article-extraction corpus
    (F1 0.964 against 0.955 for the defaults); tables stay in because dropping them
    loses body text on pages that lay their article out in a table. trafilatura
    runs first without its readability/jusText comparison (``fast``, half the
    time). Only where that body may have missed the article (short, only
    notices, or far from the page's articleBody: fallback.needs_second_look) does
    the precise setting run with its comparison, and where that one falls short as
    well the default setting; the page's evidence chooses among them
    (fallback.choose_body). On other pages the comparison mostly swapped a clean
    body for readability's longer one with the teasers in.
    """
    options: dict[str, Any] = {
        "url": url or None,
        "output_format": "txt",
        "favor_precision": True,
        "include_comments": False,
        "include_tables": True,
        "with_metadata": False,
    }
    precise = trafilatura.extract(tree, fast=True, **options) or ""
    if not needs_second_look(precise, evidence):
        return precise
    candidates = [trafilatura.extract(tree, **options) or ""]
    if needs_second_look(candidates[0], evidence):  # the default setting only if still short
        candidates.append(trafilatura.extract(tree, **{**options, "favor_precision": False}) or "")
    return choose_body(precise, candidates, evidence, is_link)


def caption_texts(tree: HtmlElement) -> list[str]:
    """Normalised text of ``<figcaption>`` elements and of elements whose class
    contains "caption" or "Caption" (ignoring any too long to be a caption)."""
    elements = tree.xpath(
        '//figcaption | //*[contains(@class, "caption") or contains(@class, "Caption")]'
    )
    texts = (normalise(element.text_content()) for element in elements)
    return [text for text in texts if text and len(text) <= MAX_CAPTION_LENGTH]


def clean_body(text: str, headlines: Iterable[str], captions: Iterable[str]) -> str:
    """Tidy an extracted body into paragraphs separated by blank lines.

    Each line of ``text`` is a paragraph. Invisible characters and shortcode
    residue go and whitespace is collapsed; then a paragraph is dropped when it
    equals a headline, is (a long part of) a photo caption from ``captions``
    (normalised texts), is a share or subscribe prompt, or is the second of two
    copies at most REPEAT_SPAN paragraphs apart (a standfirst repeated as the
    first paragraph). Copies further apart, or three and more, are content the
    page really repeats (a recipe's "Makes 4 jars", a schedule's times, the
    questions of a series of interviews) and every occurrence is kept.
    """
    headline_keys = {normalise(headline) for headline in headlines if headline}
    caption_keys = list(captions)
    paragraphs = [
        (paragraph, normalise(paragraph))
        for paragraph in map(clean_inline, map(strip_shortcodes, text.splitlines()))
    ]
    counts = Counter(key for _, key in paragraphs)
    last_seen: dict[str, int] = {}
    kept: list[str] = []
    for index, (paragraph, key) in enumerate(paragraphs):
        if not key or key in headline_keys or is_caption(key, caption_keys) or is_prompt(key):
            continue
        previous = last_seen.get(key)
        last_seen[key] = index
        if previous is not None and counts[key] == 2 and index - previous <= REPEAT_SPAN:
            continue
        kept.append(paragraph)
    return "\n\n".join(kept)


def is_caption(key: str, captions: list[str]) -> bool:
    """True when a normalised paragraph is a caption or a long part of one."""
    return any(
        key == caption or (len(key) >= MIN_CAPTION_FRAGMENT and key in caption)
        for caption in captions
    )


def drop_link_paragraphs(
    text: str,
    link_texts: Callable[[], set[str]],
    keywords: Iterable[str] = (),
) -> str:
    """Drop the paragraphs of ``text`` (blank-line separated) that are navigation
    rather than article: a labelled link to another story ("Related: <headline>",
    "READ MORE: <headline>", "Leggi anche", see furniture.is_related_link_line), a
    run of two or more lines or list items ("- <headline>") that are each a whole
    link (with at most a tag after it: "<headline> [INSIGHT]"), and a list of the
    page's own keywords (its tags).

    ``link_texts`` gives the normalised texts of the page's links; it is called
    only when a paragraph looks like one, and a link counts only when its text has
    at least MIN_HEADLINE_WORDS words (so "Account: @name" or "Partner: Acme
    Systems" stay). A run that a kept line of the article introduces ("The
    governor signed these bills:") is the article's own list of links, and stays.
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

    def is_headline_sized(index: int) -> bool:
        return 0 <= index < len(paragraphs) and (
            MIN_HEADLINE_WORDS <= len(paragraphs[index].split()) <= MAX_HEADLINE_WORDS
        )

    def is_link_item(index: int) -> bool:
        line = TRAILING_TAG.sub("", paragraphs[index].removeprefix("- "))
        return is_link(line)

    def is_in_link_run(index: int) -> bool:
        # the cheap length test first: the page's links are read only for a run
        neighbours = [i for i in (index - 1, index + 1) if is_headline_sized(i)]
        return (
            is_headline_sized(index)
            and bool(neighbours)
            and is_link_item(index)
            and any(map(is_link_item, neighbours))
        )

    kept: list[str] = []
    introduced = False  # in a list that a kept line of the article introduces ("…:")
    for index, paragraph in enumerate(paragraphs):
        key = normalise(paragraph)
        if tags and all(part.strip() in tags for part in key.split(",")):
            continue
        if (labelled := LINK_LABEL.match(paragraph)) and is_link(labelled["link"]):
            continue
        if is_related_link_line(paragraph, is_link):
            continue
        if is_in_link_run(index) and not introduced:
            continue
        introduced = paragraph.rstrip().endswith(":") or (
            introduced and is_headline_sized(index) and is_link_item(index)
        )
        kept.append(paragraph)
    return "\n\n".join(kept)


def link_texts_of(tree: HtmlElement) -> set[str]:
    """The normalised texts of the page's links."""
    return {normalise(link.text_content()) for link in tree.iter("a")}
