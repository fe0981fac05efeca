"""Issue 24's furniture and block rules, each on a small synthetic page or line of its
own: related-link lines, prompts and shortcodes dropped, repeats kept where the page
repeats content, short lines of the article block put back, and what must not be
dropped or put back (the red team's cases)."""

from __future__ import annotations

import pytest
from test_extract_fallback import SENTENCES, URL, page, paragraphs

from spiders.extract import clean_body, drop_link_paragraphs, extract_article
from spiders.extract.furniture import is_prompt, is_related_link_line, strip_shortcodes

# --- 2. related-link lines, prompts, shortcodes, repeats ------------------------------

HEADLINES = {
    "why the council voted no on the harbour plan",
    "il governo cade dopo il voto sulla manovra",
    "china furious at macron for hong kong protest jibe",
    "lakers vs nets: nba make final decision on game",
}


def is_page_link(text: str) -> bool:
    return text.casefold() in HEADLINES


@pytest.mark.parametrize(
    "line",
    [
        "Read also: Why the council voted no on the harbour plan",
        "READ MORE | Why the council voted no on the harbour plan",
        "Leggi anche: Il governo cade dopo il voto sulla manovra",
        "Lire aussi | Le gouvernement tombe",
        "Lesen Sie auch: Die Regierung fällt",
        "Also on NBC News: Man shot at gas station dies at hospital",
        "Related:",
        "Leggi anche",
        "Читайте также",
        "» See also: the council's budget in numbers",
        "More Great WIRED Stories",
    ],
)
def test_related_link_lines_are_recognised(line: str) -> None:
    assert is_related_link_line(line, is_page_link)


@pytest.mark.parametrize(
    "line",
    [
        "More than 40 people - including children - were hurt in the crash.",
        "Related: the council said it would vote. Then it did not, and the mayor resigned.",
        "Related: the council said it would vote. Then it did not, and the mayor resigned",
        "Read the council's statement in full below.",
        "Watching the vote, residents said they had expected nothing else.",
    ],
)
def test_article_sentences_are_not_related_link_lines(line: str) -> None:
    assert not is_related_link_line(line, is_page_link)


def test_runs_of_linked_headlines_are_dropped_with_their_tags() -> None:
    text = "\n\n".join(
        [
            SENTENCES[0],
            "China furious at Macron for Hong Kong protest jibe [INSIGHT]|",
            "Lakers vs Nets: NBA make final decision on game",
            SENTENCES[1],
            "Why the council voted no on the harbour plan",
            SENTENCES[2],
        ]
    )
    links = HEADLINES

    kept = drop_link_paragraphs(text, lambda: links).split("\n\n")

    # a lone linked headline between paragraphs may be the article's own cross-head
    assert kept == [
        SENTENCES[0],
        SENTENCES[1],
        "Why the council voted no on the harbour plan",
        SENTENCES[2],
    ]


@pytest.mark.parametrize(
    ("line", "prompt"),
    [
        ("Like this story? Share it with a friend", True),
        ("Share this article", True),
        ("Sign up for our newsletter", True),
        ("There's plenty more where that came from. Sign up for The Brief newsletter", True),
        ("Follow us on Twitter", True),
        ("Get the latest updates right in your inbox. Subscribe to our newsletters.", True),
        ("Iscriviti alla newsletter", True),
        ("Abonnez-vous à notre newsletter", True),
        ("Tempo de leitura: 1 minuto", True),
        ("Advertisement", True),
        ("Subscribe to WIRED and stay smart with more of your favorite writers.", True),
        ("She shared this article with friends before the vote.", False),
        ("He said the sign up for the new scheme was slow.", False),
        ("Comments from the minister were welcome, the council said.", False),
    ],
)
def test_share_and_subscribe_prompts(line: str, prompt: bool) -> None:
    assert is_prompt(line) is prompt


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        (
            '[button link="https://shop.example/pear-jam" color="red"]Buy the jam[/button]',
            "Buy the jam",
        ),
        (
            '[caption id="attachment_12" align="alignleft"]The harbour at dawn[/caption]',
            "The harbour at dawn",
        ),
        ("[embed]https://video.example/12[/embed]", "https://video.example/12"),
        ("[su_note]Open daily from 9 am.[/su_note]", "Open daily from 9 am."),
        ("The mayor said [sic] that the harbour [1] was safe [Reuters].", None),
    ],
)
def test_shortcode_residue_is_removed(paragraph: str, expected: str | None) -> None:
    assert strip_shortcodes(paragraph) == (expected or paragraph)


