"""Crash consistency: the service SIGKILLed at random points of 50 crawl+digest cycles.

A seeded loop (``random.Random(SEED)``): before each cycle the fixture site
publishes 0–3 new articles; the service starts on a config that polls every second
and sends a digest every 2 seconds to each reader on three channels — email (the
outbox), a signed webhook and their own Apprise ``json://`` channel, the real Apprise
plugin posting to a receiver in this process (tests/faults/inbox.py), which outlives
the kills; after a random 0.1–3.5 s it is killed with SIGKILL — while starting,
crawling, storing, building or sending a digest. With the service dead, the
database, the outbox and the receiver must be consistent: no article stored twice,
every stored article with exactly its rule matches, every delivery item an article
its recipient's rules match, every .eml complete and backed by a delivery row
holding exactly its articles, every webhook signed and every webhook or Apprise
message backed by the one delivery row holding exactly its stories, every delivery
marked sent received. At the end one clean run lets everything settle, and every
matching article must have reached each recipient on each channel under exactly one
delivery key; articles lost: 0. The test prints the account per channel.

Exactly once, not at-least-once, and why: the digest commits its delivery row
(deterministic Message-ID, items claimed) before sending and marks it sent after.
A kill between the two leaves a pending row for a message that went out; the next
run resends that very message. Over SMTP that is at-least-once with an identical
Message-ID (mail systems drop the copy; tests/test_service.py kills a digest
mid-DATA). The outbox goes one step further: it does not write a message whose
file is already in the folder, so the resend is a no-op and each message is there
once — which is what this test asserts. A webhook resend carries the same
Idempotency-Key and body, so a receiver that keeps its keys acts once; Apprise
carries no key, so the chat shows that one message twice. The test allows such a
repeat only from the next service process, and counts it (same-key repeats). While
the kills go on the receiver answers a little late, so that kills land in that
window and the resend path is exercised, not just allowed.

For speed the service is forked from a process that imported newswatch once
(tests/faults/zygote.py): a cycle then costs the service's start, not Python's
seconds of imports. What runs is crawler.faces.cli.main(["run"]), the code of
``newswatch run``; the final clean run is the ``newswatch`` command itself.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import site_config, write_config
from inbox import ChannelInbox, format_tallies
from newsroom import RECIPIENTS, Ledger, Newsroom, newsroom_settings, service_running, wait_for

from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from newssite import NewsSite

SEED = 20160330
CYCLES = 50
# Guard for a very slow machine: the loop ends early rather than time out, but must
# still have done most of its cycles.
BUDGET_SECONDS = 170
MIN_CYCLES = 30
# The webhook and Apprise receiver answers this many seconds after it has a message,
# while the kills go on: kills then often land between a message's arrival and its
# delivery being recorded sent, the window in which a resend is allowed.
SLOW_ANSWER = 0.25
ZYGOTE = Path(__file__).parent / "zygote.py"


class Zygote:
    """The forking helper process (see zygote.py)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ZYGOTE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._ask(None) == "ready"

    def _ask(self, command: list[object] | None) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def spawn(self, config: Path, log: Path) -> int:
        return int(self._ask(["spawn", str(config), str(log)]))

    def wait(self, pid: int) -> int:
        return int(self._ask(["wait", pid]))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChannelInbox]:
    """The webhook and Apprise receiver, in this process: it outlives every kill.
    Its variables are set before the zygote starts, which the service inherits."""
    started = ChannelInbox(RECIPIENTS).start()
    for name, value in started.environment().items():
        monkeypatch.setenv(name, value)
    yield started
    started.stop()


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_sends_each_article_once(
    news_site: NewsSite, inbox: ChannelInbox, tmp_path: Path
) -> None:
    chance = random.Random(SEED)  # noqa: S311 - a reproducible schedule, not a secret
    newsroom = Newsroom(news_site, seed=SEED)
    newsroom.publish(3)
    settings = newsroom_settings(newsroom, site_config(news_site, tmp_path))
    settings = inbox.deliver_to_channels(settings)
    settings["sources"][0]["every"] = "1s"
    settings["digest"]["schedule"] = "*/2 * * * * *"
    config = write_config(tmp_path, **settings)
    ledger = Ledger(settings["database"], tmp_path / "outbox", newsroom, inbox)
    log = tmp_path / "service.log"
    store = Store.from_url(settings["database"])
    store.upgrade()  # the tables exist before the first kill (as after `db upgrade`)
    store.close()

    inbox.answer_after = SLOW_ANSWER
    kills = 0
    started = time.monotonic()
    zygote = Zygote()
    try:
        for cycle in range(CYCLES):
            if time.monotonic() - started > BUDGET_SECONDS:
                break
            newsroom.publish(chance.choice([0, 1, 1, 2, 3]))
            pid = zygote.spawn(config, log)
            time.sleep(chance.uniform(0.1, 3.5))
            os.kill(pid, signal.SIGKILL)
            status = zygote.wait(pid)
            # Killed by us, not ended by itself (a crash or a refused start).
            assert os.WIFSIGNALED(status), (cycle, status, log.read_text()[-3000:])
            assert os.WTERMSIG(status) == signal.SIGKILL
            kills += 1
            inbox.next_generation()  # what the dead process sent is all recorded
            ledger.check()
    finally:
        zygote.close()
    assert kills >= MIN_CYCLES, f"only {kills} cycles in {BUDGET_SECONDS}s"

    # A clean run lets everything settle: every article stored, every digest sent.
    inbox.answer_after = 0.0
    with service_running(config, log):
        wait_for(ledger.settled, 120, "every article stored and delivered", interval=0.5)
    inbox.next_generation()
    tallies = ledger.check_delivered_exactly_once()
    lost = {a.url for a in newsroom.published} - set(ledger.stored_urls())
    assert lost == set()
    repeats = sum(account.repeats for account in tallies)
    # Each kill leaves at most the messages it cut short to be sent again.
    assert repeats <= kills, (repeats, kills)
    print(
        f"\n{kills} SIGKILLs, {len(newsroom.published)} articles published, "
        f"0 lost, {len(list((tmp_path / 'outbox').glob('*.eml')))} digests, each once; "
        f"per channel (stories: reader-story pairs):\n{format_tallies(tallies)}"
    )
