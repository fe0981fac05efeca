"""Which links of a section page are its articles, guessed (pure, no I/O): the CSS
selector `newswatch sources add` offers as a listing source's ``links`` when a site
has neither feed nor news sitemap.

A section page repeats one markup for its stories (``article h2 a``, ``.story-list
li a``) and has other links around them: menus, tags, authors, pagination, promos.
Every same-site link proposes the selectors its ancestors make (one or two of its
five nearest ancestors, each by tag or by tag and class, then ``a``, or ``> a``
after its parent); a selector
that three or more links propose is run on the page, and what it matches is
scored by the links that read as articles (an article-like URL and a headline for
a text) less twice those that do not. The best few are returned: a selector
matching the story list and nothing else beats one that also picks up the menu.

The selector is plain CSS ending in ``a``, so that the listing spider's own
``parse_listing`` selects the same links with it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from parsel import Selector

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lxml.html import HtmlElement

__all__ = ["ListingGuess", "guess_listing_links"]

# A group of fewer links is no list of stories.
MIN_LINKS = 3
# Of the links a selector matches, at least this share must read as articles.
MIN_ARTICLE_SHARE = 0.6
# How many ancestors of a link make its selectors, and how many selectors are run.
ANCESTORS = 5
MAX_TRIED = 40
MAX_GUESSES = 3
# Links looked at, in page order: a story list comes well before this many.
MAX_ANCHORS = 3_000
# Words of a path segment that mark a page of links, not an article.
NAV_SEGMENTS = frozenset(
    {
        "about",
        "account",
        "author",
        "authors",
        "categories",
        "category",
        "contact",
        "feed",
        "help",
        "login",
        "newsletter",
        "newsletters",
        "page",
        "privacy",
        "profile",
        "register",
        "rss",
        "search",
        "section",
        "sections",
        "signin",
        "subscribe",
        "tag",
        "tags",
        "terms",
        "topic",
        "topics",
        "user",
        "users",
    }
)
# Classes that say an element's state or place in a list, not what it is.
STATE_CLASS = re.compile(
    r"^(active|current|selected|first|last|odd|even|hidden|visible|clearfix|"
    r"(is|has|js)-.*)$"
)
# A class usable in the selector: a plain identifier without digits (digits are
# what build tools put in generated class names, and a list's item numbers).
PLAIN_CLASS = re.compile(r"^[A-Za-z_-][A-Za-z_-]*$")
# Elements that hold a page's chrome, whose links are menus (a header or footer
# only at the page's level: a teaser's own <header> holds its headline).
CHROME_TAGS = frozenset({"nav", "header", "footer"})
_DATE_IN_PATH = re.compile(r"(^|/)(19|20)\d\d([/-])(0?[1-9]|1[0-2])(\3|/)")
_LONG_NUMBER = re.compile(r"\d{5,}")
_WORD = re.compile(r"\w+")
# Scripts written without spaces between words: Chinese, Japanese, Thai, Lao, Khmer.
_UNSPACED = re.compile(r"[\u0e00-\u0eff\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


@dataclass(frozen=True)
class ListingGuess:
    """A selector for a section page's article links, and what it matches there:
    (URL, headline) pairs in page order, each URL once."""

    selector: str
    links: tuple[tuple[str, str], ...]
    articles: int  # how many of them read as articles
    score: float


def guess_listing_links(html: str, url: str) -> list[ListingGuess]:
    """The selectors that pick the page's list of article links, best first (at
    most MAX_GUESSES, none sharing its links with a better one); [] when no group of
    at least MIN_LINKS links reads as articles."""
    try:
        page = Selector(text=html)
    except (ValueError, TypeError):
        return []
    host = _site_host(url)
    proposed: dict[str, set[int]] = defaultdict(set)
    anchors = page.css("a[href]")[:MAX_ANCHORS]
    for index, anchor in enumerate(anchors):
        target = _target(anchor, url, host)
        if target is None:
            continue
        for selector in _selectors_for(anchor.root):
            proposed[selector].add(index)
    # The selectors most links propose first; among equals, the shortest.
    tried = sorted(
        (selector for selector, found in proposed.items() if len(found) >= MIN_LINKS),
        key=lambda selector: (-len(proposed[selector]), _steps(selector), len(selector)),
    )[: MAX_TRIED * 4]
    guesses: list[ListingGuess] = []
    for selector in _prefiltered(tried, proposed, anchors, url, host):
        guess = _score(selector, page, url, host)
        if guess is not None:
            guesses.append(guess)
    # Among equals: fewer steps (less to break), then a class named (less to catch
    # by chance), then the shortest.
    guesses.sort(
        key=lambda g: (-g.score, _steps(g.selector), -g.selector.count("."), len(g.selector))
    )
    distinct: list[ListingGuess] = []
    for guess in guesses:
        urls = {link for link, _ in guess.links}
        if all(not urls & {link for link, _ in kept.links} for kept in distinct):
            distinct.append(guess)
    return distinct[:MAX_GUESSES]


def _prefiltered(
    selectors: list[str],
    proposed: dict[str, set[int]],
    anchors: Iterable[Selector],
    url: str,
    host: str,
) -> list[str]:
    """The MAX_TRIED selectors whose proposing links read most as articles: running
    a selector on the page is the costly part."""
    listed = list(anchors)
    reads: dict[int, tuple[str, bool]] = {}

    def read(index: int) -> tuple[str, bool]:
        """The link's URL, and whether it reads as an article's."""
        if index not in reads:
            anchor = listed[index]
            target = _target(anchor, url, host) or ""
            reads[index] = (target, _article_url(target) and _headline(_text(anchor)))
        return reads[index]

    def merit(selector: str) -> int:
        # Per URL, as _score counts: a thumbnail's link beside its headline's is one.
        articles: dict[str, bool] = {}
        for index in proposed[selector]:
            target, is_article = read(index)
            articles[target] = articles.get(target, False) or is_article
        found = sum(articles.values())
        return found - 2 * (len(articles) - found)

    ranked = sorted(selectors, key=lambda s: (-merit(s), _steps(s), len(s)))
    return [s for s in ranked if merit(s) >= MIN_LINKS][:MAX_TRIED]


def _score(selector: str, page: Selector, url: str, host: str) -> ListingGuess | None:
    headlines: dict[str, str] = {}
    try:
        matched = page.css(selector)
    except Exception:  # cssselect's errors for a tag name CSS cannot say: not a guess
        return None
    for anchor in matched:
        target = _target(anchor, url, host)
        if target is None:
            continue
        text = _text(anchor)
        if len(text) > len(headlines.get(target, "")):
            headlines[target] = text
        else:
            headlines.setdefault(target, text)
    if len(headlines) < MIN_LINKS:
        return None
    articles = sum(_article_url(link) and _headline(text) for link, text in headlines.items())
    others = len(headlines) - articles
    if articles < MIN_LINKS or articles / len(headlines) < MIN_ARTICLE_SHARE:
        return None
    return ListingGuess(
        selector=selector,
        links=tuple(headlines.items()),
        articles=articles,
        score=articles - 2 * others,
    )


def _selectors_for(anchor: HtmlElement) -> set[str]:
    """The selectors a link proposes: one or two of its nearest ancestors (by tag,
    or tag and class), then ``a``; none for a link in the page's chrome."""
    ancestors = [
        element.tag if isinstance(element.tag, str) else "" for element in anchor.iterancestors()
    ]
    if "nav" in ancestors or (CHROME_TAGS & set(ancestors) and "article" not in ancestors):
        return set()
    chain: list[list[str]] = []
    for element in anchor.iterancestors():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in ("body", "html", "") or len(chain) == ANCESTORS:
            break
        chain.append(_steps_of(element, tag))
    chain.reverse()  # outermost first, as a selector reads
    found: set[str] = set()
    for size in (1, 2):
        for picked in combinations(chain, size):
            # The link as its parent's child: the headline beside a byline's links.
            child = " > a" if picked[-1] is chain[-1] else None
            for parts in _product(picked):
                found.add(" ".join((*parts, "a")))
                if child:
                    found.add(" ".join(parts) + child)
    return found


