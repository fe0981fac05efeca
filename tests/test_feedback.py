"""Readers answer their messages (docs/feedback.md): signed links, the store's
mutes, pauses and votes as ``pending_items`` honours them, the RFC 8058 headers,
and the readers' pages over real HTTP on loopback with ``newswatch run`` (a link
scanner changes nothing; tampering, expiry, replays, forged forms, other hosts and
floods are refused), and in headless Chromium: mute from the email, confirm, and the
next digest leaves the story out for that reader only."""

from __future__ import annotations

import email
import email.policy
import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from conftest import run_newswatch, write_config
from smtpserver import free_port
from test_web import RunningService, running_service

from alerts.delivery import OutboxDelivery
from alerts.digest import send_pending_digests
from alerts.feedback import LinkSigner, reader_tag, token_id
from alerts.rules import RuleMatch
from alerts.webhook import webhook_payload
from crawler.domain.config import Config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.domain.stories import StoryIndex
from crawler.faces.web.actions import RateLimiter, client_network
from crawler.orchestration.ingest import ingest_article
from crawler.orchestration.retention import purge_old_articles
from crawler.storage.feedback import LESS, MORE, MUTE, PAUSE, UNSUBSCRIBE
from crawler.storage.store import LINK_SIGNING_KEY, ReaderAnswer, Store

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
BODY = (
    "Floods closed the port on Tuesday after three days of rain, the port authority said. "
    "Ships were turned away and the coast road was shut while crews cleared the water "
    "from the docks, the warehouses and the fish market near the old lighthouse."
)
QUAKE_BODY = "An earthquake of magnitude 5.1 shook the valley at dawn; no one was hurt."
HOSTILE = 'Floods <script>alert("x")</script> close the <b>port</b> & "more"'
ANA = "ana@example.com"
BOB = "bob@example.com"
SETTINGS: dict[str, Any] = {
    "sources": [
        {"name": "wire", "feed": "https://wire.example/rss", "enabled": False},
        {"name": "coast", "feed": "https://coast.example/rss", "enabled": False},
    ],
    "rules": [
        {"name": "floods", "keywords": ["floods"]},
        {"name": "quakes", "keywords": ["earthquake"]},
    ],
    "digest": {
        "sender": "news@example.org",
        "recipients": [ANA, BOB],
        "unsubscribe": "mailto:leave@example.org",
    },
    "web": {"public_url": "https://news.example.org/watch/"},
}


def _ingest(
    store: Store,
    url: str,
    title: str,
    body: str = BODY,
    rule: str = "floods",
    term: str = "floods",
    source: str = "wire",
    stories: StoryIndex | None = None,
) -> int:
    article = ExtractedArticle(url=url, title=title, text=body, published=NOW)
    result = ingest_article(
        store, ArticleItem(source, url, article), [RuleMatch(rule, (term,))], stories=stories
    )
    assert result.article_id is not None
    return result.article_id


def _copy(store: Store, index: StoryIndex, n: int) -> int:
    """Another outlet's copy of the floods story (a near duplicate: the same story)."""
    return _ingest(
        store,
        f"https://coast.example/{n}",
        "Floods close the port, officials say",
        body=BODY.replace("Tuesday", f"Tuesday morning ({n})"),
        source="coast",
        stories=index,
    )


def _pending(store: Store, reader: str, now: datetime = NOW) -> set[int]:
    return {item.article.id for item in store.pending_items(reader, ["floods", "quakes"], now=now)}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(Config.model_validate(SETTINGS).sources)
    yield store
    store.close()


# -- the pieces, in-process --------------------------------------------------------


