"""Fuzzing the configuration loader (crawler/domain/config/): parse_config and load_config.

The promise (README, "Commands"): a bad configuration stops any command with one
line per problem naming the file, the key path and the line — never a traceback.
The properties, for any file at all:

- the loader returns a Config, or raises ConfigError (never another exception);
- every line of a ConfigError starts with the file name and then names where:
  ``<key path> (line N): …``, or ``line N[, column M]: …`` for text that is not
  YAML; each is one short line;
- a Config it returns is usable: its rules compile and match, every recipient's
  schedule fires, its subjects render, its secrets are readable.

Inputs are structure-aware mutations of valid configurations (the repository's
``config.yaml`` and a richer one with every kind of source, keyword and query
rules, recipients, SMTP with a password variable, web, retention, domains,
cluster): a value at a random key path replaced by a hostile one (huge numbers and
durations, nan, dates, binary, NULs, odd unicode, 100,000-character strings, time
zones and cron expressions that break things, deep lists, aliases), keys deleted,
renamed (to typos and to non-text keys), types changed, values wrapped in lists;
then the YAML text itself mutated (lines duplicated, so keys repeat; indicators
and control characters inserted; cut short); and raw noise, text or bytes. Every
input is bounded in size (a few hundred kilobytes at most), and the loader's work
is bounded by its input's size, so each example is bounded by construction.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_newswatch
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from alerts.render import format_subject
from alerts.rules import MatchDocument, RuleMatcher, rule_from_config
from crawler.domain.config import (
    Config,
    ConfigError,
    check_subject_template,
    cron_trigger,
    load_config,
    parse_config,
)
from spiders.settings import scrapy_settings

LONG_TIMEOUT = pytest.mark.timeout(max(300, settings().max_examples // 5))
REPO_CONFIG = Path(__file__).parent.parent.parent / "config.yaml"
PATH = Path("fuzz/config.yaml")
PASSWORD_VARIABLE = "NEWSWATCH_FUZZ_SMTP_PASSWORD"
TOKEN_VARIABLE = "NEWSWATCH_FUZZ_WEB_TOKEN"

RICH: dict[str, Any] = {
    "database": "sqlite:///fuzz.db",
    "redis": "redis://127.0.0.1:6379/0",
    "cluster": {"failover": "30s", "queue_prefix": "fuzz", "concurrent_requests": 8},
    "user_agent_contact": "https://example.org/newswatch",
    "sources": [
        {
            "name": "wire",
            "feed": "https://news.example/world/rss.xml",
            "every": "15m",
            "max_articles": 50,
            "allow": ["/world/"],
            "deny": ["/video/"],
        },
        {"name": "home", "site": "https://news.example/", "every": "1h", "enabled": False},
        {"name": "map", "sitemap": "https://news.example/sitemap.xml", "max_age": "2d"},
        {
            "name": "section",
            "listing": "https://news.example/world/",
            "links": "article h2 a",
            "next": "//a[@rel='next']",
            "pages": 3,
        },
    ],
    "rules": [
        {
            "name": "syria",
            "keywords": ["Palmyra", "Al-Qaryatain", "ISIS", "refug*"],
            "exclude": ["football"],
            "tags": ["mideast"],
        },
        {
            "name": "query",
            "query": '"Palmyra" OR (ISIS NEAR/5 (Syria OR Iraq)) AND NOT '
            "title:football AND lang:en",
            "alert": "immediate",
        },
        {
            "name": "stemmed",
            "query": "election AND lang:(en OR fr)",
            "stem": True,
            "language": "en",
            "tags": ["politics"],
        },
    ],
    "digest": {
        "schedule": "0 7 * * *",
        "timezone": "Asia/Kolkata",
        "recipients": ["analyst@example.com"],
        "subject": "newswatch: {count} new articles",
        "sender": "newswatch@example.com",
        "unsubscribe": "mailto:unsubscribe@example.com",
    },
    "recipients": [
        {
            "email": "editor@example.com",
            "rules": ["syria"],
            "tags": ["politics"],
            "schedule": "30 6 * * *",
            "timezone": "Europe/Paris",
            "frequency": "weekly",
            "weekday": "fri",
            "quiet_days": ["sun"],
            "alerts": True,
        },
        {"email": "night@example.com", "schedule": "0 0 22 * * *", "timezone": "UTC"},
    ],
    "alerts": {"window": "5m", "max_per_hour": 6, "subject": "alert: {count} for {rules}"},
    "delivery_retry": {"attempts": 6, "first_delay": "1m", "max_delay": "1h"},
    "delivery": {
        "smtp": {
            "host": "smtp.example.com",
            "port": 587,
            "starttls": True,
            "username": "newswatch",
            "password_env": PASSWORD_VARIABLE,
            "timeout": "30s",
        },
        "outbox": "outbox",
    },
    "download_timeout": "30s",
    "download_maxsize": 10485760,
    "concurrent_requests_per_domain": 2,
    "domains": {"news.example": {"concurrency": 1, "delay": "2s"}},
    "retention": {"bodies": "90d", "fingerprints": "2y"},
    "story_window": "7d",
    "web": {"enabled": True, "host": "0.0.0.0", "port": 8787, "token_env": TOKEN_VARIABLE},  # noqa: S104
    "resend_updates": "headline",
    "max_backoff": "6h",
    "max_retry_after": "60s",
    "obey_robots_txt": True,
    "fetch_policy": {"deny_private_addresses": True, "deny_networks": ["10.0.0.0/8"]},
    "workers": 2,
}
BASES = [yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8")), RICH]


@pytest.fixture(scope="module", autouse=True)
def _secrets() -> Iterator[None]:
    """The variables the rich configuration names (module-wide: hypothesis runs many
    examples per test function)."""
    saved = {name: os.environ.get(name) for name in (PASSWORD_VARIABLE, TOKEN_VARIABLE)}
    os.environ[PASSWORD_VARIABLE] = "s3cret"
    os.environ[TOKEN_VARIABLE] = "t0ken"
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class Raw:
    """A scalar written into the YAML as is, with its tag: ``!!int abc``, a number of
    5,000 digits (which Python cannot even print), a date that does not exist."""

    def __init__(self, tag: str, text: str) -> None:
        self.tag, self.text = tag, text

    def __repr__(self) -> str:
        return f"Raw({self.tag!r}, {self.text[:40]!r})"


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Raw, lambda dumper, raw: dumper.represent_scalar(raw.tag, raw.text))


def _tag(name: str) -> str:
    return f"tag:yaml.org,2002:{name}"


RAW_VALUES = st.one_of(
    st.builds(Raw, st.just(_tag("int")), st.integers(4000, 6000).map(lambda n: "9" * n)),
    st.builds(
        Raw,
        st.just(_tag("int")),
        st.sampled_from(
            [
                "abc",
                "0x" + "f" * 3000,
                "0o777",
                "1:20:30",
                "-0",
                "0b101",
                "1_000",
                "+5",
                "0x",
                "",
                "_",
                "-",
            ]
        ),
    ),
    st.builds(
        Raw,
        st.just(_tag("float")),
        st.sampled_from(
            ["abc", ".nan", "-.inf", "1e999", "1.5e-400", "1:20:30.5", ".", "", "-", "_"]
        ),
    ),
    st.builds(Raw, st.just(_tag("bool")), st.sampled_from(["maybe", "yes", "off", "Y"])),
    st.builds(
        Raw,
        st.just(_tag("timestamp")),
        st.sampled_from(
            [
                "2020-99-99",
                "2020-02-30 25:61:61",
                "0000-01-01",
                "9999-12-31T23:59:59+99:00",
                "2020-01-01",
                "x",
                "",
            ]
        ),
    ),
    st.builds(Raw, st.just(_tag("null")), st.sampled_from(["x", "~", ""])),
    st.builds(Raw, st.just(_tag("binary")), st.sampled_from(["!!!", "aGVsbG8=", "/w==", ""])),
    st.builds(Raw, st.just(_tag("str")), st.sampled_from(["5", "true", "~"])),
    st.builds(
        Raw,
        st.sampled_from(
            [
                "!foo",
                "!",
                "!!python/object:os.system",
                "tag:yaml.org,2002:python/name:os.system",
                _tag("set"),
                _tag("omap"),
                _tag("merge"),
            ]
        ),
        st.sampled_from(["x", "", "1"]),
    ),
)
# Hostile strings by what they attack; each also lands on any other key.
TEXT_POOL = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "\x7f",
    "\x85",
    "\u2028",
    "\ufeff",
    "\ud800",
    "line\nbreak",
    "tab\there",
    "\u202eevil",
    "ＩＳＩＳ",
    "Zürich",
    "ﬁ",
    "a" * 10_000,
    "a" * 100_000,
    "é" * 5000,
    "a" * 255 + "/" + "b" * 255,
    "~",
    "null",
    "true",
    "yes",
    "no",
    "on",
    "0x10",
    "1_000",
    ".inf",
    ".nan",
    "<<",
    "&a",
    "*a",
    "!!binary",
    "%YAML 1.2",
    "---",
    "...",
    "- x",
    "? x",
    ": x",
    "|",
    ">",
    "#",
    "'",
    '"',
    "headline",
    "never",
    "weekly",
    "daily",
    "immediate",
    "mon",
    "funday",
    "en",
    "xx",
    "english",
    "A=B",
    "A\x00B",
    "9VAR",
    "PATH",
    "localhost",
    "::1",
    "0.0.0.0",  # noqa: S104
    "10.0.0.0/33",
    "fd00::/8",
    "1" * 1000,
    "sqlite:///:memory:",
    "sqlite:////tmp/x.db",
    "postgresql+psycopg://u@h/db",
    "redis://",
    "unix://x",
]
DURATION_POOL = [
    "9999999999999d",
    "9999999999999y",
    "99999999999999999999s",
    "3651d",
    "10y",
    "0s",
    "-1s",
    "1.5h",
    "٣d",
    " 1 d ",
    "1w",
    "1e3",
    "9" * 5000 + "s",
    "3s",
    "10m",
]
TIMEZONE_POOL = [
    "a" * 10_000,
    "Europe",
    "Europe/",
    "../../etc/passwd",
    "/etc/localtime",
    "Etc/GMT+5",
    "right/UTC",
    "Europe/Pärís",
    "UTC\x00",
    "posixrules",
    "Factory",
    "America/Argentina/ComodRivadavia",
    "zone.tab",
    "tzdata.zi",
    "__init__.py",
    "EST5EDT",
    "Asia/Kolkata",
]
CRON_POOL = [
    "0 7 31 2 *",
    "0 0 7 30 2 *",
    "0 7 29 2 *",
    "0 0 0 29 2 mon",
    "* * * * *",
    "*/0 * * * *",
    "0-99999999999 7 * * *",
    "0 ٧ * * *",
    "0 7 * * 5#3",
    "0 7 L * *",
    "0 7 last * *",
    "0 7 * * 5th fri",
    "0,1,2,3,4,5,6,7,8,9 " * 30,
    "0 7 * *",
    "0 0 0 0 0 0 0",
    "? * * * *",
    "0 7 * * mon-sun/2",
    "0 7 1-31/31 * *",
    "0 7 * * 2nd tue",
    "59 23 31 12 *",
    "0 7 * 13 *",
    "*/99999999999999999999 * * * *",
    "0 7 * jan-dec/13 *",
    "0\t7 * * *",
    "0 7 * * 7",
]
EMAIL_POOL = [
    "a@b",
    "@",
    "a" * 100_000 + "@b.c",
    "a\n@b.c",
    "<a@b.c>",
    "a@b@c",
    "a b@c.d",
    "a" * 250 + "@b.c",
    "x@" + "é" * 300,
]
URL_POOL = [
    "https://" + "a" * 100_000,
    "ftp://x",
    "https://a b/",
    "http://",
    "https://user:pass@news.example/",
    "https://[::1]:99999/",
    "javascript:alert(1)",
    "mailto:",
    "https:",
    "https://news.example/" + "p" * 2100,
    "https://news.example/\n",
    "https://é.example/",
    "https://xn--/",
    "https://" + "a" * 64 + ".example/",
]
SELECTOR_POOL = [
    "a" * 5000,
    "//a[",
    "((",
    ":not(" * 100,
    "::text",
    "a[href$='x']",
    "/html/body//a/@href",
    "(//a)[1]",
    "a " * 600,
    "*",
    "",
    " ",
    "//a" * 400,
    "a:has(b)",
    "a >> b",
    "//a[contains(., 'x')]",
]
SUBJECT_POOL = [
    "{count:>99999999999}",
    "{count:x>3000000}",
    "{count.__class__}",
    "{count[0]}",
    "{",
    "}",
    "{0}",
    "{}",
    "{count!r}",
    "{rules:.5}",
    "{count:{x}}",
    "{count:,}" * 200,
    "{count:c}",
    "{rules:=^50}",
    "{rules:=50}",
    "{count:.500f}",
    "x" * 600,
]
QUERY_POOL = [
    "(" * 300 + "x" + ")" * 300,
    "NOT " * 400 + "x",
    "title:" + "(" * 200 + "x" + ")" * 200,
    " OR ".join(f"w{i}" for i in range(5000)),
    "a NEAR/" + "9" * 5000 + " b",
    "near/5",
    "lang:" + "x" * 1000,
    "(" + " OR ".join(f"w{i}" for i in range(150)) + ") NEAR/5 x",
    " OR ".join(f"w{i}" for i in range(10_001)),
    "NEAR/" + "x" * 100_000,
    "*",
    '"',
    "(" * 50 + "x" + ")" * 50,
    "(" * 51 + "x" + ")" * 51,
]
KEYWORD_POOL = [
    "*",
    "a*b",
    "refug**",
    "\u00ad",
    "",
    " ",
    "***",
    "ISIS*",
    "C++",
    "x" * 1001,
    "\u200b",
    "ﬁ",
]
ALL_POOLS = (
    TEXT_POOL
    + DURATION_POOL
    + TIMEZONE_POOL
    + CRON_POOL
    + EMAIL_POOL
    + URL_POOL
    + SELECTOR_POOL
    + SUBJECT_POOL
    + QUERY_POOL
    + KEYWORD_POOL
)
HOSTILE_STRINGS = st.sampled_from(ALL_POOLS)
# The pool for a key (or for the items of a list under that key).
KEY_POOLS = {
    **dict.fromkeys(
        [
            "every",
            "max_age",
            "max_backoff",
            "max_retry_after",
            "story_window",
            "download_timeout",
            "bodies",
            "fingerprints",
            "window",
            "first_delay",
            "max_delay",
            "timeout",
            "delay",
            "failover",
        ],
        DURATION_POOL,
    ),
    "timezone": TIMEZONE_POOL,
    "schedule": CRON_POOL,
    **dict.fromkeys(["email", "sender", "recipients"], EMAIL_POOL),
    **dict.fromkeys(
        ["feed", "site", "sitemap", "listing", "unsubscribe", "redis", "user_agent_contact"],
        URL_POOL,
    ),
    **dict.fromkeys(["links", "next"], SELECTOR_POOL),
    "subject": SUBJECT_POOL,
    "query": QUERY_POOL,
    **dict.fromkeys(["keywords", "exclude"], KEYWORD_POOL),
}
HOSTILE_NUMBERS = st.one_of(
    st.integers(),
    st.integers(-(10**30), 10**30),
    st.sampled_from(
        [
            0,
            -1,
            1,
            2**31,
            2**63,
            2**64 + 1,
            10**100,
            1023,
            1024,
            65535,
            65536,
            50,
            51,
            10_000,
            10_001,
            2**30,
            2**30 + 1,
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, -0.0, 1e308, 5.0]),
)
NESTED = st.integers(1, 60).map(lambda depth: _nest(depth))
HOSTILE_VALUES = st.one_of(
    HOSTILE_STRINGS,
    HOSTILE_STRINGS,
    HOSTILE_NUMBERS,
    RAW_VALUES,
    RAW_VALUES,
    st.booleans(),
    st.none(),
    st.text(max_size=30),
    st.binary(max_size=20),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
    st.lists(HOSTILE_STRINGS, max_size=5),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    st.frozensets(st.integers(0, 5), max_size=3).map(set),
    NESTED,
)


def _hostile_for(path: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Hostile values for the key at `path`: half of the time from its own pool."""
    names = [part for part in path[-2:] if isinstance(part, str)]
    pool = KEY_POOLS.get(names[-1]) if names else None
    if pool is None:
        return HOSTILE_VALUES
    return st.one_of(st.sampled_from(pool), HOSTILE_VALUES)


