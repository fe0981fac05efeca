"""Configuration: good files load into typed objects, bad ones fail with file, key, line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import run_newswatch

from crawler.config import ConfigError, config_path, load_config

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
            "exclude: [football]", "exclude: [football"),
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
        VALID.replace("keywords: [Palmyra, \"Al-Qaryatain\", ISIS]", "keywords: Palmyra"),
        "rules[0].keywords (line 9): Input should be a valid list",
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
        "rules (line 7): two rules are named 'syria'",
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
        VALID.replace('keywords: [Palmyra, "Al-Qaryatain", ISIS]',
                      'query: "Palmyra OR (ISIS NEAR/5 Syria) AND NOT"').replace(
            "    exclude: [football]\n", ""),
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
        "sources[0].every", "digest.timezone",
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
    assert "1 sources, 1 rules, 1 recipients" in good.stdout

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
