"""spiders.extract: from one fetched page to the article a reader would see."""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
import trafilatura
import trafilatura.utils

from crawler.domain.items import ExtractedArticle
from spiders.extract import (
    clean_body,
    decode_html,
    decode_page,
    drop_link_paragraphs,
    extract_article,
    find_date_lines,
    parse_datetime,
    parse_page,
    repair_hyphenation,
    repair_mojibake,
    strip_site_name,
)

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))  # the one copy of the metric
from newssite import site_file
from scoring import CorpusPage, load_corpus, score_page

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS_PAGES: dict[str, CorpusPage] = {
    page.id: page for page in load_corpus(FIXTURES / "extraction")
}

SEED_URL = "http://127.0.0.1:8000/news/world/army-pressures-isis-in-central-syria.html"
SEED_TITLE = "Army pressures ISIS in central Syria"
SEED_CAPTION = "This photo, released by the Syrian official news agency SANA"
SEED_PUBLISHED = datetime(2016, 3, 30, 1, 46, tzinfo=UTC)

ARTICLE_URL = "https://news.example.com/2024/05/04/harbour-bridge-reopens.html"
PARAGRAPHS = (
    "The harbour bridge reopened to traffic on Saturday morning after eighteen months "
    "of repairs, city officials said, ending long detours for thousands of commuters "
    "who cross the river every day.",
    "Engineers replaced the steel cables that hold the main span and resurfaced the "
    "deck, work that ran three months late because of supply problems and a wet "
    "winter that halted painting for weeks at a time.",
    "The mayor told reporters at the ribbon-cutting that the city would publish the "
    "final cost next month, and that a review of the contract was already under way "
    "at the request of the council's audit committee.",
)


def make_page(head: str = "", body: str = "", html_attributes: str = "") -> str:
    """A news page with a header, the given article body, related links and footer."""
    body = body or "".join(f"<p>{paragraph}</p>\n" for paragraph in PARAGRAPHS)
    return f"""<!DOCTYPE html>
<html{html_attributes}>
<head>
<meta charset="utf-8">
{head}
</head>
<body>
<header><nav><a href="/">Home</a> <a href="/city">City</a> <a href="/sport">Sport</a></nav></header>
<main><article>
<h1>Harbour bridge reopens after repairs</h1>
<div class="article-body">
{body}
</div>
</article>
<aside class="related"><h3>More news</h3><ul>
<li><a href="/a">Council elects new speaker</a></li>
<li><a href="/b">Rain expected all week</a></li></ul></aside>
</main>
<footer><p>Copyright 2024 Example News. All rights reserved.</p></footer>
</body>
</html>"""


def jsonld(data: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


def paragraphs_of(text: str) -> list[str]:
    return text.split("\n\n") if text else []


# --- the seed page --------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    ["army-pressures-isis.html", "army-pressures-isis-nojsonld.html"],
    ids=["json-ld", "visible-lines-only"],
)
def test_seed_page_reads_like_the_article(filename: str) -> None:
    page = site_file(f"articles/{filename}").read_bytes()

    article = extract_article(page, SEED_URL + "?utm_source=twitter")

    paragraphs = paragraphs_of(article.text)
    assert article.published == SEED_PUBLISHED  # not the header's "Saturday, May 04, 2024"
    assert article.updated == SEED_PUBLISHED
    assert article.title == SEED_TITLE
    assert SEED_TITLE not in paragraphs
    assert article.text.count(SEED_CAPTION) == 0
    assert len(paragraphs) == len(set(paragraphs))
    assert paragraphs[0].startswith("Regime troops were locked in heavy fighting")
    assert "Just two days after seizing Palmyra" in article.text
    assert "the strategic town" in article.text  # print hyphenation "str-ategic" repaired
    assert "pro-government fighters advanced south-west" in article.text
    assert "forc-es" not in article.text
    assert "cookies" not in article.text
    assert "Related Stories" not in article.text
    assert article.authors == ("AFP",)
    assert article.language == "en"
    assert article.url == SEED_URL
    assert article.image == "http://127.0.0.1:8000/images/2016/03/30/palmyra-museum-statue.jpg"


# --- structured metadata --------------------------------------------------------


