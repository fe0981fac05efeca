"""The schema of how newswatch reaches a site that wants more than a plain GET:
request headers, cookies, a user agent and a proxy, per source (``sources[]``) or
per host (``domains.<host>``).

Secrets come from environment variables (``headers_env``, ``cookies_env``,
``proxy_env``) or a file (``cookies_file``), never from a value that is printed:
header values are ``SecretStr`` (a repr shows ``**********``), no message here ever
repeats a header, cookie or proxy password, and a proxy URL in the file may not hold
a password. What is sent where is decided at run time (spiders/access.py).
"""

from __future__ import annotations

import os
import re
import time
import warnings
from http.cookiejar import LoadError, MozillaCookieJar
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, SecretStr, model_validator

from crawler.domain.config.values import (
    MAX_PATH_CHARS,
    MAX_TEXT_CHARS,
    MAX_URL_CHARS,
    KeyedValueError,
    VariableName,
    _shown,
    _Strict,
)
from crawler.domain.urls import redact_url, split_userinfo

# An HTTP field name (RFC 9110 5.1: a token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
# A field value: visible ASCII or Latin-1, spaces and tabs inside; no line break, NUL
# or other control character (a line break would start another header).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
MAX_HEADER_VALUE_CHARS = 8192
# Headers the poll sets itself, or that have a key of their own.
_OWN_KEYS = {
    "user-agent": "give it as user_agent",
    "cookie": "give cookies in cookies_file or cookies_env",
    "proxy-authorization": "put the proxy's user and password in the URL proxy_env names",
    "host": "the URL gives the host",
    "content-length": "the request has no body",
    "transfer-encoding": "the request has no body",
    "connection": "the connection is the crawler's business",
    "if-none-match": "polls send their own validators",
    "if-modified-since": "polls send their own validators",
}
# Schemes a proxy may have. A SOCKS proxy's requests go through Scrapy's httpx handler
# (spiders/socks.py), whose SOCKS client (httpcore) speaks version 5 only, and sends
# the site's name to the proxy with either scheme: the proxy looks it up.
SOCKS_SCHEMES = ("socks5", "socks5h")
PROXY_SCHEMES = ("http", "https", *SOCKS_SCHEMES)
_SOCKS4_SCHEMES = ("socks4", "socks4a")
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,200}")
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*|\"[^\"\\\x00-\x1f]*\"")
# The first line MozillaCookieJar requires of a cookies.txt file.
_COOKIES_MAGIC = re.compile(r"#( Netscape)? HTTP Cookie File")


def _check_header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(
            f"{_shown(name, 40)} is not an HTTP header name (letters, digits and "
            "!#$%&'*+.^_`|~- only)"
        )
    return name


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as a header value, or None. Never repeats it."""
    if len(value) > MAX_HEADER_VALUE_CHARS:
        return f"a header value has at most {MAX_HEADER_VALUE_CHARS:,} characters"
    if not _HEADER_VALUE.fullmatch(value):
        return (
            "a header value holds a line break or another control character, or a "
            "character beyond Latin-1"
        )
    return None


def _check_header_value(value: SecretStr) -> SecretStr:
    if (problem := header_value_problem(value.get_secret_value())) is not None:
        raise ValueError(problem)
    return value


def proxy_url_problem(url: str) -> str | None:
    """Why ``url`` is no usable proxy URL, or None. Never repeats the URL's password."""
    scheme, colon, rest = url.partition("://")
    if len(url) > MAX_URL_CHARS or not colon or not rest or re.search(r"[\s\x00-\x1f]", url):
        return (
            "expected a proxy URL such as http://proxy.example.net:3128 or "
            "socks5://127.0.0.1:1080 (http, https, socks5 or socks5h; no spaces)"
        )
    if scheme.lower() in _SOCKS4_SCHEMES:
        return (
            f"{scheme} proxies are not supported: newswatch speaks SOCKS version 5 only; "
            "give the proxy as socks5:// (most SOCKS servers speak both versions)"
        )
    if scheme.lower() not in PROXY_SCHEMES:
        return (
            "a proxy URL starts with http://, https://, socks5:// or socks5h://, not "
            f"{_shown(scheme, 20)}://"
        )
    host = split_userinfo(url)[0].partition("://")[2].split("/", 1)[0]
    if not host or host.startswith(":"):
        return "the proxy URL has no host"
    return None


