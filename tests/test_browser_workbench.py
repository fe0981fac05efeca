"""The web UI's search in the rule language and its rule workbench, used in headless
Chromium against ``newswatch run`` on the fixture site, each checked in the DOM
(screenshots kept in test-artifacts/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conftest import ARTIFACTS, site_config, write_config
from test_web import (
    _HOSTILE_FEED,
    _HOSTILE_PAGE,
    ARMY,
    CUP,
    HOSTILE_TITLE,
    MUSEUM,
    SATELLITE,
    _wait_for_polls,
    running_service,
)

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

# Against the rule "syria" (Palmyra, Al-Qaryatain or ISIS, and not football), this
# draft newly catches the cup final (Syrian; football no longer excluded) and drops
# the museum.
DRAFT = "(Palmyra OR ISIS OR Syrian) AND NOT museum"


@pytest.mark.slow
def test_search_in_the_rule_language_and_the_rule_workbench_in_chromium(
    browser: Any, news_site: NewsSite, tmp_path: Path
) -> None:
    news_site.set_content("hostile/rss.xml", _HOSTILE_FEED, "application/rss+xml")
    news_site.set_content("articles/hostile.html", _HOSTILE_PAGE, "text/html; charset=utf-8")
    settings = site_config(news_site, tmp_path)
    settings["sources"].append(
        {"name": "evil", "feed": news_site.url("hostile/rss.xml"), "every": "1h"}
    )
    config = write_config(tmp_path, **settings)
    with running_service(config) as service:
        _wait_for_polls(service, 3)
        base = f"http://127.0.0.1:{service.port}"
        ARTIFACTS.mkdir(exist_ok=True)
        page = browser.new_page(
            viewport={"width": 1280, "height": 900},
            permissions=["clipboard-read", "clipboard-write"],
        )
        dialogs: list[str] = []
        problems: list[str] = []  # a CSP violation is reported as a console error
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )

        # The header's search box speaks the rule language.
        page.goto(base + "/")
        page.get_by_role("searchbox", name="Search stored articles").fill("Palmyra AND NOT museum")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url(f"{base}/search?*")
        results = page.locator("ol.results > li")
        titles = results.locator("strong").all_inner_texts()
        assert SATELLITE in titles
        assert HOSTILE_TITLE in titles  # shown as text, never run
        assert MUSEUM not in titles
        assert CUP not in titles
        marks = page.locator("ol.results mark").all_inner_texts()
        assert marks
        assert {mark.lower() for mark in marks} == {"palmyra"}
        page.screenshot(path=str(ARTIFACTS / "web-search-rule-language.png"), full_page=True)

        # A bad query: the parser's message, with a caret under its column.
        page.get_by_role("searchbox", name="Search stored articles").fill("Palmyra AND")
        page.get_by_role("button", name="Search").click()
        page.wait_for_selector("#query-error")
        error = page.locator("#query-error")
        assert "expected a term after AND at column 12" in error.inner_text()
        assert page.locator("#query-error pre.caret").inner_text().splitlines() == [
            "Palmyra AND",
            " " * 11 + "^",
        ]
        assert page.locator("ol.results").count() == 0
        page.screenshot(path=str(ARTIFACTS / "web-search-bad-query.png"), full_page=True)

        # The workbench: pick the rule, its query comes up, and nothing differs.
        page.get_by_role("link", name="Workbench").click()
        page.wait_for_url(f"{base}/workbench")
        page.select_option("#workbench-rule", "syria")
        page.get_by_role("button", name="Try").click()
        page.wait_for_selector("#workbench-summary")
        query_box = page.locator("#workbench-query")
        assert query_box.input_value() == '(Palmyra OR "Al-Qaryatain" OR ISIS) AND NOT football'
        assert "In the last 7 days" in page.locator("#workbench-summary").inner_text()
        assert "Nothing the rule does not already catch." in page.locator("#added").inner_text()
        assert "Nothing the rule catches is lost." in page.locator("#dropped").inner_text()
        caught = page.locator("#caught ol.results strong").all_inner_texts()
        assert {MUSEUM, ARMY, SATELLITE, HOSTILE_TITLE} <= set(caught)

        # An edited query: what it would newly catch and what it would drop, shown
        # as it is typed (no click: the page's script fetches the results).
        query_box.fill(DRAFT)
        page.wait_for_selector("#added ol.results")
        page.wait_for_url("**/workbench?*museum*")  # the address follows the query
        assert page.locator("#added ol.results strong").all_inner_texts() == [CUP]
        assert page.locator("#dropped ol.results strong").all_inner_texts() == [MUSEUM]
        assert "Syrian" in page.locator("#added mark").all_inner_texts()
        assert page.locator("#workbench-rule").input_value() == "syria"
        assert query_box.input_value() == DRAFT
        snippet = page.locator("#snippet").inner_text()
        assert yaml.safe_load(snippet) == [{"name": "syria", "query": DRAFT}]
        page.screenshot(path=str(ARTIFACTS / "web-workbench.png"), full_page=True)
        page.get_by_role("button", name="Copy").click()
        copy = page.locator("#copy-snippet")
        # Not wait_for_function: its polling evaluates a string, which this page's CSP
        # (script-src 'self', no 'unsafe-eval') refuses once it has to poll.
        from playwright.sync_api import expect

        expect(copy).not_to_have_text("Copy")
        if copy.inner_text() == "Copied":
            assert page.evaluate("navigator.clipboard.readText()") == snippet
        else:  # no clipboard for this page: the entry is selected for Ctrl+C instead
            assert copy.inner_text() == "Selected: press Ctrl+C"
            assert page.evaluate("window.getSelection().toString()") == snippet

        # Without the script the Try button does the same (a plain form).
        plain = browser.new_page(java_script_enabled=False)
        plain.goto(page.url)
        assert plain.locator("#added ol.results strong").all_inner_texts() == [CUP]
        assert plain.get_by_role("button", name="Copy").count() == 0  # stays hidden
        plain.close()

        # A bad draft is shown as a bad search is, and no YAML is offered for it.
        query_box.fill("Palmyra and ISIS")
        page.get_by_role("button", name="Try").click()
        page.wait_for_selector("#query-error")
        assert "'and' is not an operator at column 9" in page.locator("#query-error").inner_text()
        assert page.locator("#snippet").count() == 0
        page.close()
        assert dialogs == []
        assert problems == []
    assert "Traceback" not in service.output()