def test_jsonld_graph_supplies_the_article_and_resolves_references() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {
                "@type": "Organization",
                "@id": "https://news.example.com/#org",
                "name": "Example News",
            },
            {
                "@type": "WebPage",
                "@id": ARTICLE_URL,
                "name": "Harbour bridge | Example News",
                "inLanguage": "de-DE",
            },
            {
                "@type": ["Article", "NewsArticle"],
                "@id": ARTICLE_URL + "#article",
                "headline": "Harbour bridge reopens &amp; traffic returns",
                "datePublished": "2024-05-04T09:15:00+02:00",
                "dateModified": "2024-05-04T11:00:00+02:00",
                "author": [
                    {"@id": "https://news.example.com/#/person/anna"},
                    {"@type": "Person", "name": "Ben Ortiz"},
                ],
                "image": {"@id": "https://news.example.com/#image"},
                "mainEntityOfPage": {"@id": ARTICLE_URL},
            },
            {
                "@type": "Person",
                "@id": "https://news.example.com/#/person/anna",
                "name": "Anna Keller",
            },
            {
                "@type": "ImageObject",
                "@id": "https://news.example.com/#image",
                "url": "https://cdn.example.com/bridge.jpg",
            },
        ],
    }
    head = jsonld(graph) + '<meta property="og:title" content="Not this title">'

    article = extract_article(make_page(head), ARTICLE_URL)

    assert article.title == "Harbour bridge reopens & traffic returns"
    assert article.published == datetime(2024, 5, 4, 7, 15, tzinfo=UTC)
    assert article.updated == datetime(2024, 5, 4, 9, 0, tzinfo=UTC)
    assert article.authors == ("Anna Keller", "Ben Ortiz")
    assert article.language == "de"
    assert article.image == "https://cdn.example.com/bridge.jpg"


def test_jsonld_list_at_top_level_and_a_broken_block_beside_it() -> None:
    broken = '<script type="application/ld+json">{"@type": "NewsArticle", "headline": </script>'
    listed = jsonld(
        [
            {"@type": "Organization", "name": "Example News"},
            {
                "@type": "ReportageNewsArticle",
                "headline": "Bridge reopens",
                "datePublished": "2024-05-04T06:00:00Z",
                "author": "Chris Wu",
                "inLanguage": {"@type": "Language", "name": "English", "alternateName": "en"},
            },
        ]
    )

    article = extract_article(make_page(broken + listed), ARTICLE_URL)

    assert article.title == "Bridge reopens"
    assert article.published == datetime(2024, 5, 4, 6, 0, tzinfo=UTC)
    assert article.authors == ("Chris Wu",)
    assert article.language == "en"
    assert "eighteen months of repairs" in article.text


def test_opengraph_and_article_meta_without_jsonld() -> None:
    head = """
    <title>Bridge reopens - City - Example News</title>
    <meta property="og:title" content="Harbour bridge reopens after repairs">
    <meta property="og:locale" content="fr_FR">
    <meta property="og:image" content="/img/bridge.jpg">
    <meta property="og:description" content="Traffic is back on the bridge.">
    <meta property="article:published_time" content="2024-05-04T10:00:00-04:00">
    <meta property="article:modified_time" content="2024-05-05T08:30:00+01:00">
    <meta property="article:author" content="https://www.facebook.com/annakeller">
    <meta name="author" content="Anna Keller">
    """

    article = extract_article(make_page(head), ARTICLE_URL)

    assert article.title == "Harbour bridge reopens after repairs"
    assert article.published == datetime(2024, 5, 4, 14, 0, tzinfo=UTC)
    assert article.updated == datetime(2024, 5, 5, 7, 30, tzinfo=UTC)
    assert article.authors == ("Anna Keller",)
    assert article.language == "fr"
    assert article.image == "https://news.example.com/img/bridge.jpg"
    assert article.description == "Traffic is back on the bridge."


def test_dublin_core_meta_and_title_element_fallbacks() -> None:
    head = """
    <title>Example News | Harbour bridge reopens after repairs</title>
    <meta name="DC.date.issued" content="2024-05-04">
    <meta name="DC.creator" content="Anna Keller; Ben Ortiz">
    <meta name="description" content="Traffic is back.">
    """
    page = make_page(head, html_attributes=' lang="en-GB"').replace(
        "<h1>Harbour bridge reopens after repairs</h1>", ""
    )

    article = extract_article(page, ARTICLE_URL)

    assert article.title == "Harbour bridge reopens after repairs"
    assert article.published == datetime(2024, 5, 4, tzinfo=UTC)
    assert article.authors == ("Anna Keller", "Ben Ortiz")
    assert article.language == "en"
    assert article.description == "Traffic is back."


def test_naive_metadata_date_is_taken_as_utc() -> None:
    head = jsonld(
        {
            "@type": "NewsArticle",
            "headline": "Bridge reopens",
            "datePublished": "2024-01-15T08:30:00",
        }
    )

    article = extract_article(make_page(head), ARTICLE_URL)

    assert article.published == datetime(2024, 1, 15, 8, 30, tzinfo=UTC)
    assert article.published.tzinfo is UTC


def test_visible_posted_line_beats_the_header_date_and_htmldate() -> None:
    body = (
        '<div class="topbar">Saturday, May 04, 2024 | Last Update : 07:38 PM IST</div>'
        '<div class="meta"><span>Posted:</span> <time>March 3, 2021</time>'
        " <span>at 5:00 pm EST</span></div>"
        + "".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS)
    )

    article = extract_article(make_page(body=body), ARTICLE_URL)

    assert article.published == datetime(2021, 3, 3, 22, 0, tzinfo=UTC)
    assert article.updated is None


