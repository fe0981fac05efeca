"""Generate the labelled story set in tests/fixtures/stories/stories.json.

    python tests/make_stories.py          # rewrites stories.json (seeded: same output every run)

The set is built from real article texts: the 92 bodies of the article-extraction
corpus (tests/fixtures/extraction/ground-truth.json, titles read from their pages
with ``spiders.extract.extract_article``) and the fixture site's wire story
(crawler/demo_site/articles/army-pressures-isis.html, an AFP copy) with its
neighbours on the site, each in the set as published.

Positives (same ``story`` label):

* for ``VARIANT_SOURCES`` of them (the seed among them) 3-6 syndicated copies, the
  way other outlets run a wire story: the outlet's own header, footer and
  related-links lines, a rewritten headline, the last paragraphs cut (40-85% of the
  words kept), a paragraph of local context, a photo caption, a dateline, soft
  hyphens and zero-width characters, print hyphenation at line breaks, other
  quotation marks, other number formatting, spelling and small word edits, other
  whitespace, an earlier or later (or missing) publish time; one copy in four of
  those stories is the exact text with other spacing and soft hyphens. For a third
  of these stories the original itself is left out (the wire's own page is not
  crawled), so the copies must find each other;
* for every fifth of them, the publisher's own update under a new URL;
* ``TEASERS`` teasers: about the first quarter of an article in an outlet's full
  boilerplate.

Negatives (distinct labels): the corpus's own topical overlap (three WeWork stories,
two on the Assange case, two on a man who threatened Ilhan Omar, two on a duvet lung
case, ...); splices — an article whose lead sentence is replaced by another article's
lead, labelled with the article it is built from, so it must join that one and not
the lender; the hand-written articles of same-event.json, distinct reports on the
same events as corpus or seed stories (Palmyra, Assange, WeWork, Stadia, the plague
cases, Omar, Europa), one quoting a sentence of the seed; and the hand-written briefs
of briefs.json, four per outlet, each a short text in the same long boilerplate.

``event`` groups the stories about one event or topic (``EVENTS``, or the story
itself): bench/stories.py splits the set into TUNE and HELD-OUT halves by event, so
that each half holds its own hard negatives. Records are written in the order a
crawler would meet them (by publish time; an undated one when its copy was crawled)
and numbered in that order. ``edits`` says what was done to a copy (for reading
failures, not for scoring).
"""

from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newssite import site_file

from spiders.extract import extract_article

SEED = 20240515
VARIANT_SOURCES = 40
ROOT = Path(__file__).resolve().parent.parent
EXTRACTION = ROOT / "tests" / "fixtures" / "extraction"
OUT = ROOT / "tests" / "fixtures" / "stories"
SEED_PAGE = "army-pressures-isis.html"
SITE_PAGES = (
    "army-pressures-isis.html",
    "palmyra-museum.html",
    "satellite-palmyra.html",
    "cup-final.html",
    "memory-crisis.html",
)
UNDATED_BASE = datetime(2019, 11, 18, 6, 0, tzinfo=UTC)
TEASERS = 4
TEASER_DAY = date(2019, 11, 19)

# (built-from, lead-from): the first keeps its body, the second lends its lead sentence.
SPLICES = (
    ("1ace8c85", "06e5123e"),  # WeWork: NYAG probe reported / NYAG probe
    ("bc13ff87", "1ace8c85"),  # WeWork layoffs / NYAG probe
    ("dc7ccccc", "c7e39ac4"),  # Assange: two reports of the Swedish decision
    ("7a457a4f", "6ebac05f"),  # Omar threat: two reports of the plea
    ("d1c57d78", "c50845a7"),  # NASA lunar landers
    ("e100c961", "aade2ec8"),  # Stadia
    ("ba4dfe2d", "8b194530"),  # bubonic plague
    ("686bb170", "14cc2a0c"),  # Europa plumes
    ("a078b365", "9eef8162"),  # duvet lung
    ("624fcd90", "5fa3154e"),  # Hong Kong
)

