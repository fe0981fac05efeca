"""Canonical article URLs: one key per article, whatever link led to it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url as w3lib_canonicalize_url

# Query parameters that identify a campaign or a click, never the article itself.
# Keys are compared lower-cased; a trailing "*" matches a prefix.
TRACKING_PARAMETERS: tuple[str, ...] = (
    "utm_*",
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "igshid",
    "mkt_tok",
    "ocid",
    "cmpid",
    "ito",
    "ns_mchannel",
    "ns_source",
    "ns_campaign",
    "ns_linkname",
    "ns_fee",
    "sr_share",
    "share",
    "ref",
    "ref_src",
    "ref_url",
    "smid",
    "spm",
    "at_medium",
    "at_campaign",
)

DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_parameter(name: str) -> bool:
    """True when a query parameter only tracks the click (see TRACKING_PARAMETERS)."""
    key = name.lower()
    return any(
        key.startswith(pattern[:-1]) if pattern.endswith("*") else key == pattern
        for pattern in TRACKING_PARAMETERS
    )


def canonicalize_url(url: str) -> str:
    """Return the key under which an article URL is stored.

    Scheme and host are lower-cased, the default port and the fragment dropped, the
    query sorted and stripped of tracking parameters, and percent-encoding made
    uniform (w3lib). The path is kept as it is: sites differ on whether a trailing
    slash names another page.
    """
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not is_tracking_parameter(k)]
    scheme = parts.scheme.lower()
    netloc = (parts.hostname or "").lower()
    if parts.port is not None and DEFAULT_PORTS.get(scheme) != parts.port:
        netloc = f"{netloc}:{parts.port}"
    cleaned = urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))
    return w3lib_canonicalize_url(cleaned, keep_fragments=False)


def same_site(url_a: str, url_b: str) -> bool:
    """True when both URLs are on the same host, ignoring a leading ``www.``."""
    def host(url: str) -> str:
        name = (urlsplit(url).hostname or "").lower()
        return name.removeprefix("www.")

    return bool(host(url_a)) and host(url_a) == host(url_b)


def is_web_url(url: str) -> bool:
    """True for absolute http(s) URLs, the only ones newswatch fetches or links to."""
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)