def test_language_is_heard_in_the_text_when_the_page_does_not_say() -> None:
    body = (
        "<p>Die Brücke über den Hafen ist nach achtzehn Monaten Bauzeit am Samstag wieder "
        "für den Verkehr freigegeben worden, teilte die Stadtverwaltung mit.</p>"
        "<p>Die Ingenieure haben die Stahlseile der Hauptspannweite ersetzt und die "
        "Fahrbahn erneuert; die Arbeiten dauerten drei Monate länger als geplant.</p>"
    )

    article = extract_article(make_page(body=body), ARTICLE_URL)

    assert article.language == "de"


# --- input that is not a clean UTF-8 page ----------------------------------------


@pytest.mark.parametrize(
    "page",
    [
        "",
        b"",
        "   \n\t ",
        "just some words, not a page",
        bytes(range(256)) * 8,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
        b"\x00\x00<html>\x00</html>\x00",
        "<html><head></head><body></body></html>",
        '<?xml version="1.0" encoding="utf-8"?><html><body></body></html>',
        "<html><head>" + '<script type="application/ld+json">{{{</script>' * 3 + "</head></html>",
    ],
    ids=[
        "empty-str",
        "empty-bytes",
        "whitespace",
        "plain-text",
        "all-bytes",
        "png",
        "nul-bytes",
        "empty-document",
        "xml-declaration",
        "only-broken-json-ld",
    ],
)
def test_unreadable_input_gives_an_empty_article(page: str | bytes) -> None:
    # No date in the URL: htmldate would rightly read one from it.
    url = "https://news.example.com/story/harbour-bridge-reopens"

    article = extract_article(page, url + "?utm_medium=email")

    assert article.title == ""
    assert article.text == ""
    assert article.published is None
    assert article.url == url


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "<p>A clean \u201cpage\u201d, caf\u00e9</p>".encode(),
            "<p>A clean \u201cpage\u201d, caf\u00e9</p>",
        ),
        ("<p>a\x00b\x0bc\x1fd\ufffee\uffff!</p>\r\n\t".encode(), "<p>abcde!</p>\r\n\t"),
        (b"\xef\xbb\xbf<p>bom\x0c</p>", "<p>bom</p>"),
        (b"<p>caf\xe9\x08</p>", "<p>caf\u00e9</p>"),
    ],
    ids=["clean-utf8", "controls-and-noncharacters", "bom", "latin-1-fallback"],
)
def test_decode_page_drops_what_lxml_refuses(body: bytes, expected: str) -> None:
    assert decode_page(body, "text/html; charset=utf-8") == expected


@pytest.mark.parametrize(
    "page",
    [
        make_page(),
        make_page().replace(
            "<!DOCTYPE html>",
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 '
            'Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">',
        ),
        make_page().replace("<html>", '<html lang="en"/>'),
        '<?xml version="1.0" encoding="utf-8"?>\n' + make_page().replace("<!DOCTYPE html>\n", ""),
        "<div><p>Only a fragment of a page, no html element.</p></div>",
        "<p>One</p><p>Two paragraphs, no html element.</p>",
        "no markup at all <",
    ],
    ids=[
        "page",
        "doctype-with-slash",
        "self-closing-html",
        "xml-declaration",
        "fragment",
        "two-paragraphs",
        "not-html",
    ],
)
def test_pages_are_parsed_as_trafilatura_parses_them(page: str) -> None:
    """parse_page repeats trafilatura's load_html with a faster element lookup: the
    same tree, or None for the same pages."""
    ours, theirs = parse_page(page), trafilatura.utils.load_html(page)

    if theirs is None or not theirs.text_content().strip():
        assert ours is None
    else:
        assert ours is not None
        assert lxml.html.tostring(ours) == lxml.html.tostring(theirs)


def test_corpus_pages_are_parsed_as_trafilatura_parses_them() -> None:
    different = []
    for page_id, page in sorted(CORPUS_PAGES.items()):
        text = decode_html(page.html)
        ours, theirs = parse_page(text), trafilatura.utils.load_html(text)
        if (
            ours is None
            or theirs is None
            or (lxml.html.tostring(ours) != lxml.html.tostring(theirs))
        ):
            different.append(page_id)

    assert len(CORPUS_PAGES) >= 90
    assert different == []


def test_windows_1252_bytes_declared_in_meta_charset() -> None:
    page = make_page(
        head="<title>Caf\u00e9 owners \u201ccautious\u201d as bridge reopens</title>",
        body="".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS)
        + "<p>At the caf\u00e9 by the bridge, owners said they were \u201ccautious\u201d "
        "about the summer but glad to see customers return after a long, quiet "
        "winter on the waterfront.</p>",
    ).replace('<meta charset="utf-8">', '<meta charset="windows-1252">')
    page = page.replace("<h1>Harbour bridge reopens after repairs</h1>", "")

    article = extract_article(page.encode("cp1252"), ARTICLE_URL)

    assert article.title == "Caf\u00e9 owners \u201ccautious\u201d as bridge reopens"
    assert "At the caf\u00e9 by the bridge, owners said they were \u201ccautious\u201d" in (
        article.text
    )
    assert "\ufffd" not in article.text


