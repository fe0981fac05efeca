"""Configuration: good files load into typed objects, bad ones fail with file, key, line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import run_newswatch

from crawler.domain.config import ConfigError, config_path, load_config, parse_config

REPO_ROOT = Path(__file__).parent.parent

VALID = """\
database: sqlite:///newswatch.db
user_agent_contact: https://example.org/newswatch
sources:
  - name: wire
    feed: https://example.com/world/rss.xml
    every: 15m
rules:
  - name: syria
    keywords: [Palmyra, "Al-Qaryatain", ISIS]
    exclude: [football]
digest:
  schedule: "0 7 * * *"
  timezone: Asia/Kolkata
  recipients: [analyst@example.com]
  subject: "newswatch: {count} new articles"
delivery:
  smtp: {host: localhost, port: 1025, starttls: false, username: null, password_env: null}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_shape_loads(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, VALID))
    assert config.sources[0].every == timedelta(minutes=15)
    assert config.rules[0].keywords == ["Palmyra", "Al-Qaryatain", "ISIS"]
    assert config.digest.timezone == "Asia/Kolkata"
    assert config.delivery.smtp is not None
    assert config.delivery.smtp.port == 1025
    # A relative SQLite file lives next to the configuration, not in the working directory.
    assert config.database == f"sqlite:///{tmp_path.resolve() / 'newswatch.db'}"


def test_the_example_config_in_the_repository_is_valid() -> None:
    config = load_config(REPO_ROOT / "config.yaml")
    assert config.sources
    assert config.rules
    assert config.delivery.smtp is None


def test_outbox_is_the_default_delivery(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "sources: []\n"))
    assert config.delivery.smtp is None
    assert config.delivery.outbox == tmp_path.resolve() / "outbox"


BAD_CONFIGS = [
    pytest.param(
        VALID.replace("keywords: [Palmyra", "keywords: [Palmyra,, ]\n    x: [").replace(
            "exclude: [football]", "exclude: [football"
        ),
        "invalid YAML",
        "line ",
        id="invalid-yaml",
    ),
    pytest.param(
        VALID.replace("    every: 15m\n", "    every: 15m\n    evry: 5m\n"),
        "sources[0].evry (line 7): unknown key",
        None,
        id="unknown-key",
    ),
    pytest.param(
        VALID.replace('keywords: [Palmyra, "Al-Qaryatain", ISIS]', "keywords: 5"),
        "rules[0].keywords (line 9): Input should be a valid list (got 5)",
        None,
        id="wrong-type",
    ),
    pytest.param(
        VALID.replace("every: 15m", "every: often"),
        "sources[0].every (line 6): expected a positive duration such as 30s, 15m, 2h, 7d or 2y",
        None,
        id="bad-duration",
    ),
    pytest.param(
        VALID.replace("Asia/Kolkata", "Asia/Calcutta-ish"),
        "digest.timezone (line 13): unknown time zone 'Asia/Calcutta-ish'",
        None,
        id="bad-timezone",
    ),
    pytest.param(
        VALID.replace('"0 7 * * *"', '"0 25 * * *"'),
        "digest.schedule (line 12): invalid cron expression '0 25 * * *'",
        None,
        id="bad-cron",
    ),
    pytest.param(
        VALID.replace("feed: https://example.com/world/rss.xml", "feed: ftp://example.com/x"),
        "sources[0].feed (line 5): expected an http(s) URL",
        None,
        id="bad-url",
    ),
    pytest.param(
        VALID.replace("rules:\n", "rules:\n  - name: syria\n    keywords: [x]\n"),
        "rules[1].name (line 10): two rules are named 'syria' (the first at rules[0].name); "
        "names must be unique",
        None,
        id="duplicate-rule",
    ),
    pytest.param(
        VALID.replace("password_env: null", "password_env: NEWSWATCH_TEST_UNSET_PASSWORD"),
        "delivery.smtp.password_env (line 17): the environment variable "
        "NEWSWATCH_TEST_UNSET_PASSWORD is not set",
        None,
        id="missing-password-variable",
    ),
    pytest.param("- just\n- a list\n", "expected a mapping of settings", None, id="not-a-mapping"),
    pytest.param(
        VALID.replace(
            'keywords: [Palmyra, "Al-Qaryatain", ISIS]',
            'query: "Palmyra OR (ISIS NEAR/5 Syria) AND NOT"',
        ).replace("    exclude: [football]\n", ""),
        "rules[0].query (line 9): expected a term after NOT at column 39",
        None,
        id="bad-query",
    ),
    pytest.param(
        VALID.replace("    exclude: [football]\n", "    exclude: [football]\n    query: x\n"),
        "rules[0] (line 8): give either keywords or query",
        None,
        id="keywords-and-query",
    ),
]


