"""spiders.extract: from one fetched page to the article a reader would see."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trafilatura

from spiders.extract import (
    clean_body,
    extract_article,
    find_date_lines,
    parse_datetime,
    strip_site_name,
)

FIXTURES = Path(__file__).parent / "fixtures"
SEED_PAGES = FIXTURES / "site" / "articles"
CORPUS = FIXTURES / "extraction"
CORPUS_TRUTH: dict[str, dict[str, str | None]] = json.loads(
    (CORPUS / "ground-truth.json").read_text(encoding="utf-8"))

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
    "filename", ["army-pressures-isis.html", "army-pressures-isis-nojsonld.html"],
    ids=["json-ld", "visible-lines-only"],
)
def test_seed_page_reads_like_the_article(filename: str) -> None:
    page = (SEED_PAGES / filename).read_bytes()

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
    assert "str-ategic town" in article.text  # the print hyphenation is the source's
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
            {"@type": "Organization", "@id": "https://news.example.com/#org",
             "name": "Example News"},
            {"@type": "WebPage", "@id": ARTICLE_URL, "name": "Harbour bridge | Example News",
             "inLanguage": "de-DE"},
            {"@type": ["Article", "NewsArticle"], "@id": ARTICLE_URL + "#article",
             "headline": "Harbour bridge reopens &amp; traffic returns",
             "datePublished": "2024-05-04T09:15:00+02:00",
             "dateModified": "2024-05-04T11:00:00+02:00",
             "author": [{"@id": "https://news.example.com/#/person/anna"},
                        {"@type": "Person", "name": "Ben Ortiz"}],
             "image": {"@id": "https://news.example.com/#image"},
             "mainEntityOfPage": {"@id": ARTICLE_URL}},
            {"@type": "Person", "@id": "https://news.example.com/#/person/anna",
             "name": "Anna Keller"},
            {"@type": "ImageObject", "@id": "https://news.example.com/#image",
             "url": "https://cdn.example.com/bridge.jpg"},
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
    listed = jsonld([
        {"@type": "Organization", "name": "Example News"},
        {"@type": "ReportageNewsArticle", "headline": "Bridge reopens",
         "datePublished": "2024-05-04T06:00:00Z", "author": "Chris Wu",
         "inLanguage": {"@type": "Language", "name": "English", "alternateName": "en"}},
    ])

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
        "<h1>Harbour bridge reopens after repairs</h1>", "")

    article = extract_article(page, ARTICLE_URL)

    assert article.title == "Harbour bridge reopens after repairs"
    assert article.published == datetime(2024, 5, 4, tzinfo=UTC)
    assert article.authors == ("Anna Keller", "Ben Ortiz")
    assert article.language == "en"
    assert article.description == "Traffic is back."


def test_naive_metadata_date_is_taken_as_utc() -> None:
    head = jsonld({"@type": "NewsArticle", "headline": "Bridge reopens",
                   "datePublished": "2024-01-15T08:30:00"})

    article = extract_article(make_page(head), ARTICLE_URL)

    assert article.published == datetime(2024, 1, 15, 8, 30, tzinfo=UTC)
    assert article.published.tzinfo is UTC


def test_visible_posted_line_beats_the_header_date_and_htmldate() -> None:
    body = ('<div class="topbar">Saturday, May 04, 2024 | Last Update : 07:38 PM IST</div>'
            '<div class="meta"><span>Posted:</span> <time>March 3, 2021</time>'
            " <span>at 5:00 pm EST</span></div>"
            + "".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS))

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
    ids=["empty-str", "empty-bytes", "whitespace", "plain-text", "all-bytes", "png",
         "nul-bytes", "empty-document", "xml-declaration", "only-broken-json-ld"],
)
def test_unreadable_input_gives_an_empty_article(page: str | bytes) -> None:
    # No date in the URL: htmldate would rightly read one from it.
    url = "https://news.example.com/story/harbour-bridge-reopens"

    article = extract_article(page, url + "?utm_medium=email")

    assert article.title == ""
    assert article.text == ""
    assert article.published is None
    assert article.url == url


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
        article.text)
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
        article.text)
    assert not set(article.text) & set("\u00ad\u200b\u200c\u200d\u2060\ufeff")


def test_paragraph_whitespace_is_collapsed_and_paragraphs_are_blank_line_separated() -> None:
    spaced = [paragraph.replace(" ", "  \n ", 3) + "\u00a0 " for paragraph in PARAGRAPHS]
    body = "".join(f"<p>  {paragraph}</p>" for paragraph in spaced)

    article = extract_article(make_page(body=body), ARTICLE_URL)

    assert paragraphs_of(article.text) == list(PARAGRAPHS)


# --- the article's URL -----------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "fetched", "expected"),
    [
        ('<link rel="canonical" href="https://www.news.example.com/bridge-reopens?id=7">',
         ARTICLE_URL, "https://www.news.example.com/bridge-reopens?id=7"),
        ('<link rel="canonical" href="/2024/05/04/bridge.html">',
         ARTICLE_URL, "https://news.example.com/2024/05/04/bridge.html"),
        ('<meta property="og:url" content="https://news.example.com/bridge?utm_source=fb">',
         ARTICLE_URL, "https://news.example.com/bridge"),
        ('<link rel="canonical" href="https://aggregator.example.org/copy/123">',
         ARTICLE_URL, ARTICLE_URL),
        ('<link rel="canonical" href="https://news.example.com/">',
         ARTICLE_URL, ARTICLE_URL),
        ("", ARTICLE_URL + "?utm_source=rss&utm_campaign=feed&fbclid=abc#comments",
         ARTICLE_URL),
        ("", "https://News.Example.com:443/story?b=2&a=1&gclid=x",
         "https://news.example.com/story?a=1&b=2"),
    ],
    ids=["canonical-same-site-wins", "relative-canonical", "og-url-same-site",
         "canonical-other-site-ignored", "canonical-to-front-page-ignored",
         "tracking-params-dropped", "host-port-and-query-normalised"],
)
def test_article_url(head: str, fetched: str, expected: str) -> None:
    assert extract_article(make_page(head), fetched).url == expected


def test_broken_urls_cost_only_the_url() -> None:
    head = ('<meta property="og:url" content="http://[::1">'
            '<meta property="og:image" content="http://[bad/x.jpg">'
            '<meta property="article:author" content="http://[bad/author">')

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
        ("Saturday, May 04, 2024 | Last Update : 07:38 PM IST\nAFP\n"
         "Published : Mar 30, 2016, 7:16 am IST\nUpdated : Mar 31, 2016, 9:00 am IST",
         (datetime(2016, 3, 30, 1, 46, tzinfo=UTC), datetime(2016, 3, 31, 3, 30, tzinfo=UTC))),
        ("Published on\n4 May 2024\n14:05 BST\nShare",
         (datetime(2024, 5, 4, 13, 5, tzinfo=UTC), None)),
        ("By Anna Keller | Last updated: 2024-05-04 10:00 CEST",
         (None, datetime(2024, 5, 4, 8, 0, tzinfo=UTC))),
        ("The bridge, a report published on 3 May 2015 said, was unsafe.", (None, None)),
        ("Posted: 2 hours ago\nPosted: January 2, 2024",
         (datetime(2024, 1, 2, tzinfo=UTC), None)),
    ],
    ids=["header-date-line-only", "published-and-updated", "split-over-nodes",
         "after-separator", "mid-sentence-ignored", "line-without-year-skipped"],
)
def test_find_date_lines(text: str, expected: tuple[datetime | None, datetime | None]) -> None:
    assert find_date_lines(text) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["Headline", "Intro text here.", "Headline", "Body."], ["Intro text here.", "Body."]),
        (["A long paragraph.", "Body.", "A  long\u00a0paragraph. "],
         ["A long paragraph.", "Body."]),
        (["Q: Why cook?", "A one.", "Q: Why cook?", "A two.", "Q: Why cook?", "A three."],
         ["Q: Why cook?", "A one.", "Q: Why cook?", "A two.", "Q: Why cook?", "A three."]),
        (["A photo of the bridge at dawn, taken by our staff.", "Body."], ["Body."]),
        (["A photo of the bridge at dawn, taken by our staff", "Body."], ["Body."]),
        (["Photo", "Body."], ["Photo", "Body."]),
    ],
    ids=["headline-dropped", "pair-repeat-dropped", "recurring-structure-kept",
         "caption-dropped", "long-part-of-caption-dropped", "short-word-in-caption-kept"],
)
def test_clean_body(lines: list[str], expected: list[str]) -> None:
    captions = ["a photo of the bridge at dawn, taken by our staff. photo: ap"]
    assert clean_body("\n".join(lines), ["Headline"], captions) == "\n\n".join(expected)


@pytest.mark.parametrize(
    ("title", "headings", "expected"),
    [
        ("Army pressures ISIS in central Syria | The Daily Chronicle", [],
         "Army pressures ISIS in central Syria"),
        ("Example News - Bridge reopens", ["Bridge reopens"], "Bridge reopens"),
        ("Brexit: what happens next", [], "Brexit: what happens next"),
    ],
    ids=["suffix", "prefix-matching-h1", "no-separator"],
)
def test_strip_site_name(title: str, headings: list[str], expected: str) -> None:
    assert strip_site_name(title, headings) == expected


# --- real pages ------------------------------------------------------------------


def shingles(text: str) -> Counter[tuple[str, ...]]:
    """4-token shingles as the article-extraction benchmark counts them."""
    tokens = re.findall(r"\w+", text)
    if not tokens:
        return Counter()
    if len(tokens) < 4:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3))


def shingle_f1(predicted: str, truth: str) -> float:
    found, wanted = shingles(predicted), shingles(truth)
    true_positives = sum((found & wanted).values())
    false_positives = sum(found.values()) - true_positives
    false_negatives = sum(wanted.values()) - true_positives
    if false_positives == 0 and false_negatives == 0:
        return 1.0
    if true_positives == 0:
        return 0.0
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / (true_positives + false_negatives)
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("page_id", sorted(CORPUS_TRUTH), ids=lambda page_id: page_id[:8])
def test_real_page_body_is_no_worse_than_plain_trafilatura(page_id: str) -> None:
    html = gzip.decompress((CORPUS / f"{page_id}.html.gz").read_bytes()).decode("utf-8")
    truth = CORPUS_TRUTH[page_id]

    article = extract_article(html, str(truth["url"]))

    ours = shingle_f1(article.text, str(truth["articleBody"]))
    plain = shingle_f1(trafilatura.extract(html) or "", str(truth["articleBody"]))
    assert article.title
    assert ours >= plain - 0.05, f"F1 {ours:.3f} against plain trafilatura's {plain:.3f}"
    if truth["published_utc"]:
        assert article.published == datetime.fromisoformat(str(truth["published_utc"]))
