"""A webhook and Apprise receiver that outlives every SIGKILL of the service, and the
per-channel account of what reached whom.

``ChannelInbox`` is one loopback HTTP server in the test process: the signed webhook
posts to ``/hook``, each reader's Apprise ``json://`` channel to ``/chat/<reader>``.
It records each request received whole, with the generation (the service process)
that sent it, and checks each webhook's signature the way docs/channels.md tells a
receiver to. It handles one request at a time, in the order the connections came:
``next_generation`` sends a probe behind whatever a killed service left queued, so
once it is answered every request of the dead process is recorded under its own
generation. A message may arrive twice only from two generations: the delivery that
was in flight when its process was killed, sent again by the next one.

Each reader has an Apprise channel of their own: Apprise's json body carries the
message (title and text) but no recipient and no key, so a delivery is known by its
path and its text, and its stories by the URLs in the text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

EMAIL = "email"
WEBHOOK = "team-hook"
HOOK_PATH = "/hook"
HOOK_SECRET = "crash-test-hook-secret"
HOOK_SECRET_ENV = "NEWSROOM_HOOK_SECRET"
PROBE_PATH = "/probe"
# Channel kinds, in the order the account lists them.
KINDS = ("email", "webhook", "apprise")
_URL = re.compile(r"https?://\S+")


def chat_channel(recipient: str) -> str:
    """The name of ``recipient``'s own Apprise channel."""
    return f"chat-{recipient.partition('@')[0]}"