def _steps_of(element: HtmlElement, tag: str) -> list[str]:
    classes = [
        name
        for name in (element.get("class") or "").split()
        if PLAIN_CLASS.match(name) and not STATE_CLASS.match(name)
    ][:2]
    return [tag, *(f"{tag}.{name}" for name in classes)]


def _product(steps: tuple[list[str], ...]) -> list[tuple[str, ...]]:
    made: list[tuple[str, ...]] = [()]
    for options in steps:
        made = [(*done, option) for done in made for option in options]
    return made


def _steps(selector: str) -> int:
    return selector.replace(" > ", " ").count(" ")


def _site_host(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")


def _target(anchor: Selector, base: str, host: str) -> str | None:
    """The link's absolute URL when it leads to another page of the same site."""
    href = (anchor.attrib.get("href") or "").strip()
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
        return None
    target = urljoin(base, href).split("#", 1)[0]
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https"):
        return None
    if (parts.hostname or "").removeprefix("www.") != host:
        return None
    if target.rstrip("/") == base.split("#", 1)[0].rstrip("/"):
        return None
    return target


def _text(anchor: Selector) -> str:
    text = " ".join(" ".join(anchor.css("::text").getall()).split())
    return text or (anchor.attrib.get("title") or "").strip()


def _article_url(url: str) -> bool:
    """A URL that reads as one article's: a dated path, a long number (an id), or a
    last segment that is a slug of words; never a menu's (tags, authors, pages)."""
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.lower().split("/") if segment]
    if not segments or any(segment in NAV_SEGMENTS for segment in segments):
        return False
    if _DATE_IN_PATH.search(parts.path) or _LONG_NUMBER.search(parts.path + parts.query):
        return True
    last = re.sub(r"\.(s?html?|php|aspx?)$", "", segments[-1])
    words = [word for word in re.split(r"[-_+]", last) if word]
    has_extension = last != segments[-1]
    return len(words) >= 3 or (len(words) >= 2 and has_extension)


def _headline(text: str) -> bool:
    """Text that reads as a headline: several words (or, in scripts written without
    spaces, several characters)."""
    words = _WORD.findall(text)
    if len(words) >= 3 and len(text) >= 15:
        return True
    return len(text) >= 8 and len(_UNSPACED.findall(text)) >= 6