def test_soft_hyphens_and_zero_width_characters_are_removed() -> None:
    body = (
        "<p>The inter\u00adnational bridge\u200b reopened on Satur\u00adday after eighteen "
        "months\u200c of repairs, and traffic\u2060 returned to the river crossing.\ufeff</p>"
        + "".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS)
    )
    head = '<meta property="og:title" content="Bridge\u00ad re\u200bopens">'

    article = extract_article(make_page(head, body), ARTICLE_URL)

    assert article.title == "Bridge reopens"
    assert "The international bridge reopened on Saturday after eighteen months of repairs" in (
        article.text
    )
    assert not set(article.text) & set("\u00ad\u200b\u200c\u200d\u2060\ufeff")


def test_paragraph_whitespace_is_collapsed_and_paragraphs_are_blank_line_separated() -> None:
    spaced = [paragraph.replace(" ", "  \n ", 3) + "\u00a0 " for paragraph in PARAGRAPHS]
    body = "".join(f"<p>  {paragraph}</p>" for paragraph in spaced)

    article = extract_article(make_page(body=body), ARTICLE_URL)

    assert paragraphs_of(article.text) == list(PARAGRAPHS)


@pytest.mark.parametrize(
    ("head", "expected_section", "expected_keywords"),
    [
        (
            jsonld(
                {
                    "@type": "NewsArticle",
                    "headline": "Bridge reopens",
                    "articleSection": ["City", "Transport"],
                    "keywords": ["bridges", "Traffic", "traffic", " city council "],
                }
            )
            + '<meta property="article:section" content="Not this">',
            "City",
            ("bridges", "Traffic", "city council"),
        ),
        (
            jsonld(
                {
                    "@type": "NewsArticle",
                    "headline": "Bridge reopens",
                    "articleSection": "City",
                    "keywords": "bridges, traffic,city council",
                }
            ),
            "City",
            ("bridges", "traffic", "city council"),
        ),
        (
            '<meta property="article:section" content="City &amp; Region">'
            '<meta name="news_keywords" content="bridges, traffic">'
            '<meta name="keywords" content="news, example, not these">',
            "City & Region",
            ("bridges", "traffic"),
        ),
        (
            '<meta property="article:tag" content="bridges">'
            '<meta property="article:tag" content="harbour">'
            '<meta name="keywords" content="news">',
            None,
            ("bridges", "harbour"),
        ),
        (
            '<meta name="keywords" content="bridges; traffic; harbour">',
            None,
            ("bridges", "traffic", "harbour"),
        ),
        (
            jsonld(
                {
                    "@type": "NewsArticle",
                    "headline": "Bridge reopens",
                    "articleSection": "City,Transport,Front page",
                }
            ),
            "City",
            (),
        ),
        (
            jsonld(
                {
                    "@type": "NewsArticle",
                    "headline": "Bridge reopens",
                    "articleSection": "https://news.example.com/city/",
                }
            )
            + '<meta property="article:section" content="Arts, Culture">',
            "Arts, Culture",
            (),
        ),
        ("", None, ()),
    ],
    ids=[
        "json-ld-lists",
        "json-ld-strings",
        "section-and-news-keywords-meta",
        "article-tags",
        "keywords-meta",
        "category-list-string",
        "url-is-no-section",
        "none",
    ],
)
def test_section_and_keywords(
    head: str,
    expected_section: str | None,
    expected_keywords: tuple[str, ...],
) -> None:
    article = extract_article(make_page(head), ARTICLE_URL)

    assert article.section == expected_section
    assert article.keywords == expected_keywords


def test_bare_day_in_the_article_node_takes_the_time_from_the_page_node() -> None:
    graph = {
        "@graph": [
            {"@type": "WebPage", "datePublished": "2024-05-04T09:15:00+02:00"},
            {"@type": "BlogPosting", "headline": "Bridge reopens", "datePublished": "2024-05-04"},
        ]
    }

    article = extract_article(make_page(jsonld(graph)), ARTICLE_URL)

    assert article.published == datetime(2024, 5, 4, 7, 15, tzinfo=UTC)


def test_bare_day_alone_is_midnight_utc() -> None:
    head = jsonld(
        {"@type": "BlogPosting", "headline": "Bridge reopens", "datePublished": "2024-05-04"}
    )

    assert extract_article(make_page(head), ARTICLE_URL).published == datetime(
        2024, 5, 4, tzinfo=UTC
    )


# --- the body ---------------------------------------------------------------------


def chunked_page(*chunks: str, between: str = '<div class="ad">Advertisement</div>') -> str:
    """A page whose body is cut into chunks, each in its own grid row beside a rail."""
    rows = between.join(
        f'<div class="grid"><div class="body article__body">{chunk}</div>'
        '<aside class="rail">Subscribe to our newsletter today</aside></div>'
        for chunk in chunks
    )
    return (
        "<!DOCTYPE html><html><head><title>Harbour bridge reopens after repairs</title>"
        '</head><body><header><nav><a href="/">Home</a> <a href="/city">City</a></nav>'
        "</header><main><h1>Harbour bridge reopens after repairs</h1>"
        f'<div class="article__chunks">{rows}</div></main>'
        "<footer><p>Copyright 2024 Example News.</p></footer></body></html>"
    )


