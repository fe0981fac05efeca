"""Why a fetch failed, as a small closed set of classes (pure).

The reason a user reads ("connection refused", "HTTP 503 (Retry-After 7200s)") says
what happened in words; the class says which kind of trouble it is, for code that
has to act on it: a source that fails with ``dns`` for a day is gone or misspelt, one
answering ``http`` 403 or a ``challenge`` is blocked, one whose feed is
``unparseable`` changed its format. The spiders map their framework's exceptions
onto these classes (``spiders.failures``).
"""

from __future__ import annotations

from enum import StrEnum

# Statuses a site answers a client it will not serve (RFC 9110 401/403, RFC 6585 429,
# and the 503 that bot walls and rate limiters send), as opposed to a page that is gone
# (404, 410) or a server in trouble (500).
BLOCKING_STATUSES = frozenset({401, 403, 429, 503})


class FailureClass(StrEnum):
    DNS = "dns"  # the host name did not resolve
    CONNECT = "connect"  # refused, reset, unreachable, or closed mid-response
    TLS = "tls"  # the TLS handshake failed
    TIMEOUT = "timeout"  # no (complete) answer within download_timeout
    HTTP = "http"  # an error status (the poll's status says which)
    UNPARSEABLE = "unparseable"  # answered, but not as a feed, sitemap or page we can read
    CHALLENGE = "challenge"  # a bot wall's challenge, CAPTCHA or block page
    ROBOTS = "robots"  # the site's robots.txt disallows the URL
    OTHER = "other"  # anything else (a refused address, too large, a bug)


def is_blocking(failure_class: FailureClass | None, status: int | None) -> bool:
    """True when the site refused us rather than failed: a bot challenge, or a
    status in BLOCKING_STATUSES."""
    return failure_class is FailureClass.CHALLENGE or status in BLOCKING_STATUSES
