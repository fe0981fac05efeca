"""Issue 24's fallback and lead rules, each on a small synthetic page of its own: the
body that falls back instead of returning a notice, and the lead kept (and what is
not a lead). The furniture and block rules are in test_extract_furniture.py, which
builds its pages with this module's page()."""

from __future__ import annotations

import json

import pytest

from spiders.extract import extract_article
from spiders.extract.fallback import (
    SHORT_BODY,
    BodyEvidence,
    choose_body,
    is_notice_only,
    needs_second_look,
)

URL = "https://harbour-times.example/news/2024/05/04/council-passes-budget.html"
SENTENCES = [
    f"Paragraph {number}: the council voted on the new budget for schools, roads and the "
    f"harbour after a debate that lasted well into the night, members said."
    for number in range(10)
]
NOTICE = (
    "This article was first published by The Harbour Times and is republished here with "
    "permission under a Creative Commons licence. Copyright 2024 The Harbour Times. All "
    "rights reserved. Read the original article at "
    "https://harbour-times.example/news/2024/05/04/council-passes-budget-after-long-night.html "
    "and more of its reporting at https://harbour-times.example/news/ where the paper "
    "publishes its local coverage every day, including the council's budget papers. The "
    "Harbour Times is an independent newspaper owned by its readers since 1998."
)