def test_body_split_into_chunks_between_ads_is_read_whole() -> None:
    first = "".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS[:2])
    second = (
        f"<p>{PARAGRAPHS[2]}</p><p>Repairs to the approach roads will follow in the "
        "autumn, the council said, with lane closures planned only at night.</p>"
    )

    article = extract_article(chunked_page(first, second), ARTICLE_URL)

    assert paragraphs_of(article.text) == [
        *PARAGRAPHS,
        "Repairs to the approach roads will follow in the autumn, the council "
        "said, with lane closures planned only at night.",
    ]


def test_a_second_article_with_its_own_headline_is_not_merged_in() -> None:
    first = "".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS)
    second = (
        "<p>In other news, the city zoo welcomed two red panda cubs on Friday, the "
        "first born there in a decade, keepers said at a press briefing.</p>"
        "<p>The cubs will stay with their mother out of public view until the spring, "
        "when visitors can see them in the new enclosure.</p>"
    )

    article = extract_article(
        chunked_page(first, second, between="<h1>Zoo welcomes red panda cubs</h1>"), ARTICLE_URL
    )

    assert "red panda" not in article.text
    assert paragraphs_of(article.text) == list(PARAGRAPHS)


def test_embedded_tweets_are_quoted_and_popup_cards_dropped() -> None:
    body = (
        f"<p>{PARAGRAPHS[0]}</p>"
        '<p>Gov. <span class="rollover-people"><a href="/people/kristi-noem">Kristi Noem</a>'
        '<span class="rollover-people-block"><span class="rollover-block">'
        '<img src="/noem.jpg" alt=""><a href="/people/kristi-noem">Kristi Lynn Noem</a>'
        '<a href="/x">South Dakota drops pipeline protest laws</a></span></span></span>'
        " defended the campaign on Monday, saying the criticism proved it was working and "
        "that the state would not change the slogan.</p>"
        '<div class="social-media-embed"><blockquote class="twitter-tweet"><p lang="en">'
        "Hey Twitter, the whole point of this ad campaign is to raise awareness.</p>"
        '&mdash; Governor Kristi Noem (@govkristinoem) <a href="https://twitter.com/x/status/1">'
        "November 18, 2019</a></blockquote>"
        '<script async src="https://platform.twitter.com/widgets.js"></script></div>'
        + "".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS[1:])
    )

    article = extract_article(make_page(body=body), ARTICLE_URL)

    assert "Gov. Kristi Noem defended the campaign on Monday" in article.text
    assert "pipeline" not in article.text
    assert "Hey Twitter, the whole point of this ad campaign is to raise awareness." in (
        article.text
    )
    assert "Governor Kristi Noem (@govkristinoem)" in article.text


LINKS = {
    "spacex's starship and super heavy mars rocket in pictures",
    "moon rush: private lunar lander plans",
    "nasa: the international space station is open for business",
    "@darkzip",
    "acme systems",
}


@pytest.mark.parametrize(
    ("lines", "keywords", "expected"),
    [
        (
            [
                "Body one.",
                "Related: SpaceX's Starship and Super Heavy Mars Rocket in Pictures",
                "READ MORE | Moon Rush: Private Lunar Lander Plans",
                "Body two.",
            ],
            [],
            ["Body one.", "Body two."],
        ),
        (
            [
                "Body.",
                "- Moon Rush: Private Lunar Lander Plans",
                "- NASA: The International Space Station Is Open for Business",
            ],
            [],
            ["Body."],
        ),
        (
            ["Body.", "- Moon Rush: Private Lunar Lander Plans", "- An item that is no link"],
            [],
            ["Body.", "- Moon Rush: Private Lunar Lander Plans", "- An item that is no link"],
        ),
        (
            ["Account: @darkzip", "Our partner: Acme Systems", "Source: a report not linked"],
            [],
            ["Account: @darkzip", "Our partner: Acme Systems", "Source: a report not linked"],
        ),
        (
            # a related-story label is navigation whether or not its headline is a
            # link on the page (issue 24: "read also" lines kept on held-out pages)
            ["Body.", "Related: a story not linked", "Leggi anche: un altro articolo"],
            [],
            ["Body."],
        ),
        (
            ["Body.", "stock car 2018, Interlagos", "Interlagos", "Stock car is back."],
            ["Stock Car 2018", "interlagos"],
            ["Body.", "Stock car is back."],
        ),
    ],
    ids=[
        "labelled-links",
        "link-list",
        "single-link-item-kept",
        "short-links-kept",
        "related-labels-dropped",
        "tag-lists",
    ],
)
def test_drop_link_paragraphs(lines: list[str], keywords: list[str], expected: list[str]) -> None:
    assert drop_link_paragraphs("\n\n".join(lines), lambda: LINKS, keywords) == (
        "\n\n".join(expected)
    )


