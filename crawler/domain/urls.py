"""URLs: canonical article keys, source URLs with credentials, and URL patterns.

One key per article, whatever link led to it (``canonicalize_url``); the userinfo of
a source URL split off and kept out of everything shown (``split_userinfo``,
``redact_url``, ``redact_text``); and the ``allow``/``deny`` patterns users write,
compiled with RE2 so that matching is linear in the URL's length
(``compile_url_pattern``). Pure functions, no network.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import re2
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


class InvalidUrlError(ValueError):
    """Not an absolute http(s) URL with a host (and a port in range): no article key
    can be made from it. The message says why, never repeating the URL."""


def canonicalize_url(url: str) -> str:
    """Return the key under which an article URL is stored.

    Scheme and host are lower-cased (a trailing dot on the host dropped), userinfo,
    the default port and the fragment dropped, the query sorted and stripped of
    tracking parameters, percent-encoding made uniform (w3lib), and AMP renderings
    mapped to the article (``/amp/`` path segments, ``?outputType=amp``, ``?amp``,
    ``amp.`` hosts). The trailing slash is kept: sites differ on whether it names
    another page. Mobile hosts (``m.``) are kept too, since only the page itself can
    confirm they mirror the main site; its ``rel=canonical`` does that at extraction.

    The key is a fixed point: canonicalising it again gives it back. Raises
    ``InvalidUrlError`` (a ``ValueError``) for anything that is not an absolute
    http(s) URL with a host and a valid port.
    """
    return _canonical(url)


def _canonical(url: str) -> str:
    parts = _split(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidUrlError("not an http(s) URL")
    host = _host(parts.hostname)
    if host.startswith("amp.") and host.count(".") >= 2:
        host = host.removeprefix("amp.")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking_parameter(k) and not _is_amp_parameter(k, v)
    ]
    netloc = f"[{host}]" if ":" in host else host
    port = _port(parts)
    if port is not None and DEFAULT_PORTS[scheme] != port:
        netloc = f"{netloc}:{port}"
    try:
        # Dot segments resolved and escapes made uniform first, so that the AMP
        # segments are seen as they will be stored ("/a/amp/." is "/a/amp/").
        path = _strip_amp_path(_uniform_path(parts.path))
        cleaned = urlunsplit((scheme, netloc, path, urlencode(query), ""))
        key = w3lib_canonicalize_url(cleaned, keep_fragments=False)
        checked = _split(key)
        _port(checked)
    except UnicodeError:  # IDNA: a label too long, or characters no domain may hold
        raise InvalidUrlError("not a usable URL: the host is no valid domain name") from None
    except ValueError as error:
        raise InvalidUrlError(f"not a usable URL: {error}") from None
    if checked.scheme not in DEFAULT_PORTS:
        raise InvalidUrlError("not a usable URL: no http(s) scheme")
    _host(checked.hostname)  # e.g. an IDNA encoding that made no valid host
    return key


def _uniform_path(path: str) -> str:
    """``path`` as w3lib stores it: dot segments resolved, percent-encoding uniform."""
    return urlsplit(w3lib_canonicalize_url(urlunsplit(("http", "h", path or "/", "", "")))).path


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as error:
        raise InvalidUrlError(f"not a usable URL: {_split_problem(error)}") from None


def _split_problem(error: ValueError) -> str:
    """What urllib found wrong, in words of our own: its messages repeat the URL's
    authority, password included."""
    if "IPv6" in str(error):
        return "an IPv6 host without its closing ]"
    return "characters in the host or userinfo that read as / ? # @ or : once normalised (NFKC)"


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # out of range, or not a number
        raise InvalidUrlError("not a usable URL: the port is no number from 0 to 65535") from None


def _host(hostname: str | None) -> str:
    """The host, lower-cased, without the root's trailing dot; InvalidUrlError if none."""
    host = (hostname or "").rstrip(".")
    if not host or any(character.isspace() or ord(character) < 32 for character in host):
        raise InvalidUrlError("not a usable URL: no valid host")
    return host


def _is_amp_parameter(name: str, value: str) -> bool:
    key, value = name.lower(), value.lower()
    if key == "outputtype":
        return value == "amp"
    if key == "amp":
        return value in {"", "1", "true"}
    return key in AMP_CACHE_PARAMETERS


def _strip_amp_path(path: str) -> str:
    """``/story/amp/`` → ``/story/``; ``/amp/story`` → ``/story``; ``/x.amp.html`` → ``/x.html``
    (until none is left, so that the result is stripped already: ``/amp/amp/x`` → ``/x``)."""
    while (stripped := _strip_amp_once(path)) != path:
        path = stripped
    return path or "/"


def _strip_amp_once(path: str) -> str:
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
    """The host without ``www.``, ``m.``, ``mobile.`` or ``amp.`` in front ("" for a
    URL too broken to have one)."""
    try:
        name = (urlsplit(url).hostname or "").lower()
    except ValueError:  # e.g. "http://[x"
        return ""
    for prefix in ALTERNATE_HOST_PREFIXES:
        if name.startswith(prefix) and name.count(".") >= 2:
            return name.removeprefix(prefix)
    return name


def same_site(url_a: str, url_b: str) -> bool:
    """True when both URLs are on one site: the same host, give or take ``www.``,
    ``m.``, ``mobile.`` or ``amp.`` in front (a site's own renderings)."""
    return bool(site_host(url_a)) and site_host(url_a) == site_host(url_b)