# Stories about one event or topic: kept in the same half of the TUNE/HELD-OUT split
# (bench/stories.py), so that each half holds its own hard negatives.
EVENTS = {
    "wework": ("06e5123e", "1ace8c85", "bc13ff87"),
    "omar": ("6ebac05f", "7a457a4f"),
    "assange": ("c7e39ac4", "dc7ccccc"),
    "stadia": ("680c2848", "aade2ec8", "e100c961"),
    "europa": ("14cc2a0c", "686bb170"),
    "plague": ("8b194530", "ba4dfe2d"),
    "palmyra": ("army-pressures-isis", "palmyra-museum", "satellite-palmyra", "cup-final"),
    "duvet": ("9eef8162", "a078b365"),
    "lunar-landers": ("c50845a7", "d1c57d78"),
    "hong-kong": ("5fa3154e", "624fcd90", "e4c6a3b4"),
    "hibernation": ("b37be353", "e1c7023e"),
    "meth-campaign": ("156770d6", "3f65af7b"),
    "browns": ("08f79376", "6a72de37"),
    "entermedia": ("0ec95c72", "9da36ae4"),
    "ascom": ("5ae11e58", "c69e539d"),
    "autoracing": ("11ea381a", "cc03ddb5"),
    "taylor-swift": ("55bb6340", "eb62ac84"),
    "trade": ("39d5c43b", "b6906ca0"),
    "delhi-air": ("076f4f33", "16c30add"),
}
EVENT_OF = {key: event for event, keys in EVENTS.items() for key in keys}


@dataclass(frozen=True)
class Outlet:
    """A syndicating outlet: its name and the lines it wraps every story in."""

    name: str
    header: tuple[str, ...]
    footer: tuple[str, ...]
    related: str
    credit: str
    tag: str


OUTLETS = (
    Outlet(
        "Gulf Courier",
        (
            "Home | World | Middle East | Business | Sport | Opinion",
            "Gulf Courier staff and agencies",
        ),
        (
            "Copyright {year} Gulf Courier. All rights reserved. This material may not be "
            "published, broadcast, rewritten or redistributed.",
            "Follow Gulf Courier on Twitter, Facebook and Instagram for the latest updates.",
        ),
        "Related stories",
        "AFP",
        "WORLD: ",
    ),
    Outlet(
        "Northern Star Herald",
        ("Northern Star Herald | News", "Published {date} - Updated {date}"),
        (
            "Got a news tip? Email our newsroom or message us on WhatsApp.",
            "Sign up for the Northern Star Herald morning briefing, delivered to your inbox "
            "every weekday.",
        ),
        "More from the Herald",
        "Reuters",
        "UPDATE 1-",
    ),
    Outlet(
        "Pacific Wire Daily",
        ("PACIFIC WIRE DAILY", "By Agence France-Presse"),
        (
            "This story has been published from a wire agency feed without modifications to "
            "the text. Only the headline has been changed.",
        ),
        "Also read",
        "AFP",
        "",
    ),
    Outlet(
        "Midland Gazette",
        ("Skip to main content", "Midland Gazette > News > International"),
        (
            "Comments are closed for this article.",
            "The Midland Gazette is part of Midland Media Group. Registered in England and Wales.",
        ),
        "You may also like",
        "PA",
        "Latest: ",
    ),
    Outlet(
        "Lakeside Times",
        ("Lakeside Times - Your local news since 1898",),
        (
            "Read more local and world news at the Lakeside Times.",
            "Copyright {year} The Associated Press. All rights reserved.",
        ),
        "Trending now",
        "AP",
        "",
    ),
    Outlet(
        "Capital Post",
        ("Capital Post", "World News", "Share this article: Facebook Twitter Email"),
        ("Have your say in the comments below. Please keep it civil.",),
        "Most read",
        "Getty Images",
        "Breaking: ",
    ),
    Outlet(
        "Riverside Observer",
        ("Riverside Observer - Breaking news, sport, weather", "Wire service report"),
        (
            "Distributed by the wire service. The Riverside Observer is not responsible for "
            "the content of external sites.",
            "Download the Riverside Observer app for breaking news alerts.",
        ),
        "Related",
        "AFP",
        "",
    ),
    Outlet(
        "Metro Ledger",
        ("METRO LEDGER", "Advertisement"),
        (
            "Advertisement",
            "Metro Ledger uses cookies to improve your experience. By continuing you accept "
            "our cookie policy.",
        ),
        "Read next",
        "Reuters",
        "WATCH: ",
    ),
    Outlet(
        "Coastal Tribune",
        ("The Coastal Tribune", "News from around the world, curated by our editors"),
        ("Subscribe to the Coastal Tribune for unlimited access to our journalism.",),
        "Recommended",
        "EPA",
        "",
    ),
    Outlet(
        "Highland Express",
        ("Highland Express Online", "{date}"),
        (
            "Highland Express on social media: follow us for news as it happens.",
            "All content copyright Highland Express Newspapers Ltd.",
        ),
        "Read more",
        "AP",
        "EXPLAINER: ",
    ),
)

