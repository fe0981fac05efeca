"""What the web UI's modules share: limits, headers and content types, the
``Reply`` type, and the helpers for search terms, links, ``Host`` headers and text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from alerts.render import safe_url
from alerts.rules import find_terms

HEALTH_TIMEOUT = 5.0  # seconds the database may take to answer /healthz
WEB_THREADS = 4  # database calls of the web UI at once
# Shorter secrets are not searched for in pages: replacing every "news" would
# mangle them, and a secret that short is no protection anyway.
MIN_REDACTED_CHARS = 8
SEARCH_LIMIT = 50
MATCHES_PER_RULE = 50
MATCHES_OF_ONE_RULE = 2000
DELIVERIES_SHOWN = 200
MAX_QUERY_CHARS = 500
# A POST body is kept up to this size; a larger one is dropped and answered 413 (the
# forms and RFC 8058's one-click POST are a few hundred bytes).
MAX_BODY_BYTES = 64 * 1024
MAX_SEARCH_TERMS = 12
MAX_TITLE_CHARS = 300
MAX_ERROR_CHARS = 600
MAX_URL_CHARS = 300
SESSION_COOKIE = b"newswatch_session"
NO_TIME = "—"
# The scheduler's job ids (crawler/orchestration/service.py): the next poll and digest.
POLL_JOB = "poll:{}"
DIGEST_JOB = "digest:{}"

PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# A digest preview is web content in a mail layout: no script, no fetch, only its
# inline styles and images (as a mail client shows them).
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # A ?token=… in the address must not leak to the sites articles link to.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"

_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_INVISIBLE_RE = re.compile(
    "[\u00ad\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_SEARCH_TERM_RE = re.compile(r'"([^"]*)"|(\S+)')
_PORT_RE = re.compile(r"\d{1,5}")
# Names that always mean this machine: a DNS answer cannot make a browser send them.
LOOPBACK_NAMES = frozenset({"localhost"})
MISDIRECTED = (
    b"421 misdirected request: newswatch does not answer to the host name in "
    b"this request's Host header; if the name is yours, add it to "
    b"web.allowed_hosts\n"
)


@dataclass
class Reply:
    """A complete response, written in one go."""

    status: int
    body: bytes
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)


def parse_search(query: str) -> list[str]:
    """The terms of a search box: words, and "quoted phrases", all required.

    Anything else (operators, stars, brackets) is plain text: the store passes
    terms as data. Terms without a letter or digit are dropped.
    """
    terms: list[str] = []
    for phrase, word in _SEARCH_TERM_RE.findall(query[:MAX_QUERY_CHARS]):
        term = " ".join((phrase or word).strip('"').split())
        if any(character.isalnum() for character in term):
            terms.append(term)
    return list(dict.fromkeys(terms))[:MAX_SEARCH_TERMS]


safe_link = safe_url  # one link check for digests and pages


def is_allowed_host(header: bytes, names: frozenset[str]) -> bool:
    """True when a ``Host`` header names this service: an IP address (a page can
    only reach an address literal from its own origin, so that is no rebinding),
    ``localhost`` or a name under it, or one of ``names`` (lower case, without a
    trailing dot); with an optional port. A DNS-rebinding page sends its own
    domain name, which is refused."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):  # an IPv6 literal, "[::1]:8787"
        address, bracket, port = text[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and _PORT_RE.fullmatch(port[1:]))):
            return False
        return _is_address(address)
    host, colon, port = text.rpartition(":") if ":" in text else (text, "", "")
    if colon and not _PORT_RE.fullmatch(port):
        return False
    host = host.removesuffix(".")
    if not host:
        return False
    return (
        _is_address(host) or host in LOOPBACK_NAMES or host.endswith(".localhost") or host in names
    )


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def one_line(text: str | None, limit: int) -> str:
    """``text`` on one line, without control or invisible characters, at most
    ``limit`` characters (cut with "…")."""
    text = _INVISIBLE_RE.sub("", _CONTROL_RE.sub(" ", text or ""))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def highlight(text: str, terms: Sequence[str]) -> Markup:
    """``text`` escaped, with the hits of ``terms`` in ``<mark>``."""
    pieces: list[Markup] = []
    position = 0
    for start, end in find_terms(text, terms):
        pieces.append(escape(text[position:start]))
        pieces.append(Markup("<mark>{}</mark>").format(text[start:end]))
        position = end
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)