@pytest.mark.parametrize(("text", "expected", "also"), BAD_CONFIGS)
def test_bad_config_names_file_key_and_line(
    tmp_path: Path, text: str, expected: str, also: str | None
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    if also:
        assert also in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("every: 15m", "every: soon").replace("Asia/Kolkata", "Mars/Base")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 2)[1].split(" ")[0] for line in lines] == [
        "sources[0].every",
        "digest.timezone",
    ]


def test_password_is_read_only_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSWATCH_TEST_PASSWORD", "s3cret")
    text = VALID.replace("password_env: null", "password_env: NEWSWATCH_TEST_PASSWORD")
    config = load_config(_write(tmp_path, text))
    assert config.delivery.smtp is not None
    assert config.delivery.smtp.password() == "s3cret"
    assert "s3cret" not in repr(config)


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    text = "database: !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(_write(tmp_path, text))


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSWATCH_CONFIG", "/etc/newswatch.yaml")
    assert config_path("explicit.yaml") == Path("explicit.yaml")
    assert config_path(None) == Path("/etc/newswatch.yaml")
    monkeypatch.delenv("NEWSWATCH_CONFIG")
    assert config_path(None) == Path("config.yaml")


def test_check_config_command(tmp_path: Path) -> None:
    good = run_newswatch(_write(tmp_path, VALID), "check-config")
    assert good.returncode == 0
    assert "OK" in good.stdout
    assert "1 source, 1 rule, 1 recipient" in good.stdout

    bad = run_newswatch(_write(tmp_path, VALID.replace("every: 15m", "every: 0m")), "check-config")
    assert bad.returncode == 2
    assert "sources[0].every (line 6)" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_service_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    result = run_newswatch(_write(tmp_path, VALID + "colour: blue\n"), "run", timeout=60)
    assert result.returncode == 2
    assert "colour (line 18): unknown key" in result.stderr


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="a configuration is at most 1,048,576"):
        load_config(path)


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    lines.append("sources: *a9")
    with pytest.raises(ConfigError, match="at most 100,000 are allowed"):
        load_config(_write(tmp_path, "\n".join(lines) + "\n"))


# --- hostile values: each a clear error naming file, key path and line -----------------

SOURCE = "sources:\n  - name: wire\n    feed: https://example.com/rss\n"
DURATION_KEYS = [
    ("sources[0].every", SOURCE + "    every: {}\n"),
    ("sources[0].max_age", SOURCE + "    max_age: {}\n"),
    ("max_backoff", "max_backoff: {}\n"),
    ("max_retry_after", "max_retry_after: {}\n"),
    ("story_window", "story_window: {}\n"),
    ("download_timeout", "download_timeout: {}\n"),
    ("retention.bodies", "retention:\n  bodies: {}\n"),
    ("retention.fingerprints", "retention:\n  fingerprints: {}\n"),
    ("alerts.window", "alerts:\n  window: {}\n"),
    ("delivery_retry.first_delay", "delivery_retry:\n  first_delay: {}\n"),
    ("delivery_retry.max_delay", "delivery_retry:\n  max_delay: {}\n"),
    ("delivery.smtp.timeout", "delivery:\n  smtp:\n    host: h\n    timeout: {}\n"),
    ("domains.example.com.delay", "domains:\n  example.com:\n    delay: {}\n"),
]