def is_socks_proxy(url: str | None) -> bool:
    """True for a SOCKS proxy's URL (checked at load by ``proxy_url_problem``)."""
    return url is not None and url.partition("://")[0].lower() in SOCKS_SCHEMES


def browser_proxy_problem(url: str | None) -> str | None:
    """Why headless Chromium cannot render pages through the proxy ``url``, or None:
    it logs in to http(s) proxies only, never to a SOCKS proxy. Never repeats the
    URL's password."""
    if is_socks_proxy(url) and split_userinfo(url or "")[1] is not None:
        return (
            "Chromium, which renders its pages, cannot log in to a SOCKS proxy: its "
            "proxy URL has a user and password; use a SOCKS proxy without a login (one "
            "only this machine can reach), an http(s) proxy, or no render"
        )
    return None


def _check_proxy(url: str) -> str:
    if (problem := proxy_url_problem(url)) is not None:
        raise ValueError(f"{problem}, got {_shown(redact_url(url))}")
    if split_userinfo(url)[2] is not None:
        raise ValueError(
            f"the proxy URL holds a password ({_shown(redact_url(url))}): put the whole "
            "URL in an environment variable and name it in proxy_env, so that the "
            "password stays out of the file"
        )
    return url


def _check_user_agent(agent: str) -> str:
    if not agent.strip() or header_value_problem(agent) is not None:
        raise ValueError("expected a User-Agent on one line, of Latin-1 characters")
    return agent


def _check_file(path: Path) -> Path:
    if len(str(path)) > MAX_PATH_CHARS or not str(path).strip():
        raise ValueError(f"expected a file path of at most {MAX_PATH_CHARS:,} characters")
    return path


def cookie_pairs_problem(text: str) -> str | None:
    """Why ``text`` is not ``name=value; name2=value2`` (a Cookie header as a
    browser's developer tools show it), or None. Never repeats a value."""
    pairs = [pair.strip() for pair in text.split(";") if pair.strip()]
    if not pairs:
        return "it holds no cookie; expected name=value; name2=value2"
    for number, pair in enumerate(pairs, 1):
        name, equals, value = pair.partition("=")
        if not equals or not _COOKIE_NAME.fullmatch(name.strip()):
            return f"cookie {number} is not name=value; expected name=value; name2=value2"
        if not _COOKIE_VALUE.fullmatch(value.strip()):
            return f"the value of cookie {name.strip()} holds a space, comma, quote or control"
    return None


def cookie_pairs(text: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of ``name=value; name2=value2`` (checked at load)."""
    return [
        (name.strip(), value.strip())
        for name, _, value in (pair.partition("=") for pair in text.split(";") if pair.strip())
    ]


def load_cookies_file(path: Path) -> MozillaCookieJar:
    """The cookies of a Netscape ``cookies.txt`` file (as browsers' extensions, curl and
    yt-dlp write it), session cookies included, expired ones left out. Raises
    ValueError naming the line at fault, never its content (a cookie value)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"cannot read {path}: it is not UTF-8 text") from error
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from error
    if not lines or not _COOKIES_MAGIC.match(lines[0]):
        raise ValueError(
            f"{path}: line 1: not a Netscape cookies.txt file: it must start with "
            "the line # Netscape HTTP Cookie File"
        )
    for number, line in enumerate(lines, 1):
        if (problem := _cookie_line_problem(line)) is not None:
            raise ValueError(f"{path}: line {number}: {problem}")
    jar = MozillaCookieJar(str(path))
    try:
        # http.cookiejar warns with a traceback on a line it cannot read: the check
        # above found those, and its warning is no place for a cookie file's lines.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jar.load(ignore_discard=True, ignore_expires=True)
    except (LoadError, OSError) as error:
        raise ValueError(f"{path}: not a Netscape cookies.txt file") from error
    now = int(time.time())
    for cookie in list(jar):
        if cookie.expires == 0:  # how curl and browsers' extensions write a session cookie
            cookie.expires, cookie.discard = None, True
        elif cookie.is_expired(now):
            jar.clear(cookie.domain, cookie.path, cookie.name)
    return jar


