"""Property-based fuzzing of URL canonicalisation (crawler/domain/urls.py).

Every article is stored under ``canonicalize_url`` of the link that led to it, and
those links come from feeds, sitemaps and pages nobody on the project controls. The
properties, for any string at all:

- it returns an absolute http(s) URL with a host, or raises ``InvalidUrlError``
  (a ``ValueError``), never anything else;
- canonicalising twice gives what canonicalising once gave (the stored key is a
  fixed point, so a link to a stored article finds it);
- the result keeps no tracking parameter, no fragment and no userinfo.

The URLs are built from parts that real links (and hostile ones) have: odd schemes,
IDNA and IPv6 hosts, ports out of range, percent-encoding, userinfo, huge query
strings, unicode, spaces and NULs; plus fully arbitrary text.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from hypothesis import example, given
from hypothesis import strategies as st

from crawler.domain.urls import (
    TRACKING_PARAMETERS,
    InvalidUrlError,
    canonicalize_url,
    is_tracking_parameter,
    is_web_url,
    redact_url,
    split_userinfo,
)

# Mostly http(s), so that most examples get past the scheme and exercise the rest.
SCHEMES = st.one_of(
    st.just("http"),
    st.just("https"),
    st.just("https"),
    st.sampled_from(
        [
            "HTTP",
            "HtTpS",
            "ftp",
            "javascript",
            "data",
            "file",
            "mailto",
            "",
            "http ",
            " https",
            "ht\ttp",
            "h",
            "svn+ssh",
            "x-y.z",
        ]
    ),
)
SEPARATORS = st.one_of(
    st.just("://"),
    st.just("://"),
    st.just("://"),
    st.sampled_from([":", ":/", ":///", "//", ":\\\\"]),
)
LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
ASCII_HOST = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
UNICODE_HOST = st.lists(
    st.text(st.characters(categories=["Ll", "Lu", "Lo", "Nd"]), min_size=1, max_size=12),
    min_size=1,
    max_size=3,
).map(".".join)
IPV4 = st.ip_addresses(v=4).map(str)
IPV6 = st.ip_addresses(v=6).map(lambda address: f"[{address}]")
HOSTS = st.one_of(
    ASCII_HOST,
    ASCII_HOST,
    ASCII_HOST,
    ASCII_HOST.map(lambda host: "amp." + host),
    ASCII_HOST.map(lambda host: host + "."),  # the root label's dot
    ASCII_HOST.map(str.upper),
    UNICODE_HOST,
    IPV4,
    IPV6,
    st.sampled_from(
        [
            "",
            "[",
            "[::1",
            "::1",
            "[v1.x]",
            "[fe80::1%eth0]",
            "a..b",
            "-x-",
            "xn--",
            "xn--zz",
            "ex ample.com",
            "a@b",
            "%41.example",
            "\x00",
            "localhost",
            "127.0.0.1.",
            "0x7f.1",
            "ａｂｃ.example",
        ]
    ),
    st.text(max_size=20),
)
PORTS = st.one_of(
    st.none(),
    st.none(),
    st.integers(0, 65535).map(str),
    st.sampled_from(["80", "443", "8080"]),
    st.integers(65536, 10**12).map(str),
    st.sampled_from(["", "-1", "80a", " 80", "0x50", "٨٠", "+80"]),
)
USERINFO = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.sampled_from(["user", "user:pass", ":pass", "user:", "u%40x:p%3Ass", "a:b:c", "@"]),
    st.text(max_size=12).filter(lambda text: "/" not in text and "@" not in text),
)
PATH_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
PATHS = st.one_of(
    st.just(""),
    st.lists(
        st.one_of(
            PATH_TEXT,
            st.sampled_from(
                [
                    "amp",
                    "amp",
                    "%61mp",
                    "AMP",
                    "..",
                    ".",
                    "%2e",
                    "%2e%2e",
                    "%zz",
                    "%",
                    "%C3%A9",
                    "café",
                    "a b",
                    "\x00",
                    "x.amp.html",
                    "x.amp.amp.html",
                    "%2F",
                    ";p=1",
                    "~user",
                    "",
                ]
            ),
        ),
        max_size=8,
    ).map(lambda parts: "/" + "/".join(parts)),
)
PARAM_NAMES = st.one_of(
    st.sampled_from(
        [p.rstrip("*") + ("x" if p.endswith("*") else "") for p in TRACKING_PARAMETERS]
    ),
    st.sampled_from(
        [
            "id",
            "page",
            "q",
            "amp",
            "outputType",
            "usqp",
            "UTM_Source",
            "%75tm_x",
            "utm%5Fsource",
            "a+b",
            "",
            "=",
            "&",
            "%",
            "é",
            "FbClId",
        ]
    ),
    st.text(max_size=12),
)
PARAMS = st.lists(
    st.tuples(
        PARAM_NAMES,
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(["", "1", "amp", "true", "%", "%25", "a=b", "a&b", "+", "%2B", " "]),
        ),
    ),
    max_size=8,
)
HUGE_QUERY = st.integers(1, 3000).map(lambda n: "&".join(f"k{i}=v{i}" for i in range(n)))
QUERIES = st.one_of(
    st.none(),
    PARAMS.map(lambda pairs: "&".join(f"{key}={value}" for key, value in pairs)),
    PARAMS.map(lambda pairs: ";".join(f"{key}={value}" for key, value in pairs)),
    HUGE_QUERY,
    st.text(max_size=40),
)
FRAGMENTS = st.one_of(st.none(), st.text(max_size=20), st.just("ref=rss"))


@st.composite
def urls(draw: st.DrawFn) -> str:
    """A URL assembled from parts, each of which can be odd."""
    url = draw(SCHEMES) + draw(SEPARATORS)
    userinfo = draw(USERINFO)
    if userinfo is not None:
        url += userinfo + "@"
    url += draw(HOSTS)
    port = draw(PORTS)
    if port is not None:
        url += ":" + port
    url += draw(PATHS)
    query = draw(QUERIES)
    if query is not None:
        url += "?" + query
    fragment = draw(FRAGMENTS)
    if fragment is not None:
        url += "#" + fragment
    return (
        draw(st.sampled_from(["", " ", "\t", "\n"]))
        + url
        + draw(st.sampled_from(["", " ", "\r\n"]))
    )


ANY_URL = st.one_of(urls(), urls(), urls(), st.text(max_size=200))


def _check(url: str) -> None:
    try:
        key = canonicalize_url(url)
    except InvalidUrlError as error:
        message = str(error)
    else:
        _check_key(url, key)
        return
    password = _password(url)
    assert not password or len(password) < 3 or password not in message, (url, message)


def _check_key(url: str, key: str) -> None:
    parts = urlsplit(key)
    assert is_web_url(key), (url, key)
    assert parts.scheme in {"http", "https"}
    assert parts.hostname, (url, key)
    assert "@" not in parts.netloc, (url, key)  # no userinfo in a stored key
    assert not parts.fragment, (url, key)
    assert "#" not in key, (url, key)
    assert not any(
        is_tracking_parameter(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True)
    ), (url, key)
    assert canonicalize_url(key) == key, (url, key)


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return split_userinfo(url)[2]


@given(ANY_URL)
@example("http://u:s3cret\u2100@h/")  # urllib's own message repeated the password
@example("https://x.example/a/amp/./.")  # "/a/amp/" once, "/a/" the second time
@example("https://x.example/amp/amp/story")
@example("http://user:pass@\xb8!/")  # IDNA made a host with a space: invalid next time
@example("http://[::1]:80/")  # an IPv6 host lost its brackets (crash 1, see below)
@example("http://[::1]:8080/a")
@example("http://[::1/")
@example("http://example.com:99999/")
@example("javascript:alert(1)")
@example("http:///a")
@example("")
def test_canonicalize_url_gives_a_web_url_or_invalid_url_error(url: str) -> None:
    _check(url)


@given(ANY_URL)
@example("http://alice:s3cret@news.example/feed")
@example("http://alice:p@ss@news.example/feed")  # an "@" in the password, unencoded
@example("HTTP://:s3cret@news.example")
def test_redacted_urls_hold_no_userinfo(url: str) -> None:
    shown = redact_url(url)
    try:
        parts = urlsplit(shown)
        userinfo = parts.netloc.rpartition("@")[0]
    except ValueError:
        return
    assert userinfo in ("", "***"), (url, shown)
    without, _user, password = split_userinfo(url)
    assert "@" not in urlsplit(without).netloc, (url, without)
    if password:
        assert f":{password}@" not in shown
