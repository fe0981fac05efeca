"""Digest rendering: matched articles in, a subject, an HTML and a text body out.

Everything here is pure: no network, no clock, no database. Article text comes
from the web and is untrusted; it reaches the HTML only through Jinja2
autoescaping or `markupsafe.escape`, and links are emitted only for http(s) URLs.

Templates are looked up in the user's template folders first, then in the
packaged `alerts/templates`. Both `digest.html.j2` and `digest.txt.j2` receive:

- ``subject``: the rendered subject line
- ``count``: number of distinct articles in the digest
- ``generated``: when the digest was made, formatted in the digest's time zone
- ``timezone``: the IANA time zone name
- ``sections``: one per rule, each with ``rule``, ``count`` (stories in the
  section, shown or not), ``entries``, ``more`` (stories not shown: the digest
  was cut to fit its budget), ``more_url`` (an http(s) link to all of them, or
  None) and ``more_hint`` (how to see them otherwise); an entry has ``title``,
  ``url`` (None unless http/https), ``source``, ``published`` (formatted, or
  "time unknown"), ``snippet_html`` (escaped, terms wrapped in ``<mark>``),
  ``snippet_text`` (terms wrapped in ``*``; the story's two-sentence lede),
  ``terms``, ``outlets`` ("Reuters, Al Jazeera and 3 more"), ``also_matches``
  (the reader's other rules the story matched, comma-separated, or ""), ``rule``
  (the section it belongs to, named in the top block) and ``follow_up_to`` (e.g.
  "1 Dec": the day the reader was sent the story this one continues, or ""). A
  section with ``top`` set is the opening "Top stories" block.
  ``actions``: the reader's answer links, each with ``action``, ``label`` and ``url``
  (a section has ``actions`` too)
- ``unsubscribe``: the digest's unsubscribe URL (``digest.unsubscribe``: http(s) or
  ``mailto:``), or None
- ``reader_url``: the reader's own page of mutes and pauses, or None
- ``view_url``: this message in the browser, as it was sent (with
  ``web.public_url`` set), or None
- ``trouble``: the sources newswatch cannot trust right now (README, "Source
  health"), each with ``source``, ``state``, ``reason`` and ``since`` (formatted);
  empty for a reader with ``sources_in_trouble: false`` and in alerts
"""

from __future__ import annotations

import contextlib
import email.policy
import email.utils
import functools
import re
import shlex
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)
from markupsafe import Markup, escape

from alerts.rules import find_terms
from alerts.story_text import outlets_line
from crawler.domain.addresses import header_address, needs_smtputf8
from crawler.domain.wording import counted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alerts.ranking import Score

__all__ = [
    "ActionLink",
    "DigestEntry",
    "DigestSection",
    "RenderedDigest",
    "build_message",
    "format_subject",
    "get_environment",
    "make_snippet",
    "render_digest",
]

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
ELLIPSIS = "…"
# Web text is untrusted: a 10,000-character "headline" must not swamp the digest.
MAX_TITLE_CHARS = 300
MAX_FIELD_CHARS = 200
UNKNOWN_TIME = "time unknown"

