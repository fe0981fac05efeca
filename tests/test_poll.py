"""Poll bookkeeping: what is remembered for the next poll, and how failing sources back off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crawler.poll import backoff_delay, state_to_remember
from spiders.base import PollOutcome
from spiders.items import FetchState

STATE = FetchState(etag='"abc"', last_modified="Wed, 14 Feb 2024 12:00:00 GMT",
                   content_hash="f" * 64, discovered_url="https://news.example/rss")


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, timedelta(minutes=15)), (1, timedelta(minutes=30)), (2, timedelta(hours=1)),
     (3, timedelta(hours=2)), (5, timedelta(hours=6)), (40, timedelta(hours=6))],
)
def test_backoff_doubles_up_to_the_cap(failures: int, expected: timedelta) -> None:
    assert backoff_delay(timedelta(minutes=15), failures, timedelta(hours=6)) == expected


def test_backoff_honours_a_longer_retry_after_within_the_cap() -> None:
    every, cap = timedelta(minutes=15), timedelta(hours=6)
    assert backoff_delay(every, 1, cap, retry_after=7200) == timedelta(hours=2)
    assert backoff_delay(every, 1, cap, retry_after=86400) == cap


def test_backoff_never_polls_faster_than_the_interval() -> None:
    assert backoff_delay(timedelta(days=1), 3, timedelta(hours=6)) == timedelta(days=1)


@pytest.mark.parametrize(
    ("outcome", "remembered"),
    [
        (PollOutcome("s", state=STATE), STATE),
        (PollOutcome("s", state=STATE, page_errors=1),
         FetchState(discovered_url=STATE.discovered_url)),
        (PollOutcome("s", state=STATE, deferred=True),
         FetchState(discovered_url=STATE.discovered_url)),
        (PollOutcome("s", state=STATE, error="HTTP 500"),
         FetchState(discovered_url=STATE.discovered_url)),
        (PollOutcome("s", not_modified=True), None),
    ],
    ids=["clean", "page-error", "deferred-links", "failed", "not-modified"],
)
def test_validators_are_remembered_only_after_a_clean_poll(
    outcome: PollOutcome, remembered: FetchState | None
) -> None:
    assert state_to_remember(outcome) == remembered
