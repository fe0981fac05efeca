"""An opened sent digest (issue 23), in headless Chromium: a digest is crawled and sent
through the test SMTP server by the commands a user runs, then the operator opens it
from the delivery history of ``newswatch run`` and sees the message as the server
received it (HTML, then the text part), and the reader's "View in browser" link
shows the same. Screenshots kept in test-artifacts/."""

from __future__ import annotations

import html
import os
import re
from typing import TYPE_CHECKING, Any

import pytest
from conftest import ARTIFACTS, run_newswatch, site_config, write_config
from smtpserver import free_port
from test_web import (
    _HOSTILE_FEED,
    _HOSTILE_PAGE,
    ARMY,
    CUP,
    HOSTILE_TITLE,
    MUSEUM,
    SATELLITE,
    TOKEN,
    running_service,
)

if TYPE_CHECKING:
    from email.message import EmailMessage
    from pathlib import Path

    from newssite import NewsSite
    from playwright.sync_api import Page
    from smtpserver import RecordingSmtpServer

ANALYST = "analyst@example.com"
ENV = {"NEWSWATCH_TEST_TOKEN": TOKEN}


def _watched(page: Page) -> tuple[list[str], list[str]]:
    """The dialogs a page opened (a script ran) and its console errors (a CSP
    violation is reported as one)."""
    dialogs: list[str] = []
    problems: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    return dialogs, problems


def _part(message: EmailMessage, kind: str) -> str:
    body = message.get_body((kind,))
    assert body is not None, kind
    return str(body.get_content())


@pytest.mark.slow
def test_a_sent_digest_opens_from_the_delivery_history_as_it_was_sent_in_chromium(
    browser: Any, news_site: NewsSite, smtp_server: RecordingSmtpServer, tmp_path: Path
) -> None:
    news_site.set_content("hostile/rss.xml", _HOSTILE_FEED, "application/rss+xml")
    news_site.set_content("articles/hostile.html", _HOSTILE_PAGE, "text/html; charset=utf-8")
    port = free_port()  # fixed up front: the public URL in the mail must name it
    # The reader's link names the public host; the operator uses 127.0.0.1.
    public = f"localhost:{port}"
    settings = site_config(news_site, tmp_path)
    settings["sources"].append(
        {"name": "evil", "feed": news_site.url("hostile/rss.xml"), "every": "1h"}
    )
    settings["delivery"] = {
        "smtp": {"host": smtp_server.host, "port": smtp_server.port, "starttls": False}
    }
    settings["web"] = {
        "port": port,
        "public_url": f"http://{public}/",
        "token_env": "NEWSWATCH_TEST_TOKEN",
    }
    config = write_config(tmp_path, **settings)
    environment = {**os.environ, **ENV}
    for command in ("crawl", "digest"):
        done = run_newswatch(config, command, env=environment)
        assert done.returncode == 0, done.stderr
    [received] = smtp_server.messages
    assert received.envelope_to == (ANALYST,)
    subject = str(received.message["Subject"])
    sent_html = _part(received.message, "html")
    sent_text = _part(received.message, "plain")
    assert HOSTILE_TITLE not in sent_html  # escaped in the mail itself

    with running_service(config, ENV) as service:
        base = f"http://127.0.0.1:{service.port}"
        ARTIFACTS.mkdir(exist_ok=True)

        page = browser.new_page(viewport={"width": 1000, "height": 900})
        dialogs, problems = _watched(page)
        page.goto(f"{base}/digests?token={TOKEN}")
        row = page.locator("tbody tr", has_text=ANALYST)
        assert row.count() == 1
        # By its address, not its text: the history's columns may change.
        opened = row.locator('a[href^="/digests/"]').first
        with page.expect_response(re.compile(r"/digests/\d+$")) as response:
            opened.click()
        page.wait_for_url(re.compile(re.escape(base) + r"/digests/\d+$"))
        address = page.url
        # Without the token (a fresh browser context) the history and the copy are closed.
        closed = browser.new_page()
        assert closed.goto(base + "/digests").status == 401
        assert closed.goto(address).status == 401
        assert closed.goto(address + "?format=text").status == 401
        closed.close()
        # Served under the preview's policy: nothing in the copy can run or fetch.
        policy = response.value.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src" not in policy

        # The message as it was sent: its subject, headlines and links, and the
        # hostile title as text.
        assert page.title() == subject
        assert page.locator("h1").inner_text() == subject
        shown = page.inner_text("body")
        for headline in (ARMY, MUSEUM, SATELLITE, HOSTILE_TITLE):
            assert headline in shown
        assert CUP not in shown  # excluded by the rule, so never sent
        assert page.locator("script").count() == 0
        assert page.locator("img[onerror]").count() == 0
        links = page.locator("a").evaluate_all("links => links.map(link => link.href)")
        assert any(link.endswith("/articles/palmyra-museum.html") for link in links)
        # The same text a mail client shows for the received HTML part.
        received_file = tmp_path / "received.html"
        received_file.write_text(sent_html, encoding="utf-8")
        mail_client = browser.new_page(viewport={"width": 1000, "height": 900})
        mail_client.goto(received_file.as_uri())
        assert mail_client.inner_text("body") == shown
        mail_client.close()
        page.screenshot(path=str(ARTIFACTS / "web-sent-digest.png"), full_page=True)

        # The text part, as received (the parsed SMTP message keeps the wire's CRLFs).
        text_response = page.goto(address + "?format=text")
        assert text_response is not None
        assert text_response.headers["content-type"].startswith("text/plain")
        assert page.inner_text("body").strip() == sent_text.replace("\r\n", "\n").strip()
        assert '<script>alert("title")</script> Palmyra siege' in page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "web-sent-digest-text.png"), full_page=True)
        page.close()
        assert dialogs == []
        assert problems == []

        # The reader's "View in browser" link (no token) shows the same message.
        [link] = re.findall(r'href="(http://[^"]+/view/[^"]+)"', sent_html)
        view = html.unescape(link)
        assert view.startswith(f"http://{public}/view/")
        reader = browser.new_page(viewport={"width": 1000, "height": 900})
        reader_dialogs, reader_problems = _watched(reader)
        assert reader.goto(view).status == 200
        assert reader.inner_text("body") == shown
        reader.close()
        assert reader_dialogs == []
        assert reader_problems == []
    assert "Traceback" not in service.output()