TOWNS = ("Millbrook", "Ashford", "Kingsport", "Dunmore", "Fairview", "Riverton", "Oakham")
ORGS = (
    "the chamber of commerce",
    "the regional council",
    "the city's university",
    "the local community association",
    "the county health board",
)
LOCAL_TEMPLATES = (
    "Residents of {town} with relatives in the region told the {outlet} they were "
    "following the news closely and hoped for more information in the coming days.",
    "The {outlet} has contacted {org} in {town} for comment on what the news could mean "
    "for the area.",
    "In {town}, {org} said it would hold a public meeting next week to answer "
    "questions from residents about the developments.",
    "Speaking to the {outlet} on Wednesday, a spokesperson for {org} in {town} said "
    "the organisation was monitoring the situation.",
)
CAPTIONS = (
    "{subject} in a file photo. ({credit})",
    "Photo: {subject} ({credit}/Getty Images)",
    "A picture taken on {day} shows {subject}. Photo: {credit}",
    "Image caption: {subject} | {credit}",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SPELLING = {
    "defense": "defence",
    "organization": "organisation",
    "center": "centre",
    "program": "programme",
    "favorite": "favourite",
    "color": "colour",
    "analyze": "analyse",
    "recognize": "recognise",
    "realize": "realise",
    "labor": "labour",
    "neighbor": "neighbour",
    "percent": "per cent",
}
WORD_EDITS = {
    "said": "says",
    "says": "said",
    "told": "informed",
    "about": "around",
    "however": "but",
    "also": "additionally",
    "big": "large",
    "large": "big",
    "start": "begin",
    "help": "assist",
    "show": "reveal",
    "but": "though",
}
HEADLINE_WORDS = {
    "says": "said",
    "investigating": "probing",
    "drops": "ends",
    "warns": "cautions",
    "reveals": "unveils",
    "new": "fresh",
    "major": "big",
    "kill": "murder",
    "pleads guilty": "admits",
    "picks": "chooses",
    "launch": "debut",
}
SOFT_HYPHEN = "\u00ad"
ZERO_WIDTH = ("\u200b", "\u200c", "\u2060", "\ufeff")


def load_originals() -> list[dict[str, Any]]:
    """The corpus articles and the fixture site's stories, as published, dated or not."""
    originals = []
    truth = json.loads((EXTRACTION / "ground-truth.json").read_text(encoding="utf-8"))
    for page_id in sorted(truth):
        page = truth[page_id]
        html = gzip.decompress((EXTRACTION / f"{page_id}.html.gz").read_bytes())
        title = extract_article(html, page["url"]).title
        originals.append(
            {
                "key": page_id[:8],
                "title": title,
                "body": page["articleBody"],
                "published": (
                    datetime.fromisoformat(page["published_utc"]) if page["published_utc"] else None
                ),
                "source": urlsplit(page["url"]).hostname.removeprefix("www."),
            }
        )
    for name in SITE_PAGES:
        article = extract_article(
            site_file(f"articles/{name}").read_bytes(), f"https://fixture.example/{name}"
        )
        originals.append(
            {
                "key": name.removesuffix(".html"),
                "title": article.title,
                "body": article.text,
                "published": article.published,
                "source": "The Daily Chronicle",
            }
        )
    return originals


def paragraphs(body: str) -> list[str]:
    return [line.strip() for line in body.split("\n") if line.strip()]


def sentences(paragraph: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"“‘(])", paragraph) if s]


def rewrite_headline(title: str, body: str, outlet: Outlet, rng: random.Random) -> str:
    """Another desk's headline for the same story."""
    choice = rng.random()
    if choice < 0.2:  # a new headline written from the lead
        words = paragraphs(body)[0].split()[: rng.randint(7, 11)]
        return " ".join(words).rstrip(",;:")
    headline = re.split(r" [|–-] (?=[^|–-]*$)", title)[0] if rng.random() < 0.7 else title
    for old, new in HEADLINE_WORDS.items():
        if rng.random() < 0.6:
            headline = re.sub(rf"\b{old}\b", new, headline, flags=re.IGNORECASE)
    if rng.random() < 0.3:
        headline = headline.upper() if rng.random() < 0.3 else headline.title()
    if rng.random() < 0.4 and ":" in headline:
        headline = headline.split(":", 1)[1].strip() or headline
    if rng.random() < 0.5:
        headline = outlet.tag + headline
    elif rng.random() < 0.3:
        headline += rng.choice((" - report", " (AFP)", ", officials say", " | Video"))
    return headline


