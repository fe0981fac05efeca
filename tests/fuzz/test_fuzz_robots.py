"""Fuzzing robots.txt reading (spiders.robotstxt): whatever a site serves, a yes or no
for each URL and a Crawl-delay that is a number of seconds or none, with the same
answers as Scrapy's Protego parser and with work that grows with the file's size
only."""

from __future__ import annotations

import math
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutate import BROKEN_DATES
from scrapy.robotstxt import ProtegoRobotParser

from spiders.middlewares import delay_floor
from spiders.robotstxt import ROBOTS_TXT_MAX_BYTES, RobotsTxtRules

AGENT = "newswatch/0.1 (+https://example.org/newswatch-tests)"
AGENTS = [
    AGENT,
    "newswatch",
    "NewsWatch/2.0",
    "Mozilla/5.0 (compatible; newswatch/0.1)",
    "googlebot",
    "*",
    "news",
    "-",
]
LONG_TIMEOUT = pytest.mark.timeout(max(300, settings().max_examples))

DIRECTIVES = st.sampled_from(
    [
        "User-agent",
        "user-agent",
        "USER-AGENT",
        "User agent",
        "useragent",
        "Disallow",
        "disallow",
        "Dissallow",
        "Allow",
        "Crawl-delay",
        "crawl delay",
        "Request-rate",
        "Visit-time",
        "Sitemap",
        "Host",
        "Noindex",
        "Clean-param",
        "",
        "#",
        "User-agent foo",
        "Disallow user-agent",
    ]
)
NAMES = st.one_of(
    st.sampled_from(
        [
            "*",
            "newswatch",
            "NewsWatch",
            "newswatch*",
            "news*",
            "*watch",
            "newswatch/0.1",
            "news",
            "watch",
            "example",
            "https",
            "newswatch-tests",
            "googlebot",
            "",
            "n",
            "ne*ws",
            "**",
        ]
    ),
    st.text(max_size=12),
)
PATHS = st.one_of(
    st.sampled_from(
        [
            "/",
            "/*",
            "/$",
            "*",
            "$",
            "/a",
            "/a/",
            "/a$",
            "/a*b",
            "/*.pdf$",
            "/%7Ea",
            "/~a",
            "/%",
            "/%zz",
            "/%C3%A9",
            "/é",
            "/a?b",
            "/?",
            "/*?*",
            "/" + "*a" * 200,
            "/" + "x" * 5_000,
            "https://news.example/a",
            "/index.html",
            "/a#b",
            "/\u2028",
            "/\x85",
        ]
    ),
    st.text(max_size=20),
)
DELAYS = st.one_of(
    st.sampled_from(
        [
            "1e309",
            "-1e309",
            "-1",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "99999999999",
            "1e-400",
            "0",
            "0.5",
            "10",
            "5s",
            "0x10",
            "１",
            "1_000",
            " 3 ",
            "",
            "1e308",
            "-0",
            "+5",
        ]
    ),
    st.sampled_from(BROKEN_DATES),
    st.text(max_size=8),
)
RATES = st.sampled_from(
    [
        "1/5",
        "1/5s",
        "1/0",
        "0/5",
        "10/1m 0900-1730",
        "1/1h 2500-9999",
        "a/b",
        "1/",
        "/",
        "99999999999999999999/1d",
        "1/5 0900",
        "",
    ]
)


@st.composite
def robots_lines(draw: st.DrawFn) -> str:
    directive = draw(DIRECTIVES)
    lower = directive.lower()
    if "agent" in lower:
        value = draw(NAMES)
    elif "delay" in lower:
        value = draw(DELAYS)
    elif "rate" in lower or "time" in lower:
        value = draw(RATES)
    elif lower in ("disallow", "allow", "dissallow"):
        value = draw(PATHS)
    else:
        value = draw(st.one_of(PATHS, st.text(max_size=20)))
    separator = draw(st.sampled_from([": ", ":", " : ", " ", "\t", "", "::"]))
    comment = draw(st.sampled_from(["", "", " # note", "#", " #: x"]))
    return f"{directive}{separator}{value}{comment}"


@st.composite
def robots_files(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(robots_lines(), max_size=30))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r", "\u2028", "\x85", "\x1c"]))
    text = newline.join(lines)
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"])), "replace")


URLS = st.one_of(
    st.sampled_from(
        [
            "https://news.example/",
            "https://news.example/a",
            "https://news.example/a/b",
            "https://news.example/a$",
            "https://news.example/x.pdf",
            "https://news.example/%7Ea",
            "https://news.example/~a",
            "https://news.example/robots.txt",
            "https://news.example/a?b=1",
            "https://news.example/index.html",
            "https://news.example/%C3%A9",
        ]
    ),
    st.text(max_size=20).map(lambda path: "https://news.example/" + path),
)


