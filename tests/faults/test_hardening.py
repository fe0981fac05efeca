"""Bad input gets one clear line, never a traceback, and secrets are never shown:
URL patterns on RE2, source URLs with credentials, and every failure with a reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import re2
from conftest import write_config
from scrapy import Request
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed

from crawler.domain.config import ConfigError, SourceConfig, load_config
from crawler.domain.items import FetchState
from crawler.domain.urls import compile_url_pattern, pattern_matches
from spiders.base import SourceSpider, basic_authorization, describe_failure

if TYPE_CHECKING:
    from pathlib import Path

# -- allow/deny patterns: RE2 -----------------------------------------------------------

CATASTROPHIC = r"(a+)+$"  # exponential in Python's re on "aaaa…a!"
HOSTILE_URL = "https://news.example/" + "a" * 100_000 + "!"


def test_a_catastrophic_pattern_is_matched_by_re2_in_linear_time() -> None:
    """Python's re takes exponential time for (a+)+$ on "aaa…a!" (30 a's: minutes).
    RE2 has no backtracking: its time is linear in the URL by construction, so the
    test asserts the engine the spider uses, not a wall-clock time."""
    source = SourceConfig(
        name="s",
        feed="https://news.example/rss",
        deny=[CATASTROPHIC],
        allow=[r"^https://news\.example/"],
    )
    spider = SourceSpider(source=source, state=FetchState(), context=None)  # type: ignore[arg-type]
    assert all(isinstance(pattern, re2._Regexp) for pattern in [*spider._allow, *spider._deny])
    assert spider.wanted(HOSTILE_URL)  # not denied: the URL does not end in a's
    assert not spider.wanted("https://news.example/" + "a" * 100_000)  # denied
    assert not spider.wanted("https://other.example/a")  # not allowed
    # Links from JSON feeds may hold lone surrogates, which UTF-8 cannot encode.
    assert pattern_matches(compile_url_pattern("x"), "https://news.example/\ud800x")


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        pytest.param(r"(\d+)-\1", "has no backreferences", id="backreference"),
        pytest.param(r"(?P<y>\d+)(?P=y)", "has no backreferences", id="named-backreference"),
        pytest.param(r"/news/(?!sport)", "has no lookahead and lookbehind", id="lookahead"),
        pytest.param(r"(?<=/)amp", "has no lookahead and lookbehind", id="lookbehind"),
        pytest.param(r"(?>a+)b", "has no atomic groups", id="atomic-group"),
        pytest.param(r"a++", "has no possessive quantifiers", id="possessive"),
        pytest.param(r"\.html\Z", r"write \z for the end", id="python-end-anchor"),
        pytest.param(r"[unclosed", "missing ]", id="syntax"),
    ],
)
def test_a_pattern_re2_cannot_run_is_a_configuration_error(
    tmp_path: Path, pattern: str, says: str
) -> None:
    config = write_config(
        tmp_path,
        sources=[
            {
                "name": "wire",
                "feed": "https://news.example/rss",
                "allow": ["^https://"],
                "deny": ["/video/", pattern],
            }
        ],
    )
    with pytest.raises(ConfigError) as error:
        load_config(config)
    [line] = str(error.value).splitlines()  # one line, naming file, key, line, reason
    assert line.startswith(
        f"{config}: sources[0].deny[1] (line 8): invalid regular expression {pattern!r}"
    ), line
    assert says in line
    if "has no" in says:
        assert "RE2" in line
        assert "linear time" in line


def test_re2_errors_are_not_written_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="backreferences"):
        compile_url_pattern(r"(a)\1")
    assert capfd.readouterr().err == ""  # RE2 logs parse errors itself unless told not to


# -- source URLs with credentials ----------------------------------------------------------

SECRET = "pa55-w0rd-x9"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param(
            f"http://u:{SECRET}@[::1/feed", "an IPv6 host without its closing ]", id="ipv6"
        ),
        pytest.param(
            f"http://u:{SECRET}@news.example:99999/", "the port is no number", id="port-range"
        ),
        pytest.param(
            f"http://u:{SECRET}@news.example:8o/", "the port is no number", id="port-letters"
        ),
        pytest.param(f"http://u:{SECRET}\u2100@news.example/", "once normalised (NFKC)", id="nfkc"),
        pytest.param(f"http://u:{SECRET}@/feed", "the URL has no host", id="no-host"),
        pytest.param(f"http://u:{SECRET}@news..example/", "no valid domain name", id="empty-label"),
        pytest.param(f"http://u:{SECRET}@news.example/a b", "cannot hold spaces", id="space"),
        pytest.param(f"http://u:{SECRET}@news.example/\x00", "control character", id="nul"),
        pytest.param(
            f"http://a%3Ab:{SECRET}@news.example/", "cannot hold a colon", id="colon-in-user"
        ),
    ],
)
def test_a_bad_source_url_is_one_line_without_its_password(
    tmp_path: Path, url: str, problem: str
) -> None:
    config = write_config(tmp_path, sources=[{"name": "wire", "feed": url}])
    with pytest.raises(ConfigError) as error:
        load_config(config)
    [line] = str(error.value).splitlines()
    assert line.startswith(f"{config}: sources[0].feed (line 3): "), line
    assert problem in line
    assert SECRET not in line
    assert "***@" in line or "control character" in line  # (that one shows no URL)


def test_credentials_are_split_off_the_source_url(monkeypatch: pytest.MonkeyPatch) -> None:
    source = SourceConfig(name="s", feed=f"https://al%40ice:{SECRET}@News.example/rss?x=1")
    assert source.url == "https://News.example/rss?x=1"  # requested, stored and shown
    assert source.credentials() == ("al@ice", SECRET)
    assert SECRET not in repr(source)
    assert SECRET not in str(source)
    assert SourceConfig(name="s", feed="https://news.example/rss").credentials() is None
    monkeypatch.setenv("NW_TEST_SOURCE_PASSWORD", SECRET)
    from_env = SourceConfig(
        name="s", site="https://bob@news.example/", password_env="NW_TEST_SOURCE_PASSWORD"
    )
    assert (from_env.url, from_env.credentials()) == ("https://news.example/", ("bob", SECRET))


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        pytest.param(
            {"feed": "https://news.example/rss", "password_env": "NW_TEST_SOURCE_PASSWORD"},
            "sources[0] (line 2): password_env needs the user name in the URL",
            id="no-user",
        ),
        pytest.param(
            {
                "feed": f"https://u:{SECRET}@news.example/rss",
                "password_env": "NW_TEST_SOURCE_PASSWORD",
            },
            "sources[0] (line 2): the URL holds a password and password_env names one",
            id="two-passwords",
        ),
        pytest.param(
            {"feed": "https://u@news.example/rss", "password_env": "NW_TEST_UNSET_PW"},
            "sources[0].password_env (line 4): the environment variable "
            "NW_TEST_UNSET_PW is not set",
            id="unset-variable",
        ),
    ],
)
def test_password_env_problems_are_configuration_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: dict[str, str], problem: str
) -> None:
    monkeypatch.setenv("NW_TEST_SOURCE_PASSWORD", SECRET)
    monkeypatch.delenv("NW_TEST_UNSET_PW", raising=False)
    config = write_config(tmp_path, sources=[{"name": "wire", **source}])
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert problem in str(error.value)
    assert SECRET not in str(error.value)


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        pytest.param("https://news.example/rss", True, id="the-source"),
        pytest.param("https://NEWS.example:443/articles/1", True, id="same-origin"),
        pytest.param("http://news.example/articles/1", False, id="other-scheme"),
        pytest.param("https://news.example:8443/articles/1", False, id="other-port"),
        pytest.param("https://cdn.news.example/articles/1", False, id="subdomain"),
        pytest.param("https://elsewhere.example/articles/1", False, id="other-host"),
        pytest.param("https://news.example.evil.example/", False, id="suffix"),
    ],
)
def test_basic_auth_goes_to_the_source_origin_only(url: str, sent: bool) -> None:
    source = SourceConfig(name="s", feed=f"https://reader:{SECRET}@news.example/rss")
    spider = SourceSpider(source=source, state=FetchState(), context=None)  # type: ignore[arg-type]
    expected = {"Authorization": basic_authorization("reader", SECRET)} if sent else {}
    assert spider.auth_headers(url) == expected


def test_basic_authorization_is_utf8() -> None:
    assert basic_authorization("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert basic_authorization("test", "123£") == "Basic dGVzdDoxMjPCow=="  # RFC 7617 2.1


# -- every failure has a reason -------------------------------------------------------------


def _failure(error: BaseException) -> Failure:
    failure = Failure(error)
    failure.request = Request("https://news.example/rss")  # type: ignore[attr-defined]
    return failure


@pytest.mark.parametrize(
    ("error", "options", "reason"),
    [
        pytest.param(
            DownloadCancelledError(""),
            {"maxsize": 10485760},
            "download cancelled: response larger than download_maxsize (10485760 bytes)",
            id="cancelled-past-maxsize",
        ),
        pytest.param(
            DownloadCancelledError(""),
            {"maxsize": 1024, "stopping": True},
            "download cancelled: the crawl was stopped (shutdown)",
            id="cancelled-by-shutdown",
        ),
        pytest.param(
            CancelledError(),
            {},
            "download cancelled: response larger than download_maxsize",
            id="twisted-cancel-no-limit-known",
        ),
        pytest.param(
            DownloadCancelledError(
                "Cancelling download of x: expected response size "
                "(9) larger than download max size (5)."
            ),
            {},
            "download cancelled: Cancelling download of x: expected response size (9) "
            "larger than download max size (5).",
            id="cancelled-with-message",
        ),
        pytest.param(DownloadTimeoutError(""), {}, "timed out", id="timeout-no-message"),
        pytest.param(IgnoreRequest(), {}, "request ignored", id="ignored"),
        pytest.param(
            ResponseFailed([Failure(ConnectionLost("Connection lost."))]),
            {},
            "download failed: Connection to the other side was lost in a non-clean "
            "fashion: Connection lost",
            id="response-failed",
        ),
        pytest.param(KeyError(), {}, "KeyError (no details given)", id="no-message"),
    ],
)
def test_every_failure_reason_says_what_happened(
    error: BaseException, options: dict[str, object], reason: str
) -> None:
    described = describe_failure(_failure(error), **options)  # type: ignore[arg-type]
    assert described == reason


def test_a_wrapped_download_failure_names_its_twisted_reasons() -> None:
    cause = ResponseFailed([Failure(ConnectionLost("Connection to the other side was lost."))])
    wrapped = DownloadFailedError(str(cause))
    wrapped.__cause__ = cause
    assert describe_failure(_failure(wrapped)) == (
        "download failed: Connection to the other side was lost in a non-clean fashion: "
        "Connection to the other side was lost"
    )