def caption_subject(body: str, rng: random.Random) -> str:
    names = re.findall(r"\b(?:[A-Z][a-z]+ ){1,2}[A-Z][a-z]+\b", body)
    return rng.choice(names) if names else "The scene"


def soften(text: str, rng: random.Random) -> str:
    """Soft hyphens in long words, zero-width characters here and there."""

    def hyphenate(match: re.Match[str]) -> str:
        word = match.group(0)
        if rng.random() < 0.25:
            cut = rng.randint(3, len(word) - 3)
            return word[:cut] + SOFT_HYPHEN + word[cut:]
        if rng.random() < 0.03:
            return word + rng.choice(ZERO_WIDTH)
        return word

    return re.sub(r"\b\w{8,}\b", hyphenate, text)


def break_lines(text: str, rng: random.Random) -> str:
    """Print hyphenation: a few long words split at a line break ("strate-\\ngic")."""

    def split(match: re.Match[str]) -> str:
        word = match.group(0)
        if rng.random() < 0.04:
            cut = rng.randint(3, len(word) - 3)
            return f"{word[:cut]}-\n{word[cut:]}"
        return word

    return re.sub(r"\b[a-z]{9,}\b", split, text)


def requote(text: str, rng: random.Random) -> str:
    if "“" in text or "’" in text:
        return text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    text = re.sub(r'"(\w)', r"“\1", text)
    text = text.replace('"', "”")
    return re.sub(r"(\w)'(\w)", r"\1’\2", text) if rng.random() < 0.8 else text


def renumber(text: str, rng: random.Random) -> str:
    separator = rng.choice(("", " ", "\u202f", "."))
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", separator, text)
    if rng.random() < 0.5:
        text = re.sub(r"(\d) ?(?:percent|per cent)\b", r"\1%", text)
    else:
        text = re.sub(r"(\d)%", r"\1 percent", text)
    return text


def edit_words(text: str, rng: random.Random) -> str:
    """Spelling of the other side of the Atlantic and a few small word edits."""

    def edit(match: re.Match[str]) -> str:
        word = match.group(0)
        lower = word.lower()
        if lower in SPELLING and rng.random() < 0.7:
            new = SPELLING[lower]
        elif lower in WORD_EDITS and rng.random() < 0.15:
            new = WORD_EDITS[lower]
        else:
            return word
        return new.capitalize() if word[0].isupper() else new

    return re.sub(r"\b[A-Za-z]+\b", edit, text)


def respace(text: str, rng: random.Random) -> str:
    space = rng.choice(("  ", "\u00a0", " \t"))
    text = re.sub(r"(?<=[.,]) (?=\w)", lambda m: space if rng.random() < 0.2 else m.group(0), text)
    return text.replace("\n", rng.choice(("\r\n", "\n\n", "\n \n")))


