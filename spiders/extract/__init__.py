"""Article extraction: one fetched page, as (html, url), to an ExtractedArticle.

Everything here is a pure function of its arguments: nothing fetches, nothing is
stored (the word list for hyphenation is loaded once per process). The page is
decoded and parsed once; the one lxml tree is read for the structured metadata
(JSON-LD and microdata through extruct, OpenGraph and the other ``<meta>`` tags),
reworked where trafilatura would misread the body (embedded tweets, pop-up cards,
a body split into chunks), handed to trafilatura for the body (with a second look, by the page's
own evidence, where its precise setting may have missed the article), and searched
for visible "Published : ..." lines. The body gets back a lead trafilatura dropped,
loses repeated headlines, captions, related-story lines, share and subscribe
prompts and shortcode residue, and gets its mojibake and (in English) its print
hyphenation repaired. Structured metadata wins over anything guessed from the
visible page, and the guesses run only for the fields the metadata left empty.

bench/extraction.py measures the body against trafilatura and readability-lxml in
the benchmark's settings on the article-extraction corpus (tests/fixtures/
extraction), each half of it apart: rules were developed on one half only.

The package, one module per part, each importing the others directly (none
imports this ``__init__``): decode (decoding and parsing), metadata (structured
metadata and the shared text helpers), fields (URL, title, authors, language and
the other fields), body, fallback (the second look and the choice of body), lead,
furniture (related-story lines, prompts, shortcodes), repair (mojibake,
hyphenation), dates, and article (the entry points, which use all the others).
This module re-exports the names the rest of the project uses.

Layer 3, stages (part of spiders). May import: spiders, crawler.storage,
crawler.domain; never alerts.
"""

from __future__ import annotations

from spiders.extract.article import extract_article, extract_page, warm_up
from spiders.extract.body import clean_body, drop_link_paragraphs
from spiders.extract.dates import find_date_lines, parse_datetime
from spiders.extract.decode import decode_html, decode_page, parse_page
from spiders.extract.fields import strip_site_name
from spiders.extract.metadata import PageMetadata
from spiders.extract.repair import repair_hyphenation, repair_mojibake

__all__ = [
    "PageMetadata",
    "clean_body",
    "decode_html",
    "decode_page",
    "drop_link_paragraphs",
    "extract_article",
    "extract_page",
    "find_date_lines",
    "parse_datetime",
    "parse_page",
    "repair_hyphenation",
    "repair_mojibake",
    "strip_site_name",
    "warm_up",
]
