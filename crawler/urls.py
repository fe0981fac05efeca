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


# Query parameters that AMP caches add (``?amp``, ``?amp=1`` and ``?outputType=amp``
# are recognised by value, see _is_amp_parameter).
AMP_CACHE_PARAMETERS = frozenset({"amp_js_v", "usqp"})
# Host prefixes of a site's mobile and AMP renderings: the same site, as far as the
# page's own canonical link goes (see same_site).
ALTERNATE_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")


def canonicalize_url(url: str) -> str:
    """Return the key under which an article URL is stored.

    Scheme and host are lower-cased, the default port and the fragment dropped, the
    query sorted and stripped of tracking parameters, percent-encoding made uniform
    (w3lib), and AMP renderings mapped to the article (``/amp/`` path segments,
    ``?outputType=amp``, ``?amp``, ``amp.`` hosts). The trailing slash is kept:
    sites differ on whether it names another page. Mobile hosts (``m.``) are kept
    too, since only the page itself can confirm they mirror the main site; its
    ``rel=canonical`` does that at extraction.
    """
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not is_tracking_parameter(k) and not _is_amp_parameter(k, v)]
    scheme = parts.scheme.lower()
    netloc = (parts.hostname or "").lower()
    if netloc.startswith("amp.") and netloc.count(".") >= 2:
        netloc = netloc.removeprefix("amp.")
    path = _strip_amp_path(parts.path)
    if parts.port is not None and DEFAULT_PORTS.get(scheme) != parts.port:
        netloc = f"{netloc}:{parts.port}"
    cleaned = urlunsplit((scheme, netloc, path or "/", urlencode(query), ""))
    return w3lib_canonicalize_url(cleaned, keep_fragments=False)


def _is_amp_parameter(name: str, value: str) -> bool:
    key, value = name.lower(), value.lower()
    if key == "outputtype":
        return value == "amp"
    if key == "amp":
        return value in {"", "1", "true"}
    return key in AMP_CACHE_PARAMETERS


def _strip_amp_path(path: str) -> str:
    """``/story/amp/`` → ``/story/``; ``/amp/story`` → ``/story``; ``/x.amp.html`` → ``/x.html``."""
    segments = path.split("/")
    if segments and segments[-1] == "amp":
        segments = segments[:-1]
        if segments == [""]:
            segments = ["", ""]
    elif len(segments) > 2 and segments[-2] == "amp" and segments[-1] == "":
        segments = [*segments[:-2], ""]
    elif len(segments) > 2 and segments[1] == "amp":
        segments = ["", *segments[2:]]
    path = "/".join(segments)
    if path.endswith(".amp.html"):
        path = path.removesuffix(".amp.html") + ".html"
    return path


def site_host(url: str) -> str:
    """The host without ``www.``, ``m.``, ``mobile.`` or ``amp.`` in front."""
    name = (urlsplit(url).hostname or "").lower()
    for prefix in ALTERNATE_HOST_PREFIXES:
        if name.startswith(prefix) and name.count(".") >= 2:
            return name.removeprefix(prefix)
    return name


def same_site(url_a: str, url_b: str) -> bool:
    """True when both URLs are on one site: the same host, give or take ``www.``,
    ``m.``, ``mobile.`` or ``amp.`` in front (a site's own renderings)."""
    return bool(site_host(url_a)) and site_host(url_a) == site_host(url_b)


def is_web_url(url: str) -> bool:
    """True for absolute http(s) URLs, the only ones newswatch fetches or links to."""
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)
