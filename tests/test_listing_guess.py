"""The pure guesses behind `sources add` for a page without feed or sitemap: which
links of a section page are its articles (a CSS selector the listing spider reads
the same way), and whether the page is a shell that scripts build in the browser."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from crawler.domain.listing_guess import guess_listing_links
from crawler.domain.script_pages import looks_script_built
from spiders.listing import parse_listing

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "https://news.example/section/"

CHROME = (
    '<header><a href="/">Example News</a><nav><a href="/world/">World news today</a> '
    '<a href="/business/">Business news today</a> <a href="/about-us">About us</a></nav></header>'
)
FOOTER = (
    '<footer><a href="/privacy.html">Privacy policy</a> <a href="/contact">Contact</a></footer>'
)


def _page(body: str) -> str:
    head = "<html><head><title>Section</title></head>"
    return f"{head}<body>{CHROME}<main>{body}</main>{FOOTER}</body></html>"


TEASERS = _page(
    "".join(
        f'<article class="teaser"><h2><a href="/news/{slug}">{title}</a></h2>'
        f'<p>Summary. <a href="/tag/{tag}">{tag}</a></p></article>'
        for slug, title, tag in (
            ("storm-hits-the-coast-overnight", "Storm hits the coast overnight", "weather"),
            ("council-approves-new-budget", "Council approves the new budget", "politics"),
            ("rail-strike-called-off", "Rail strike called off at the last minute", "transport"),
        )
    )
    + '<aside class="promo"><h2><a href="/subscribe">Subscribe to our newsletter</a></h2></aside>'
)
DATED = _page(
    '<div class="river">'
    + "".join(
        f'<div class="card"><a class="thumb" href="/2024/02/{day:02d}/{number}.html"><img></a>'
        f'<div class="card-body"><h3><a href="/2024/02/{day:02d}/{number}.html">{title}</a></h3>'
        f'<span>By <a href="/author/sam">Sam</a></span></div></div>'
        for day, number, title in (
            (12, 1234567, "Prices rise for a third month in a row"),
            (11, 1234501, "Harbour reopens after the winter repairs"),
            (10, 1234488, "New bridge opens to traffic on Monday"),
            (9, 1234410, "Museum returns stolen paintings to their owners"),
        )
    )
    + '</div><div class="pager"><a href="/section/page/2">Next page of stories</a></div>'
)
THUMBNAILS = _page(
    "".join(
        f'<div class="card"><a href="/news/{slug}"><img alt=""></a> '
        f'<a href="/news/{slug}">{title}</a> <p>In <a href="/tag/town-{n}">Town</a></p></div>'
        for n, (slug, title) in enumerate(
            (
                ("ferry-service-resumes-after-storm", "Ferry service resumes after the storm"),
                ("school-year-starts-early", "School year starts a week early"),
                ("library-extends-opening-hours", "Library extends its opening hours"),
            )
        )
    )
)
TAG_CLOUD = _page(
    '<ul class="tags">'
    + "".join(
        f'<li><a href="/tag/{tag}">{tag}</a></li>'
        for tag in ("elections", "weather", "transport", "budget", "sport")
    )
    + "</ul><p>Read <a href='/about-us'>more about us</a>.</p>"
)
CJK = _page(
    '<ul class="list">'
    + "".join(
        f'<li><a href="/a/{number}.html">{title}</a></li>'
        for number, title in (
            (20240212, "台风登陆沿海地区造成严重损失"),
            (20240211, "新的地铁线路将于下月开通运营"),
            (20240210, "博物馆归还被盗文物给原主人"),
        )
    )
    + "</ul>"
)


@pytest.mark.parametrize(
    ("html", "articles"),
    [
        (
            TEASERS,
            [
                "news/storm-hits-the-coast-overnight",
                "news/council-approves-new-budget",
                "news/rail-strike-called-off",
            ],
        ),
        (
            DATED,
            [
                "2024/02/12/1234567.html",
                "2024/02/11/1234501.html",
                "2024/02/10/1234488.html",
                "2024/02/09/1234410.html",
            ],
        ),
        (
            THUMBNAILS,
            [
                "news/ferry-service-resumes-after-storm",
                "news/school-year-starts-early",
                "news/library-extends-opening-hours",
            ],
        ),
        (CJK, ["a/20240212.html", "a/20240211.html", "a/20240210.html"]),
        (TAG_CLOUD, None),
        (_page("<p>Nothing but <a href='/news/one-two-three'>a single story link</a>.</p>"), None),
    ],
    ids=[
        "article-h2-teasers",
        "dated-cards-with-thumbnails",
        "thumbnail-beside-headline",
        "cjk-headlines",
        "tags",
        "one-link",
    ],
)
def test_the_guess_picks_the_article_links_and_nothing_else(
    html: str, articles: list[str] | None
) -> None:
    guesses = guess_listing_links(html, BASE)
    if articles is None:
        assert guesses == []
        return
    best = guesses[0]
    expected = [f"https://news.example/{path}" for path in articles]
    assert [url for url, _ in best.links] == expected
    assert all(len(title.split()) >= 3 or not title.isascii() for _, title in best.links)
    # The listing spider's own parser reads the selector the same way.
    polled = parse_listing(html, BASE, best.selector).links
    assert list(dict.fromkeys(link.url for link in polled)) == expected


def test_the_guess_on_the_fixture_section_pages() -> None:
    html = (FIXTURES / "site" / "latest" / "index.html").read_text(encoding="utf-8")
    best = guess_listing_links(html, "http://127.0.0.1:8000/latest/")[0]
    assert [url.rsplit("/", 1)[1] for url, _ in best.links] == [
        "satellite-palmyra.html",
        "memory-crisis.html",
        "palmyra-museum.html",
        "cup-final.html",
    ]
    assert best.links[1][1] == "Chipmakers warn the memory crisis will last into next year"
    # Two stories and a promo: too few for a list.
    world = (FIXTURES / "site" / "sections" / "world.html").read_text(encoding="utf-8")
    assert guess_listing_links(world, "http://127.0.0.1:8000/sections/world.html") == []


SHELL_HEAD = '<html><head><title>App</title><script src="/static/main.js"></script></head>'


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        (
            (FIXTURES / "site" / "app" / "index.html").read_text(encoding="utf-8"),
            'an empty <div id="root">, <noscript> asks for JavaScript',
        ),
        (
            SHELL_HEAD + '<body><div id="__next"></div><script id="__NEXT_DATA__" '
            'type="application/json">{"props": {"stories": []}}</script></body></html>',
            'an empty <div id="__next">, its data is a script\'s JSON (__NEXT_DATA__)',
        ),
        (
            "<html><body><p>Loading…</p><script>" + "var a=1;" * 500 + "</script></body></html>",
            "99% of it is script",
        ),
        (
            SHELL_HEAD + "<body><app-root></app-root></body></html>",
            "no text without its scripts",
        ),
    ],
    ids=["create-react-app", "next-js-shell", "inline-bundle", "custom-element-shell"],
)
def test_a_page_built_by_scripts_says_why(html: str, reason: str) -> None:
    assert looks_script_built(html) == reason


RENDERED_NEXT = (
    SHELL_HEAD
    + '<body><div id="__next"><main>'
    + "".join(
        f'<article><h2><a href="/news/story-number-{n}">Story number {n} in the news</a></h2>'
        f"<p>{'Words of the summary. ' * 10}</p></article>"
        for n in range(10)
    )
    + '</main></div><script id="__NEXT_DATA__" type="application/json">{}</script></body></html>'
)


@pytest.mark.parametrize(
    "html",
    [
        TEASERS,
        RENDERED_NEXT,
        "<html><body><p>No feeds here.</p></body></html>",
        (FIXTURES / "site" / "sections" / "world.html").read_text(encoding="utf-8"),
    ],
    ids=["section-page", "server-rendered-next-js", "short-page-without-scripts", "fixture"],
)
def test_a_page_with_its_own_text_and_links_is_not_script_built(html: str) -> None:
    assert looks_script_built(html) is None


def test_no_real_article_page_looks_script_built() -> None:
    """The extraction corpus: 92 articles from real sites, scripts, data islands and all."""
    pages = sorted((FIXTURES / "extraction").glob("*.html.gz"))
    assert len(pages) >= 90
    flagged = [
        page.name
        for page in pages
        if looks_script_built(gzip.decompress(page.read_bytes()).decode("utf-8", "replace"))
    ]
    assert flagged == []