def test_a_muted_story_its_copies_and_a_held_rule_are_never_pending(store: Store) -> None:
    index = StoryIndex()
    wire = _ingest(store, "https://wire.example/1", "Floods close the port", stories=index)
    quake = _ingest(store, "https://wire.example/2", "Valley shaken", QUAKE_BODY, "quakes",
                    "earthquake")  # fmt: skip
    mute = ReaderAnswer(MUTE, ANA, rules=("floods",), story_id=wire, title="Floods")
    assert store.record_answer("t-mute", mute, NOW)
    assert not store.record_answer("t-mute", mute, NOW)  # a replay does nothing
    assert len(store.muted_stories(ANA)) == 1
    copy = _copy(store, index, 1)
    assert _pending(store, ANA) == {quake}  # neither the story nor its later copy
    assert _pending(store, BOB) == {wire, copy, quake}  # another reader still gets it
    rules = ["floods", "quakes"]
    counted = store.channel_states([("email", ANA, rules), ("email", BOB, rules)])
    assert counted["email"].undelivered == 1 + 3  # the status pages count the same

    pause = ReaderAnswer(PAUSE, ANA, rules=("quakes",), until=NOW + timedelta(days=7))
    assert store.record_answer("t-pause", pause, NOW)
    assert _pending(store, ANA) == set()
    assert _pending(store, ANA, NOW + timedelta(days=8)) == {quake}  # the pause ended
    assert [hold.rule for hold in store.held_rules(ANA, NOW)] == ["quakes"]

    assert store.record_answer("t-off", ReaderAnswer(UNSUBSCRIBE, ANA, rules=("quakes",)), NOW)
    assert _pending(store, ANA, NOW + timedelta(days=8)) == set()
    assert store.undo_answer(ANA, "t-off", NOW) == 1
    assert store.undo_answer(ANA, "t-off", NOW) == 0
    assert store.unmute_story(ANA, wire, NOW) == 1
    assert _pending(store, ANA, NOW + timedelta(days=8)) == {wire, copy, quake}

    for token, vote in (("t-more", MORE), ("t-less", LESS)):
        answer = ReaderAnswer(vote, ANA, rules=("floods",), story_id=wire, article_id=wire)
        assert store.record_answer(token, answer, NOW)
    assert store.votes(ANA) == [("floods", wire, wire, MORE), ("floods", wire, wire, LESS)]


# A developing story: each report repeats the background under a new top.
PORT_BACKGROUND = (
    "The port handles most of the island's food and fuel, and its closure in the storms "
    "of 2019 left the shops without bread for nearly a week, the chamber of commerce said.",
    "Engineers have warned for years that the harbour wall, built in the 1950s and patched "
    "after every winter since, would not hold against a storm surge of more than two metres.",
)
PORT_STORY = "\n\n".join([BODY, *PORT_BACKGROUND])
PORT_FOLLOW_UP = "\n\n".join(
    [
        "The port reopened to ferries on Friday after floods closed it for four days, but "
        "cargo ships were still held outside the breakwater while divers checked the berths.",
        "Fishermen said their boats had been damaged in the storm and asked the ministry for "
        "help; the minister promised a fund for repairs by the end of the month.",
        "The coast road opened to lorries in the afternoon, and the first fuel tankers "
        "reached the depot at the airport in the evening, the police said.",
        *PORT_BACKGROUND,
    ]
)


def test_a_mute_covers_the_stories_that_follow_up_the_muted_one(
    store: Store, tmp_path: Path
) -> None:
    config = Config.model_validate(SETTINGS)
    index = StoryIndex()
    wire = _ingest(store, "https://wire.example/1", "Floods close the port", PORT_STORY,
                   stories=index)  # fmt: skip
    send_pending_digests(store, config, OutboxDelivery(tmp_path / "1"), NOW)
    mute = ReaderAnswer(MUTE, ANA, rules=("floods",), story_id=wire, title="Floods close the port")
    assert store.record_answer("t-mute", mute, NOW)

    later = NOW + timedelta(days=2)
    follow_up = _ingest(store, "https://wire.example/2", "Port reopens to ferries",
                        PORT_FOLLOW_UP, stories=index)  # fmt: skip
    copy = _ingest(store, "https://coast.example/2", "Ferries back at the port",
                   PORT_FOLLOW_UP.replace("Friday", "Friday morning"), source="coast",
                   stories=index)  # fmt: skip
    other = _ingest(store, "https://wire.example/3", "Floods in the hills", "Floods. " + BODY[:80],
                    stories=index)  # fmt: skip
    assert follow_up != wire
    stories = {
        item.article.id: item.article.story_id for item in store.pending_items(BOB, ["floods"])
    }
    assert stories[copy] == stories[follow_up] == follow_up  # another outlet's copy
    assert len({stories[follow_up], stories[other], wire}) == 3  # three stories
    report = send_pending_digests(store, config, OutboxDelivery(tmp_path / "2"), later)
    assert report.sent == {ANA: 1, BOB: 3}  # Ana: only the story that follows no mute
    messages = _messages(tmp_path / "2")
    assert "erries" not in _html(messages[ANA][0])  # neither copy's headline
    assert "Floods in the hills" in _html(messages[ANA][0])
    assert "Ferries back at the port" in _html(messages[BOB][0])  # the longer headline

    # Nothing lost silently: the reader's page lists it, as a follow-up of what they muted.
    muted = {story.title: story for story in store.muted_stories(ANA)}
    assert muted["Port reopens to ferries"].follows == "Floods close the port"
    assert muted["Floods close the port"].follows is None
    # A mute like any: on every channel, for its later copies, until undone.
    assert _pending(store, ANA, later) == set()
    webhook = store.pending_items(ANA, ["floods"], channel="hook")
    assert {item.article.id for item in webhook} == {other}
    third = _ingest(store, "https://coast.example/3", "Ferries back", PORT_FOLLOW_UP + " More.",
                    source="coast", stories=index)  # fmt: skip
    assert _pending(store, ANA, later) == set()
    # Unmuting the story unmutes what was muted for following it.
    assert store.unmute_story(ANA, wire, later) == 1
    assert store.muted_stories(ANA) == []
    assert _pending(store, ANA, later) == {follow_up, copy, third}
    # ...and a follow-up the reader unmuted is not muted again for them.
    store.record_answer("t-again", mute, later)
    assert send_pending_digests(store, config, OutboxDelivery(tmp_path / "3"), later).sent == {
        ANA: 3
    }