def _cookie_line_problem(line: str) -> str | None:
    """What MozillaCookieJar would refuse in one line, said without the line (it holds a
    cookie value); the jar does the reading."""
    line = line.strip()
    if line.startswith("#HttpOnly_"):
        line = line.removeprefix("#HttpOnly_")
    elif not line or line.startswith(("#", "$")):
        return None
    fields = line.split("\t")
    if len(fields) != 7:
        return (
            f"expected 7 fields separated by tabs (domain, include subdomains, path, "
            f"secure, expires, name, value), found {len(fields)}"
        )
    domain, subdomains, _path, secure, expires, _name, _value = fields
    if subdomains not in ("TRUE", "FALSE") or secure not in ("TRUE", "FALSE"):
        return "the include-subdomains and secure fields are TRUE or FALSE"
    if (subdomains == "TRUE") != domain.startswith("."):
        return "a domain that includes subdomains starts with a dot (.example.com), others do not"
    if expires and not expires.isdigit():
        return "the expires field is a Unix time in seconds (0 or empty: a session cookie)"
    return None


HeaderName = Annotated[str, AfterValidator(_check_header_name)]
HeaderValue = Annotated[SecretStr, AfterValidator(_check_header_value)]
ProxyUrl = Annotated[str, AfterValidator(_check_proxy)]
UserAgent = Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_check_user_agent)]
CookiesFile = Annotated[Path, AfterValidator(_check_file)]


RequestHeaders = Annotated[
    dict[HeaderName, HeaderValue],
    Field(
        default_factory=dict,
        description="Request headers sent to the source's own origin, e.g. "
        "{Accept-Language: fr}; values are never shown.",
    ),
]
HeaderVariables = Annotated[
    dict[HeaderName, VariableName],
    Field(
        default_factory=dict,
        description="Headers whose values come from environment variables, "
        "e.g. {X-Api-Key: NEWS_API_KEY}; sent like headers.",
    ),
]
CookiesFileSetting = Annotated[
    CookiesFile | None,
    Field(
        default=None,
        description="A Netscape cookies.txt file (relative to config.yaml); each "
        "cookie goes where its domain, path and secure flag say.",
    ),
]
CookiesVariable = Annotated[
    VariableName | None,
    Field(
        default=None,
        description="Variable holding cookies as name=value; name2=value2, sent to "
        "the source's own origin.",
    ),
]
UserAgentSetting = Annotated[
    UserAgent | None,
    Field(
        default=None,
        description="User-Agent sent instead of newswatch's; robots.txt is still "
        "read for newswatch.",
    ),
]
ProxySetting = Annotated[
    ProxyUrl | None,
    Field(
        default=None,
        description="Proxy for every request (http, https, socks5 or socks5h), without a password.",
    ),
]
ProxyVariable = Annotated[
    VariableName | None,
    Field(
        default=None,
        description="Variable holding the proxy URL, with its user and password if any.",
    ),
]


class SiteAccessConfig(_Strict):
    """How requests reach a site: the keys ``domains.<host>`` and ``sources[]`` share
    (SourceConfig inherits them, with their checks)."""

    headers: RequestHeaders
    headers_env: HeaderVariables
    cookies_file: CookiesFileSetting
    cookies_env: CookiesVariable
    user_agent: UserAgentSetting
    proxy: ProxySetting
    proxy_env: ProxyVariable

    @model_validator(mode="after")
    def _access_usable(self) -> SiteAccessConfig:
        check_site_access(self)
        return self

    def header_values(self) -> dict[str, str]:
        """Every configured header with its value, those of ``headers_env`` read from
        the environment now (checked to be set at load)."""
        values = {name: value.get_secret_value() for name, value in self.headers.items()}
        values |= {name: os.environ.get(var, "") for name, var in self.headers_env.items()}
        return values

    def proxy_url(self) -> str | None:
        """The proxy, from ``proxy`` or the variable ``proxy_env`` names."""
        if self.proxy_env is not None:
            return os.environ.get(self.proxy_env) or None
        return self.proxy

    def secret_values(self) -> list[str]:
        """The values that must never be shown and cost no file read: headers, the
        cookies of ``cookies_env``, the proxy's password (the web UI redacts them
        from every page as a last line of defence)."""
        values = list(self.header_values().values())
        if self.cookies_env is not None:
            values += [value for _, value in cookie_pairs(os.environ.get(self.cookies_env, ""))]
        if (proxy := self.proxy_url()) is not None:
            values.append(split_userinfo(proxy)[2] or "")
        return [value for value in values if value]

    @property
    def configured(self) -> bool:
        """True when any key is given."""
        return bool(self.model_fields_set & set(SITE_ACCESS_KEYS))


