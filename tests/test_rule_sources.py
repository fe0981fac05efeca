"""Rules limited to sources (`rules[].sources`: names and tag:NAME): the checks when
the file is loaded, matching in crawls, `rules test`, reloads, and an OPML import's
folders used as tags at once."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conftest import run_newswatch, site_config, write_config
from newssite import site_file

from alerts.rules import KeywordRule, MatchDocument, QueryRule, RuleMatcher, rules_from_config
from crawler.domain.config import Config, ConfigError, load_config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.storage.store import Store

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

SOURCES = """\
sources:
  - name: reuters
    feed: https://wire.example/world.xml
    tags: [energy, world]
  - name: oilprice
    feed: https://oil.example/rss
    tags: [energy]
  - name: BBC
    feed: https://bbc.example/rss
rules:
"""


def _load(tmp_path: Path, rules: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(SOURCES + rules, encoding="utf-8")
    return load_config(path)


def _problems(tmp_path: Path, rules: str) -> list[str]:
    """The lines of the error, each without the file name."""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, rules)
    prefix = f"{tmp_path / 'config.yaml'}: "
    lines = str(caught.value).splitlines()
    assert all(line.startswith(prefix) for line in lines)
    return [line.removeprefix(prefix) for line in lines]


BAD_SCOPES = [
    pytest.param(
        "  - name: opec\n    keywords: [OPEC]\n    sources: [reuter]\n",
        ["rules[0].sources[0] (line 13): rule opec: no source is named 'reuter'; "
         "did you mean reuters?"],
        id="misspelt-name",
    ),
    pytest.param(
        "  - name: opec\n    keywords: [OPEC]\n    sources: [tag:energi]\n",
        ["rules[0].sources[0] (line 13): rule opec: no source has the tag 'energi'; "
         "did you mean tag:energy?"],
        id="misspelt-tag",
    ),
    pytest.param(
        "  - name: opec\n    keywords: [OPEC]\n    sources: [energy]\n",
        ["rules[0].sources[0] (line 13): rule opec: no source is named 'energy'; "
         "did you mean tag:energy?"],
        id="tag-without-prefix",
    ),
    pytest.param(
        "  - name: opec\n    keywords: [OPEC]\n    sources: [bbc]\n",
        ["rules[0].sources[0] (line 13): rule opec: no source is named 'bbc'; "
         "did you mean BBC?"],
        id="name-in-another-case",
    ),
    pytest.param(
        "  - name: opec\n    keywords: [OPEC]\n    sources: [tag:sport]\n",
        ["rules[0].sources[0] (line 13): rule opec: no source has the tag 'sport' "
         "(tags: energy, world; a source's `tags` or an OPML folder gives one)"],
        id="unknown-tag-lists-the-tags",
    ),
    pytest.param(
        "  - name: opec\n    keywords: [OPEC]\n    sources: []\n",
        ["rules[0].sources (line 13): an empty list would limit the rule to no source; "
         "name sources or tag:NAME, or leave sources out for every source"],
        id="empty-list",
    ),
    pytest.param(
        "  - name: opec\n    keywords: [OPEC]\n    sources:\n      - tag:\n",
        ["rules[0].sources[0] (line 14): `tag:` names no tag; write tag:NAME, "
         "such as tag:energy"],
        id="tag-without-a-name",
    ),
    pytest.param(
        "  - name: opec\n    keywords: [OPEC]\n    sources: [{tag: energy, name: x}]\n",
        ["rules[0].sources[0] (line 13): expected a source name or tag:NAME, got the "
         "mapping {'tag': 'energy', 'name': 'x'} (in YAML, `tag: energy` with a space is "
         "a mapping; write tag:energy)"],
        id="a-mapping",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("rules", "expected"), BAD_SCOPES)
def test_a_bad_scope_names_its_entry_and_line(
    tmp_path: Path, rules: str, expected: list[str]
) -> None:
    assert _problems(tmp_path, rules) == expected


def test_every_unknown_entry_of_every_rule_is_reported_at_once(tmp_path: Path) -> None:
    rules = (
        "  - name: opec\n    keywords: [OPEC]\n    sources:\n"
        "      - reuters\n      - reutres\n      - tag:wrld\n"
        "  - name: gas\n    keywords: [gas]\n    sources: [tag:energy, nobody-at-all]\n"
    )
    assert _problems(tmp_path, rules) == [
        "rules[0].sources[1] (line 15): rule opec: no source is named 'reutres'; "
        "did you mean reuters?",
        "rules[0].sources[2] (line 16): rule opec: no source has the tag 'wrld'; "
        "did you mean tag:world?",
        "rules[1].sources[1] (line 19): rule gas: no source is named 'nobody-at-all'",
    ]


def test_names_and_tags_resolve_to_the_sources_they_cover(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "  - name: opec\n    keywords: [OPEC]\n    sources: [tag:energy, BBC]\n"
        "  - name: world\n    query: Syria\n    sources:\n      - tag: world\n"
        "  - name: anywhere\n    keywords: [OPEC]\n",
    )
    assert rules_from_config(config) == [
        KeywordRule("opec", ("OPEC",), sources=frozenset({"reuters", "oilprice", "BBC"})),
        QueryRule("world", "Syria", sources=frozenset({"reuters"})),
        KeywordRule("anywhere", ("OPEC",)),
    ]


@pytest.mark.parametrize("prefilter", [True, False], ids=["prefiltered", "every-rule"])
def test_a_rule_matches_only_articles_from_its_sources(prefilter: bool) -> None:
    matcher = RuleMatcher(
        [
            KeywordRule("opec", ("OPEC",), sources=frozenset({"reuters", "oilprice"})),
            QueryRule("opec-query", "OPEC AND output", sources=frozenset({"BBC"})),
            KeywordRule("anywhere", ("OPEC",)),
        ]
    )

    def rules(source: str, *, any_source: bool = False) -> list[str]:
        document = MatchDocument("OPEC cuts output", "The cartel met in Vienna.", source=source)
        found = matcher.match(document, prefilter=prefilter, any_source=any_source)
        return [match.rule for match in found]

    assert rules("reuters") == ["opec", "anywhere"]
    assert rules("BBC") == ["opec-query", "anywhere"]
    assert rules("a blog") == ["anywhere"]
    assert rules("a blog", any_source=True) == ["opec", "opec-query", "anywhere"]


def _fixture_site_config(news_site: NewsSite, tmp_path: Path) -> dict[str, Any]:
    """The fixture site's world feed tagged mideast, its tech feed tagged tech, and
    the Gulf paper (which runs a copy of the world feed's AFP story) untagged."""
    settings = site_config(news_site, tmp_path)
    settings["sources"][0]["tags"] = ["mideast"]
    settings["sources"][1]["tags"] = ["tech"]
    settings["sources"].append({"name": "gulf", "feed": news_site.url("gulf/rss.xml")})
    settings["rules"] = [
        {
            "name": "syria",
            "keywords": ["Palmyra", "Al-Qaryatain", "ISIS"],
            "exclude": ["football"],
            "sources": ["tag:mideast"],
        },
        {"name": "qaryatain-tech", "keywords": ["Al-Qaryatain"], "sources": ["tech"]},
        {"name": "palmyra", "keywords": ["Palmyra"]},
    ]  # fmt: skip
    return settings


def _matched(config: Path) -> set[tuple[str, str]]:
    store = Store.from_url(load_config(config).database)
    try:
        return {(rule, url.rsplit("/", 1)[1]) for rule, url, _ in store.matches()}
    finally:
        store.close()


def test_a_crawl_matches_a_scoped_rule_only_on_its_sources_articles(
    news_site: NewsSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path, **_fixture_site_config(news_site, tmp_path))
    crawl = run_newswatch(config, "crawl")
    assert crawl.returncode == 0, crawl.stderr

    assert _matched(config) == {
        # The world feed's two Syria articles; not the tech feed's Palmyra article nor
        # the Gulf paper's copy of the AFP story, though their words match.
        ("syria", "army-pressures-isis.html"),
        ("syria", "palmyra-museum.html"),
        # The rule without sources: every source.
        ("palmyra", "army-pressures-isis.html"),
        ("palmyra", "palmyra-museum.html"),
        ("palmyra", "satellite-palmyra.html"),
        ("palmyra", "gulf-army-closes-in.html"),
        # qaryatain-tech: the AFP story is in no tech article; its copies from
        # other sources do not make it match.
    }

    listing = run_newswatch(config, "stories", "--since", "3650d", "--json")
    stories = [json.loads(line) for line in listing.stdout.splitlines()]
    (wire,) = [story for story in stories if len(story["members"]) == 2]
    assert [member["source"] for member in wire["members"]] == ["world", "gulf"]

    # The digest shows the story once under syria (with the outlets that ran it), and
    # nothing under qaryatain-tech.
    assert run_newswatch(config, "digest").returncode == 0
    (email,) = (tmp_path / "outbox").glob("*.eml")
    message = message_from_bytes(email.read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "== syria (2) ==" in text
    assert "world and gulf" in text
    assert "qaryatain-tech" not in text


def test_rules_test_applies_the_sources_and_explains_what_they_left_out(
    news_site: NewsSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path, **_fixture_site_config(news_site, tmp_path))
    assert run_newswatch(config, "crawl").returncode == 0

    plain = run_newswatch(config, "rules", "test", "syria", "--since", "3650d", "--json")
    assert plain.returncode == 0, plain.stderr
    hits = [json.loads(line) for line in plain.stdout.splitlines()]
    assert sorted((hit["source"], hit["url"].rsplit("/", 1)[1]) for hit in hits) == [
        ("world", "army-pressures-isis.html"),
        ("world", "palmyra-museum.html"),
    ]

    explained = run_newswatch(config, "rules", "test", "syria", "--since", "3650d", "--explain")
    assert explained.returncode == 0, explained.stderr
    left_out = [line.strip() for line in explained.stdout.splitlines() if "left out:" in line]
    assert sorted(left_out) == [
        "left out: its source gulf is not in the rule's sources (tag:mideast)",
        "left out: its source tech is not in the rule's sources (tag:mideast)",
    ]
    assert explained.stdout.rstrip().endswith(
        "2 hits in 6 articles; 2 more match its words but come from sources outside "
        "its sources (listed above)"
    )

    summary = run_newswatch(config, "rules", "test", "syria", "--since", "3650d")
    assert summary.stdout.rstrip().splitlines()[-1] == (
        "2 hits in 6 articles; 2 more match its words but come from sources outside "
        "its sources (--explain lists them)"
    )


def test_rules_test_on_pages_tests_a_scoped_rule_on_its_words_and_says_so(
    news_site: NewsSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path, **_fixture_site_config(news_site, tmp_path))
    page = site_file("articles/satellite-palmyra.html")  # the tech feed's article
    tested = run_newswatch(config, "rules", "test", "syria", str(page))
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.rstrip().splitlines()[-1] == "1 hit in 1 article"
    assert tested.stderr == (
        "newswatch: rule syria is limited to sources (tag:mideast); the pages given are "
        "from no source, so they are tested on its words alone\n"
    )


def _article(source: str, number: int) -> ArticleItem:
    url = f"https://{source}.example/{number}"
    text = "Ministers met in Vienna on Tuesday. " * 20
    article = ExtractedArticle(
        url=url, title=f"OPEC agrees to cut output ({number})", text=f"{text} {number}",
        published=datetime(2024, 5, 1, tzinfo=UTC),
    )  # fmt: skip
    return ArticleItem(source, url, article)


def test_a_reload_applies_a_new_scope_and_new_tags_and_refuses_an_unknown_tag(
    tmp_path: Path,
) -> None:
    from crawler.orchestration.service import NewswatchService

    settings: dict[str, Any] = {
        "database": f"sqlite:///{tmp_path / 'newswatch.db'}",
        "workers": 0,
        "web": {"enabled": False},
        "sources": [
            {"name": "wire", "feed": "https://wire.example/rss", "tags": ["energy"]},
            {"name": "blog", "feed": "https://blog.example/rss"},
        ],
        "rules": [{"name": "opec", "keywords": ["OPEC"], "sources": ["tag:energy"]}],
    }
    path = write_config(tmp_path, **settings)
    config = load_config(path)
    store = Store.from_url(config.database)
    store.upgrade()
    store.sync_sources(config.sources)

    async def crawl_and_reload() -> list[bool]:
        service = NewswatchService(config, store, cpu_workers=0, config_path=path)
        await service.context.save(_article("wire", 1))
        await service.context.save(_article("blog", 1))  # not tagged energy yet
        settings["sources"][1]["tags"] = ["energy"]
        write_config(tmp_path, **settings)
        reloads = [await service.reload()]
        await service.context.save(_article("blog", 2))
        settings["rules"][0]["sources"] = ["wire"]
        write_config(tmp_path, **settings)
        reloads.append(await service.reload())
        await service.context.save(_article("blog", 3))
        await service.context.save(_article("wire", 3))
        settings["rules"][0]["sources"] = ["tag:enrgy"]
        write_config(tmp_path, **settings)
        reloads.append(await service.reload())  # refused: the running scope stays
        await service.context.save(_article("blog", 4))
        await service.context.save(_article("wire", 4))
        await service.stop()
        return reloads

    # In a thread of its own: in a full run, this test process may already have a
    # running event loop (Scrapy's asyncio reactor, installed by earlier tests).
    with ThreadPoolExecutor(max_workers=1) as thread:
        reloads = thread.submit(lambda: asyncio.run(crawl_and_reload())).result(timeout=120)
    assert reloads == [True, True, False]
    check = Store.from_url(config.database)
    matched = [url.removeprefix("https://") for _rule, url, _terms in check.matches()]
    check.close()
    assert matched == ["wire.example/1", "blog.example/2", "wire.example/3", "wire.example/4"]


OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>My reader</title></head><body>
<outline text="Middle East">
  <outline type="rss" text="World" xmlUrl="{world}"/>
  <outline type="rss" text="Gulf" xmlUrl="{gulf}"/>
</outline>
<outline text="Tech"><outline type="rss" text="Tech" xmlUrl="{tech}"/></outline>
</body></opml>
"""


def test_an_opml_import_s_folders_scope_a_rule_at_once(news_site: NewsSite, tmp_path: Path) -> None:
    settings = site_config(news_site, tmp_path, sources=[])
    settings["rules"] = [{"name": "palmyra", "keywords": ["Palmyra"]}]
    config = write_config(tmp_path, **settings)
    opml = tmp_path / "reader.opml"
    feeds = {name: news_site.url(path) for name, path in [
        ("world", "world/rss.xml"), ("gulf", "gulf/rss.xml"), ("tech", "tech/atom.xml")
    ]}  # fmt: skip
    opml.write_text(OPML.format(**feeds), encoding="utf-8")
    imported = run_newswatch(config, "sources", "import", str(opml), "--write")
    assert imported.returncode == 0, imported.stderr

    # A rule limited to a folder of the reading list, by its tag; a misspelt one is
    # refused with the folder's tag offered.
    written = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert {s["name"]: s.get("tags") for s in written["sources"]} == {
        "world": ["middle-east"], "gulf": ["middle-east"], "tech": ["tech"]
    }  # fmt: skip
    written["rules"][0]["sources"] = ["tag:middle-eats"]
    config.write_text(yaml.safe_dump(written, sort_keys=False), encoding="utf-8")
    refused = run_newswatch(config, "check-config")
    assert refused.returncode == 2
    assert "did you mean tag:middle-east?" in refused.stderr

    written["rules"][0]["sources"] = ["tag:middle-east"]
    config.write_text(yaml.safe_dump(written, sort_keys=False), encoding="utf-8")
    crawl = run_newswatch(config, "crawl")
    assert crawl.returncode == 0, crawl.stderr
    assert _matched(config) == {
        ("palmyra", "army-pressures-isis.html"),
        ("palmyra", "palmyra-museum.html"),
        ("palmyra", "gulf-army-closes-in.html"),
    }  # not the tech folder's satellite-palmyra.html


def test_removing_a_source_a_rule_names_is_refused_with_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(SOURCES + "  - name: opec\n    keywords: [OPEC]\n    sources: [BBC]\n")
    before = path.read_text()
    removed = run_newswatch(path, "sources", "remove", "BBC")
    assert removed.returncode == 2
    assert removed.stderr.strip().endswith(
        f"{path}: rule opec names the source BBC in rules[0].sources; take it out there "
        "first (nothing was removed)"
    )
    assert path.read_text() == before
    # A source no rule names goes as before.
    assert run_newswatch(path, "sources", "remove", "oilprice").returncode == 0
    assert [source.name for source in load_config(path).sources] == ["reuters", "BBC"]