# --- repairs of the text ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "ISIS had seized the str-ategic town, abducting doz-ens of Christians and ra-zing "
            "its monastery.",
            "ISIS had seized the strategic town, abducting dozens of Christians and razing "
            "its monastery.",
        ),
        (
            "Defence mi-nister Fahed Jassem al-Freij said the armed forc-es would push on.",
            "Defence minister Fahed Jassem al-Freij said the armed forces would push on.",
        ),
        (
            "Mi-nister and Gov-ernment at the start of a sentence.",
            "Minister and Government at the start of a sentence.",
        ),
        (
            "pro-government fighters advanced south-west towards Al-Qaryatain in the anti-ISIS "
            "fight, said the Britain-based monitor.",
            "pro-government fighters advanced south-west towards Al-Qaryatain in the anti-ISIS "
            "fight, said the Britain-based monitor.",
        ),
        (
            "A well-known plan to co-operate on sci-fi, an op-ed and an en-suite room, a "
            "south-easterly wind and an e-mail.",
            "A well-known plan to co-operate on sci-fi, an op-ed and an en-suite room, a "
            "south-easterly wind and an e-mail.",
        ),
        (
            "The Qala-mun region, state-of-the-art labs and Covid-19 stay as written.",
            "The Qala-mun region, state-of-the-art labs and Covid-19 stay as written.",
        ),
        (
            "Quibblix shares rose on Monday. Traders said Quib-blix had been oversold.",
            "Quibblix shares rose on Monday. Traders said Quibblix had been oversold.",
        ),
        ("UPPER-case and NATO-led stay.", "UPPER-case and NATO-led stay."),
    ],
    ids=[
        "print-splits",
        "split-beside-a-name",
        "capitalised-split",
        "real-compounds",
        "compounds-of-short-words",
        "unknown-word-and-chains",
        "word-known-from-the-text",
        "capitals-untouched",
    ],
)
def test_repair_hyphenation(text: str, expected: str) -> None:
    assert repair_hyphenation(text, "en") == expected


def test_repair_hyphenation_only_in_languages_with_a_checked_word_list() -> None:
    text = "Die Regierung hat die str-ategische Lage geprüft."

    assert repair_hyphenation(text, "de") == text
    assert repair_hyphenation(text, None) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It\u00e2\u20ac\u2122s caf\u00c3\u00a9 time", "It\u2019s caf\u00e9 time"),
        ("\u00c3\u2021a co\u00c3\u00bbte 5 \u00e2\u201a\u00ac", "\u00c7a co\u00fbte 5 \u20ac"),
        (
            "\u0420\u045f\u0421\u0402\u0420\u0451\u0420\u0406\u0420\u00b5\u0421\u201a",
            "\u041f\u0440\u0438\u0432\u0435\u0442",
        ),
        (
            "\u00c7a co\u00fbte 5 \u20ac, na\u00efve \u201cquoted\u201d &amp; \ufb01ne",
            "\u00c7a co\u00fbte 5 \u20ac, na\u00efve \u201cquoted\u201d &amp; \ufb01ne",
        ),
        (
            "\u041f\u0440\u0438\u0432\u0435\u0442, \u0421\u0435\u0440\u0433\u0435\u0439",
            "\u041f\u0440\u0438\u0432\u0435\u0442, \u0421\u0435\u0440\u0433\u0435\u0439",
        ),
    ],
    ids=[
        "utf8-read-as-cp1252",
        "accents-and-euro",
        "utf8-read-as-cp1251",
        "clean-text-untouched",
        "clean-cyrillic-untouched",
    ],
)
def test_repair_mojibake(text: str, expected: str) -> None:
    assert repair_mojibake(text) == expected


def test_mojibake_is_repaired_in_title_body_and_authors() -> None:
    def garble(text: str) -> str:
        return text.encode("utf-8").decode("cp1252")

    head = (
        f'<meta property="og:title" content="{garble("Café owners ‘cautious’")}">'
        f'<meta name="author" content="{garble("Zoë Müller")}">'
    )
    body = "".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS) + (
        f"<p>{garble('At the café by the bridge, owners said they were ‘cautious’ about the')}"
        " summer but glad to see customers return after a long, quiet winter.</p>"
    )

    article = extract_article(make_page(head, body), ARTICLE_URL)

    assert article.title == "Café owners ‘cautious’"
    assert article.authors == ("Zoë Müller",)
    assert "At the café by the bridge, owners said they were ‘cautious’ about" in article.text