@pytest.mark.parametrize(("key", "template"), [pytest.param(k, t, id=k) for k, t in DURATION_KEYS])
@pytest.mark.parametrize(
    "value",
    ["9999999999999d", "9999999999999y", "3651d", "99999999999999999999999", "9" * 5000 + "s"],
)
def test_a_duration_too_large_for_timedelta_is_a_clear_error(
    tmp_path: Path, key: str, template: str, value: str
) -> None:
    # Was OverflowError: Python int too large to convert to C int (issue 16).
    path = _write(tmp_path, template.format(value))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()
    line_number = template.format(value).count("\n")
    assert line.startswith(f"{path}: {key} (line {line_number}): ")
    assert line.endswith("is too long; expected a duration up to 10y")
    assert len(line) - len(str(path)) < 200


def test_ten_years_is_the_longest_duration(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "retention: {bodies: 10y, fingerprints: 3650d}\n"))
    assert config.retention.fingerprints == timedelta(days=3650)


WEBHOOK = (
    "channels:\n  - name: hook\n    kind: webhook\n    url: https://hooks.example/in\n"
    "    secret_env: HOOK_SECRET\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "websub:\n  lease: 400d\n",
            "websub.lease (line 2): expected a lease of at most 365d, got 400d",
            id="lease",
        ),
        pytest.param(
            "cluster:\n  failover: 2s\n",
            "cluster.failover (line 2): expected a duration from 3s to 10m, got 2s",
            id="failover-short",
        ),
        pytest.param(
            "cluster:\n  failover: 1h\n",
            "cluster.failover (line 2): expected a duration from 3s to 10m, got 1h",
            id="failover-long",
        ),
        pytest.param(
            WEBHOOK + "    timeout: 90m\n",
            "channels[0].timeout (line 6): expected a duration of at most 10m, got 90m",
            id="channel-timeout",
        ),
    ],
)
def test_a_duration_out_of_its_bounds_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        pytest.param("websub: {lease: 365d}\n", "lease", timedelta(days=365), id="lease"),
        pytest.param("cluster: {failover: 3s}\n", "failover", timedelta(seconds=3), id="failover"),
        pytest.param(
            WEBHOOK + "    timeout: 10m\n", "timeout", timedelta(minutes=10), id="timeout"
        ),
    ],
)
def test_a_duration_on_its_bound_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str, expected: timedelta
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    config = load_config(_write(tmp_path, text))
    section = {"lease": config.websub, "failover": config.cluster}.get(key) or config.channels[0]
    assert getattr(section, key) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "digest: {timezone: " + "a" * 10_000 + "}\n",
            "digest.timezone (line 1): unknown time zone 'aaaa",
            id="10000-characters",
        ),
        pytest.param(
            "recipients: [{email: a@example.com, timezone: " + "b" * 10_000 + "}]\n",
            "recipients[0].timezone (line 1): unknown time zone 'bbbb",
            id="recipient",
        ),
        pytest.param(
            "digest: {timezone: Europe}\n",
            "digest.timezone (line 1): unknown time zone 'Europe'",
            id="a-folder",
        ),
        pytest.param(
            "digest: {timezone: ../../etc/passwd}\n",
            "digest.timezone (line 1): unknown time zone '../../etc/passwd'",
            id="path",
        ),
    ],
)
def test_a_time_zone_that_is_not_a_zone_file_is_a_clear_error(
    tmp_path: Path, text: str, expected: str
) -> None:
    # Was OSError: File name too long, and IsADirectoryError for a folder of zones.
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{path}: {expected}")
    assert line.endswith("expected an IANA name such as Europe/Paris")
    assert len(line) - len(str(path)) < 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "web: {port: " + "9" * 5000 + "}\n",
            "web.port (line 1): cannot read '9999",
            id="5000-digit-integer",
        ),
        pytest.param(
            "database: 2020-99-99\n",
            "database (line 1): cannot read '2020-99-99' as a date: month must be in "
            "1..12; quote it if it is text",
            id="impossible-date",
        ),
        pytest.param(
            "obey_robots_txt: !!bool maybe\n",
            "obey_robots_txt (line 1): cannot read 'maybe' as true or false",
            id="bool-tag",
        ),
        pytest.param(
            "workers: !!int abc\n",
            "workers (line 1): cannot read 'abc' as an integer",
            id="int-tag",
        ),
        pytest.param(
            "workers: !!float abc\n",
            "workers (line 1): cannot read 'abc' as a number",
            id="float-tag",
        ),
        pytest.param(
            "workers: !!int\n", "workers (line 1): cannot read '' as an integer", id="empty-int-tag"
        ),  # was IndexError
        pytest.param(
            "database: !!timestamp x\n",
            "database (line 1): cannot read 'x' as a date",
            id="timestamp-tag",
        ),  # was AttributeError
    ],
)
def test_a_yaml_value_the_safe_loader_cannot_build_is_a_clear_error(
    tmp_path: Path, text: str, expected: str
) -> None:
    # Were ValueError and KeyError raised from inside PyYAML's constructors.
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{path}: {expected}")
    assert len(line) - len(str(path)) < 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: " + "{b: " * 900 + "1" + "}" * 900 + "\n",
            "a.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b (line 1): nested more than 20 levels deep",
            id="900-mappings",
        ),
        pytest.param(
            "sources: " + "[" * 900 + "]" * 900 + "\n",
            "sources" + "[0]" * 20 + " (line 1): nested more than 20 levels deep",
            id="900-lists",
        ),
        pytest.param(
            "sources: &a [*a]\n",
            "line 1: invalid YAML: an alias (*name) refers to a value it is part of",
            id="alias-inside-itself",
        ),
    ],
)
def test_deeply_nested_yaml_is_a_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    # Was a RecursionError from the alias-expansion count.
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {expected}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "web: {port: 1}\nweb: {port: 2}\n",
            "web (line 2): the key is given twice (first on line 1); keep one",
            id="duplicate-key",
        ),
        pytest.param(
            "domains: {1: {concurrency: 1}}\n",
            "domains (line 1): the key '1' is read as an integer; quote it",
            id="integer-key",
        ),
        pytest.param(
            "true: 1\n",
            "(top level) (line 1): the key 'true' is read as true or false; quote it",
            id="boolean-key",
        ),
        pytest.param(
            "? [a, b]\n: 1\n", "(top level) (line 1): a key must be text, not a list", id="list-key"
        ),
        pytest.param(
            'sources: [{name: "wi\\0re", feed: "https://x.example/"}]\n',
            "sources[0].name (line 1): the value holds the control character U+0000; remove it",
            id="nul-byte",
        ),
        pytest.param(
            'digest: {recipients: ["a\\x1b@example.com"]}\n',
            "digest.recipients[0] (line 1): the value holds the control character U+001B",
            id="escape-in-email",
        ),
    ],
)
def test_keys_and_characters_yaml_allows_but_a_configuration_cannot_hold(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {expected}" or str(caught.value).startswith(
        f"{path}: {expected}"
    )