_WHITESPACE_RE = re.compile(r"\s+")
# Soft hyphens and zero-width characters show up as junk in some mail clients, and
# bidi controls can make a hostile headline display as something else.
_INVISIBLE_RE = re.compile(
    "[\u00ad\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators: in a header
# they could start a new header line; in body text they are never wanted.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SUBJECT_FIELDS = frozenset({"count", "new_articles", "rules"})
# Inline style because many mail clients drop <style> blocks and ignore <mark>.
_MARK = Markup('<mark style="background-color:#ffe869; color:#222222;">{}</mark>')


@dataclass(frozen=True)
class ActionLink:
    """A link with which the reader answers the message (alerts/feedback.py)."""

    action: str
    label: str
    url: str


@dataclass(frozen=True)
class DigestEntry:
    """One matched article as shown in a digest; `published` is aware (UTC) or None."""

    title: str
    url: str
    source: str
    published: datetime | None
    snippet_text: str
    terms: tuple[str, ...]
    also_reported_by: tuple[str, ...] = ()  # other outlets that ran the same story
    updated: bool = False  # an article the reader had, changed since
    article_id: int | None = None  # the main copy, and its story: what answers name
    story_id: int | None = None
    actions: tuple[ActionLink, ...] = ()
    also_matches: tuple[str, ...] = ()  # the reader's other rules the story matched
    score: Score | None = None  # its score for ``rule`` (alerts/ranking.py)
    rule: str = ""  # the rule whose section it belongs to
    follow_up_to: datetime | None = None  # when the reader was sent the story it continues


@dataclass(frozen=True)
class DigestSection:
    """The entries one rule matched; ``more`` stories beyond them were left out,
    and ``more_url``, when given, lists them all. A ``top`` section is the digest's
    opening block of its best stories, whatever their rules."""

    rule: str
    entries: tuple[DigestEntry, ...]
    more: int = 0
    more_url: str | None = None
    actions: tuple[ActionLink, ...] = ()
    top: bool = False


@dataclass(frozen=True)
class SourceTrouble:
    """A source in a bad health state, as a digest's "Sources in trouble" lists it."""

    source: str
    state: str
    reason: str
    since: datetime | None


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class _EntryView:
    title: str
    url: str | None
    source: str
    published: str
    snippet_html: Markup
    snippet_text: str
    terms: tuple[str, ...]
    also_reported_by: str
    updated: bool
    actions: tuple[ActionLink, ...]
    outlets: str
    also_matches: str
    rule: str
    follow_up_to: str


@dataclass(frozen=True)
class _SectionView:
    rule: str
    top: bool
    count: int
    entries: tuple[_EntryView, ...]
    more: int
    more_url: str | None
    more_hint: str
    actions: tuple[ActionLink, ...]


def _clean_line(text: str) -> str:
    """`text` on one line: no control or invisible characters, whitespace collapsed."""
    text = _INVISIBLE_RE.sub("", _CONTROL_RE.sub(" ", text))
    return _WHITESPACE_RE.sub(" ", text).strip()


def make_snippet(body: str, terms: Sequence[str], width: int = 240) -> str:
    """Return a plain-text window of at most `width` characters of `body`.

    The window shows the first hit of `terms` (with some lead-in context), or
    the start of the body when nothing hits. Whitespace is collapsed, words are
    not cut where avoidable, and "…" marks each end that was cut (the ellipses
    are not counted in `width`).
    """
    text = _clean_line(body)
    if len(text) <= width:
        return text
    spans = find_terms(text, terms)
    if spans:
        hit_start, hit_end = spans[0]
        # A third of the spare room goes before the hit: readers need a little
        # lead-in, but what follows the term is usually the news.
        lead = max(0, (width - (hit_end - hit_start)) // 3)
        start = max(0, min(hit_start - lead, len(text) - width))
    else:
        hit_start = hit_end = 0
        start = 0
    end = min(len(text), start + width)

    if start > 0 and text[start - 1] != " ":
        space = text.find(" ", start, hit_start if spans else end)
        if space != -1:
            start = space + 1
    if end < len(text) and text[end] != " ":
        space = text.rfind(" ", max(start + 1, hit_end), end)
        if space != -1:
            end = space

    window = text[start:end].strip()
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    return f"{prefix}{window}{suffix}"


@functools.lru_cache(maxsize=8)
def _cached_environment(template_dirs: tuple[Path, ...]) -> Environment:
    loaders: list[BaseLoader] = [FileSystemLoader(str(folder)) for folder in template_dirs]
    loaders.append(PackageLoader("alerts", "templates"))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html.j2"], default_for_string=True, default=False),
        # Strict so a typo in a template fails loudly instead of mailing blanks.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # `{{ n|counted("new article") }}`: "1 new article", "2 new articles".
    environment.filters["counted"] = counted
    return environment


def get_environment(template_dirs: Sequence[Path] = ()) -> Environment:
    """Return the Jinja2 environment for `template_dirs`, created once per folder list.

    User folders are searched in the order given, before the packaged templates.
    `.html.j2` templates (and templates from strings) are autoescaped.
    """
    return _cached_environment(tuple(Path(folder) for folder in template_dirs))


def _format_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """E.g. "30 Mar 2016, 07:16 IST"; a naive datetime is taken to be UTC."""
    if moment is None:
        return UNKNOWN_TIME
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return f"{local.day} {local:%b %Y, %H:%M %Z}"


def safe_url(url: str | None) -> str | None:
    """`url` if it is an absolute http(s) URL a mail client or page may link to, else
    None. The one check for every link newswatch renders (digests and the web UI)."""
    # Browsers ignore tabs and newlines inside a scheme ("java\tscript:"), so any
    # control character or whitespace disqualifies the URL rather than being parsed.
    if not url or _CONTROL_RE.search(url) or _WHITESPACE_RE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    return url


def footer_unsubscribe(url: str | None) -> str | None:
    """The footer's unsubscribe link: an http(s) URL, or a ``mailto:`` one (as the
    List-Unsubscribe header carries it), else None."""
    if url and url[:7].lower() == "mailto:":
        address = url[7:]
        if address and not (_CONTROL_RE.search(url) or _WHITESPACE_RE.search(url)):
            return url
        return None
    return safe_url(url)


def _highlight_html(text: str, spans: Sequence[tuple[int, int]]) -> Markup:
    """`text` escaped piece by piece, each span wrapped in <mark>."""
    pieces: list[Markup] = []
    position = 0
    for start, end in spans:
        pieces.append(escape(text[position:start]))
        pieces.append(_MARK.format(text[start:end]))  # format() escapes the text
        position = end
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


def _highlight_text(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` with each span wrapped in asterisks, the plain-text convention for emphasis."""
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        pieces.append(text[position:start])
        pieces.append(f"*{text[start:end]}*")
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _entry_view(entry: DigestEntry, zone: ZoneInfo) -> _EntryView:
    snippet = _clean_line(entry.snippet_text)
    spans = find_terms(snippet, entry.terms)
    return _EntryView(
        title=_shorten(_clean_line(entry.title), MAX_TITLE_CHARS) or "(untitled)",
        url=safe_url(entry.url),
        source=_shorten(_clean_line(entry.source), MAX_FIELD_CHARS),
        published=_format_time(entry.published, zone),
        snippet_html=_highlight_html(snippet, spans),
        snippet_text=_highlight_text(snippet, spans),
        terms=entry.terms,
        also_reported_by=", ".join(
            _clean_line(name) for name in entry.also_reported_by if _clean_line(name)
        )[:MAX_FIELD_CHARS],
        updated=entry.updated,
        actions=_safe_actions(entry.actions),
        outlets=_shorten(
            outlets_line([_clean_line(entry.source), *map(_clean_line, entry.also_reported_by)]),
            MAX_FIELD_CHARS,
        ),
        also_matches=_shorten(
            ", ".join(_clean_line(name) for name in entry.also_matches), MAX_FIELD_CHARS
        ),
        rule=_shorten(_clean_line(entry.rule), MAX_FIELD_CHARS),
        follow_up_to=_format_day(entry.follow_up_to, zone),
    )


def _format_day(moment: datetime | None, zone: ZoneInfo) -> str:
    """E.g. "1 Dec"; "" for None."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return f"{local.day} {local:%b}"


def _safe_actions(actions: Sequence[ActionLink]) -> tuple[ActionLink, ...]:
    return tuple(action for action in actions if safe_url(action.url))


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word with "…" when it was longer."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip() + ELLIPSIS


def _count_articles(sections: Sequence[DigestSection]) -> int:
    """Distinct articles: one that matched two rules is still one new article."""
    return len({(entry.url, entry.title) for section in sections for entry in section.entries})


def more_hint(rule: str) -> str:
    """Where a reader finds the stories a cut section left out, without a link."""
    return f"the web UI's Matches page, or: newswatch rules test {shlex.quote(_clean_line(rule))}"


def format_subject(subject_template: str, *, count: int, rules: Sequence[str]) -> str:
    """Fill `{count}`, `{new_articles}` ("1 new article", "3 new articles") and
    `{rules}` in `subject_template`, never raising, in bounded time.

    Only those bare names are substituted, with a format spec of width and
    precision at most `crawler.domain.config.MAX_SUBJECT_WIDTH` (what the configuration
    accepts). Any other placeholder, attribute or index access, conversion, bad or too
    wide format spec (or a value that cannot be shown) is left as written; unbalanced
    braces return the template unchanged. Only the first `MAX_SUBJECT_TEMPLATE_CHARS`
    characters are read; the subject is one line of at most `MAX_SUBJECT_CHARS`."""
    # The configuration decides which placeholders are valid; rendering repeats the
    # check so that a template that never went through it cannot cost anything.
    from crawler.domain.config import (
        MAX_SUBJECT_CHARS,
        MAX_SUBJECT_TEMPLATE_CHARS,
        subject_placeholder_problem,
    )

    template = subject_template[:MAX_SUBJECT_TEMPLATE_CHARS]
    # No spec can show more than this much of the rule names (precision and width
    # are bounded, and the subject is cut anyway).
    names = ", ".join(rules[:MAX_SUBJECT_CHARS])[:MAX_SUBJECT_TEMPLATE_CHARS]
    values: dict[str, object] = {"count": count, "rules": names}
    with contextlib.suppress(ValueError):  # str() of a count of over 4,300 digits
        values["new_articles"] = counted(count, "new article")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return _shorten(_clean_line(template), MAX_SUBJECT_CHARS)
    pieces: list[str] = []
    for literal, field, spec, conversion in parsed:
        pieces.append(literal)  # parse() has already turned "{{" into "{"
        if field is None:
            continue
        replacement = "{" + field + (f"!{conversion}" if conversion else "")
        replacement += (f":{spec}" if spec else "") + "}"
        if (
            field in _SUBJECT_FIELDS
            and subject_placeholder_problem(field, spec or "", conversion) is None
        ):
            with contextlib.suppress(ValueError, TypeError, OverflowError, LookupError):
                replacement = format(values[field], spec or "")
        pieces.append(replacement)
    return _shorten(_clean_line("".join(pieces)), MAX_SUBJECT_CHARS)


def render_digest(
    sections: Sequence[DigestSection],
    *,
    timezone: str,
    subject_template: str,
    generated_at: datetime,
    template_dirs: Sequence[Path] = (),
    unsubscribe: str | None = None,
    count: int | None = None,
    reader_url: str | None = None,
    trouble: Sequence[SourceTrouble] = (),
    view_url: str | None = None,
) -> RenderedDigest:
    """Render the digest's subject, HTML body and text body.

    Sections are shown in the order given; empty sections are left out. Times
    are shown in the IANA `timezone`. ``count`` is the number of new articles
    the digest stands for (by default, the distinct articles of its entries; a
    digest cut to its budget shows fewer). The module docstring lists the
    variables templates receive.
    """
    zone = ZoneInfo(timezone)
    views = tuple(
        _SectionView(
            # A rule's name is a heading: one line (a line break in it would start
            # a new line of the text digest), bounded like every other field.
            rule=_shorten(_clean_line(section.rule), MAX_FIELD_CHARS),
            top=section.top,
            count=len(section.entries) + section.more,
            entries=tuple(_entry_view(entry, zone) for entry in section.entries),
            more=section.more,
            more_url=safe_url(section.more_url),
            more_hint=more_hint(section.rule),
            actions=_safe_actions(section.actions),
        )
        for section in sections
        if section.entries or section.more
    )
    if count is None:
        count = _count_articles(sections)
    subject = format_subject(
        subject_template, count=count, rules=[view.rule for view in views if not view.top]
    )
    context = {
        "subject": subject,
        "count": count,
        "generated": _format_time(generated_at, zone),
        "timezone": timezone,
        "sections": views,
        "unsubscribe": footer_unsubscribe(unsubscribe),
        "reader_url": safe_url(reader_url),
        "view_url": safe_url(view_url),
        "trouble": [
            {
                "source": _shorten(_clean_line(item.source), MAX_FIELD_CHARS),
                "state": item.state,
                "reason": _shorten(_clean_line(item.reason), MAX_FIELD_CHARS),
                "since": _format_time(item.since, zone) if item.since else "",
            }
            for item in trouble
        ],
    }
    environment = get_environment(template_dirs)
    html = inline_css(environment.get_template(HTML_TEMPLATE).render(context))
    text = environment.get_template(TEXT_TEMPLATE).render(context)
    return RenderedDigest(subject=subject, html=html, text=text)


def inline_css(html: str) -> str:
    """Move the template's style sheet into style attributes, as mail clients need;
    media queries stay in the head for clients that honour them. Nothing remote
    is ever loaded."""
    if "<style" not in html:  # a user's template without a style sheet is left as it is
        return html
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    inlined = inliner.inline(html)
    return inlined if inlined.endswith("\n") else inlined + "\n"


def _clean_header(value: str) -> str:
    """A header value with control characters (CR and LF included) removed."""
    return _WHITESPACE_RE.sub(" ", _CONTROL_RE.sub(" ", value)).strip()


UNSUBSCRIBE_SCHEMES = ("https://", "http://", "mailto:")


def _header_url(url: str | None, schemes: tuple[str, ...] = UNSUBSCRIBE_SCHEMES) -> str | None:
    """``url`` fit for a List-Unsubscribe header (one of ``schemes``), else None."""
    cleaned = _clean_header(url or "")
    if cleaned.startswith(schemes) and not any(ch in cleaned for ch in "<>, "):
        return cleaned
    return None


def _one_click_url(url: str | None) -> str | None:
    """An RFC 8058 one-click URL: https, or http on this machine (a trial on loopback)."""
    cleaned = _header_url(url, ("https://", "http://"))
    if cleaned is None or cleaned.startswith("https://"):
        return cleaned
    host = urlsplit(cleaned).hostname or ""
    return cleaned if host in ("localhost", "127.0.0.1", "::1") else None


def build_message(
    digest: RenderedDigest,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    date: datetime,
    unsubscribe: str | None = None,
    one_click: str | None = None,
) -> EmailMessage:
    """Return a multipart/alternative message: text/plain first, then text/html, UTF-8.

    Sets From, To, Subject, Date, Message-ID (used as given, e.g.
    "<abc@newswatch>"), MIME-Version and List-Unsubscribe: with ``one_click`` (the
    service's own RFC 8058 https URL) that URL, ``List-Unsubscribe-Post:
    List-Unsubscribe=One-Click`` and a mailto ``unsubscribe`` beside it; else the
    http(s) or mailto ``unsubscribe``. Control characters, CR and LF included, are removed from
    every header value, so no value can add headers. Addresses carry their domain in
    IDNA form; one with a non-ASCII local part makes the message's headers UTF-8
    (``policy.utf8``: it needs a server that offers SMTPUTF8).
    """
    message = EmailMessage()
    sender = header_address(_clean_header(sender))
    recipient = header_address(_clean_header(recipient))
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = _clean_header(digest.subject)
    message["Date"] = email.utils.format_datetime(
        date if date.tzinfo is not None else date.replace(tzinfo=UTC)
    )
    message["Message-ID"] = _clean_header(message_id)
    # RFC 8058: one HTTPS URI beside the one-click POST header (a mailto may go
    # with it); without a one-click URL, the configured unsubscribe link alone.
    one_click_url = _one_click_url(one_click)
    other = _header_url(unsubscribe, ("mailto:",) if one_click_url else UNSUBSCRIBE_SCHEMES)
    targets = [url for url in (one_click_url, other) if url]
    if targets:
        message["List-Unsubscribe"] = ", ".join(f"<{url}>" for url in targets)
    if one_click_url:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Quoted-printable keeps both bodies 7-bit safe yet readable in the raw source.
    message.set_content(digest.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(digest.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in message.iter_parts():
        # set_content() stamps MIME-Version on every part; it belongs on the top level only.
        del part["MIME-Version"]
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    # Written out, headers fold at 998 characters, not 78: a one-click URL (about 220
    # characters, no space to fold at) must reach the mailbox provider as it is, and
    # the default policy would turn it into RFC 2047 encoded-words nobody can follow.
    # (The bodies were encoded above, with the default policy's 76-character lines.)
    # A non-ASCII local part cannot be encoded (RFC 2047 words inside an address
    # reach nobody): the headers are written in UTF-8 (RFC 6532), for a server that
    # offers SMTPUTF8; alerts/delivery.py refuses clearly to send it to one that does not.
    utf8 = needs_smtputf8(sender) or needs_smtputf8(recipient)
    message.policy = email.policy.default.clone(max_line_length=998, utf8=utf8)
    return message