# --- the article's URL -----------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "fetched", "expected"),
    [
        (
            '<link rel="canonical" href="https://www.news.example.com/bridge-reopens?id=7">',
            ARTICLE_URL,
            "https://www.news.example.com/bridge-reopens?id=7",
        ),
        (
            '<link rel="canonical" href="/2024/05/04/bridge.html">',
            ARTICLE_URL,
            "https://news.example.com/2024/05/04/bridge.html",
        ),
        (
            '<meta property="og:url" content="https://news.example.com/bridge?utm_source=fb">',
            ARTICLE_URL,
            "https://news.example.com/bridge",
        ),
        (
            '<link rel="canonical" href="https://aggregator.example.org/copy/123">',
            ARTICLE_URL,
            ARTICLE_URL,
        ),
        ('<link rel="canonical" href="https://news.example.com/">', ARTICLE_URL, ARTICLE_URL),
        ("", ARTICLE_URL + "?utm_source=rss&utm_campaign=feed&fbclid=abc#comments", ARTICLE_URL),
        (
            "",
            "https://News.Example.com:443/story?b=2&a=1&gclid=x",
            "https://news.example.com/story?a=1&b=2",
        ),
    ],
    ids=[
        "canonical-same-site-wins",
        "relative-canonical",
        "og-url-same-site",
        "canonical-other-site-ignored",
        "canonical-to-front-page-ignored",
        "tracking-params-dropped",
        "host-port-and-query-normalised",
    ],
)
def test_article_url(head: str, fetched: str, expected: str) -> None:
    assert extract_article(make_page(head), fetched).url == expected


def test_broken_urls_cost_only_the_url() -> None:
    head = (
        '<meta property="og:url" content="http://[::1">'
        '<meta property="og:image" content="http://[bad/x.jpg">'
        '<meta property="article:author" content="http://[bad/author">'
    )

    article = extract_article(make_page(head), "http://[broken/story")

    assert article.url == "http://[broken/story"
    assert article.title == "Harbour bridge reopens after repairs"
    assert "eighteen months of repairs" in article.text
    assert article.image is None
    assert article.authors == ()


# --- the pure helpers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mar 30, 2016, 7:16 am IST", datetime(2016, 3, 30, 1, 46, tzinfo=UTC)),
        ("March 3, 2021 at 5:00 p.m. EDT", datetime(2021, 3, 3, 21, 0, tzinfo=UTC)),
        ("Wednesday 30 March 2016 07.16 BST", datetime(2016, 3, 30, 6, 16, tzinfo=UTC)),
        ("2016-03-30T07:16:00+05:30", datetime(2016, 3, 30, 1, 46, tzinfo=UTC)),
        ("2016-03-30T07:16:00Z", datetime(2016, 3, 30, 7, 16, tzinfo=UTC)),
        ("2016-03-30 07:16:00", datetime(2016, 3, 30, 7, 16, tzinfo=UTC)),
        ("Tue Nov 19 2019 03:05:46 GMT+0000", datetime(2019, 11, 19, 3, 5, 46, tzinfo=UTC)),
        ("2016-03-30", datetime(2016, 3, 30, tzinfo=UTC)),
        ("20 May 2024 18:00 AEST", datetime(2024, 5, 20, 8, 0, tzinfo=UTC)),
        ("Nov. 18, 2019 5:45 p.m. ET", datetime(2019, 11, 18, 22, 45, tzinfo=UTC)),
        ("July 18, 2019 5:45 p.m. ET", datetime(2019, 7, 18, 21, 45, tzinfo=UTC)),
        ("1 June 2023 14:00 PT", datetime(2023, 6, 1, 21, 0, tzinfo=UTC)),
        ("3 March 2021 09:00 CET", datetime(2021, 3, 3, 8, 0, tzinfo=UTC)),
        ("4 May 2024 10:00 SAST", datetime(2024, 5, 4, 8, 0, tzinfo=UTC)),
        ("4 May 2024 10:00 EAT", datetime(2024, 5, 4, 7, 0, tzinfo=UTC)),
        ("4 May 2024 10:00 WITA", datetime(2024, 5, 4, 2, 0, tzinfo=UTC)),
        ("4 May 2024 10:00 NZST", datetime(2024, 5, 3, 22, 0, tzinfo=UTC)),
        ("4 May 2024 10:00 NPT", datetime(2024, 5, 4, 4, 15, tzinfo=UTC)),
        ("4 May 2024 10:00 HKT", datetime(2024, 5, 4, 2, 0, tzinfo=UTC)),
        ("1459302960", datetime(2016, 3, 30, 1, 56, tzinfo=UTC)),
        ("07:38 PM IST", None),
        ("Saturday", None),
        ("0001-01-01T00:00:00Z", None),
        ("2016-02-30T07:16:00Z", None),
        ("not a date at all 2016 maybe", None),
        ("", None),
        ("9" * 400, None),
    ],
    ids=lambda value: str(value)[:30],
)
def test_parse_datetime(value: str, expected: datetime | None) -> None:
    assert parse_datetime(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Saturday, May 04, 2024 | Last Update : 07:38 PM IST", (None, None)),
        (
            "Saturday, May 04, 2024 | Last Update : 07:38 PM IST\nAFP\n"
            "Published : Mar 30, 2016, 7:16 am IST\nUpdated : Mar 31, 2016, 9:00 am IST",
            (datetime(2016, 3, 30, 1, 46, tzinfo=UTC), datetime(2016, 3, 31, 3, 30, tzinfo=UTC)),
        ),
        (
            "Published on\n4 May 2024\n14:05 BST\nShare",
            (datetime(2024, 5, 4, 13, 5, tzinfo=UTC), None),
        ),
        (
            "By Anna Keller | Last updated: 2024-05-04 10:00 CEST",
            (None, datetime(2024, 5, 4, 8, 0, tzinfo=UTC)),
        ),
        ("The bridge, a report published on 3 May 2015 said, was unsafe.", (None, None)),
        ("Posted: 2 hours ago\nPosted: January 2, 2024", (datetime(2024, 1, 2, tzinfo=UTC), None)),
    ],
    ids=[
        "header-date-line-only",
        "published-and-updated",
        "split-over-nodes",
        "after-separator",
        "mid-sentence-ignored",
        "line-without-year-skipped",
    ],
)
def test_find_date_lines(text: str, expected: tuple[datetime | None, datetime | None]) -> None:
    assert find_date_lines(text) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["Headline", "Intro text here.", "Headline", "Body."], ["Intro text here.", "Body."]),
        (
            ["A long paragraph.", "Body.", "A  long\u00a0paragraph. "],
            ["A long paragraph.", "Body."],
        ),
        (
            ["Q: Why cook?", "A one.", "Q: Why cook?", "A two.", "Q: Why cook?", "A three."],
            ["Q: Why cook?", "A one.", "Q: Why cook?", "A two.", "Q: Why cook?", "A three."],
        ),
        (["A photo of the bridge at dawn, taken by our staff.", "Body."], ["Body."]),
        (["A photo of the bridge at dawn, taken by our staff", "Body."], ["Body."]),
        (["Photo", "Body."], ["Photo", "Body."]),
    ],
    ids=[
        "headline-dropped",
        "pair-repeat-dropped",
        "recurring-structure-kept",
        "caption-dropped",
        "long-part-of-caption-dropped",
        "short-word-in-caption-kept",
    ],
)
def test_clean_body(lines: list[str], expected: list[str]) -> None:
    captions = ["a photo of the bridge at dawn, taken by our staff. photo: ap"]
    assert clean_body("\n".join(lines), ["Headline"], captions) == "\n\n".join(expected)