def test_repeats_far_apart_are_content_and_near_repeats_are_furniture() -> None:
    recipe = [
        "Spiced pear jam",
        "Makes 4 jars",
        "Peel and chop the pears, then cook them with the sugar for twenty minutes.",
        "Stir in the spices and pour the jam into warm jars.",
        "Pear and ginger chutney",
        "Makes 4 jars",
        "Chop the pears and the ginger, then simmer them with vinegar for an hour.",
    ]
    standfirst = "The council passed its budget after a long night."

    assert clean_body("\n".join(recipe), [], []) == "\n\n".join(recipe)
    assert clean_body("\n".join([standfirst, standfirst, *SENTENCES[:2]]), [], []) == (
        "\n\n".join([standfirst, *SENTENCES[:2]])
    )


# --- 2. short lines of the article block --------------------------------------------


@pytest.mark.parametrize(
    "line_html",
    [
        '<header class="item-head"><h3>1. The harbour ferry</h3></header>',
        '<div class="item-heading" style="border-bottom:1px solid">3. The old mill</div>',
    ],
    ids=["list-heading-in-header", "heading-styled-div"],
)
def test_short_line_between_kept_paragraphs_is_put_back_in_place(line_html: str) -> None:
    # trafilatura's precision setting drops both (a <header>, a bordered <div>)
    html = page(
        f'<article><div class="article-body">{paragraphs(range(2))}{line_html}'
        f"{paragraphs(range(2, 4))}</div></article>"
    )
    line = line_html.split(">")[-3 if "<h3>" in line_html else -2].split("<")[0]

    kept = extract_article(html, URL).text.split("\n\n")

    assert kept == [*SENTENCES[:2], line, *SENTENCES[2:4]]


@pytest.mark.parametrize(
    "furniture_html",
    [
        '<div class="share-tools" style="border:1px solid">Share on Harbourbook</div>',
        '<div style="border:1px solid"><a href="/ferry">The harbour ferry timetable</a></div>',
        "<header><blockquote>An embedded post the page quotes</blockquote></header>",
        '<div style="border:1px solid">&lt;span data-mce-type="bookmark"&gt;</div>',
    ],
    ids=["share-class", "link", "blockquote", "escaped-markup"],
)
def test_furniture_between_paragraphs_is_not_put_back(furniture_html: str) -> None:
    html = page(
        f'<article><div class="article-body">{paragraphs(range(2))}{furniture_html}'
        f"{paragraphs(range(2, 4))}</div></article>"
    )

    assert extract_article(html, URL).text.split("\n\n") == SENTENCES[:4]


def test_short_line_after_the_last_kept_paragraph_is_not_put_back() -> None:
    html = page(
        f'<article><div class="article-body">{paragraphs(range(4))}'
        '<div style="border:1px solid">Tickets from the harbour office</div></div></article>'
    )

    assert extract_article(html, URL).text.split("\n\n") == SENTENCES[:4]


@pytest.mark.parametrize(
    "ending",
    [
        "The council meets again on Tuesday, when the harbour plan returns.",
        "(Reporting by Anna Keller; Editing by Tom Hale)",
    ],
    ids=["last-sentence", "credit-line"],
)
def test_last_sentence_and_credit_line_cut_by_the_precise_setting_come_back(ending: str) -> None:
    html = page(
        f'<article><div class="article-body">{paragraphs(range(4))}'
        f'<div style="border:1px solid">{ending}</div></div></article>'
    )

    assert extract_article(html, URL).text.split("\n\n") == [*SENTENCES[:4], ending]