def test_answers_survive_a_restart_and_retention_keeps_what_stands(
    store: Store, database_url: str
) -> None:
    wire = _ingest(store, "https://wire.example/1", "Floods close the port")
    store.record_answer("m", ReaderAnswer(MUTE, ANA, story_id=wire, title="Floods"), NOW)
    store.record_answer("u", ReaderAnswer(UNSUBSCRIBE, ANA, rules=("quakes",)), NOW)
    store.record_answer("v", ReaderAnswer(LESS, ANA, rules=("floods",), story_id=wire), NOW)
    store.record_answer("p", ReaderAnswer(PAUSE, BOB, rules=("floods",), until=NOW), NOW)
    store.undo_answer(ANA, "v", NOW)
    again = Store.from_url(database_url)  # another process, or the service restarted
    try:
        assert [story.story_id for story in again.muted_stories(ANA)] == [wire]
        config = Config.model_validate(SETTINGS)
        purge_old_articles(again, config, NOW + timedelta(days=60))
        # Kept: the mute (younger than the fingerprints), the unsubscription (until
        # undone). Gone: the vote taken back, the pause over, the used links.
        assert [story.story_id for story in again.muted_stories(ANA)] == [wire]
        assert [hold.rule for hold in again.held_rules(ANA, NOW)] == ["quakes"]
        assert not again.link_used("m")
        purge_old_articles(again, config, NOW + timedelta(days=1000))
        assert again.muted_stories(ANA) == []
        assert [hold.rule for hold in again.held_rules(ANA, NOW)] == ["quakes"]
    finally:
        again.close()


def test_a_token_is_signed_timed_and_names_its_reader_without_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Config.model_validate(SETTINGS)
    signer = LinkSigner(b"k" * 32, timedelta(days=30))
    token = signer.make(MUTE, ANA, s=7, u=["floods"], t="Floods")
    claim = signer.read(token, config.all_recipients())
    assert claim is not None
    assert (claim.recipient.email, claim.answer.story_id, claim.answer.rules) == (
        ANA, 7, ("floods",)
    )  # fmt: skip
    assert "ana" not in token
    assert reader_tag(b"k" * 32, ANA) != reader_tag(b"j" * 32, ANA)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert signer.read(tampered, config.all_recipients()) is None
    assert LinkSigner(b"j" * 32, timedelta(days=30)).read(token, config.all_recipients()) is None
    with monkeypatch.context() as patched:
        patched.setattr("time.time", lambda: NOW.timestamp() - 31 * 86400 + 0.0)
        old = signer.make(MUTE, ANA, s=7)
    assert signer.read(old, config.all_recipients()) is None  # expired
    form = signer.form_token(token)
    assert signer.form_ok(token, form)
    assert not signer.form_ok(old, form)
    assert not signer.form_ok(token, form + "x")
    assert token_id(token) != token_id(old)


def test_check_config_warns_when_readers_would_get_no_links(tmp_path: Path) -> None:
    settings = {**SETTINGS, "web": {}, "database": f"sqlite:///{tmp_path / 'n.db'}"}
    result = run_newswatch(write_config(tmp_path, **settings), "check-config")
    assert result.returncode == 0, result.stderr
    assert "warning: web.public_url is not set" in result.stdout
    linked = write_config(tmp_path, **{**settings, "web": SETTINGS["web"]})
    printed = run_newswatch(linked, "check-config").stdout
    assert "web.public_url" not in printed  # the only warning left: its sources are off
    assert [line for line in printed.splitlines() if "warning" in line] == [
        f"{linked}: sources (line 1): warning: every source has enabled: false; none is polled"
    ]