def make_copy(
    original: dict[str, Any], outlet: Outlet, titles: list[str], rng: random.Random, exact: bool
) -> dict[str, Any]:
    """One outlet's copy of ``original``: the same story, its own packaging and edits."""
    edits: list[str] = []
    year = (original["published"] or UNDATED_BASE).year
    delay = timedelta(minutes=rng.randint(-3 * 60, 40 * 60))
    published = None if rng.random() < 0.1 else (original["published"] or UNDATED_BASE) + delay
    date = (published or UNDATED_BASE).strftime("%d %B %Y %H:%M")
    if exact:  # the very same text under another URL, only spacing and hyphens differ
        body = respace(soften(original["body"], rng), rng)
        return {
            "title": original["title"],
            "body": body,
            "published": published,
            "arrival": (original["published"] or UNDATED_BASE) + delay,
            "source": outlet.name,
            "edits": ["exact copy", "soft hyphens", "spacing"],
        }
    parts = paragraphs(original["body"])
    if len(parts) > 2 and rng.random() < 0.6:  # the ending cut: 40-85% of the words kept
        words = round(len(original["body"].split()) * rng.uniform(0.4, 0.85))
        keep = 1
        while keep < len(parts) and len(" ".join(parts[:keep]).split()) < words:
            keep += 1
        if keep < len(parts):
            parts = parts[:keep]
            edits.append(f"cut to {keep} of {len(paragraphs(original['body']))} paragraphs")
    if rng.random() < 0.3 and parts:
        city = rng.choice(("BEIRUT", "NEW YORK", "LONDON", "WASHINGTON", "PARIS", "BEIJING"))
        parts[0] = f"{city} ({outlet.credit}) - {parts[0]}"
        edits.append("dateline")
    if rng.random() < 0.5:
        caption = rng.choice(CAPTIONS).format(
            subject=caption_subject(original["body"], rng),
            credit=outlet.credit,
            day=rng.choice(WEEKDAYS),
        )
        parts.insert(rng.randint(1, max(1, len(parts) - 1)), caption)
        edits.append("caption")
    if rng.random() < 0.4:
        local = rng.choice(LOCAL_TEMPLATES).format(
            town=rng.choice(TOWNS), org=rng.choice(ORGS), outlet=outlet.name
        )
        parts.insert(rng.randint(1, len(parts)), local)
        edits.append("local paragraph")
    if rng.random() < 0.6:
        parts = [line.format(date=date, year=year) for line in outlet.header] + parts
        edits.append("header")
    if rng.random() < 0.7:
        parts += [line.format(date=date, year=year) for line in outlet.footer]
        edits.append("footer")
    if rng.random() < 0.5:
        parts += [outlet.related + ":", *rng.sample(titles, 3)]
        edits.append("related links")
    body = "\n".join(parts)
    for name, change, chance in (
        ("spelling and word edits", edit_words, 0.5),
        ("quotes", requote, 0.5),
        ("numbers", renumber, 0.4),
        ("soft hyphens", soften, 0.5),
        ("line-break hyphens", break_lines, 0.2),
        ("spacing", respace, 0.3),
    ):
        if rng.random() < chance:
            body = change(body, rng)
            edits.append(name)
    title = original["title"]
    if rng.random() < 0.85:
        title = rewrite_headline(original["title"], original["body"], outlet, rng)
        edits.append("headline")
    return {
        "title": title,
        "body": body,
        "published": published,
        "arrival": (original["published"] or UNDATED_BASE) + delay,
        "source": outlet.name,
        "edits": edits,
    }