def test_a_lone_surrogate_is_a_clear_error() -> None:
    # Was UnicodeEncodeError from the YAML parser (text handed to parse_config).
    with pytest.raises(ConfigError, match=r"^x.yaml: line 2: U\+D800 is not a character"):
        parse_config("sources: []\ndatabase: \ud800\n", Path("x.yaml"))


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"sources: []\n\ndatabase: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: line 3: cannot read the configuration: it is not UTF-8 text (byte 0xe9)"
    )


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        pytest.param(
            "0 7 31 2 *",
            "the cron expression '0 7 31 2 *' never fires: no date in "
            "the next 100 years matches it",
            id="31-february",
        ),
        pytest.param("0 0 7 30 2 *", "never fires", id="30-february-with-seconds"),
        pytest.param("0 7 31 4,6,9,11 *", "never fires", id="31-april"),
        pytest.param(
            ",".join(["0"] * 5000) + " 7 * * *",
            "a cron expression has at most 200 characters (this one has 10,007)",
            id="10000-characters",
        ),
        pytest.param(
            "0 ٧ * * *",
            "invalid cron expression '0 ٧ * * *': expected fields of ASCII digits",
            id="arabic-indic-digit",
        ),
        pytest.param(
            "0-99999999999 7 * * *",
            "invalid cron expression '0-99999999999 7 * * *'",
            id="huge-range",
        ),
    ],
)
def test_a_cron_schedule_that_never_fires_is_a_clear_error(
    tmp_path: Path, schedule: str, expected: str
) -> None:
    # "0 7 31 2 *" was accepted; APScheduler then walked every year up to 9999 for it.
    path = _write(tmp_path, f'digest: {{schedule: "{schedule}"}}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{path}: digest.schedule (line 1): ")
    assert expected in line


def test_a_schedule_that_fires_only_in_leap_years_is_valid(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, 'digest: {schedule: "0 7 29 2 *"}\n'))
    assert config.digest.schedule == "0 7 29 2 *"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        pytest.param(
            "{count:>99999999999}", "{count:>99999999999}: the width is over 100", id="width"
        ),  # was a MemoryError at send time
        pytest.param(
            "{count:x>3000000}", "{count:x>3000000}: the width is over 100", id="fill-width"
        ),  # took over a minute
        pytest.param("{count:.500f}", "{count:.500f}: the precision is over 100", id="precision"),
        pytest.param(
            "{count.__class__}",
            "{count.__class__}: attribute and index access is not "
            "allowed; expected {count}, {new_articles} or {rules}",
            id="attribute",
        ),
        pytest.param("{count[0]}", "attribute and index access is not allowed", id="index"),
        pytest.param(
            "{total} new",
            "unknown placeholder {total}; expected {count}, {new_articles} or {rules}",
            id="unknown-field",
        ),
        pytest.param("{0}", "unknown placeholder {0}", id="positional"),
        pytest.param("{count!r}", "{count!r}: conversions are not allowed", id="conversion"),
        pytest.param("{count:xyz}", "{count:xyz}: invalid format spec", id="bad-spec"),
        pytest.param(
            "{rules:=20}",
            "{rules:=20}: invalid format spec: '=' alignment not "
            "allowed in string format specifier",
            id="spec-for-the-wrong-type",
        ),
        pytest.param("{count:{width}}", "{count:{width}}: invalid format spec", id="nested"),
        pytest.param(
            "{count",
            "invalid subject: expected '}' before end of string; write {{ and }} for a brace",
            id="unbalanced",
        ),
        pytest.param(
            "x" * 501, "a subject has at most 500 characters (this one has 501)", id="too-long"
        ),
    ],
)
@pytest.mark.parametrize("key", ["digest", "alerts"])
def test_a_subject_that_cannot_render_is_a_clear_error(
    tmp_path: Path, key: str, subject: str, expected: str
) -> None:
    path = _write(tmp_path, f"{key}:\n  subject: '{subject}'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{path}: {key}.subject (line 2): ")
    assert expected in line