def test_the_rate_limiter_is_a_bucket_per_address() -> None:
    limiter = RateLimiter()
    assert all(limiter.allow("1.2.3.4", 3, now=100.0) for _ in range(3))
    assert not limiter.allow("1.2.3.4", 3, now=100.0)
    assert limiter.allow("5.6.7.8", 3, now=100.0)
    assert limiter.allow("1.2.3.4", 3, now=120.0)  # a minute refills 3: 20 s one


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
    ],
    ids=["ipv4", "ipv6", "ipv6-upper-case", "next-ipv6-subnet", "ipv4-mapped", "loopback", "none"],
)
def test_the_rate_limit_counts_an_ipv6_client_by_its_64(address: str, client: str) -> None:
    assert client_network(address) == client


def test_rotating_through_a_64_does_not_evade_the_rate_limit() -> None:
    limiter = RateLimiter()
    rotated = [f"2001:db8:1:2::{n:x}" for n in range(1, 5)]
    assert [limiter.allow(client_network(a), 3, now=100.0) for a in rotated] == [
        True, True, True, False,
    ]  # fmt: skip
    assert limiter.allow(client_network("2001:db8:1:3::1"), 3, now=100.0)  # another /64
    mapped = [limiter.allow(client_network(a), 1, now=100.0)
              for a in ("198.51.100.9", "::ffff:198.51.100.9")]  # fmt: skip
    assert mapped == [True, False]  # one IPv4 client, however its socket spells it


def _messages(outbox: Path) -> dict[str, list[email.message.EmailMessage]]:
    found: dict[str, list[email.message.EmailMessage]] = {}
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        found.setdefault(str(message["To"]), []).append(message)
    return found


def _html(message: email.message.EmailMessage) -> str:
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_every_digest_carries_signed_links_and_rfc_8058_headers(
    store: Store, tmp_path: Path
) -> None:
    config = Config.model_validate(SETTINGS)
    _ingest(store, "https://wire.example/1", "Floods close the port")
    send_pending_digests(store, config, OutboxDelivery(tmp_path), NOW)
    message = _messages(tmp_path)[ANA][0]
    header = str(message["List-Unsubscribe"])
    assert re.fullmatch(
        r"<https://news\.example\.org/watch/unsubscribe/[\w.\-]+>, <mailto:leave@example\.org>",
        header,
    ), header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire, as a mailbox provider reads it: the URL whole on one header line,
    # not folded into RFC 2047 encoded-words.
    (raw,) = [
        data
        for data in (path.read_bytes() for path in tmp_path.glob("*.eml"))
        if f"To: {ANA}".encode() in data
    ]
    headers = raw.split(b"\n\n", 1)[0].split(b"\n")
    (line,) = [h for h in headers if h.startswith(b"List-Unsubscribe:")]
    assert line.rstrip(b"\r").decode() == f"List-Unsubscribe: {header}"
    page = _html(message)
    for label in ("More like this", "Not relevant", "Mute this story", "Pause for a week",
                  "Unsubscribe", "Your muted stories and paused rules"):  # fmt: skip
        assert label in page
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Mute this story: https://news.example.org/watch/act/" in text

    # Without web.public_url: no links, the mailto only, and check-config would say so.
    plain = Config.model_validate({**SETTINGS, "web": {}})
    _ingest(store, "https://wire.example/2", "Valley shaken", QUAKE_BODY, "quakes", "earthquake")
    send_pending_digests(store, plain, OutboxDelivery(tmp_path / "plain"), NOW)
    bare = _messages(tmp_path / "plain")[ANA][0]
    assert str(bare["List-Unsubscribe"]) == "<mailto:leave@example.org>"
    assert bare["List-Unsubscribe-Post"] is None
    assert "/act/" not in _html(bare)


