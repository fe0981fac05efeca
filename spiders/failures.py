"""Failed fetches, as the spiders see them: a bot-challenge page stopped before it
is read as a page, and the class of any failure (crawler.domain.failures) from
the exception Scrapy or Twisted raised."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, cast

from OpenSSL.SSL import Error as OpenSSLError
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import (
    ConnectError,
    ConnectionClosed,
    DNSLookupError,
    TCPTimedOutError,
    TimeoutError,
    UnknownHostError,
)

from crawler.domain.challenges import HEADER_NAMES, detect_challenge
from crawler.domain.failures import FailureClass

# The message of the IgnoreRequest Scrapy's RobotsTxtMiddleware raises.
ROBOTS_REFUSAL = "Forbidden by robots.txt"

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.http import Response
    from twisted.python.failure import Failure

    from crawler.domain.challenges import Challenge


class SocksProxyError(DownloadConnectionRefusedError):
    """A SOCKS proxy refused the connection or the login, could not be reached, or could
    not reach the site: the message says which in one line, naming the proxy by host
    and port only (spiders/socks.py). Retried and classed as a refused connection."""


class SocksProxyLookupError(CannotResolveHostError):
    """The SOCKS proxy's own host name does not resolve (the site's name is looked up
    by the proxy): the message names the proxy's host."""


class BotChallengeError(IgnoreRequest):
    """The response is a bot wall's challenge, CAPTCHA or block page, not the page
    asked for. Raised by spiders.middlewares.BotChallengeMiddleware, so that the
    request's errback gets it whatever the status (200 included)."""

    def __init__(self, challenge: Challenge, response: Response) -> None:
        super().__init__(challenge.label)
        self.challenge = challenge
        self.response = response

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def reason(self) -> str:
        """``blocked by a bot challenge (Cloudflare)``, after ``HTTP 403: `` when the
        status is not a success."""
        blocked = f"blocked by a {self.challenge.label}"
        return blocked if 200 <= self.status < 300 else f"HTTP {self.status}: {blocked}"


def response_challenge(response: Response) -> Challenge | None:
    """detect_challenge on a Scrapy response (decompressed, as middlewares see it)."""
    headers = {}
    for name in HEADER_NAMES:
        value = response.headers.get(name)
        if value is not None:
            headers[name] = value.decode("latin-1")
    return detect_challenge(response.status, headers, response.body)


def classify_failure(failure: Failure) -> tuple[FailureClass, int | None]:
    """The class of a failed request and the HTTP status it got, if it got one."""
    if failure.check(BotChallengeError):
        return FailureClass.CHALLENGE, cast("BotChallengeError", failure.value).status
    if failure.check(HttpError):
        return FailureClass.HTTP, cast("HttpError", failure.value).response.status
    if failure.check(IgnoreRequest) and str(failure.value).startswith(ROBOTS_REFUSAL):
        return FailureClass.ROBOTS, None
    errors = list(_chain(failure.value)) if failure.value is not None else []
    if any(isinstance(error, OpenSSLError | ssl.SSLError) for error in errors):
        return FailureClass.TLS, None
    for error in errors:
        if isinstance(error, DownloadTimeoutError | TimeoutError | TCPTimedOutError):
            return FailureClass.TIMEOUT, None
        if is_browser_error(error) and type(error).__name__ == "TimeoutError":
            return FailureClass.TIMEOUT, None
        if isinstance(error, DNSLookupError | CannotResolveHostError | UnknownHostError):
            return FailureClass.DNS, None
    for error in errors:
        if isinstance(
            error,
            DownloadConnectionRefusedError
            | ConnectError
            | ConnectionClosed
            | ConnectionError
            | ResponseDataLossError,
        ):
            return FailureClass.CONNECT, None
    return FailureClass.OTHER, None


def is_browser_error(error: BaseException) -> bool:
    """An error raised by Playwright (told by its module: importing Playwright to ask
    would load it into services that never render a page)."""
    return type(error).__module__.startswith("playwright")


def _chain(error: BaseException, depth: int = 0) -> Iterator[BaseException]:
    """The error, what caused it, and the reasons a Twisted ResponseFailed or
    ResponseNeverReceived carries (the TLS error of a failed handshake is one)."""
    yield error
    if depth > 4:
        return
    if error.__cause__ is not None:
        yield from _chain(error.__cause__, depth + 1)
    for reason in getattr(error, "reasons", None) or ():
        if getattr(reason, "value", None) is not None:
            yield from _chain(reason.value, depth + 1)
