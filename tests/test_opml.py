"""Sources from and to OPML, and edits of config.yaml that keep the user's file
(`newswatch sources import / export / list / remove`), on copies of the project's
own config.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import listparser
from conftest import run_newswatch

from crawler.domain.config import load_config
from crawler.domain.config.opml import read_opml

ROOT = Path(__file__).resolve().parent.parent
READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>My reader</title></head><body>
<outline text="News"><outline text="World Desk">
  <outline type="rss" text="BBC World" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>
  <outline type="rss" text="Reuters World" xmlUrl="https://wire.example/world.xml"/>
</outline></outline>
<outline type="rss" text="Ars Technica" xmlUrl="https://feeds.arstechnica.com/arstechnica/index"/>
<outline type="rss" text="Ars Technica" xmlUrl="https://feeds.arstechnica.com/arstechnica/index?utm_source=x"/>
<outline type="rss" text="Le Monde &#224; la une" xmlUrl="https://www.lemonde.fr/rss/une.xml"/>
</body></opml>
"""


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    shutil.copy(ROOT / "config.yaml", path)
    return path


def test_an_opml_import_is_a_dry_run_until_written_and_keeps_the_files_comments(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    before = config.read_text(encoding="utf-8")
    opml = tmp_path / "reader.opml"
    opml.write_bytes(READER_EXPORT)

    dry = run_newswatch(config, "sources", "import", str(opml))
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "skip  https://feeds.bbci.co.uk/news/world/rss.xml: already a source: bbc-world",
        "add   reuters-world  https://wire.example/world.xml  (tags: news, world-desk)",
        "add   ars-technica  https://feeds.arstechnica.com/arstechnica/index",
        "skip  https://feeds.arstechnica.com/arstechnica/index?utm_source=x: "
        "already a source: ars-technica",
        "add   le-monde-a-la-une  https://www.lemonde.fr/rss/une.xml",
        "3 to add, 2 skipped; nothing written (a dry run: --write applies it)",
    ]
    assert config.read_text(encoding="utf-8") == before

    written = run_newswatch(config, "sources", "import", str(opml), "--write", "--every", "30m")
    assert written.returncode == 0, written.stderr
    after = config.read_text(encoding="utf-8")
    # Every line of the file is still there, comments included, in order; the new
    # sources follow the last one, before the blank line that separates `rules:`.
    remaining = iter(after.splitlines())
    assert all(line in remaining for line in before.splitlines())  # a subsequence
    assert "    tags: [news, world-desk]\n    every" not in after
    assert "  - name: reuters-world\n    feed: https://wire.example/world.xml\n" in after
    assert "    every: 30m\n    tags: [news, world-desk]\n" in after
    assert after.index("le-monde-a-la-une") < after.index("\n\nrules:")
    sources = {source.name: source for source in load_config(config).sources}
    assert sources["reuters-world"].tags == ["news", "world-desk"]
    assert sources["ars-technica"].every.total_seconds() == 1800
    again = run_newswatch(config, "sources", "import", str(opml), "--write")
    assert "0 to add, 5 skipped; nothing to write" in again.stdout
    assert config.read_text(encoding="utf-8") == after