def test_webhook_bodies_and_chat_carry_the_links(store: Store) -> None:
    from alerts.channel_sending import channel_message
    from alerts.chat import chat_text

    settings = {
        **SETTINGS,
        "channels": [
            {"name": "hook", "kind": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_KEY"}
        ],
        "recipients": [{"email": "ops@example.com", "channels": ["hook"]}],
    }
    config = Config.model_validate(settings)
    _ingest(store, "https://wire.example/1", "Floods close the port")
    items = store.pending_items("ops@example.com", ["floods"], channel="hook")
    record = store.create_delivery("ops@example.com", items, "example.org", channel="hook")
    assert record is not None
    message = channel_message(store, config, record)
    payload = webhook_payload(message)
    assert payload["schema"] == "newswatch.delivery/1"
    assert payload["manage_url"].startswith("https://news.example.org/watch/reader/")
    entry = payload["sections"][0]["entries"][0]
    assert set(entry["actions"]) == {MORE, LESS, MUTE}
    assert set(payload["sections"][0]["actions"]) == {PAUSE, UNSUBSCRIBE}
    assert f"Mute, pause or unsubscribe: {message.manage_url}" in chat_text(message, 2000)[1]


# -- over HTTP, as readers and their mail scanners reach it --------------------------


def _config(tmp_path: Path, port: int, **feedback: Any) -> Path:
    return write_config(
        tmp_path,
        **{
            **SETTINGS,
            "database": f"sqlite:///{tmp_path / 'newswatch.db'}",
            "user_agent_contact": "https://example.org/newswatch-tests",
            "workers": 0,
            "delivery": {"outbox": str(tmp_path / "outbox")},
            "web": {"port": port, "public_url": f"http://localhost:{port}/"},
            "feedback": {"rate_limit": 1000, **feedback},
        },
    )


def _links(page: str) -> dict[str, list[str]]:
    """The digest's links by label."""
    found: dict[str, list[str]] = {}
    for url, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', page):
        found.setdefault(html.unescape(label), []).append(html.unescape(url))
    return found


def _path(url: str) -> str:
    return urlsplit(url).path


def _post(web: RunningService, path: str, fields: dict[str, str], host: str) -> Any:
    return web.request(
        path,
        "POST",
        body=urlencode(fields),
        headers={"Host": host, "Content-Type": "application/x-www-form-urlencoded"},
    )


def _form(page: str) -> str:
    found = re.search(r'name="form" value="([^"]+)"', page)
    assert found, page
    return html.unescape(found.group(1))


def _answers(store: Store) -> tuple[int, ...]:
    from sqlalchemy import text

    with store.engine.connect() as connection:
        return tuple(
            connection.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("used_links", "feedback_votes", "story_mutes", "rule_holds")
        )


@pytest.mark.slow
def test_the_readers_pages_act_only_on_a_good_post(tmp_path: Path) -> None:
    port = free_port()
    host = f"localhost:{port}"
    config_path = _config(tmp_path, port, rate_limit=60)
    config = Config.model_validate({**SETTINGS, "web": {"public_url": f"http://{host}/"}})
    store = Store.from_url(f"sqlite:///{tmp_path / 'newswatch.db'}")
    store.upgrade()
    store.sync_sources(config.sources)
    outbox = tmp_path / "outbox"
    try:
        with running_service(config_path) as web:
            _ingest(store, "https://wire.example/1", HOSTILE)
            _ingest(store, "https://wire.example/2", "Valley shaken", QUAKE_BODY, "quakes",
                    "earthquake")  # fmt: skip
            send_pending_digests(store, config, OutboxDelivery(outbox), NOW)
            message = _messages(outbox)[ANA][0]
            links = _links(_html(message))
            every = [url for urls in links.values() for url in urls]
            ours = [url for url in every if url.startswith(f"http://{host}/")]
            assert len(ours) >= 10

            # A mail scanner follows every link: nothing changes.
            before = _answers(store)
            for url in ours:
                page = web.get(_path(url), Host=host)
                assert page.status == 200, (url, page.body)
                assert page.headers["x-content-type-options"] == "nosniff"
                assert page.headers["x-frame-options"] == "DENY"
                # The message itself ("view in browser") has no form at all.
                form_action = "'none'" if "/view/" in url else "'self'"
                assert f"form-action {form_action}" in page.headers["content-security-policy"]
            assert _answers(store) == before == (0, 0, 0, 0)

            mute = _path(links["Mute this story"][0])
            page = web.get(mute, Host=host)
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.body
            assert "<script>" not in page.body
            assert web.get(mute, Host=f"127.0.0.1:{port}").status == 421  # not the public host
            assert web.get(mute[:-4] + "AAAA", Host=host).status == 403
            assert _post(web, mute, {}, host).status == 403  # no form token
            assert _post(web, mute, {"form": "forged.token.x"}, host).status == 403
            other = _path(links["Mute this story"][1]) if len(links["Mute this story"]) > 1 else ""
            if other:  # another link's form token does not fit this link
                assert _post(web, mute, {"form": _form(web.get(other, Host=host).body)},
                             host).status == 403  # fmt: skip
            assert _answers(store) == (0, 0, 0, 0)

            form = _form(page.body)
            done = _post(web, mute, {"form": form}, host)
            assert done.status == 200, done.body
            assert "Muted" in done.body
            assert _answers(store) == (1, 0, 1, 0)
            replay = _post(web, mute, {"form": form}, host)
            assert "used before" in replay.body
            assert _answers(store) == (1, 0, 1, 0)
            undone = _post(web, f"{mute}/undo", {"form": _form(done.body)}, host)
            assert "Undone" in undone.body
            assert store.muted_stories(ANA) == []

            # The reader's page lists what stands; an expired link gets 403.
            signer = LinkSigner(store.service_key(LINK_SIGNING_KEY), timedelta(seconds=1))
            reader = _path(links["Your muted stories and paused rules"][0])
            assert "Your digest" in web.get(reader, Host=host).body
            assert signer.read(reader.rsplit("/", 1)[1], config.all_recipients()) is not None

            # RFC 8058 one-click, urlencoded and multipart, without a form token.
            one_click = _path(str(message["List-Unsubscribe"]).split(">")[0].strip("<"))
            assert "Unsubscribe" in web.get(one_click, Host=host).body
            assert _answers(store)[3] == 0
            answer = _post(web, one_click, {"List-Unsubscribe": "One-Click"}, host)
            assert answer.status == 200
            assert "unsubscribed" in answer.body
            assert {hold.rule for hold in store.held_rules(ANA, NOW)} == {"floods", "quakes"}
            # The reader's page shows the holds; its Undo (a POST with the form) ends one.
            page = web.get(reader, Host=host)
            assert "unsubscribed" in page.body
            assert _post(web, f"{reader}/release", {"rule": "quakes"}, host).status == 403
            released = _post(
                web, f"{reader}/release", {"rule": "quakes", "form": _form(page.body)}, host
            )
            assert released.status == 303
            assert {hold.rule for hold in store.held_rules(ANA, NOW)} == {"floods"}
            # As a browser follows the redirect: back on the reader's page, whose forms
            # post to the reader's own paths again.
            back = urljoin(f"{reader}/release", released.headers["location"])
            assert back == reader
            again = web.get(back, Host=host)
            action = re.search(r'<form method="post" action="([^"]+/unsubscribe)"', again.body)
            assert action is not None
            assert urljoin(back, html.unescape(action.group(1))) == f"{reader}/unsubscribe"
            _post(web, f"{reader}/unsubscribe", {"rule": "quakes", "form": _form(page.body)}, host)
            assert {hold.rule for hold in store.held_rules(ANA, NOW)} == {"floods", "quakes"}
            bob = _messages(outbox)[BOB][0]
            bob_click = _path(str(bob["List-Unsubscribe"]).split(">")[0].strip("<"))
            boundary = "newswatch-test-boundary"
            body = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"'
                f"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
            )
            answer = web.request(
                bob_click, "POST", body=body,
                headers={"Host": host, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )  # fmt: skip
            assert answer.status == 200, answer.body
            assert {hold.rule for hold in store.held_rules(BOB, NOW)} == {"floods", "quakes"}
            _ingest(store, "https://wire.example/3", "Floods again", BODY + " More rain.")
            report = send_pending_digests(store, config, OutboxDelivery(outbox), NOW)
            assert report.sent == {}  # both readers left every rule of their digest

            big = web.request(
                one_click, "POST", body="x" * 200_000,
                headers={"Host": host, "Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
            assert big.status == 413

            statuses = [web.get(reader, Host=host).status for _ in range(80)]
            assert 429 in statuses
    finally:
        store.close()


def _standing_holds(store: Store, reader: str) -> dict[str, datetime | None]:
    return {hold.rule: hold.until for hold in store.held_rules(reader, datetime.now(UTC))}


@pytest.mark.slow
def test_one_click_leaves_the_reader_unsubscribed_however_often_it_is_posted(
    tmp_path: Path,
) -> None:
    """RFC 8058: the one-click POST is idempotent and its answer true. Re-subscribed
    on their page, a reader whose mailbox provider replays the POST (or who clicks
    the header's unsubscribe again) is unsubscribed again, not told so falsely; a
    paused rule becomes an unsubscription. The section's Unsubscribe link stays
    one-time."""
    port = free_port()
    host = f"localhost:{port}"
    config_path = _config(tmp_path, port)
    config = Config.model_validate({**SETTINGS, "web": {"public_url": f"http://{host}/"}})
    store = Store.from_url(f"sqlite:///{tmp_path / 'newswatch.db'}")
    store.upgrade()
    store.sync_sources(config.sources)
    outbox = tmp_path / "outbox"
    one_click_body = {"List-Unsubscribe": "One-Click"}
    try:
        with running_service(config_path) as web:
            _ingest(store, "https://wire.example/1", "Floods close the port")
            _ingest(store, "https://wire.example/2", "Valley shaken", QUAKE_BODY, "quakes",
                    "earthquake")  # fmt: skip
            send_pending_digests(store, config, OutboxDelivery(outbox), NOW)
            message = _messages(outbox)[ANA][0]
            links = _links(_html(message))
            one_click = _path(str(message["List-Unsubscribe"]).split(">")[0].strip("<"))
            reader = _path(links["Your muted stories and paused rules"][0])

            first = _post(web, one_click, one_click_body, host)
            assert first.status == 200, first.body
            assert "You are unsubscribed from floods, quakes." in first.body
            assert _standing_holds(store, ANA) == {"floods": None, "quakes": None}

            # The reader re-subscribes to quakes on their page...
            page = web.get(reader, Host=host)
            form = _form(page.body)
            _post(web, f"{reader}/release", {"rule": "quakes", "form": form}, host)
            assert _standing_holds(store, ANA) == {"floods": None}
            # ...and the provider replays the one-click POST: unsubscribed again.
            replay = _post(web, one_click, one_click_body, host)
            assert replay.status == 200, replay.body
            assert "You are unsubscribed from quakes (you already were from floods)." in (
                replay.body
            )
            assert _standing_holds(store, ANA) == {"floods": None, "quakes": None}

            # Posted again with nothing to change: it says so, and adds nothing.
            rows = _answers(store)
            again = _post(web, one_click, one_click_body, host)
            assert again.status == 200
            assert "already unsubscribed from floods, quakes; nothing changed" in again.body
            assert "You are unsubscribed" not in again.body
            assert _answers(store) == rows

            # A rule paused on the page: one click makes it an unsubscription.
            _post(web, f"{reader}/release", {"rule": "floods", "form": form}, host)
            _post(web, f"{reader}/pause", {"rule": "floods", "form": form}, host)
            assert _standing_holds(store, ANA)["floods"] is not None
            paused = _post(web, one_click, one_click_body, host)
            assert "You are unsubscribed from floods (you already were from quakes)." in (
                paused.body
            )
            assert _standing_holds(store, ANA) == {"floods": None, "quakes": None}

            # Its Undo takes back what the link did, and the link still works after.
            action = re.search(r'action="([^"]+/undo)"', paused.body)
            assert action is not None, paused.body
            undo = urljoin(one_click, html.unescape(action.group(1)))
            undone = _post(web, undo, {"form": _form(paused.body)}, host)
            assert "Undone" in undone.body, undone.body
            holds = _standing_holds(store, ANA)
            assert list(holds) == ["floods"]  # the page's pause stands; the link's holds went
            assert holds["floods"] is not None
            after_undo = _post(web, one_click, one_click_body, host)
            assert "You are unsubscribed from floods, quakes." in after_undo.body
            assert _standing_holds(store, ANA) == {"floods": None, "quakes": None}

            # The section's Unsubscribe link keeps its one-time semantics.
            _post(web, f"{reader}/release", {"rule": "floods", "form": form}, host)
            section = _path(links["Unsubscribe"][0])
            section_form = _form(web.get(section, Host=host).body)
            assert "Unsubscribed" in _post(web, section, {"form": section_form}, host).body
            _post(web, f"{reader}/release", {"rule": "floods", "form": form}, host)
            used = _post(web, section, {"form": section_form}, host)
            assert "used before; nothing was changed" in used.body
            assert "floods" not in _standing_holds(store, ANA)
    finally:
        store.close()


@pytest.mark.slow
def test_mute_from_the_email_in_a_browser(browser: Any, tmp_path: Path) -> None:
    port = free_port()
    host = f"localhost:{port}"
    config_path = _config(tmp_path, port)
    config = Config.model_validate({**SETTINGS, "web": {"public_url": f"http://{host}/"}})
    store = Store.from_url(f"sqlite:///{tmp_path / 'newswatch.db'}")
    store.upgrade()
    store.sync_sources(config.sources)
    outbox = tmp_path / "outbox"
    index = StoryIndex()
    try:
        with running_service(config_path):
            _ingest(store, "https://wire.example/1", "Floods close the port", stories=index)
            ana = [reader for reader in config.all_recipients() if reader.email == ANA]
            send_pending_digests(store, config, OutboxDelivery(outbox), NOW, recipients=ana)
            digest = tmp_path / "digest.html"
            digest.write_text(_html(_messages(outbox)[ANA][0]), encoding="utf-8")

            page = browser.new_page()
            page.goto(digest.as_uri())
            page.click("text=Mute this story")
            page.wait_for_url(re.compile(r"/act/"))
            assert "Mute this story" in page.inner_text("h1")
            page.click("button:has-text('Mute this story')")
            page.wait_for_selector("text=Muted")
            assert "Undo" in page.inner_text("body")
            page.close()

            _copy(store, index, 2)  # the fixture wire: another outlet's copy of the story
            _ingest(store, "https://wire.example/2", "Valley shaken", QUAKE_BODY, "quakes",
                    "earthquake")  # fmt: skip
            send_pending_digests(store, config, OutboxDelivery(outbox), NOW + timedelta(hours=1))
            second = _messages(outbox)
            assert len(second[ANA]) == 2
            assert len(second[BOB]) == 1
            assert "Floods close the port" not in _html(second[ANA][1])  # nor its copy
            assert "Valley shaken" in _html(second[ANA][1])
            assert "Floods close the port" in _html(second[BOB][0])  # another reader: yes
    finally:
        store.close()


@pytest.mark.slow
def test_a_mute_from_the_email_covers_a_follow_up_in_a_browser(
    browser: Any, tmp_path: Path
) -> None:
    """Mute from the digest in Chromium; a follow-up of the story (another story that
    repeats its background) and another outlet's copy of that follow-up come in: the
    next digest leaves them out for this reader only, their page says why, and its
    Undo brings them back."""
    port = free_port()
    host = f"localhost:{port}"
    config_path = _config(tmp_path, port)
    config = Config.model_validate({**SETTINGS, "web": {"public_url": f"http://{host}/"}})
    store = Store.from_url(f"sqlite:///{tmp_path / 'newswatch.db'}")
    store.upgrade()
    store.sync_sources(config.sources)
    outbox = tmp_path / "outbox"
    index = StoryIndex()
    ana = [reader for reader in config.all_recipients() if reader.email == ANA]
    try:
        with running_service(config_path):
            _ingest(store, "https://wire.example/1", "Floods close the port", PORT_STORY,
                    stories=index)  # fmt: skip
            send_pending_digests(store, config, OutboxDelivery(outbox), NOW, recipients=ana)
            digest = tmp_path / "digest.html"
            digest.write_text(_html(_messages(outbox)[ANA][0]), encoding="utf-8")

            page = browser.new_page()
            page.goto(digest.as_uri())
            page.click("text=Mute this story")
            page.wait_for_url(re.compile(r"/act/"))
            assert "follow-ups" in page.inner_text("body")  # says what it will do
            page.click("button:has-text('Mute this story')")
            page.wait_for_selector("text=Muted")

            _ingest(store, "https://wire.example/2", "Port reopens to ferries", PORT_FOLLOW_UP,
                    stories=index)  # fmt: skip
            _ingest(store, "https://coast.example/2", "Ferries back at the port",
                    PORT_FOLLOW_UP.replace("Friday", "Friday morning"), source="coast",
                    stories=index)  # fmt: skip
            _ingest(store, "https://wire.example/3", "Valley shaken", QUAKE_BODY, "quakes",
                    "earthquake")  # fmt: skip
            send_pending_digests(store, config, OutboxDelivery(outbox), NOW + timedelta(hours=1))
            second = _messages(outbox)
            assert len(second[ANA]) == 2
            assert "erries" not in _html(second[ANA][1])  # the follow-up, nor its copy
            assert "Valley shaken" in _html(second[ANA][1])
            assert "Ferries back at the port" in _html(second[BOB][0])  # another reader: yes

            reader = _links(_html(second[ANA][1]))["Your muted stories and paused rules"][0]
            page.goto(reader)
            entry = page.locator("li", has_text="Port reopens to ferries")  # its first copy
            assert "muted as a follow-up of “Floods close the port”" in entry.inner_text()
            entry.locator("button:has-text('Undo')").click()
            page.wait_for_load_state()
            assert "Port reopens to ferries" not in page.inner_text("body")
            assert "Floods close the port" in page.inner_text("body")  # still muted
            page.close()
            send_pending_digests(store, config, OutboxDelivery(outbox), NOW + timedelta(hours=2),
                                 recipients=ana)  # fmt: skip
            third = _messages(outbox)[ANA]
            assert len(third) == 3
            assert "Ferries back at the port" in _html(third[2])  # the undo brought it back
    finally:
        store.close()


def test_the_top_stories_block_is_no_rule_to_pause_and_its_stories_answer_for_theirs(
    store: Store,
) -> None:
    from alerts.feedback import ReaderLinks, with_actions
    from alerts.render import DigestEntry, DigestSection

    config = Config.model_validate(SETTINGS)
    signer = LinkSigner(b"k" * 32, timedelta(days=30))
    links = ReaderLinks("https://news.example.org/watch/", signer, ANA)
    entry = DigestEntry(
        title="Valley shaken",
        url="https://wire.example/2",
        source="wire",
        published=NOW,
        snippet_text="",
        terms=(),
        article_id=7,
        story_id=7,
        rule="quakes",
    )
    top = DigestSection(rule="Top stories", entries=(entry,), top=True)
    (answered,) = with_actions([top], links)
    assert answered.actions == ()  # no "Top stories: Pause for a week · Unsubscribe"
    for action in answered.entries[0].actions:
        token = urlsplit(action.url).path.rsplit("/", 1)[1]
        claim = signer.read(token, config.all_recipients())
        assert claim is not None
        assert claim.answer.rules == ("quakes",)  # the story's own rule, for learning
