"""Rendered digests opened in a real browser, as a reader's mail client would show them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conftest import ARTIFACTS

from alerts.digest import render_items
from crawler.domain.config import Config
from crawler.storage.store import PendingItem, StoredArticle

if TYPE_CHECKING:
    import pytest

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