def test_export_then_import_gives_the_same_feeds_and_remove_keeps_the_rest(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    opml = tmp_path / "reader.opml"
    opml.write_bytes(READER_EXPORT)
    run_newswatch(config, "sources", "import", str(opml), "--write")
    exported = run_newswatch(config, "sources", "export")
    assert exported.returncode == 0, exported.stderr
    parsed = listparser.parse(exported.stdout.encode())
    assert not parsed.bozo, parsed.bozo_exception
    urls = {feed.url: feed.categories for feed in parsed.feeds}
    assert set(urls) == {source.url for source in load_config(config).sources}
    assert urls["https://wire.example/world.xml"] == [["news", "world-desk"]]

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text("# my sources\nsources: []\n", encoding="utf-8")
    (empty / "out.opml").write_text(exported.stdout, encoding="utf-8")
    run_newswatch(empty / "config.yaml", "sources", "import", str(empty / "out.opml"), "--write")
    moved = load_config(empty / "config.yaml").sources
    assert {source.url for source in moved} == set(urls)
    assert {tuple(source.tags) for source in moved} == {(), ("news", "world-desk")}
    assert (empty / "config.yaml").read_text(encoding="utf-8").startswith("# my sources\n")

    removed = run_newswatch(config, "sources", "remove", "ars-technica")
    assert removed.returncode == 0, removed.stderr
    assert "ars-technica" not in {source.name for source in load_config(config).sources}
    assert "# newswatch configuration: a working example." in config.read_text(encoding="utf-8")
    missing = run_newswatch(config, "sources", "remove", "ars-technica")
    assert missing.returncode == 2
    assert "no source named 'ars-technica' to remove" in missing.stdout + missing.stderr
    listed = run_newswatch(config, "sources", "list")
    assert (
        "reuters-world      feed     https://wire.example/world.xml  "
        "(every 15m; tags: news, world-desk)"
    ) in listed.stdout.splitlines()


def test_bad_input_is_refused_and_the_file_left_as_it_was(tmp_path: Path) -> None:
    config = _config(tmp_path)
    before = config.read_text(encoding="utf-8")
    opml = tmp_path / "reader.opml"
    opml.write_bytes(READER_EXPORT)
    bad_every = run_newswatch(config, "sources", "import", str(opml), "--write", "--every", "soon")
    assert bad_every.returncode == 2
    assert "Traceback" not in bad_every.stderr
    assert "every" in bad_every.stdout + bad_every.stderr
    assert config.read_text(encoding="utf-8") == before
    junk = tmp_path / "junk.opml"
    junk.write_bytes(b"<html><body>not an outline</body></html>")
    refused = run_newswatch(config, "sources", "import", str(junk))
    assert refused.returncode == 1
    assert refused.stdout.startswith(f"newswatch: {junk}: no feed found in the file (is it OPML?)")
    missing = run_newswatch(config, "sources", "import", str(tmp_path / "nope.opml"))
    assert missing.returncode == 1
    assert "cannot read it" in missing.stdout


# The shapes two peers export: Miniflux (one level of categories, title and text,
# htmlUrl) and FreshRSS (its own namespace, nested categories, and "HTML + XPath"
# outlines that are scraped web pages, not feeds).
OPML_FIXTURES = Path(__file__).parent / "fixtures" / "opml"


def test_miniflux_and_freshrss_exports_import_with_their_folders_and_scraped_pages(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    miniflux = OPML_FIXTURES / "miniflux-export.opml"
    freshrss = OPML_FIXTURES / "freshrss-export.opml"

    first = run_newswatch(config, "sources", "import", str(miniflux), "--write")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "add   grid-watch  https://gridwatch.example/feed.xml  (tags: energy)",
        "skip  https://exa mple.org/rss: a source URL cannot hold spaces (write %20)",
        f"1 to add, 1 skipped; written to {config} (a running service picks them up)",
    ]
    second = run_newswatch(config, "sources", "import", str(freshrss), "--write")
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert second.stdout.splitlines() == [
        "add   mekong-monitor  https://mekong.example/rss  (tags: regions, asia)",
        "skip  https://gridwatch.example/feed.xml?utm_source=freshrss: "
        "already a source: grid-watch",
        "add   ministry-press  https://ministry.example/press  "
        "(listing, links: (//article)/h2/a/@href; tags: energy)",
        "skip  https://prices.example/api: a FreshRSS JSON+DotNotation outline: "
        "newswatch cannot poll it",
        f"2 to add, 2 skipped; written to {config} (a running service picks them up)",
    ]
    sources = {source.name: source for source in load_config(config).sources}
    assert sources["mekong-monitor"].tags == ["regions", "asia"]
    press = sources["ministry-press"]
    assert (press.kind, press.links, press.tags) == (
        "listing",
        "(//article)/h2/a/@href",
        ["energy"],
    )
    checked = run_newswatch(config, "check-config")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Export, then import into a fresh copy: the same feeds with the same tags.
    exported = run_newswatch(config, "sources", "export")
    feeds = {feed.url: feed for feed in read_opml(exported.stdout.encode())}
    assert feeds["https://mekong.example/rss"].folders == ("regions", "asia")
    assert feeds["https://gridwatch.example/feed.xml"].folders == ("energy",)