def test_related_card_inside_the_article_block_is_dropped() -> None:
    # trafilatura drops a box classed "related" itself, but keeps this one
    card = (
        '<div class="recommended"><p><strong>Five things to know about the harbour budget '
        "vote</strong></p></div>"
    )
    html = page(
        f'<article><div class="article-body">{paragraphs(range(2))}{card}'
        f"{paragraphs(range(2, 6))}</div></article>"
    )

    assert extract_article(html, URL).text.split("\n\n") == SENTENCES[:6]


def test_the_rest_of_the_article_behind_read_more_is_not_a_teaser() -> None:
    rest = f'<div class="read-more-content">{paragraphs(range(2, 6))}</div>'
    html = page(f'<article><div class="article-body">{paragraphs(range(2))}{rest}</div></article>')

    assert extract_article(html, URL).text.split("\n\n") == SENTENCES[:6]


# --- red-team: article text the furniture rules must keep ------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "Residents can sign up for email updates about the road closures.",
        "The minister said voters should sign up for the scheme's email alerts before Friday.",
        "Start your day with a glass of water, doctors advise.",
        "Leave a comment on the consultation by 5 June, the council said.",
        "Follow us on Twitter, the protesters chanted, as police moved in.",
        "Teilen sich die Parteien die Macht, wird es schwierig.",
        "Compartilhe a sua experiência, pediu o ministro aos eleitores.",
        "Iscriviti al corso entro venerdì, ha detto il sindaco.",
    ],
)
def test_reported_requests_and_sentences_that_open_like_prompts_are_kept(line: str) -> None:
    assert not is_prompt(line)


@pytest.mark.parametrize(
    "line",
    ["Leave a comment below", "Artikel teilen", "Start your day with our morning newsletter"],
)
def test_prompts_narrowed_to_their_own_words_still_go(line: str) -> None:
    assert is_prompt(line)


def test_a_share_prompt_as_long_as_a_paragraph_is_prose() -> None:
    line = (
        "Share this article's figures with care because the survey of harbour traders "
        "was smaller than in any year before it and its margin of error is twice as wide."
    )
    assert not is_prompt(line)


@pytest.mark.parametrize(
    "line",
    [
        "Latest: the death toll has risen to 12.",
        "More: the council will meet again on Friday.",
        "Watch: police footage shows the arrest.",
    ],
)
def test_a_labelled_sentence_of_a_live_report_is_not_a_related_link_line(line: str) -> None:
    assert not is_related_link_line(line, is_page_link)


@pytest.mark.parametrize(
    "paragraph",
    [
        "'They [Facebook] have failed us,' she said.",
        "[YouTube] removed the clip on Tuesday.",
        "[VIDEO] The moment the harbour wall gave way",
    ],
)
def test_an_editors_bracketed_word_is_not_a_shortcode(paragraph: str) -> None:
    assert strip_shortcodes(paragraph) == paragraph


def test_an_unknown_shortcode_with_attributes_is_removed() -> None:
    assert strip_shortcodes('[penny_box id="3" style="wide"]Open daily') == "Open daily"


def test_a_list_of_links_the_article_introduces_is_kept() -> None:
    bills = [f"HB {n} expands school lunch funding for rural districts" for n in (101, 202, 303)]
    items = "".join(f'<li><a href="/bills/{n}">{bill}</a></li>' for n, bill in enumerate(bills))
    html = page(
        f'<article><div class="article-body">{paragraphs(range(3))}'
        f"<p>The governor signed these bills on Friday:</p><ul>{items}</ul>"
        f"{paragraphs(range(3, 6))}</div></article>"
    )

    text = extract_article(html, URL).text

    assert all(bill in text for bill in bills)


