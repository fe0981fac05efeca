"""The command line as a person uses it: extract pages, upgrade the database, clean errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH, run_newswatch, site_config, write_config
from newssite import site_file

from crawler.domain.config import load_config
from crawler.storage.store import Store

if TYPE_CHECKING:
    from newssite import NewsSite

SEED_PAGE = site_file("articles/army-pressures-isis.html")


def _extract(*inputs: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NEWSWATCH, "extract", *inputs],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_extract_prints_one_json_object_per_input_in_order(
    news_site: NewsSite, tmp_path: Path
) -> None:
    url = news_site.url("articles/satellite-palmyra.html?utm_source=x")
    result = _extract(str(SEED_PAGE), url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())

    assert first["source"] == str(SEED_PAGE)
    assert first["title"] == "Army pressures ISIS in central Syria"
    assert first["published"] == "2016-03-30T01:46:00+00:00"
    assert first["authors"] == ["AFP"]
    assert first["language"] == "en"
    assert "Just two days after seizing Palmyra" in first["text"]

    assert second["source"] == url
    assert second["url"] == news_site.url("articles/satellite-palmyra.html")
    assert second["published"] == "2024-02-13T20:20:00+00:00"
    assert second["authors"] == ["Omar Haddad"]
    assert {"url", "title", "published", "authors", "language", "text"} <= second.keys()


def test_extract_reports_a_bad_input_and_goes_on(tmp_path: Path) -> None:
    result = _extract(str(tmp_path / "missing.html"), str(SEED_PAGE), cwd=tmp_path)
    assert result.returncode == 1
    assert "missing.html" in result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["title"] == "Army pressures ISIS in central Syria"


def test_db_upgrade_creates_the_schema(news_site: NewsSite, tmp_path: Path) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    result = run_newswatch(config, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    store = Store.from_url(load_config(config).database)
    assert store.count_articles() == 0
    store.close()


def test_crawl_of_an_unknown_source_is_a_clean_error(news_site: NewsSite, tmp_path: Path) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    result = run_newswatch(config, "crawl", "--source", "nope")
    assert result.returncode == 2
    assert "no source named 'nope'" in result.stderr


def test_missing_config_file_is_a_clean_error(tmp_path: Path) -> None:
    result = run_newswatch(tmp_path / "absent.yaml", "check-config")
    assert result.returncode == 2
    assert "absent.yaml: cannot read the configuration" in result.stderr


def test_json_logs_are_one_object_per_line(news_site: NewsSite, tmp_path: Path) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    result = subprocess.run(
        [NEWSWATCH, "--config", str(config), "--log-format", "json", "crawl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"time", "level", "logger", "message"} <= records[0].keys()
    assert any(r["message"].startswith("source world: 3 links, 3 new, 3 stored") for r in records)


def test_status_shows_sources_rules_and_digests(news_site: NewsSite, tmp_path: Path) -> None:
    settings = site_config(news_site, tmp_path)
    settings["sources"].append({"name": "missing", "feed": news_site.url("status/404")})
    config = write_config(tmp_path, **settings)
    run_newswatch(config, "crawl")
    result = run_newswatch(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    sources = {row["name"]: row for row in status["sources"]}
    assert sources["world"]["status"] == "ok"
    assert sources["world"]["articles"] == 3
    assert sources["missing"]["status"] == "failing"
    assert sources["missing"]["last_error"] == "HTTP 404"
    assert {r["name"]: r["matches"] for r in status["rules"]} == {"syria": 3, "chips": 1}
    assert status["digests"][0]["recipient"] == "analyst@example.com"
    assert status["digests"][0]["next"].endswith("T07:00:00+05:30")
    table = run_newswatch(config, "status")
    assert "Sources" in table.stdout
    assert "missing" in table.stdout


def test_rules_test_shows_hits_on_stored_articles(news_site: NewsSite, tmp_path: Path) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    assert run_newswatch(config, "crawl").returncode == 0

    shown = run_newswatch(config, "rules", "test", "syria")
    assert shown.returncode == 0, shown.stderr
    assert "3 hits in 5 articles" in shown.stdout
    assert "[[Palmyra]] museum reopens" in shown.stdout

    inline = run_newswatch(config, "rules", "test", "--query", "theatre NEAR/3 Palmyra*", "--json")
    assert inline.returncode == 0, inline.stderr
    (hit,) = [json.loads(line) for line in inline.stdout.splitlines()]
    assert hit["url"].endswith("/satellite-palmyra.html")
    assert hit["terms"] == ["theatre", "Palmyra*"]
    assert "theatre" in hit["snippet"]

    page = run_newswatch(
        config, "rules", "test", "--query", "Qaryatain AND NOT Damascus", str(SEED_PAGE)
    )
    assert "0 hits in 1 articles" in page.stdout

    bad = run_newswatch(config, "rules", "test", "--query", "Palmyra AND")
    assert bad.returncode == 2
    assert "expected a term after AND" in bad.stderr


@pytest.mark.parametrize("command", [["stories", "--json"], ["status", "--json"], ["check-config"]])
def test_a_reader_that_goes_away_ends_the_output_without_a_traceback(
    news_site: NewsSite, tmp_path: Path, command: list[str]
) -> None:
    """`newswatch stories --json | head` used to end with a BrokenPipeError traceback.
    The pipe is closed before the command writes its first line."""
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    assert run_newswatch(config, "crawl").returncode == 0
    process = subprocess.Popen(
        [NEWSWATCH, "--config", str(config), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone: every write gets EPIPE
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert b"Traceback" not in stderr, stderr.decode()
    assert b"BrokenPipeError" not in stderr