def updated(original: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The publisher's own update of its story under a new URL: same source, the headline
    kept or marked, a paragraph of new details, a few words changed."""
    parts = paragraphs(original["body"])
    detail = (
        f"{caption_subject(original['body'], rng)} told reporters later on "
        f"{rng.choice(WEEKDAYS)} that more details would be released in the coming days."
    )
    parts.insert(rng.randint(1, len(parts)), detail)
    delay = timedelta(minutes=rng.randint(45, 8 * 60))
    published = (original["published"] or UNDATED_BASE) + delay
    title = original["title"] if rng.random() < 0.5 else "UPDATE 1-" + original["title"]
    return {
        "title": title,
        "body": edit_words("\n\n".join(parts), rng),
        "published": original["published"] and published,
        "arrival": published,
        "source": original["source"],
        "edits": ["update by the same source"],
    }


def splice(built: dict[str, Any], lender: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """``built``'s text behind ``lender``'s lead sentence: still ``built``'s story."""
    lead = sentences(paragraphs(lender["body"])[0])[0]
    parts = paragraphs(built["body"])
    rest = sentences(parts[0])[1:]
    parts[0] = " ".join([lead, *rest])
    delay = timedelta(minutes=rng.randint(30, 20 * 60))
    return {
        "title": built["title"],
        "body": "\n\n".join(parts),
        "published": (built["published"] or UNDATED_BASE) + delay,
        "arrival": (built["published"] or UNDATED_BASE) + delay,
        "source": rng.choice(OUTLETS).name,
        "edits": [f"lead sentence of {lender['key']}"],
    }


def wrapped(parts: list[str], outlet: Outlet, published: datetime) -> str:
    """The outlet's whole header and footer around the paragraphs."""
    date, year = published.strftime("%d %B %Y %H:%M"), published.year
    return "\n".join(
        [
            *(line.format(date=date, year=year) for line in outlet.header),
            *parts,
            *(line.format(date=date, year=year) for line in outlet.footer),
        ]
    )


def wrapped_brief(brief: dict[str, Any], outlet: Outlet) -> dict[str, Any]:
    """A hand-written brief as the outlet runs it: a short text in long boilerplate."""
    published = datetime.fromisoformat(brief["published"])
    return {
        "story": brief["story"],
        "event": brief["event"],
        "title": brief["title"],
        "source": outlet.name,
        "body": wrapped([brief["body"]], outlet, published),
        "published": published,
        "arrival": published,
        "edits": ["hand-written brief", "header", "footer"],
    }


def teaser(original: dict[str, Any], outlet: Outlet, rng: random.Random) -> dict[str, Any]:
    """The first paragraphs only (about a quarter of the words) in the outlet's
    boilerplate: the hardest copy to find, as it shares little with the full text."""
    parts = paragraphs(original["body"])
    keep = 1
    while len(" ".join(parts[:keep]).split()) < len(original["body"].split()) / 4:
        keep += 1
    published = original["published"] + timedelta(minutes=rng.randint(20, 12 * 60))
    return {
        "title": rewrite_headline(original["title"], original["body"], outlet, rng),
        "body": wrapped(parts[:keep], outlet, published),
        "published": published,
        "arrival": published,
        "source": outlet.name,
        "edits": [f"teaser: {keep} of {len(parts)} paragraphs", "header", "footer"],
    }


def build() -> list[dict[str, Any]]:
    rng = random.Random(SEED)  # noqa: S311 (a seeded generator for fixtures, not secrets)
    originals = load_originals()
    by_key = {original["key"]: original for original in originals}
    titles = [original["title"] for original in originals]
    # The seed first, then sources drawn among texts long enough to be syndicated.
    eligible = sorted(
        o["key"] for o in originals if len(o["body"].split()) >= 60 and o["key"] != SEED_PAGE[:-5]
    )
    sources = [SEED_PAGE[:-5], *rng.sample(eligible, VARIANT_SOURCES - 1)]
    # A third of the syndicated stories come only as copies: the wire's own text is on
    # no crawled site, so copies must be matched to each other.
    unseen = {key for number, key in enumerate(sources) if number % 3 == 2}
    records: list[dict[str, Any]] = []
    for original in originals:
        if original["key"] not in unseen:
            records.append(
                {
                    **original,
                    "story": original["key"],
                    "edits": [],
                    "arrival": original["published"]
                    or UNDATED_BASE + timedelta(minutes=rng.randint(0, 48 * 60)),
                }
            )
    for number, key in enumerate(sources):
        original = by_key[key]
        outlets = rng.sample(OUTLETS, rng.randint(3, 6))
        for position, outlet in enumerate(outlets):
            exact = position == 0 and number % 4 == 0
            copy = make_copy(original, outlet, titles, rng, exact=exact)
            records.append({**copy, "story": key})
        if number % 5 == 1:
            records.append({**updated(original, rng), "story": key})
    for built, lender in SPLICES:
        records.append({**splice(by_key[built], by_key[lender], rng), "story": built})
    outlets = {outlet.name: outlet for outlet in OUTLETS}
    for brief in json.loads((OUT / "briefs.json").read_text(encoding="utf-8")):
        records.append(wrapped_brief(brief, outlets[brief["outlet"]]))
    singles = sorted(
        o["key"]
        for o in originals
        if o["key"] not in sources
        and o["published"] is not None
        and o["published"].date() == TEASER_DAY
        and len(o["body"].split()) >= 200
    )
    for number, key in enumerate(rng.sample(singles, TEASERS)):
        outlet = outlets[("Lakeside Times", "Gulf Courier")[number % 2]]
        records.append({**teaser(by_key[key], outlet, rng), "story": key})
    for article in json.loads((OUT / "same-event.json").read_text(encoding="utf-8")):
        published = datetime.fromisoformat(article["published"])
        records.append(
            {**article, "published": published, "arrival": published, "edits": ["hand-written"]}
        )
    records.sort(key=lambda r: (r["arrival"], r["story"], r["source"], r["title"]))
    return [
        {
            "id": number,
            "story": r["story"],
            "event": r.get("event") or EVENT_OF.get(r["story"], r["story"]),
            "title": r["title"],
            "body": r["body"],
            "published": r["published"].isoformat() if r["published"] else None,
            "source": r["source"],
            "edits": r["edits"],
        }
        for number, r in enumerate(records, start=1)
    ]


def main() -> None:
    records = build()
    path = OUT / "stories.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    stories = {r["story"] for r in records}
    print(f"{path.relative_to(ROOT)}: {len(records)} articles in {len(stories)} stories")


if __name__ == "__main__":
    main()