def documented_signature_is_valid(
    secret: str, header: str, body: bytes, tolerance: int = 300
) -> bool:
    """The check docs/channels.md gives receivers, written out again here rather than
    imported from alerts.webhook: the service is held to the documented contract."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


@dataclass(frozen=True)
class Copy:
    """One message a channel received: an .eml in the outbox, a webhook POST or an
    Apprise notification. ``key`` names the delivery: the Message-ID, the
    Idempotency-Key, or (Apprise, which has none) a digest of the message text."""

    kind: str
    channel: str
    recipient: str
    key: str
    urls: frozenset[str]
    body: bytes = b""
    generation: int | None = None  # the service process that sent it (not for email)
    signed: bool = True  # the webhook signature checked out (nothing to check elsewhere)


@dataclass(frozen=True)
class DeliveryRow:
    """A row of the delivery ledger, with the article URLs it holds."""

    id: int
    recipient: str
    channel: str
    message_id: str
    sent_at: datetime | None
    failed_at: datetime | None
    urls: frozenset[str]


class ChannelInbox:
    """The receiver of the webhook and the Apprise channels (see the module's doc)."""

    def __init__(self, recipients: Iterable[str]) -> None:
        self.recipients = sorted(recipients)
        self.generation = 0
        # Seconds between recording a message and answering it: a kill in between
        # leaves the delivery received but not recorded sent, to be sent again.
        self.answer_after = 0.0
        self._requests: list[tuple[int, str, dict[str, str], bytes, bool]] = []
        self._lock = threading.Lock()
        self._server: HTTPServer | None = None

    def url(self, path: str) -> str:
        assert self._server is not None, "the inbox is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def environment(self) -> dict[str, str]:
        """The variables the channels read their secret and URLs from."""
        chats = {
            _url_env(recipient): self.url(chat_path(recipient)).replace("http://", "json://", 1)
            for recipient in self.recipients
        }
        return {HOOK_SECRET_ENV: HOOK_SECRET, **chats}

    def deliver_to_channels(self, settings: dict[str, Any]) -> dict[str, Any]:
        """``settings`` with every reader on email, the shared webhook and their own
        Apprise channel."""
        settings = dict(settings)
        hook = {"name": WEBHOOK, "kind": "webhook", "url": self.url(HOOK_PATH)}
        chats = [
            {"name": chat_channel(email), "kind": "apprise", "url_env": _url_env(email)}
            for email in self.recipients
        ]
        settings["channels"] = [{**hook, "secret_env": HOOK_SECRET_ENV}, *chats]
        settings["recipients"] = [
            {**reader, "channels": [EMAIL, WEBHOOK, chat_channel(reader["email"])]}
            for reader in settings["recipients"]
        ]
        return settings

    def start(self) -> ChannelInbox:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a connection that stalls does not hold up the others for long

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                # A sender killed mid-request sent part of it and never got an answer.
                if len(body) == length and self.path != PROBE_PATH:
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    inbox._record(self.path, headers, body)
                    time.sleep(inbox.answer_after)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender was killed while we answered

            def log_message(self, *_args: object) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        signed = path != HOOK_PATH or documented_signature_is_valid(
            HOOK_SECRET, headers.get("newswatch-signature", ""), body
        )
        with self._lock:
            self._requests.append((self.generation, path, headers, body, signed))

    def next_generation(self) -> None:
        """Wait until every request already queued is recorded, then count the
        requests that follow as sent by a new service process."""
        probe = urllib.request.Request(self.url(PROBE_PATH), data=b"", method="POST")
        with urllib.request.urlopen(probe, timeout=30) as answer:
            answer.read()
        self.generation += 1

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def copies(self) -> list[Copy]:
        """Every message received so far, on the webhook and the Apprise channels."""
        with self._lock:
            requests = list(self._requests)
        readers = {chat_path(recipient): recipient for recipient in self.recipients}
        return [_copy(*request, readers) for request in requests]


class _QuietServer(HTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
        # else: a sender killed mid-request reset its connection, as it may


def chat_path(recipient: str) -> str:
    return f"/chat/{recipient.partition('@')[0]}"


def _url_env(recipient: str) -> str:
    return f"NEWSROOM_CHAT_{recipient.partition('@')[0].upper()}"


def _copy(
    generation: int,
    path: str,
    headers: dict[str, str],
    body: bytes,
    signed: bool,
    readers: Mapping[str, str],
) -> Copy:
    payload = json.loads(body)
    if path == HOOK_PATH:
        key = headers.get("idempotency-key", "")
        assert payload["id"] == key, (payload["id"], key)
        urls = frozenset(
            entry["url"] for section in payload["sections"] for entry in section["entries"]
        )
        return Copy(
            "webhook", payload["channel"], payload["recipient"], key, urls, body, generation, signed
        )
    text = f"{payload['title']}\n{payload['message']}"
    key = hashlib.sha256(f"{path}\n{text}".encode()).hexdigest()[:16]
    urls = frozenset(_URL.findall(payload["message"]))
    recipient = readers[path]
    return Copy("apprise", chat_channel(recipient), recipient, key, urls, body, generation)


def check_channel_copies(copies: Sequence[Copy], deliveries: Sequence[DeliveryRow]) -> None:
    """What holds at every moment on the channels beside email: each message signed
    (webhook), backed by the one delivery row that holds exactly its articles, a
    repeat identical and from a later service process, no delivery refused, and
    every delivery marked sent received."""
    by_key: dict[str, DeliveryRow] = {row.message_id.strip("<>"): row for row in deliveries}
    first: dict[tuple[str, str], Copy] = {}
    generations: dict[tuple[str, str], list[int | None]] = {}
    for copy in copies:
        assert copy.signed, f"webhook {copy.key}: the signature does not verify"
        if copy.kind == "webhook":
            row = by_key.get(copy.key)
            assert row is not None, f"webhook {copy.key}: no delivery row"
            assert (row.channel, row.recipient, row.urls) == (
                copy.channel,
                copy.recipient,
                copy.urls,
            ), copy.key
        else:
            rows = [r for r in deliveries if r.channel == copy.channel and r.urls == copy.urls]
            assert len(rows) == 1, f"{copy.channel}: {sorted(copy.urls)} is not one delivery"
        channel_key = (copy.channel, copy.key)
        original = first.setdefault(channel_key, copy)
        assert copy.body == original.body, f"{copy.key} sent again with another body"
        generations.setdefault(channel_key, []).append(copy.generation)
    for (channel, key), sent_by in generations.items():
        # A resend only of the message in flight when its process was killed.
        assert len(sent_by) == len(set(sent_by)), f"{channel} {key} twice from one process"
    received_keys = {(copy.channel, copy.key) for copy in copies if copy.kind == "webhook"}
    received_urls = {(copy.channel, copy.urls) for copy in copies if copy.kind == "apprise"}
    for row in deliveries:
        if row.channel == EMAIL:
            continue
        assert row.failed_at is None, f"{row.message_id} on {row.channel} refused"
        if row.sent_at is None:
            continue
        if row.channel == WEBHOOK:
            assert (row.channel, row.message_id.strip("<>")) in received_keys, row.message_id
        else:
            assert (row.channel, row.urls) in received_urls, (row.channel, sorted(row.urls))


@dataclass(frozen=True)
class ChannelTally:
    """The account of one kind of channel over every reader."""

    kind: str
    messages: int  # received, repeats included
    deliveries: int  # distinct keys
    repeats: int  # messages received again under a key already seen
    stories: int  # (reader, story) pairs delivered
    missing: int  # (reader, story) pairs that should have arrived and did not
    two_keys: int  # (reader, story) pairs delivered under two different keys


def tally(kind: str, copies: Sequence[Copy], expected: Mapping[str, set[str]]) -> ChannelTally:
    """Count what ``kind`` received against ``expected`` (reader → story URLs)."""
    mine = [copy for copy in copies if copy.kind == kind]
    keys = {(copy.channel, copy.key) for copy in mine}
    story_keys: dict[tuple[str, str], set[str]] = {}
    for copy in mine:
        for url in copy.urls:
            story_keys.setdefault((copy.recipient, url), set()).add(copy.key)
    delivered = Counter(recipient for recipient, _url in story_keys)
    missing = sum(
        len(urls - {url for reader, url in story_keys if reader == recipient})
        for recipient, urls in expected.items()
    )
    return ChannelTally(
        kind,
        messages=len(mine),
        deliveries=len(keys),
        repeats=len(mine) - len(keys),
        stories=sum(delivered.values()),
        missing=missing,
        two_keys=sum(1 for found in story_keys.values() if len(found) > 1),
    )


def format_tallies(tallies: Sequence[ChannelTally]) -> str:
    """The account as a small table, one line per kind of channel."""
    header = [
        "channel",
        "messages",
        "deliveries",
        "same-key repeats",
        "stories",
        "missing",
        "under two keys",
    ]
    rows = [header]
    for t in tallies:
        figures = (t.messages, t.deliveries, t.repeats, t.stories, t.missing, t.two_keys)
        rows.append([t.kind, *(str(figure) for figure in figures)])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)
