"""Channels beside email, against real receivers on loopback: a signed webhook whose
receiver checks the signature with the documented algorithm, and Apprise's own json://
and form:// plugins posting over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from receivers import Receiver

from alerts.apprise_channel import AppriseChannel, apprise_url_problem
from alerts.channel import ChannelError, ChannelMessage, parse_retry_after
from alerts.chat import chat_text, outlets
from alerts.render import DigestEntry, DigestSection
from alerts.webhook import (
    IDEMPOTENCY_HEADER,
    SCHEMA,
    SIGNATURE_HEADER,
    WebhookChannel,
    sign,
    verify_signature,
)

SECRET = "s3cret-for-tests"
PUBLISHED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def _entry(number: int, *, title: str | None = None) -> DigestEntry:
    return DigestEntry(
        title=title or f"Story {number}: floods close the port",
        url=f"https://news.example/story-{number}",
        source="Example News",
        published=PUBLISHED,
        snippet_text=f"Snippet of story {number}",
        terms=("floods",),
        also_reported_by=("Wire Daily", "Coast Times"),
    )


def _message(stories: int = 3, *, more: int = 0, kind: str = "digest") -> ChannelMessage:
    return ChannelMessage(
        kind=kind,
        channel="team-hook",
        recipient="analyst@example.org",
        idempotency_key="nw-digest-42",
        subject=f"newswatch: {stories} new articles",
        sections=(
            DigestSection(
                rule="Floods", entries=tuple(_entry(n) for n in range(stories)), more=more
            ),
        ),
        created=PUBLISHED,
        more_url="https://newswatch.example/matches?rule=Floods",
    )


def _webhook(receiver: Receiver) -> WebhookChannel:
    return WebhookChannel(
        "team-hook", receiver.url(), SECRET, timeout=5, user_agent="newswatch-test"
    )


def test_the_receiver_verifies_the_signature_and_rejects_a_tampered_body(
    receiver: Receiver,
) -> None:
    _webhook(receiver).send(_message())
    (path, headers, body) = receiver.requests[0]
    assert path == "/hook"
    assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body)
    assert not verify_signature(SECRET, headers[SIGNATURE_HEADER], body.replace(b"3", b"4"))
    assert not verify_signature("another secret", headers[SIGNATURE_HEADER], body)
    payload = json.loads(body)
    assert payload["schema"] == SCHEMA
    assert payload["id"] == headers[IDEMPOTENCY_HEADER] == "nw-digest-42"
    assert payload["stories"] == 3
    story = payload["sections"][0]["entries"][0]
    assert story["url"] == "https://news.example/story-0"
    assert story["outlet"] == "Example News"
    assert story["published"] == "2026-12-01T09:30:00+00:00"
    assert story["terms"] == ["floods"]
    assert story["also_reported_by"] == ["Wire Daily", "Coast Times"]


def test_an_old_signature_is_refused_as_a_replay() -> None:
    body = b'{"schema":"newswatch.delivery/1"}'
    sent = int(time.time()) - 3600
    header = sign(SECRET, sent, body)
    assert verify_signature(SECRET, header, body, now=sent + 10)
    assert not verify_signature(SECRET, header, body)
    assert not verify_signature(SECRET, "v1=abc", body)
    assert not verify_signature(SECRET, "t=notanumber,v1=abc", body)


def test_a_5xx_is_temporary_and_the_retry_carries_the_same_idempotency_key(
    receiver: Receiver,
) -> None:
    receiver.answers = [(500, {}), (200, {})]
    channel = _webhook(receiver)
    with pytest.raises(ChannelError) as failed:
        channel.send(_message())
    assert failed.value.temporary
    channel.send(_message())
    keys = [headers[IDEMPOTENCY_HEADER] for _path, headers, _body in receiver.requests]
    assert keys == ["nw-digest-42", "nw-digest-42"]
    bodies = [body for _path, _headers, body in receiver.requests]
    assert bodies[0] == bodies[1]


def test_a_404_is_a_permanent_failure(receiver: Receiver) -> None:
    receiver.answers = [(404, {})]
    with pytest.raises(ChannelError) as failed:
        _webhook(receiver).send(_message())
    assert not failed.value.temporary
    assert "HTTP 404" in str(failed.value)
    assert receiver.url() not in str(failed.value)  # a URL may hold a token


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        pytest.param(429, "120", 120.0, id="429-seconds"),
        pytest.param(503, "7", 7.0, id="503-seconds"),
        pytest.param(408, None, None, id="408-no-header"),
    ],
)
def test_a_temporary_refusal_keeps_the_receivers_retry_after(
    receiver: Receiver, status: int, retry_after: str | None, expected: float | None
) -> None:
    receiver.answers = [(status, {"Retry-After": retry_after} if retry_after else {})]
    with pytest.raises(ChannelError) as failed:
        _webhook(receiver).send(_message())
    assert failed.value.temporary
    assert failed.value.retry_after == expected


def test_retry_after_as_an_http_date_and_unreadable_values() -> None:
    now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(later, now) == 300.0
    assert parse_retry_after("yesterday", now) is None
    assert parse_retry_after("9999999999", now) == 86_400.0


def test_a_redirect_is_not_followed_and_says_where_to_look(receiver: Receiver) -> None:
    receiver.answers = [(301, {"Location": receiver.url("/moved")})]
    with pytest.raises(ChannelError) as failed:
        _webhook(receiver).send(_message())
    assert not failed.value.temporary
    assert "redirected" in str(failed.value)
    assert [path for path, _headers, _body in receiver.requests] == ["/hook"]


def test_an_unreachable_receiver_is_temporary() -> None:
    channel = WebhookChannel(
        "gone", "http://127.0.0.1:9/hook", SECRET, timeout=2, user_agent="newswatch-test"
    )
    with pytest.raises(ChannelError) as failed:
        channel.send(_message())
    assert failed.value.temporary


def test_a_digest_is_one_apprise_json_request_holding_every_story(receiver: Receiver) -> None:
    channel = AppriseChannel("chat", f"json://127.0.0.1:{receiver.port}/notify")
    channel.send(_message(stories=4))
    assert len(receiver.requests) == 1
    path, _headers, body = receiver.requests[0]
    assert path == "/notify"
    sent = json.loads(body)
    assert sent["title"] == "newswatch: 4 new articles"
    for number in range(4):
        assert f"https://news.example/story-{number}" in sent["message"]
    assert "Example News, Wire Daily and Coast Times" in sent["message"]


def test_apprise_form_plugin_posts_the_same_message(receiver: Receiver) -> None:
    AppriseChannel("form", f"form://127.0.0.1:{receiver.port}/form").send(_message(stories=2))
    assert len(receiver.requests) == 1
    fields = urllib.parse.parse_qs(receiver.requests[0][2].decode())
    assert fields["title"] == ["newswatch: 2 new articles"]
    assert "https://news.example/story-1" in fields["message"][0]


def test_an_apprise_service_that_fails_is_a_temporary_failure(receiver: Receiver) -> None:
    receiver.answers = [(500, {})]
    with pytest.raises(ChannelError) as failed:
        AppriseChannel("chat", f"json://127.0.0.1:{receiver.port}/notify").send(_message())
    assert failed.value.temporary


def test_apprise_urls_are_checked_without_sending() -> None:
    assert apprise_url_problem("json://127.0.0.1:8000/hook") is None
    assert apprise_url_problem("ntfy://ntfy.example/topic") is None
    problem = apprise_url_problem("nosuchservice://token")
    assert problem is not None
    assert "nosuchservice" in problem
    with pytest.raises(ValueError, match="channel broken"):
        AppriseChannel("broken", "nosuchservice://token")


def test_a_long_digest_is_cut_to_the_channels_limit_with_a_link_to_the_rest() -> None:
    message = _message(stories=40, more=5)
    title, body = chat_text(message, max_chars=600)
    assert title == message.subject
    assert len(body) <= 600
    shown = body.count("• ")
    assert 0 < shown < 40
    assert body.endswith(f"{40 - shown + 5} more stories: {message.more_url}")


def test_a_story_longer_than_the_limit_is_cut_not_dropped() -> None:
    long_story = DigestSection(rule="Floods", entries=(_entry(0, title="word " * 400),), more=2)
    message = replace(_message(), sections=(long_story,))
    _title, body = chat_text(message, max_chars=300)
    assert len(body) <= 300
    assert body.startswith("Floods:\n• word word")
    assert "…" in body
    assert body.endswith(f"2 more stories: {message.more_url}")


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        pytest.param((), "Example News", id="one"),
        pytest.param(("Wire Daily",), "Example News and Wire Daily", id="two"),
        pytest.param(("A", "B", "C", "D"), "Example News, A, B and 2 more", id="many"),
    ],
)
def test_outlets_are_named_then_counted(others: tuple[str, ...], expected: str) -> None:
    entry = DigestEntry(
        title="t",
        url="https://x.example/",
        source="Example News",
        published=None,
        snippet_text="",
        terms=(),
        also_reported_by=others,
    )
    assert outlets(entry) == expected
