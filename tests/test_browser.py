"""Rendered digests opened in a real browser, as a reader's mail client would show
them, and a source's health in the web UI as an operator sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from conftest import ARTIFACTS
from test_source_page import BLOCKED, BLOCKED_REASON, HOSTILE_NAME, HOSTILE_REASON, health_site

from alerts.digest import render_items
from crawler.domain.config import Config
from crawler.storage.store import PendingItem, StoredArticle

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> "quoted\' title'


def _item(
    n: int,
    title: str,
    source: str,
    rules: tuple[str, ...],
    story: int | None = None,
    url: str | None = None,
) -> PendingItem:
    article = StoredArticle(
        id=n,
        url=url or f"https://news{n}.example/story/{n}",
        source=source,
        title=title,
        body=f"Palmyra report {n}: regime troops advanced on Tuesday near Palmyra, "
        "where the ancient city was retaken.",
        published=datetime(2024, 2, 14, 6, n, tzinfo=UTC),
        authors=(),
        language="en",
        story_id=story if story is not None else n,
    )
    return PendingItem(article, tuple((rule, ("Palmyra",)) for rule in rules))


def test_digest_renders_in_chromium_with_the_headlines_and_nothing_active(
    browser: Any, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    config = Config.model_validate(
        {
            "rules": [
                {"name": "syria", "keywords": ["Palmyra"]},
                {"name": "heritage", "keywords": ["ancient"]},
            ],
            "digest": {"timezone": "Asia/Kolkata", "recipients": ["ana@example.com"]},
        }
    )
    items = [
        _item(1, "Army pressures ISIS in central Syria", "wire", ("syria",)),
        _item(2, "Syria: army presses on", "daily", ("syria",), story=1),
        _item(3, "Palmyra museum reopens its doors", "herald", ("syria", "heritage")),
        _item(4, HOSTILE, "evil", ("heritage",), url="javascript:alert(2)"),
    ]
    digest = render_items(items, config, config.all_recipients()[0], NOW)
    page_file = tmp_path / "digest.html"
    page_file.write_text(digest.html, encoding="utf-8")

    page = browser.new_page(viewport={"width": 700, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(page_file.as_uri())
    text = page.inner_text("body")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "digest.png"), full_page=True)
    mobile = browser.new_page(viewport={"width": 375, "height": 800})
    mobile.goto(page_file.as_uri())
    mobile.screenshot(path=str(ARTIFACTS / "digest-mobile.png"), full_page=True)
    page.close()
    mobile.close()

    assert "Army pressures ISIS in central Syria" in text
    assert "Palmyra museum reopens its doors" in text
    assert "wire and daily" in text  # one entry for the story, with both outlets
    assert "Syria: army presses on" not in text  # a copy's shorter headline
    assert "14 Feb 2024, 11:31 IST" in text
    assert '<script>alert("x")</script>' in text  # shown as text, not run
    assert dialogs == []
    assert page_file.read_text().count("javascript:") == 0


@pytest.mark.slow
def test_a_blocked_source_shows_its_state_reason_and_chart_in_chromium(
    browser: Any, news_site: NewsSite, tmp_path: Path
) -> None:
    with health_site(news_site, tmp_path) as site:
        base = f"http://127.0.0.1:{site.service.port}"
        ARTIFACTS.mkdir(exist_ok=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        problems: list[str] = []  # a CSP violation is reported as a console error
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )

        page.goto(base + "/")
        herald = page.get_by_role("link", name=BLOCKED, exact=True)
        row = page.locator("tr", has=herald).inner_text()
        assert "blocked" in row
        assert BLOCKED_REASON in row
        page.screenshot(path=str(ARTIFACTS / "web-status-health.png"), full_page=True)

        herald.click()
        page.wait_for_url(f"{base}/sources/{BLOCKED}")
        assert page.locator("#state").inner_text() == "blocked"
        assert page.locator("#state").is_visible()
        assert page.locator("#reason").inner_text() == BLOCKED_REASON
        assert page.locator("#reason").is_visible()
        chart = page.get_by_role("img", name="New articles per day from herald, last 30 days")
        assert chart.is_visible()
        bars = chart.locator("rect.bar")
        assert bars.count() == 30
        heights = bars.evaluate_all("bars => bars.map(bar => bar.getBBox().height)")
        assert sum(height > 0 for height in heights) >= 10  # the seeded weekdays
        assert chart.locator("polyline.expected").count() == 1
        page.screenshot(path=str(ARTIFACTS / "web-source-blocked.png"), full_page=True)

        page.goto(base + "/sources/" + quote(HOSTILE_NAME, safe=""))
        assert HOSTILE_REASON in page.locator("#reason").inner_text()  # text, not run
        page.screenshot(path=str(ARTIFACTS / "web-source-hostile.png"), full_page=True)
        page.close()
        assert dialogs == []
        assert problems == []