def page(article: str, head: str = "", after: str = "") -> str:
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>Council passes budget</title>{head}</head><body>
<nav><a href="/">Home</a> <a href="/news">News</a></nav>
<div class="wrap"><h1>Council passes budget</h1>{article}{after}</div>
<footer>© 2024 The Harbour Times</footer></body></html>"""


def paragraphs(numbers: range) -> str:
    return "".join(f"<p>{SENTENCES[number]}</p>" for number in numbers)


# --- 1. a fallback that cannot return nothing ---------------------------------------


def test_body_in_a_block_the_precise_setting_discards_is_not_replaced_by_the_notice() -> None:
    # trafilatura's precision setting discards <header> elements: on this page it
    # keeps only the reprint notice beside the article, longer than SHORT_BODY.
    html = page(f'<header class="story">{paragraphs(range(8))}</header>', after=f"<p>{NOTICE}</p>")
    assert len(NOTICE) > SHORT_BODY

    text = extract_article(html, URL).text

    assert all(sentence in text for sentence in SENTENCES[:8])


def test_body_covering_half_the_pages_articlebody_is_completed() -> None:
    # The second half of the body sits in a block the precise setting drops (class
    # "link"); the page's JSON-LD articleBody says the article is twice as long.
    metadata = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": "Council passes budget",
        "articleBody": " ".join(SENTENCES),
    }
    head = f'<script type="application/ld+json">{json.dumps(metadata)}</script>'
    html = page(
        f'<article><div class="story">{paragraphs(range(4))}</div>'
        f'<div class="link">{paragraphs(range(4, 10))}</div></article>',
        head=head,
    )

    text = extract_article(html, URL).text

    assert all(sentence in text for sentence in SENTENCES)


def test_second_look_only_where_the_precise_body_may_have_missed_the_article() -> None:
    article = "\n".join(SENTENCES)

    assert not needs_second_look(article, BodyEvidence())
    assert needs_second_look(SENTENCES[0], BodyEvidence())
    assert needs_second_look(NOTICE, BodyEvidence())
    assert needs_second_look("\n".join(SENTENCES[:4]), BodyEvidence(article_body=article))
    assert not needs_second_look(article, BodyEvidence(article_body=article))


def test_notice_lines_are_told_from_article_lines() -> None:
    assert is_notice_only(NOTICE)
    assert is_notice_only("Copyright 2024 The Harbour Times\nhttps://harbour-times.example/a")
    assert not is_notice_only("\n".join(SENTENCES[:6]) + "\n" + NOTICE)
    assert not is_notice_only("The paper said the budget was published on Friday.")


def test_choice_without_metadata_prefers_prose_over_links() -> None:
    teasers = "\n".join(f"Five things to know about story number {n} tonight" for n in range(9))
    links = {line.casefold() for line in teasers.splitlines()}

    def is_link(line: str) -> bool:
        return line.casefold() in links

    article = "\n".join(SENTENCES)

    assert choose_body(NOTICE, ["", article], BodyEvidence(), is_link) == article
    assert choose_body(NOTICE, [teasers, article], BodyEvidence(), is_link) == article
    # a precise body of full length is trusted without metadata to say otherwise
    assert choose_body(article, [article + "\n" + NOTICE], BodyEvidence(), is_link) == article


def test_choice_with_metadata_follows_the_metadata() -> None:
    article = "\n".join(SENTENCES)
    with_teasers = article + "\n" + "\n".join(f"Teaser {n} for another story" for n in range(40))
    evidence = BodyEvidence(article_body=article)

    chosen = choose_body("\n".join(SENTENCES[:3]), [with_teasers, article], evidence, str.isspace)

    assert chosen == article


def test_body_never_comes_back_empty_while_a_candidate_has_text() -> None:
    assert choose_body("", ["", "Short text."], BodyEvidence(), str.isspace) == "Short text."


# --- 2. the lead kept ------------------------------------------------------------------

LEAD = (
    "The harbour town will spend a third more on its schools next year, after a vote "
    "that split the council down the middle."
)


@pytest.mark.parametrize(
    "lead_html",
    [
        f'<div class="intro"><b>{LEAD}</b></div>',
        f'<header class="article-intro"><p>{LEAD}</p></header>',
        f'<div class="c-standfirst"><strong>{LEAD}</strong></div>',
    ],
    ids=["bold-intro-div", "header-in-body", "standfirst-div"],
)
def test_lead_at_the_top_of_the_body_is_kept_first(lead_html: str) -> None:
    html = page(
        f'<article><div class="article-body">{lead_html}{paragraphs(range(6))}</div></article>'
    )

    text = extract_article(html, URL).text

    assert text.split("\n\n")[0] == LEAD
    assert text.count(LEAD) == 1


def test_dek_in_the_page_header_is_not_made_part_of_the_body() -> None:
    # The article-extraction corpus leaves a dek beside headline and byline out of the
    # body (10 of 10 such deks on its develop half); only a lead in the body block counts.
    html = page(
        f'<article><header class="entry-header"><p class="dek">{LEAD}</p></header>'
        f'<div class="article-body">{paragraphs(range(6))}</div></article>'
    )

    assert LEAD not in extract_article(html, URL).text


def test_an_ad_slot_named_leaderboard_is_not_a_lead() -> None:
    ad = "Advertise with the Harbour Times and reach every reader in the county this season."
    html = page(
        f'<article><div class="article-body"><div class="leaderboard"><b>{ad}</b></div>'
        f"{paragraphs(range(6))}</div></article>"
    )

    assert ad not in extract_article(html, URL).text


# --- red-team: what is not the lead -------------------------------------------------


def test_intro_inside_a_related_box_is_not_the_lead() -> None:
    teaser = "Why the harbour ferry was cancelled again this summer, and what comes next for it."
    box = f'<div class="related"><div class="intro">{teaser}</div></div>'
    html = page(f'<article><div class="article-body">{box}{paragraphs(range(6))}</div></article>')

    assert teaser not in extract_article(html, URL).text


def test_a_lead_that_is_mostly_a_link_is_a_teaser_not_the_lead() -> None:
    teaser = "Why the harbour ferry was cancelled again this summer and what comes next"
    lead = f'<div class="intro"><a href="/ferry">{teaser}</a> (video)</div>'
    html = page(f'<article><div class="article-body">{lead}{paragraphs(range(6))}</div></article>')

    assert teaser not in extract_article(html, URL).text


def test_choice_skips_a_longer_candidate_of_teasers() -> None:
    teasers = "\n".join(f"Five things to know about harbour story number {n}" for n in range(20))
    links = {line.casefold() for line in teasers.splitlines()}
    article = "\n".join(SENTENCES)
    assert len(teasers) > len(NOTICE)

    chosen = choose_body(
        NOTICE, [teasers, article], BodyEvidence(), lambda x: x.casefold() in links
    )

    assert chosen == article


def test_a_summary_box_at_the_top_of_the_body_is_not_the_lead() -> None:
    # The corpus leaves summary boxes out of the body even where their text is the
    # page's description; a lead opens the article, a summary sums it up beside it.
    summary = (
        "The harbour town will spend a third more on its schools next year, the council "
        "decided after a long night."
    )
    head = f'<meta name="description" content="{summary}">'
    html = page(
        # (in a <header>, which trafilatura's precision setting drops)
        f'<article><div class="article-body"><header><p class="summary">{summary}</p>'
        f"</header>{paragraphs(range(6))}</div></article>",
        head=head,
    )

    assert summary not in extract_article(html, URL).text