SITE_ACCESS_KEYS = tuple(SiteAccessConfig.model_fields)


def check_site_access(access: SiteAccessConfig) -> None:
    """Raise KeyedValueError (at the key at fault) for settings that contradict each
    other or name variables that are unset or hold something unusable. No message
    repeats a variable's value."""
    given = {name.lower(): name for name in access.headers}
    for name in access.headers_env:
        if name.lower() in given:
            raise KeyedValueError(
                f"the header {name} is in both headers and headers_env; keep one",
                ("headers_env", name),
            )
    for key in ("headers", "headers_env"):
        for name in getattr(access, key):
            if (reason := _OWN_KEYS.get(name.lower())) is not None:
                raise KeyedValueError(
                    f"the header {name} cannot be set here: {reason}", (key, name)
                )
    for name in access.headers:
        if name.lower() == "authorization":
            raise KeyedValueError(
                f"the header {name} carries a credential: give it in headers_env, so "
                "that it stays out of the file",
                ("headers", name),
            )
    for name, variable in access.headers_env.items():
        value = _variable(variable, f"the value of the header {name}", ("headers_env", name))
        if (problem := header_value_problem(value)) is not None:
            raise KeyedValueError(f"${variable}: {problem}", ("headers_env", name))
    if access.cookies_env is not None:
        value = _variable(access.cookies_env, "the cookies", ("cookies_env",))
        if (problem := cookie_pairs_problem(value)) is not None:
            raise KeyedValueError(f"${access.cookies_env}: {problem}", ("cookies_env",))
    if access.proxy is not None and access.proxy_env is not None:
        raise KeyedValueError("give either proxy or proxy_env, not both", ("proxy_env",))
    if access.proxy_env is not None:
        value = _variable(access.proxy_env, "the proxy URL", ("proxy_env",))
        if (problem := proxy_url_problem(value)) is not None:
            raise KeyedValueError(f"${access.proxy_env}: {problem}", ("proxy_env",))


def _variable(variable: str, what: str, loc: tuple[int | str, ...]) -> str:
    value = os.environ.get(variable)
    if not value:
        raise KeyedValueError(
            f"the environment variable {variable} is not set; export it with {what}", loc
        )
    return value


def site_access_for(
    source: SiteAccessConfig | None, domain: SiteAccessConfig | None
) -> SiteAccessConfig:
    """The settings a source's requests use: its host's ``domains`` entry with the
    source's own keys over it, key by key (headers merged by name, whether given in
    ``headers`` or ``headers_env``: the source's win; ``proxy`` and ``proxy_env`` are
    one setting)."""
    layers = [layer for layer in (domain, source) if layer is not None]
    merged: dict[str, Any] = {}
    headers: dict[str, tuple[str, str, Any]] = {}  # lower name: (key, name, value)
    for layer in layers:
        given = layer.model_fields_set & set(SITE_ACCESS_KEYS)
        if given & {"proxy", "proxy_env"}:
            merged.pop("proxy", None)
            merged.pop("proxy_env", None)
        for key in given - {"headers", "headers_env"}:
            merged[key] = getattr(layer, key)
        for key in ("headers", "headers_env"):
            for name, value in getattr(layer, key).items():
                headers[name.lower()] = (key, name, value)
    for key in ("headers", "headers_env"):
        merged[key] = {name: value for kind, name, value in headers.values() if kind == key}
    return SiteAccessConfig.model_construct(_fields_set=set(merged), **merged)
