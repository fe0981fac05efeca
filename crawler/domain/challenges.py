"""Bot-challenge pages: the interstitials, CAPTCHAs and block pages that bot walls
answer instead of the page asked for (pure, no I/O).

A challenge page is no article: stored, it would be an article titled "Just a
moment..." with a 41-character body, and the real page would never be fetched
again. ``detect_challenge`` recognises the common walls by what their own pages and
headers carry, and says which one it was and why.

Precision comes first, so the markers come in three strengths:

- **Headers** the vendors document as the mark of a challenge response
  (Cloudflare's ``cf-mitigated: challenge``, AWS WAF's ``x-amzn-waf-action``,
  Vercel's ``x-vercel-mitigated``, DataDome's ``x-dd-b``). Any page, any status.
- **Titles** of challenge pages, matched whole ("Just a moment...", "Attention
  Required! | Cloudflare"). Any HTML page.
- **Strong markers**: identifiers found only on the challenge page itself
  (``_cf_chl_opt``, ``captcha-delivery.com``, ``px-captcha``, "Incapsula incident
  ID"). An HTML page of at most STRONG_MAX_BYTES with at most STRONG_MAX_TEXT
  bytes of visible text, so that an article *about* these walls, quoting
  them, is still an article.
- **Weak markers**: what also appears on real pages that the same vendor protects or
  that embed a widget: Cloudflare's ``/cdn-cgi/challenge-platform/`` beacon (its
  JavaScript Detections add it to every page), Imperva's ``_Incapsula_Resource``
  script, a reCAPTCHA in a comment form, AWS WAF's ``challenge.js`` SDK, the generic
  phrases ("Verify you are human"). They count only on a *stub*: an HTML page of at
  most STUB_MAX_BYTES with at most STUB_MAX_TEXT bytes of visible text, which no
  article is.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

# How much of a body is read: challenge pages are small, and the markers sit in the
# head or near it. Bounds the work per page whatever the page's size.
SCAN_BYTES = 65_536
# Text is measured in UTF-8 bytes, so that scripts that say more per character
# (Chinese, Japanese) are not taken for short pages. The challenge fixtures have 0-700
# bytes of visible text; the 92 real articles of the extraction corpus 1,600-60,000.
# A stub: small, and with little to read once scripts, styles and tags are gone.
STUB_MAX_BYTES = SCAN_BYTES
STUB_MAX_TEXT = 1_000
# Strong markers count on pages up to this size with up to this much text: challenge
# pages are a few kilobytes, and an article quoting a marker has more to read.
STRONG_MAX_BYTES = 262_144
STRONG_MAX_TEXT = 1_500


class ChallengeKind(StrEnum):
    CHALLENGE = "challenge"  # an interstitial a browser passes by running a script
    CAPTCHA = "captcha"  # a puzzle for a person
    BLOCK = "block"  # a refusal page: no way through for anyone automated


@dataclass(frozen=True, slots=True)
class Challenge:
    """A recognised bot wall: whose (``vendor``), what it asks, and the marker that
    gave it away (``evidence``, e.g. ``header cf-mitigated: challenge``)."""

    vendor: str
    kind: ChallengeKind
    evidence: str

    @property
    def label(self) -> str:
        """``bot challenge (Cloudflare)``: for log lines and errors."""
        return f"bot challenge ({self.vendor})"


# The response headers detect_challenge reads (lower case): a caller holding a
# framework's header object passes just these.
HEADER_NAMES = (
    "cf-mitigated",
    "x-vercel-mitigated",
    "x-amzn-waf-action",
    "x-dd-b",
    "x-datadome",
    "server",
)

# Titles matched whole (case and surrounding space ignored).
_TITLES: dict[str, tuple[str, ChallengeKind]] = {
    "just a moment...": ("Cloudflare", ChallengeKind.CHALLENGE),
    "just a moment…": ("Cloudflare", ChallengeKind.CHALLENGE),
    "attention required! | cloudflare": ("Cloudflare", ChallengeKind.BLOCK),
    "ddos-guard": ("DDoS-Guard", ChallengeKind.CHALLENGE),
    "vercel security checkpoint": ("Vercel", ChallengeKind.CHALLENGE),
    "sucuri website firewall - access denied": ("Sucuri", ChallengeKind.BLOCK),
    "sucuri website firewall - captcha": ("Sucuri", ChallengeKind.CAPTCHA),
}

# Found only on the challenge page itself (lower case).
_STRONG: tuple[tuple[str, str, ChallengeKind], ...] = (
    # window._cf_chl_opt, cf_chl_prog, __cf_chl_tk: the challenge's own script and form
    ("cf_chl_", "Cloudflare", ChallengeKind.CHALLENGE),
    ("cf-browser-verification", "Cloudflare", ChallengeKind.CHALLENGE),
    ("geo.captcha-delivery.com", "DataDome", ChallengeKind.CAPTCHA),
    ("ct.captcha-delivery.com", "DataDome", ChallengeKind.CAPTCHA),
    ('id="px-captcha"', "PerimeterX", ChallengeKind.CAPTCHA),
    ("incapsula incident id", "Imperva", ChallengeKind.BLOCK),
    ('id="anubis_challenge"', "Anubis", ChallengeKind.CHALLENGE),
)

# Also found on real pages: count only on a stub (lower case).
_WEAK: tuple[tuple[str, str, ChallengeKind], ...] = (
    ("/cdn-cgi/challenge-platform/", "Cloudflare", ChallengeKind.CHALLENGE),
    ("checking if the site connection is secure", "Cloudflare", ChallengeKind.CHALLENGE),
    ("checking your browser before accessing", "Cloudflare", ChallengeKind.CHALLENGE),
    ("cf-turnstile", "Cloudflare Turnstile", ChallengeKind.CAPTCHA),
    ("challenges.cloudflare.com/turnstile", "Cloudflare Turnstile", ChallengeKind.CAPTCHA),
    ("_incapsula_resource", "Imperva", ChallengeKind.CHALLENGE),
    ("awswaf", "AWS WAF", ChallengeKind.CHALLENGE),
    ("aws-waf-token", "AWS WAF", ChallengeKind.CHALLENGE),
    ("px-captcha", "PerimeterX", ChallengeKind.CAPTCHA),
    ("press & hold", "PerimeterX", ChallengeKind.CAPTCHA),
    ("press &amp; hold", "PerimeterX", ChallengeKind.CAPTCHA),
    ("ddos-guard", "DDoS-Guard", ChallengeKind.CHALLENGE),
    ("h-captcha", "hCaptcha", ChallengeKind.CAPTCHA),
    ("hcaptcha.com/1/api.js", "hCaptcha", ChallengeKind.CAPTCHA),
    ("g-recaptcha", "reCAPTCHA", ChallengeKind.CAPTCHA),
    ("google.com/recaptcha/", "reCAPTCHA", ChallengeKind.CAPTCHA),
    ("the requested url was rejected. please consult", "F5 BIG-IP", ChallengeKind.BLOCK),
    ("please enable javascript and cookies to continue", "unidentified", ChallengeKind.CHALLENGE),
    ("enable javascript and cookies to continue", "unidentified", ChallengeKind.CHALLENGE),
    ("verify you are human", "unidentified", ChallengeKind.CHALLENGE),
    ("verifying you are human", "unidentified", ChallengeKind.CHALLENGE),
)

_HTML_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head)\b",
    re.IGNORECASE | re.DOTALL,
)
# Where an invisible block opens: scanned for, then closed with str.find, so that a
# page of unclosed tags costs one pass (a lazy ``.*?`` to a missing close tag would
# rescan the rest of the page from every opening: seconds on a crafted page).
_INVISIBLE_OPEN = re.compile(r"<(script|style|template)\b|<!--", re.IGNORECASE)
_ENCODED = {marker: marker.encode() for marker, _, _ in (*_STRONG, *_WEAK)}
_TAG = re.compile(r"<[^<>]*>")  # not "[^>]*": a run of unclosed "<" would be quadratic


def detect_challenge(status: int, headers: Mapping[str, str], body: bytes) -> Challenge | None:
    """The bot wall this response is, or None for anything else.

    ``headers`` maps lower-case names (those of HEADER_NAMES are enough) to values;
    ``body`` is the decoded (not compressed) body, of which the first SCAN_BYTES are
    read. A page that is not HTML (a feed, JSON) is judged by its headers only.
    """
    found = _by_headers(status, {name.lower(): value for name, value in headers.items()})
    if found is not None:
        return found
    head = body[:SCAN_BYTES]
    if not _HTML_START.match(head):
        return None
    # Markers are ASCII: looked for in the lower-cased bytes (bytes.lower() is a
    # fraction of str.lower()'s cost, and this runs on every page a poll fetches).
    lowered = head.lower()
    title = _title(head, lowered)
    if title is not None and title.lower() in _TITLES:
        vendor, kind = _TITLES[title.lower()]
        return Challenge(vendor, kind, f"title {title!r}")
    if len(body) > STRONG_MAX_BYTES:  # too big for any marker to count
        return None
    strong = _first_marker(lowered, _STRONG)
    if strong is not None:
        whole = body if len(body) <= SCAN_BYTES else body[:STRONG_MAX_BYTES]
        text = whole.decode("utf-8", "replace")
        return strong if _text_size(text) <= STRONG_MAX_TEXT else None
    if len(body) > STUB_MAX_BYTES:
        return None
    weak = _weak_marker(lowered)
    if weak is None or _text_size(head.decode("utf-8", "replace")) > STUB_MAX_TEXT:
        return None
    return weak


def _by_headers(status: int, headers: Mapping[str, str]) -> Challenge | None:
    def header(name: str) -> str:
        return headers.get(name, "").strip().lower()

    if header("cf-mitigated") == "challenge":
        # Cloudflare documents it as set on every challenge page, and only there.
        return Challenge("Cloudflare", ChallengeKind.CHALLENGE, "header cf-mitigated: challenge")
    if (vercel := header("x-vercel-mitigated")) in ("challenge", "deny"):
        kind = ChallengeKind.CHALLENGE if vercel == "challenge" else ChallengeKind.BLOCK
        return Challenge("Vercel", kind, f"header x-vercel-mitigated: {vercel}")
    if (aws := header("x-amzn-waf-action")) in ("challenge", "captcha"):
        kind = ChallengeKind.CHALLENGE if aws == "challenge" else ChallengeKind.CAPTCHA
        return Challenge("AWS WAF", kind, f"header x-amzn-waf-action: {aws}")
    if (datadome := header("x-dd-b")) in ("1", "2"):
        return Challenge("DataDome", ChallengeKind.CAPTCHA, f"header x-dd-b: {datadome}")
    # DataDome sends x-datadome on every response of a site it protects: only a
    # refusal with it is its block page.
    if "x-datadome" in headers and status in (401, 403):
        return Challenge("DataDome", ChallengeKind.CAPTCHA, f"HTTP {status} with x-datadome")
    if header("server") == "ddos-guard" and status == 403:
        return Challenge("DDoS-Guard", ChallengeKind.CHALLENGE, "HTTP 403 from server ddos-guard")
    return None


def _title(head: bytes, lowered: bytes) -> str | None:
    """The page's first ``<title>``, unescaped, whitespace collapsed (None without
    one, or without its closing tag)."""
    start = lowered.find(b"<title")
    if start < 0:
        return None
    opened = lowered.find(b">", start)
    end = lowered.find(b"</title", opened) if opened >= 0 else -1
    if end < 0:
        return None
    text = head[opened + 1 : end].decode("utf-8", "replace")
    return " ".join(html.unescape(text).split())


def _weak_marker(lowered: bytes) -> Challenge | None:
    if b"edgesuite" in lowered and _is_akamai_denial(lowered.decode("utf-8", "replace")):
        return Challenge("Akamai", ChallengeKind.BLOCK, "marker 'errors.edgesuite.net'")
    return _first_marker(lowered, _WEAK)


def _first_marker(
    lowered: bytes, markers: tuple[tuple[str, str, ChallengeKind], ...]
) -> Challenge | None:
    for marker, vendor, kind in markers:
        if _ENCODED[marker] in lowered:
            return Challenge(vendor, kind, f"marker {marker!r}")
    return None


def _is_akamai_denial(lowered: str) -> bool:
    """Akamai's "Access Denied" page: a reference number and its error host, which it
    writes as character references (``errors&#46;edgesuite&#46;net``)."""
    plain = html.unescape(lowered)
    return "access denied" in plain and "reference #" in plain and "errors.edgesuite.net" in plain


def _text_size(markup: str) -> int:
    return len(visible_text(markup).encode("utf-8", "replace"))


def visible_text(markup: str) -> str:
    """What a reader sees of an HTML page, roughly: without scripts, styles,
    comments and tags, whitespace collapsed. An invisible block left open hides the
    rest of the page, as a browser would."""
    lowered = markup.lower()
    kept: list[str] = []
    position = 0
    while (found := _INVISIBLE_OPEN.search(markup, position)) is not None:
        kept.append(markup[position : found.start()])
        closing = "-->" if found.group(1) is None else f"</{found.group(1).lower()}"
        end = lowered.find(closing, found.end())
        if end < 0:
            position = len(markup)
            break
        position = lowered.find(">", end) + 1 if closing != "-->" else end + 3
        if position <= 0:
            position = len(markup)
            break
    kept.append(markup[position:])
    text = _TAG.sub(" ", " ".join(kept))
    return " ".join(html.unescape(text).split())
