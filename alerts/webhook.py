"""Signed webhooks: one HTTP POST of a versioned JSON body per digest or alert.

The body is signed the way Stripe and GitHub sign theirs: an HMAC-SHA256, keyed with
the channel's secret, over ``"<unix timestamp>.<body>"``, sent as
``Newswatch-Signature: t=<timestamp>,v1=<hex digest>``. A receiver recomputes it
(``verify_signature``, and the example in docs/channels.md), compares in constant
time and refuses a timestamp older than a few minutes, so a captured request cannot
be replayed later. ``Idempotency-Key`` is the delivery's own key: the same on every
retry, so a receiver that keeps the keys it has seen never acts twice.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from alerts.channel import (
    ChannelError,
    ChannelMessage,
    is_temporary_status,
    parse_retry_after,
)

if TYPE_CHECKING:
    from alerts.render import DigestEntry

SCHEMA = "newswatch.delivery/1"
SIGNATURE_HEADER = "Newswatch-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "Newswatch-Event"
# How old a signed timestamp a receiver should accept (seconds), against replays.
SIGNATURE_TOLERANCE_SECONDS = 300
# A receiver's answer is read no further than this: only its status matters.
MAX_ANSWER_BYTES = 64 * 1024


def webhook_payload(message: ChannelMessage) -> dict[str, Any]:
    """The JSON object of one delivery (schema ``newswatch.delivery/1``, docs/channels.md)."""
    return {
        "schema": SCHEMA,
        "id": message.idempotency_key,
        "kind": message.kind,
        "channel": message.channel,
        "recipient": message.recipient,
        "created": message.created.isoformat(),
        "subject": message.subject,
        "stories": message.story_count,
        "more_url": message.more_url,
        "manage_url": message.manage_url,
        "sections": [
            {
                "rule": section.rule,
                "more": section.more,
                "more_url": section.more_url,
                "entries": [_entry(entry) for entry in section.entries],
                "actions": {action.action: action.url for action in section.actions},
                "top": section.top,
            }
            for section in message.sections
        ],
    }


def _entry(entry: DigestEntry) -> dict[str, Any]:
    return {
        "title": entry.title,
        "url": entry.url,
        "outlet": entry.source,
        "published": entry.published.isoformat() if entry.published is not None else None,
        "snippet": entry.snippet_text,
        "terms": list(entry.terms),
        "also_reported_by": list(entry.also_reported_by),
        "updated": entry.updated,
        "actions": {action.action: action.url for action in entry.actions},
        "rule": entry.rule or None,
        "also_matches": list(entry.also_matches),
        "score": round(entry.score.total, 4) if entry.score is not None else None,
        "follow_up_to": entry.follow_up_to.isoformat() if entry.follow_up_to else None,
    }


def encode_payload(message: ChannelMessage) -> bytes:
    """The exact bytes sent and signed (UTF-8 JSON, keys in a fixed order)."""
    return json.dumps(webhook_payload(message), ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Newswatch-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance``
    seconds of ``now``: what a receiver checks before it trusts a request."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A POST is never turned into a GET elsewhere: a redirect is an answer to show."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


class WebhookChannel:
    """POSTs each message, signed, to ``url``; raises ChannelError when it was not taken."""

    def __init__(
        self, name: str, url: str, secret: str, *, timeout: float = 30.0, user_agent: str
    ) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self.timeout = timeout
        self.user_agent = user_agent
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __repr__(self) -> str:  # the URL may hold a token: never in logs
        return f"WebhookChannel({self.name!r})"

    def send(self, message: ChannelMessage) -> None:
        body = encode_payload(message)
        request = urllib.request.Request(  # noqa: S310 (an http(s) URL, checked in the config)
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": self.user_agent,
                EVENT_HEADER: message.kind,
                IDEMPOTENCY_HEADER: message.idempotency_key,
                SIGNATURE_HEADER: sign(self._secret, int(time.time()), body),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                answer.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as error:
            raise _refused(self.name, error) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise ChannelError(
                f"webhook {self.name}: not delivered: {reason}", temporary=True
            ) from None


def _refused(name: str, error: urllib.error.HTTPError) -> ChannelError:
    status = error.code
    if 300 <= status < 400:
        return ChannelError(
            f"webhook {name}: HTTP {status}, redirected; set the channel's url to where it "
            "points (a POST is not followed)",
            temporary=False,
        )
    temporary = is_temporary_status(status)
    retry_after = parse_retry_after(error.headers.get("Retry-After")) if error.headers else None
    what = "will retry" if temporary else "refused for good, not retried"
    return ChannelError(
        f"webhook {name}: HTTP {status} ({what})", temporary=temporary, retry_after=retry_after
    )