@pytest.mark.parametrize(
    ("title", "headings", "expected"),
    [
        (
            "Army pressures ISIS in central Syria | The Daily Chronicle",
            [],
            "Army pressures ISIS in central Syria",
        ),
        ("Example News - Bridge reopens", ["Bridge reopens"], "Bridge reopens"),
        ("Brexit: what happens next", [], "Brexit: what happens next"),
    ],
    ids=["suffix", "prefix-matching-h1", "no-separator"],
)
def test_strip_site_name(title: str, headings: list[str], expected: str) -> None:
    assert strip_site_name(title, headings) == expected


# --- the article-extraction corpus (tests/fixtures/extraction) ----------------------

# Pages where newswatch may score more than BODY_TOLERANCE below plain trafilatura,
# with the reason. Empty: none needs it.
BODY_EXEMPT: dict[str, str] = {}
BODY_TOLERANCE = 0.05


@functools.cache
def extracted(page_id: str) -> ExtractedArticle:
    page = CORPUS_PAGES[page_id]
    return extract_article(page.html, page.url)


def page_ids(labelled: str | None = None) -> list[str]:
    return sorted(
        page_id
        for page_id, page in CORPUS_PAGES.items()
        if labelled is None or page.labels.get(labelled)
    )


@pytest.mark.parametrize("page_id", page_ids(), ids=lambda page_id: page_id[:8])
def test_corpus_body_is_not_far_below_plain_trafilatura(page_id: str) -> None:
    if page_id in BODY_EXEMPT:
        pytest.skip(BODY_EXEMPT[page_id])
    page = CORPUS_PAGES[page_id]

    ours = score_page(extracted(page_id).text, page.truth)
    plain = score_page(trafilatura.extract(page.html) or "", page.truth)

    assert ours.f1 >= plain.f1 - BODY_TOLERANCE, (
        f"F1 {ours.f1:.3f} (P {ours.precision:.3f}, R {ours.recall:.3f}) against plain "
        f"trafilatura's {plain.f1:.3f} (P {plain.precision:.3f}, R {plain.recall:.3f})"
    )


@pytest.mark.parametrize("page_id", page_ids(), ids=lambda page_id: page_id[:8])
def test_corpus_title_is_found(page_id: str) -> None:
    title = extracted(page_id).title

    assert title
    assert title not in extracted(page_id).text.split("\n\n")


@pytest.mark.parametrize("page_id", page_ids("published_utc"), ids=lambda page_id: page_id[:8])
def test_corpus_structured_date_published_is_read_to_the_second(page_id: str) -> None:
    # published_utc is the page's JSON-LD (or, without JSON-LD, microdata)
    # datePublished in UTC, read off the page by hand; see the fixtures' README.
    expected = datetime.fromisoformat(str(CORPUS_PAGES[page_id].labels["published_utc"]))

    published = extracted(page_id).published

    assert published is not None
    assert published.tzinfo is UTC
    assert published.replace(microsecond=0) == expected