def _nest(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in `data`, the root first, down to 50 levels: a value that an
    earlier mutation nested deeper (``_nest``) is mutated as a whole."""
    found = [prefix]
    if len(prefix) >= 50:  # the generator's own recursion (found by the long profile)
        return found
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _at(data, path[:-1])[path[-1]] = value
    return data


KEY_NAMES = st.one_of(
    st.sampled_from(
        [
            "evry",
            "Every",
            "feed ",
            "rules ",
            "x",
            "",
            "<<",
            "sources",
            "name",
            "query",
            "1",
            "true",
            "~",
            "a\x00b",
            "a" * 1000,
            "Ünïcödé",
            "a.b",
            "rules[0]",
            "\u2028",
        ]
    ),
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.dates(),
    st.text(max_size=10),
)


@st.composite
def mutated_data(draw: st.DrawFn) -> Any:
    """A valid configuration with one to four structural mutations."""
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(data)))
        target = _at(data, path)
        kind = draw(
            st.sampled_from(
                [
                    "replace",
                    "replace",
                    "replace",
                    "delete",
                    "rename",
                    "insert",
                    "wrap",
                    "retype",
                    "alias",
                    "bomb",
                ]
            )
        )
        event(f"mutation: {kind}")
        if kind == "replace":
            data = _set(data, path, draw(_hostile_for(path)))
        elif kind == "delete" and path:
            del _at(data, path[:-1])[path[-1]]
        elif kind == "rename" and path and isinstance(_at(data, path[:-1]), dict):
            parent = _at(data, path[:-1])
            parent[draw(KEY_NAMES)] = parent.pop(path[-1])
        elif kind == "insert" and isinstance(target, dict):
            target[draw(KEY_NAMES)] = draw(HOSTILE_VALUES)
        elif kind == "insert" and isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(HOSTILE_VALUES))
        elif kind == "wrap":
            wrapped = [target] if draw(st.booleans()) else {"value": target}
            data = _set(data, path, wrapped)
        elif kind == "retype":
            replacement = {dict: [], list: {}, str: ["x"], int: "1", bool: "maybe"}
            data = _set(data, path, replacement.get(type(target), {"a": 1}))
        elif kind == "alias" and path:
            # The same object at two paths: the dumper writes an anchor and an alias.
            other = draw(st.sampled_from(_paths(data)))
            if other[: len(path)] != path and path[: len(other)] != other:
                data = _set(data, other, target)
        elif kind == "bomb":  # aliases of aliases: up to 9**9 values once expanded
            level: Any = ["x"] * 9
            for _ in range(draw(st.integers(1, 8))):
                level = [level] * 9
            return _set(data, path, level)  # walking its paths would be the bomb itself
    return data


def _dump(data: Any) -> str:
    try:
        return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError):
        # Values the dumper refuses (a key it cannot write): the same thing as text.
        return yaml.dump(repr(data)[:5000], Dumper=_Dumper)


TEXT_NOISE = st.sampled_from(
    [
        "&",
        "*",
        "!",
        "|",
        ">",
        "%",
        "@",
        "`",
        "{",
        "[",
        "]",
        "}",
        "'",
        '"',
        "\t",
        "\x00",
        "\x1b",
        "\ufeff",
        ": ",
        "- ",
        "? ",
        "<<: *a",
        "&a ",
        "*a",
        "---\n",
        "...\n",
        "\n  ",
        "#",
        "\\",
        "\r",
        "\ud800",
        "!!binary ",
        "!!int ",
        "\u2028",
    ]
)


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """The YAML text of a mutated configuration, itself mutated zero to three times."""
    text = _dump(draw(mutated_data()))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))):
        lines = text.splitlines(keepends=True) or [""]
        where = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["duplicate", "delete", "insert", "cut", "indent"]))
        event(f"text mutation: {kind}")
        if kind == "duplicate":  # a repeated key, or a repeated list item
            lines.insert(where, lines[where])
        elif kind == "delete":
            del lines[where]
        elif kind == "insert":
            line = lines[where]
            column = draw(st.integers(0, len(line)))
            lines[where] = line[:column] + draw(TEXT_NOISE) + line[column:]
        elif kind == "cut":
            lines = lines[: where + 1]
            lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
        else:
            lines[where] = draw(st.sampled_from([" ", "  ", "\t", ""])) + lines[where].lstrip()
        text = "".join(lines)
    return text


NOISE = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.one_of(
            TEXT_NOISE,
            st.text(max_size=8),
            st.sampled_from(
                ["sources:", "rules:", "digest:", "\n", "  ", "- ", "name: x", "every: 1m"]
            ),
        ),
        max_size=60,
    ).map("".join),
)

# What every line of a ConfigError says after the file name: where, then what.
LOCATED = re.compile(r"(?:.+? \(line \d+\)|line \d+(?:, column \d+)?): (?P<what>\S.*)")
SAMPLE = MatchDocument(
    "Army pressures ISIS in Syria",
    "Refugees reach Palmyra; elections",
    "Omar Haddad",
    "wire",
    "https://news.example/a",
    "en",
)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _event(name: str) -> None:
    if currently_in_test_context():  # not in the plain tests
        event(name)


def check_outcome(load: Any, path: Path) -> Config | None:
    """Run `load`; a Config must be usable, a ConfigError well formed. Anything else
    escapes and fails the test. Returns the Config, or None."""
    try:
        config = load()
    except ConfigError as error:
        message = str(error)
        lines = message.split("\n")
        assert lines
        for line in lines:
            assert line.startswith(f"{path}: "), message
            assert LOCATED.fullmatch(line[len(f"{path}: ") :]), line
            assert len(line) < 800, line
            assert line.isprintable(), line
        what = LOCATED.fullmatch(lines[0][len(f"{path}: ") :]).group("what")  # type: ignore[union-attr]
        _event("ConfigError: " + re.sub(r"'[^']*'|\([^)]*\)|\d+", "…", what)[:60])
        return None
    _event("Config")
    assert isinstance(config, Config)
    matcher = RuleMatcher([rule_from_config(rule) for rule in config.rules])
    matcher.match(SAMPLE)
    for recipient in config.all_recipients():
        trigger = cron_trigger(recipient.schedule, recipient.timezone)
        assert trigger.get_next_fire_time(None, NOW) is not None, recipient
    for template in (config.digest.subject, config.alerts.subject):
        subject = format_subject(template, count=3, rules=config.rule_names())
        assert len(subject) <= 200
        assert "\n" not in subject
    scrapy_settings(config)
    config.web.token()
    if config.delivery.smtp is not None:
        config.delivery.smtp.password()
    return config


def test_the_base_configurations_are_valid() -> None:
    for base in BASES:
        assert check_outcome(lambda base=base: parse_config(_dump(base), PATH), PATH)


@LONG_TIMEOUT
@given(mutated_text())
@example(
    _dump(
        {
            "sources": [
                {"name": "x", "feed": "https://x.example/", "every": Raw(_tag("int"), "9" * 5000)}
            ]
        }
    )
)  # ValueError: int() refused 5,000 digits
@example("database: 2020-99-99\n")  # ValueError: month must be in 1..12
@example("obey_robots_txt: !!bool maybe\n")  # KeyError: 'maybe'
@example("workers: !!int\n")  # IndexError: string index out of range
@example("database: !!timestamp x\n")  # AttributeError: None has no groupdict
@example("digest: {timezone: " + "a" * 10_000 + "}\n")  # OSError: File name too long
@example("digest: {timezone: Europe}\n")  # IsADirectoryError
@example("max_backoff: 9999999999999d\n")  # OverflowError: Python int too large
@example("a: " + "{b: " * 900 + "1" + "}" * 900 + "\n")  # RecursionError
@example("a: &a [*a]\n")  # an alias inside itself
@example('digest: {schedule: "0 7 31 2 *"}\n')  # accepted, never fires
@example('digest: {subject: "{count:>99999999999}"}\n')  # MemoryError at send time
@example("web: {port: 1}\nweb: {port: 2}\n")  # the first silently ignored
def test_mutated_configurations_load_or_fail_cleanly(text: str) -> None:
    check_outcome(lambda: parse_config(text, PATH), PATH)


@LONG_TIMEOUT
@given(NOISE)
@example("\ud800")  # UnicodeEncodeError in the YAML parser
@example("a: \x00")
def test_noise_text_loads_or_fails_cleanly(text: str) -> None:
    check_outcome(lambda: parse_config(text, PATH), PATH)


@LONG_TIMEOUT
@settings(max_examples=max(20, settings().max_examples // 5))
@given(
    st.one_of(
        st.binary(max_size=300),
        mutated_text().map(lambda text: text.encode("utf-8", "surrogatepass")),
    )
)
@example(b"sources: [\xff]\n")
def test_files_of_any_bytes_load_or_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-config.yaml"
    path.write_bytes(data)
    check_outcome(lambda: load_config(path), path)


CRAFTED = {
    "deep-query": "rules: [{name: r, query: '" + "(" * 300 + "x" + ")" * 300 + "'}]\n",
    "huge-duration": "sources: [{name: s, feed: 'https://x.example/', every: 9999999999999d}]\n",
    "long-timezone": "digest: {timezone: " + "a" * 10_000 + "}\n",
    "subject-width": 'digest: {subject: "{count:>99999999999}"}\n',
    "bad-yaml-value": "database: 2020-99-99\nweb: {port: !!int " + "9" * 5000 + "}\n",
}


@pytest.mark.parametrize("text", CRAFTED.values(), ids=CRAFTED.keys())
def test_check_config_exits_2_with_one_line_per_problem(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_newswatch(path, "check-config")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    heading, *problems = result.stderr.strip().split("\n")
    assert heading == "newswatch: configuration error"
    assert problems
    for line in problems:
        assert line.startswith(f"{path}: ")
        assert LOCATED.fullmatch(line[len(f"{path}: ") :]), line


# --- the subject template: validated at load, bounded at render ----------------------

SPECS = st.one_of(
    st.just(""),
    st.from_regex(
        r"\A(.?[<>=^])?[-+ ]?#?0?[0-9]{0,4}[,_]?(\.[0-9]{0,4})?[bcdeEfFgGnosxX%]?\Z", fullmatch=True
    ),
    st.sampled_from(
        [">99999999999", "x>3000000", ".99999f", "{x}", "c", "=^50", "z", "!", "9" * 5000, "<" * 10]
    ),
    st.text(max_size=8),
)
PLACEHOLDERS = st.builds(
    lambda field, conversion, spec: "{" + field + conversion + (":" + spec if spec else "") + "}",
    st.sampled_from(
        [
            "count",
            "count",
            "new_articles",
            "rules",
            "rules",
            "",
            "0",
            "total",
            "count.__class__",
            "count[0]",
            "rules.upper",
            "count.real",
        ]
    ),
    st.sampled_from(["", "", "", "!r", "!s", "!a", "!x"]),
    SPECS,
)
TEMPLATES = st.one_of(
    st.lists(
        st.one_of(
            PLACEHOLDERS,
            st.text(max_size=10),
            st.sampled_from(["{", "}", "{{", "}}", " ", "newswatch: ", "\n", "\x00", "\u202e"]),
        ),
        max_size=12,
    ).map("".join),
    st.text(max_size=100),
    st.sampled_from(["{count:,}" * 200, "{" * 10_000, "x" * 10_000 + "{count}"]),
)


@LONG_TIMEOUT
@given(
    TEMPLATES,
    st.one_of(st.integers(0, 10**6), st.integers(), st.just(10**5000)),
    st.lists(st.text(max_size=20), max_size=30),
)
@example("{count:>99999999999}", 3, ["syria"])  # MemoryError at send time
@example("{count:x>3000000}", 3, ["syria"])  # over a minute
@example("{count:c}", 10**7, [])  # OverflowError: %c arg not in range(0x110000)
@example("{count:,}", 10**5000, [])  # ValueError: int too large to convert to str
def test_format_subject_never_raises_and_stays_short(
    template: str, count: int, rules: list[str]
) -> None:
    subject = format_subject(template, count=count, rules=rules)
    assert isinstance(subject, str)
    assert len(subject) <= 200
    assert "\n" not in subject
    assert "\x00" not in subject
    if not _accepted(template):
        _event("refused at load")
        return
    _event("accepted at load")
    # What the configuration accepts renders as Python formats it (when that is short
    # and one clean line already).
    expected = _python_format(template, count, rules)
    if (
        expected is not None
        and expected.isprintable()
        and len(expected) <= 200
        and (expected == " ".join(expected.split()))
    ):
        assert subject == expected


def _accepted(template: str) -> bool:
    try:
        check_subject_template(template)
    except ValueError:
        return False
    return True


def _python_format(template: str, count: int, rules: list[str]) -> str | None:
    try:
        new_articles = f"{count} new article" + ("" if count == 1 else "s")
        return template.format(count=count, new_articles=new_articles, rules=", ".join(rules))
    except (ValueError, OverflowError):  # %c of a large count, str() of 5,000 digits
        return None


def test_format_subject_cuts_a_long_subject_at_a_word() -> None:
    subject = format_subject(
        "{count} new in {rules}", count=3, rules=[f"rule number {n}" for n in range(100)]
    )
    assert len(subject) <= 200
    assert subject.startswith("3 new in rule number 0, rule number 1,")
    assert subject.endswith("…")