def test_prose_in_a_recommendation_box_is_the_articles_own() -> None:
    pick = (
        "Our pick is the Acme Turbo blender, which crushed ice in ten seconds flat and "
        "cost less than fifty pounds."
    )
    box = f'<div class="product-recommendation"><p>{pick}</p></div>'
    html = page(
        f'<article><div class="article-body">{paragraphs(range(2))}{box}'
        f"{paragraphs(range(2, 8))}</div></article>"
    )

    assert pick in extract_article(html, URL).text


# --- red-team: page machinery the block rules must not put back ------------------------


@pytest.mark.parametrize(
    "line",
    [
        "By Anna Keller",
        "May 4, 2024",
        "Loading...",
        "Photo: Getty Images",
        "Story continues below advertisement",
        "Skip Ad",
        "Anna Keller is a reporter covering the harbour.",
        "Advertisement",
    ],
)
def test_page_machinery_between_paragraphs_is_not_put_back(line: str) -> None:
    html = page(
        f'<article><div class="article-body">{paragraphs(range(2))}'
        f'<div style="border:1px solid">{line}</div>{paragraphs(range(2, 4))}</div></article>'
    )

    assert extract_article(html, URL).text.split("\n\n") == SENTENCES[:4]


@pytest.mark.parametrize(
    "furniture_html",
    [
        '<div class="byline">Anna Keller</div>',
        '<div style="border:1px solid"><button>Harbour ferry timetable</button></div>',
        "<form><div>Harbour ferry timetable</div></form>",
    ],
    ids=["furniture-class", "button-text", "furniture-tag"],
)
def test_a_short_line_in_furniture_is_not_put_back(furniture_html: str) -> None:
    html = page(
        f'<article><div class="article-body">{paragraphs(range(2))}{furniture_html}'
        f"{paragraphs(range(2, 4))}</div></article>"
    )

    assert extract_article(html, URL).text.split("\n\n") == SENTENCES[:4]


def test_copyright_and_update_notes_after_the_body_are_not_put_back() -> None:
    endings = "".join(
        f'<div style="border:1px solid">{line}</div>'
        for line in ("This story has been updated.", "Copyright 2024 The Harbour Times.")
    )
    html = page(
        f'<article><div class="article-body">{paragraphs(range(4))}{endings}</div></article>'
    )

    assert extract_article(html, URL).text.split("\n\n") == SENTENCES[:4]


def test_an_agency_credit_after_the_body_comes_back() -> None:
    html = page(
        f'<article><div class="article-body">{paragraphs(range(4))}'
        '<div style="border:1px solid">— AFP</div></div></article>'
    )

    assert extract_article(html, URL).text.split("\n\n") == [*SENTENCES[:4], "— AFP"]


def test_a_label_of_its_own_before_a_linked_headline_goes() -> None:
    # not a label the related-line patterns know, but the headline is a page link
    headline = "Why the council voted no on the harbour plan"
    text = "\n\n".join([SENTENCES[0], f"Previously: {headline}", SENTENCES[1]])

    kept = drop_link_paragraphs(text, lambda: {headline.casefold()})

    assert kept.split("\n\n") == SENTENCES[:2]


def test_most_of_a_body_in_recommendation_boxes_is_not_dropped_as_teasers() -> None:
    # a site that classes its own list "recommended" (MAX_TEASER_SHARE): past a quarter
    # of the body, the class names say something else than "teaser"
    picks = [f"Harbour pick number {n}: the old mill walk" for n in range(4)]
    boxes = "".join(
        f'<div class="recommended"><p><strong>{pick}</strong></p></div>' for pick in picks
    )
    html = page(f'<article><div class="article-body">{paragraphs(range(2))}{boxes}</div></article>')

    assert extract_article(html, URL).text.split("\n\n") == [*SENTENCES[:2], *picks]
