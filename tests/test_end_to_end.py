"""The whole path, as a user runs it: crawl the fixture site, match, email the digest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from conftest import run_newswatch, site_config, write_config

from crawler.domain.config import load_config
from crawler.storage.store import Store

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite
    from smtpserver import RecordingSmtpServer

MATCHING = {
    "syria": {"army-pressures-isis.html", "palmyra-museum.html", "satellite-palmyra.html"},
    "chips": {"memory-crisis.html"},
}


def _smtp_config(news_site: NewsSite, tmp_path: Path, smtp: RecordingSmtpServer) -> Path:
    settings = site_config(news_site, tmp_path)
    settings["delivery"] = {"smtp": {"host": smtp.host, "port": smtp.port, "starttls": False}}
    return write_config(tmp_path, **settings)


def _page_names(message: EmailMessage) -> set[str]:
    text = message.get_body(("plain",)).get_content()
    return {word.rsplit("/", 1)[1] for word in text.split() if "/articles/" in word}


def test_crawl_match_and_digest_arrive_once(
    news_site: NewsSite, tmp_path: Path, smtp_server: RecordingSmtpServer
) -> None:
    config = _smtp_config(news_site, tmp_path, smtp_server)

    crawl = run_newswatch(config, "crawl")
    assert crawl.returncode == 0, crawl.stderr
    store = Store.from_url(load_config(config).database)
    stored = {article.url.rsplit("/", 1)[1] for article in store.articles()}
    assert stored == {
        "army-pressures-isis.html",
        "palmyra-museum.html",
        "cup-final.html",
        "memory-crisis.html",
        "satellite-palmyra.html",
    }
    matched = {(rule, url.rsplit("/", 1)[1]) for rule, url, _terms in store.matches()}
    assert matched == {(rule, page) for rule, pages in MATCHING.items() for page in pages}

    digest = run_newswatch(config, "digest")
    assert digest.returncode == 0, digest.stderr
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.envelope_to == ("analyst@example.com",)
    assert received.message["Subject"] == "newswatch: 4 new articles"
    assert received.message.get_content_type() == "multipart/alternative"
    assert _page_names(received.message) == set().union(*MATCHING.values())
    html = received.message.get_body(("html",)).get_content()
    assert "Army pressures ISIS in central Syria" in html
    assert "<mark" in html
    assert "Palmyra</mark>" in html

    # A second crawl finds nothing new and the next digest has nothing to send.
    requests_before = len(news_site.requests)
    again = run_newswatch(config, "crawl")
    assert again.returncode == 0, again.stderr
    new_requests = news_site.paths_requested()[requests_before:]
    assert [path for path in new_requests if "/articles/" in path] == []
    assert run_newswatch(config, "digest").returncode == 0
    assert len(smtp_server.messages) == 1
    assert store.count_articles() == 5


def test_failed_send_is_retried_with_the_same_message_id(
    news_site: NewsSite, tmp_path: Path, smtp_server: RecordingSmtpServer
) -> None:
    config = _smtp_config(news_site, tmp_path, smtp_server)
    assert run_newswatch(config, "crawl").returncode == 0
    smtp_server.fail_next(1)

    failed = run_newswatch(config, "digest")
    assert failed.returncode == 1
    assert "will retry" in failed.stdout
    assert smtp_server.messages == []

    retried = run_newswatch(config, "digest")
    assert retried.returncode == 0, retried.stderr
    assert len(smtp_server.messages) == 1
    assert _page_names(smtp_server.messages[0].message) == set().union(*MATCHING.values())
    assert run_newswatch(config, "digest").returncode == 0
    assert len(smtp_server.messages) == 1
    store = Store.from_url(load_config(config).database)
    deliveries = store.deliveries()
    assert len(deliveries) == 1
    assert deliveries[0].attempts == 2
    assert deliveries[0].message_id == smtp_server.messages[0].message["Message-ID"]


def test_new_articles_after_a_digest_go_into_the_next_one_only(
    news_site: NewsSite, tmp_path: Path, smtp_server: RecordingSmtpServer
) -> None:
    config = _smtp_config(news_site, tmp_path, smtp_server)
    assert run_newswatch(config, "crawl", "--source", "tech").returncode == 0
    assert run_newswatch(config, "digest").returncode == 0
    assert run_newswatch(config, "crawl").returncode == 0
    assert run_newswatch(config, "digest").returncode == 0

    first, second = (m.message for m in smtp_server.messages)
    assert _page_names(first) == {"memory-crisis.html", "satellite-palmyra.html"}
    assert _page_names(second) == {"army-pressures-isis.html", "palmyra-museum.html"}


def test_seed_article_is_stored_with_its_real_publish_time(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(news_site, tmp_path)
    settings["rules"] = [
        {"name": "palmyra", "keywords": ["Palmyra"]},
        {"name": "not-damascus", "keywords": ["Palmyra"], "exclude": ["Damascus"]},
    ]
    config = write_config(tmp_path, **settings)
    assert run_newswatch(config, "crawl", "--source", "world").returncode == 0

    store = Store.from_url(load_config(config).database)
    (seed,) = [a for a in store.articles() if a.url.endswith("/army-pressures-isis.html")]
    assert seed.published == datetime(2016, 3, 30, 1, 46, tzinfo=UTC)
    assert seed.title == "Army pressures ISIS in central Syria"
    assert "utm_" not in seed.url
    paragraphs = [p.strip() for p in seed.body.split("\n\n") if p.strip()]
    assert len(paragraphs) == len(set(paragraphs))
    assert seed.title not in paragraphs
    assert not any(p.startswith("This photo, released by") for p in paragraphs)
    rules = {rule for rule, url, _ in store.matches() if url == seed.url}
    assert rules == {"palmyra"}


def test_outbox_is_the_default_delivery(news_site: NewsSite, tmp_path: Path) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    assert run_newswatch(config, "crawl").returncode == 0
    assert run_newswatch(config, "digest").returncode == 0
    emails = list((tmp_path / "outbox").glob("*.eml"))
    assert len(emails) == 1
    assert b"Palmyra museum reopens" in emails[0].read_bytes()
    assert run_newswatch(config, "digest").returncode == 0
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_digest_dry_run_prints_and_records_nothing(news_site: NewsSite, tmp_path: Path) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    assert run_newswatch(config, "crawl").returncode == 0
    dry = run_newswatch(config, "digest", "--dry-run")
    assert dry.returncode == 0
    assert "To: analyst@example.com" in dry.stdout
    assert "Chipmakers warn the memory crisis" in dry.stdout
    assert not (tmp_path / "outbox").exists()
    assert Store.from_url(load_config(config).database).deliveries() == []


def test_syndicated_copies_are_one_story_and_one_digest_entry(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(news_site, tmp_path)
    settings["sources"].append({"name": "gulf", "feed": news_site.url("gulf/rss.xml")})
    config = write_config(tmp_path, **settings)
    assert run_newswatch(config, "crawl").returncode == 0

    listing = run_newswatch(config, "stories", "--since", "3650d", "--json")
    assert listing.returncode == 0, listing.stderr
    stories = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(stories) == 5  # six articles, two of them copies of one AFP story
    (wire,) = [s for s in stories if len(s["members"]) == 2]
    assert [m["source"] for m in wire["members"]] == ["world", "gulf"]  # earliest first
    assert wire["members"][0]["url"].endswith("/army-pressures-isis.html")

    assert run_newswatch(config, "digest").returncode == 0
    (email,) = (tmp_path / "outbox").glob("*.eml")
    text = email.read_text()
    assert "world and gulf" in text
    # One entry for the two copies, under the most complete headline of the two.
    headlines = ["Syrian army closes in on Al-Qaryatain", "Army pressures ISIS in central Syria"]
    assert [title in text for title in headlines] == [True, False]


def test_a_word_for_word_wire_copy_on_another_outlet_joins_the_story(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(news_site, tmp_path)
    # Three outlets carry the AFP story: the original, an edited copy and Bravo Times
    # word for word (its own site: served under the host name "localhost").
    settings["sources"].append({"name": "gulf", "feed": news_site.url("gulf/rss.xml")})
    bravo = news_site.url("bravo/rss.xml").replace("127.0.0.1", "localhost")
    settings["sources"].append({"name": "Bravo Times", "feed": bravo})
    config = write_config(tmp_path, **settings)
    first = run_newswatch(config, "crawl", "--source", "world", "--source", "gulf")
    assert first.returncode == 0, first.stderr
    crawl = run_newswatch(config, "crawl", "--source", "Bravo Times")
    assert crawl.returncode == 0, crawl.stderr
    assert "Bravo Times: 1 link, 1 new: 1 copy of a known story" in crawl.stderr

    listing = run_newswatch(config, "stories", "--since", "3650d", "--json")
    stories = [json.loads(line) for line in listing.stdout.splitlines()]
    (wire,) = [s for s in stories if len(s["members"]) > 1]
    # Earliest first: Bravo Times ran it at 09:40 IST, the Gulf paper at 09:05 GST.
    assert [m["source"] for m in wire["members"]] == ["world", "Bravo Times", "gulf"]
    copy = wire["members"][1]
    assert copy["url"].startswith("http://localhost:")
    assert copy["published"].startswith("2016-03-30T04:10")

    assert run_newswatch(config, "digest").returncode == 0
    (email,) = (tmp_path / "outbox").glob("*.eml")
    text = email.read_text()
    assert "world, Bravo Times and gulf" in text
    # The copy's page is known (never fetched again); a second crawl sends nothing.
    store = Store.from_url(load_config(config).database)
    assert store.new_urls([copy["url"]]) == []
    assert run_newswatch(config, "crawl", "--source", "Bravo Times").returncode == 0
    assert run_newswatch(config, "digest").returncode == 0
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