def test_subjects_with_their_format_specs_load(tmp_path: Path) -> None:
    config = load_config(
        _write(
            tmp_path,
            "digest: {subject: '{count:>3} new, {rules:.40} "
            "{{x}}'}\nalerts: {subject: '{count:03d}'}\n",
        )
    )
    assert config.digest.subject == "{count:>3} new, {rules:.40} {{x}}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "sources: [{name: s, feed: 'https://" + "a" * 100_000 + "'}]\n",
            "sources[0].feed (line 1): ",
            id="100k-url",
        ),  # a String(2048) column
        pytest.param(
            "sources: [{name: '" + "n" * 201 + "', feed: 'https://x.example/'}]\n",
            "sources[0].name (line 1): String should have at most 200 characters",
            id="201-character-name",
        ),
        pytest.param(
            "digest: {recipients: ['" + "a" * 100_000 + "@example.com']}\n",
            "digest.recipients[0] (line 1): expected an email address, got 'aaaa",
            id="100k-email",
        ),
        pytest.param(
            'sources: [{name: "s\\nt", feed: "https://x.example/"}]\n',
            "sources[0].name (line 1): expected text on one line",
            id="name-two-lines",
        ),
        pytest.param(
            "sources: [{name: s, feed: 'https://x.example/a b'}]\n",
            "sources[0].feed (line 1): a source URL cannot hold spaces",
            id="url-with-space",
        ),
        pytest.param(
            "sources: [{name: s, listing: 'https://x.example/', links: '" + "a " * 600 + "'}]\n",
            "sources[0].links (line 1): a CSS selector has at most 1,000 characters",
            id="long-selector",
        ),
        pytest.param(
            "delivery: {smtp: {host: h, password_env: 'A=B'}}\n",
            "delivery.smtp.password_env (line 1): expected the name of an environment variable",
            id="variable-name",
        ),
        pytest.param(
            "download_maxsize: " + "9" * 30 + "\n",
            "download_maxsize (line 1): Input should be less than or equal to 1073741824",
            id="download-maxsize",
        ),
        pytest.param(
            "rules: [{name: r, keywords: ['***', ISIS]}]\n",
            "rules[0].keywords (line 1): the keyword '***' has no letter or digit, so "
            "it can never match",
            id="keyword-without-a-word",
        ),
        pytest.param(
            "digest: {unsubscribe: 'javascript:alert(1)'}\n",
            "digest.unsubscribe (line 1): expected an https: or mailto: URL",
            id="unsubscribe",
        ),
    ],
)
def test_values_longer_or_odder_than_their_use_allows_are_clear_errors(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{path}: {expected}")
    assert len(line) - len(str(path)) < 250


HOSTILE_CLI_CONFIGS = {
    "deep-query": "rules: [{name: r, query: '" + "(" * 300 + "x" + ")" * 300 + "'}]\n",
    "huge-duration": "sources: [{name: s, feed: 'https://x.example/', every: 9999999999999d}]\n",
    "long-timezone": "digest: {timezone: " + "a" * 10_000 + "}\n",
}


@pytest.mark.parametrize("text", HOSTILE_CLI_CONFIGS.values(), ids=HOSTILE_CLI_CONFIGS.keys())
def test_check_config_of_a_hostile_value_exits_2_with_one_line(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    result = run_newswatch(path, "check-config")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    heading, problem = result.stderr.strip().splitlines()
    assert heading == "newswatch: configuration error"
    assert problem.startswith(f"{path}: ")
    assert " (line 1): " in problem


def test_rules_test_with_a_bad_since_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    result = run_newswatch(path, "rules", "test", "syria", "--since", "9999999999999d")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--since: '9999999999999d' is too long; expected a duration up to 10y" in (result.stderr)


def test_a_source_is_found_by_name_in_the_sources_of_that_config() -> None:
    from crawler.domain.config import Config

    config = Config.model_validate(
        {"sources": [{"name": "a", "feed": "https://a.example/rss", "every": "15m"}]}
    )
    assert config.source("a").url == "https://a.example/rss"
    # A copy with other sources (the loader makes such copies) finds those, not the
    # ones of the config it was copied from.
    copy = config.model_copy(
        update={"sources": [config.sources[0].model_copy(update={"name": "b"})]}
    )
    assert copy.source("b").name == "b"
    with pytest.raises(KeyError):
        copy.source("a")
    assert config.source("a").name == "a"