def check_rules(body: bytes, url: str, agent: str) -> None:
    """The same answers as Scrapy's own parser, and a usable Crawl-delay."""
    rules = RobotsTxtRules(body)
    allowed = rules.allowed(url, agent)
    delay = rules.crawl_delay(agent)
    assert isinstance(allowed, bool)
    assert delay is None or (isinstance(delay, float) and math.isfinite(delay) and delay >= 0)
    floor = delay_floor(0.0, delay, 60.0)
    assert 0.0 <= floor <= 60.0
    if len(body) <= ROBOTS_TXT_MAX_BYTES:
        scrapy_rules = ProtegoRobotParser(body, None)
        assert allowed == scrapy_rules.allowed(url, agent)
        assert delay == scrapy_rules.crawl_delay(agent)


@LONG_TIMEOUT
@given(body=robots_files(), url=URLS, agent=st.sampled_from(AGENTS))
def test_robots_txt_reads_like_scrapys_parser(body: bytes, url: str, agent: str) -> None:
    check_rules(body, url, agent)


@LONG_TIMEOUT
@given(body=st.binary(max_size=2_000), url=URLS, agent=st.sampled_from(AGENTS))
def test_byte_noise_reads_as_rules(body: bytes, url: str, agent: str) -> None:
    check_rules(body, url, agent)


@LONG_TIMEOUT
# Each example reads up to 500 KiB: a tenth of the profile's examples.
@settings(max_examples=max(20, settings().max_examples // 10))
@given(
    line=robots_lines(),
    copies=st.sampled_from([1_000, 20_000, 100_000]),
    url=URLS,
    agent=st.sampled_from(AGENTS),
)
def test_huge_files_are_read_up_to_the_limit(line: str, copies: int, url: str, agent: str) -> None:
    body = ("User-agent: *\n" + (line + "\n") * copies).encode("utf-8")
    rules = RobotsTxtRules(body)
    assert isinstance(rules.allowed(url, agent), bool)
    assert len(rules.text) <= ROBOTS_TXT_MAX_BYTES  # no more characters than bytes read


@pytest.mark.parametrize(
    ("configured", "robots", "expected"),
    [
        (0.0, None, 0.0),
        (0.0, 5.0, 5.0),
        (10.0, 5.0, 10.0),
        (0.0, 99999999999.0, 60.0),
        (0.0, math.inf, 0.0),
        (0.0, math.nan, 0.0),
        (0.0, -1.0, 0.0),
        (math.nan, 2.0, 2.0),
        (2.0, math.nan, 2.0),
    ],
    ids=[
        "none",
        "robots",
        "configured-larger",
        "capped",
        "inf",
        "nan",
        "negative",
        "nan-configured",
        "nan-robots-keeps-configured",
    ],
)
def test_delay_floor(configured: float, robots: float | None, expected: float) -> None:
    assert delay_floor(configured, robots, 60.0) == expected


@pytest.mark.parametrize(
    "value",
    ["1e309", "-1", "nan", "99999999999", "inf", "-inf", "1e-400", "0x10", "abc"],
)
def test_crawl_delay_is_seconds_or_none(value: str) -> None:
    rules = RobotsTxtRules(f"User-agent: *\nCrawl-delay: {value}\n".encode())
    delay = rules.crawl_delay(AGENT)
    assert delay is None or (math.isfinite(delay) and delay >= 0)
    assert 0.0 <= delay_floor(0.0, delay, 60.0) <= 60.0


def test_many_agents_over_many_rules_are_read_in_linear_memory() -> None:
    # Protego gives every named agent its own copy of the group's rules: this file
    # (214 KiB) took it 2.6 GB and 3.5 minutes. Read for one agent, it is a few MB.
    body = (
        b"".join(b"User-agent: bot%d\n" % i for i in range(6_000))
        + b"User-agent: newswatch\n"
        + b"".join(b"Disallow: /private/%d\n" % i for i in range(6_000))
    )
    tracemalloc.start()
    try:
        rules = RobotsTxtRules(body)
        allowed = [rules.allowed(f"https://news.example/private/{n}", AGENT) for n in ("5", "x")]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert allowed == [False, True]
    assert peak < 50 * 1024 * 1024


def test_the_agent_protego_would_choose_keeps_its_rules() -> None:
    body = (
        b"User-agent: *\nDisallow: /all\n\n"
        b"User-agent: googlebot\nUser-agent: news\nDisallow: /news\n\n"
        b"User-agent: bingbot\nUser-agent: newswatch\nDisallow: /watch\nCrawl-delay: 4\n"
    )
    rules = RobotsTxtRules(body)

    assert rules.allowed("https://news.example/all", AGENT)  # a named group beats *
    assert rules.allowed("https://news.example/news", AGENT)  # the longer name wins
    assert not rules.allowed("https://news.example/watch", AGENT)
    assert rules.crawl_delay(AGENT) == 4.0
    assert not rules.allowed("https://news.example/news", "googlebot")