def is_web_url(url: str) -> bool:
    """True for absolute http(s) URLs, the only ones newswatch fetches or links to
    (False for one too broken to split, such as ``http://[x``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


# -- userinfo in source URLs ----------------------------------------------------------

REDACTED = "***"
# "scheme://userinfo@" anywhere in a text: the userinfo runs to the last "@" before
# the end of the authority ("/", "?", "#" or a space), as urllib splits it.
_USERINFO_RE = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*:)?//[^/?#\s]*@", re.ASCII)
# What urllib ignores in a URL: leading controls and spaces; tabs and line breaks.
_LEADING = "".join(map(chr, range(33)))
_IGNORED = str.maketrans("", "", "\t\r\n")


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its userinfo, and the user name and password it held
    (percent-decoded; None when absent), as urllib and Scrapy read the URL. The rest
    is left as written, but for tabs and line breaks, which urllib ignores."""
    url = url.translate(_IGNORED)
    match = _authority(url)
    if match is None:
        return url, None, None
    start, end = match
    netloc = url[start:end]
    userinfo, at, _host = netloc.rpartition("@")
    if not at:
        return url, None, None
    username, colon, password = userinfo.partition(":")
    return (
        url[:start] + netloc[len(userinfo) + 1 :] + url[end:],
        unquote(username),
        unquote(password) if colon else None,
    )


def _authority(url: str) -> tuple[int, int] | None:
    """Where the authority (``user:pw@host:port``) of ``url`` starts and ends."""
    found = re.match(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//", url.lstrip(_LEADING))
    if found is None:
        return None
    start = len(url) - len(url.lstrip(_LEADING)) + found.end()
    end = start
    while end < len(url) and url[end] not in "/?#":
        end += 1
    return start, end


def redact_url(url: str) -> str:
    """``url`` fit to be shown: its userinfo (as urllib would read it) replaced by
    ``***``, and that of any URL inside it too."""
    read = url.translate(_IGNORED)  # "ht\ttp://u:p@h" is "http://u:p@h" to urllib
    without, username, _password = split_userinfo(url)
    authority = _authority(read)
    if username is None or authority is None:
        return redact_text(url)
    start = authority[0]
    return redact_text(f"{without[:start]}{REDACTED}@{without[start:]}")


def redact_text(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (error
    messages, log lines: a source's password must never be shown)."""
    if "@" not in text:
        return text
    return _USERINFO_RE.sub(lambda m: f"{m.group(1) or ''}//{REDACTED}@", text)


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, default port filled in; None if it
    has none. Credentials go only to the origin they were given for."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.rstrip("."), port or DEFAULT_PORTS[scheme]


def source_url_problem(url: str) -> str | None:
    """Why newswatch could not poll ``url``, or None when it can. (The caller shows
    the URL, redacted: the message never repeats it.)"""
    if re.search(r"[\x00-\x1f\x7f]", url):
        return "a source URL cannot hold control characters (line breaks, tabs, NUL)"
    if re.search(r"\s", url):
        return "a source URL cannot hold spaces (write %20)"
    if not re.match(r"^https?://[^/\s]+", url):
        return "expected an http(s) URL"
    try:
        parts = _split(url)
        _port(parts)
    except InvalidUrlError as error:
        return str(error)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "the URL has no host"
    if ":" not in host:
        try:
            host.encode("idna")
        except UnicodeError:
            return "the host is no valid domain name"
    _url, username, _password = split_userinfo(url)
    if username is not None and ":" in username:
        return "the user name cannot hold a colon (HTTP basic authentication)"
    return None


# -- allow/deny patterns ----------------------------------------------------------------

# Python and PCRE features RE2 does not have: they need backtracking, which is what
# makes a pattern take exponential time on a hostile URL.
_UNSUPPORTED: tuple[tuple[str, str], ...] = (
    (r"\(\?<?[=!]", "lookahead and lookbehind ((?=…), (?!…), (?<=…), (?<!…))"),
    (r"\\[1-9]|\(\?P=|\\g<", "backreferences (\\1, (?P=name))"),
    (r"\(\?>", "atomic groups ((?>…))"),
    (r"[*+?}]\+", "possessive quantifiers (a++, a*+)"),
    (r"\(\?\(", "conditionals ((?(1)…|…))"),
    (r"\\Z", "\\Z (write \\z for the end of the text)"),
)


class UrlPatternError(ValueError):
    """A ``sources[].allow``/``deny`` pattern RE2 cannot compile; the message says why."""


def compile_url_pattern(pattern: str) -> re2._Regexp:
    """Compile an ``allow``/``deny`` pattern with RE2: matching it costs time linear in
    the URL's length, whatever the pattern (no backtracking). Search it with
    ``pattern_matches``. Raises UrlPatternError naming what RE2 lacks, if that is why."""
    options = re2.Options()
    options.log_errors = False  # the error goes into one configuration message instead
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        reason = (
            error.args[0].decode(errors="replace")
            if error.args and isinstance(error.args[0], bytes)
            else str(error)
        )
        for feature, name in _UNSUPPORTED:
            if re.search(feature, pattern):
                raise UrlPatternError(
                    f"invalid regular expression {pattern!r}: RE2, which newswatch uses so "
                    f"that matching a URL takes linear time, has no {name} ({reason}; "
                    "see https://github.com/google/re2/wiki/Syntax)"
                ) from None
        raise UrlPatternError(f"invalid regular expression {pattern!r}: {reason}") from None
    except UnicodeError:
        raise UrlPatternError(
            f"invalid regular expression {pattern!r}: it is not valid Unicode text"
        ) from None


def pattern_matches(pattern: re2._Regexp, url: str) -> bool:
    """True when ``pattern`` (from ``compile_url_pattern``) occurs in ``url``; takes any
    string (a link from a JSON feed may hold lone surrogates, which UTF-8 cannot
    encode)."""
    return pattern.search(url.encode("utf-8", "surrogatepass")) is not None
