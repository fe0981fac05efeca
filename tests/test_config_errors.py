"""Configuration errors that teach: every problem at once, each at its own key path
and line, "did you mean" for a misspelt key or name, the known names otherwise; one
text taken as a list of one; warnings for a configuration that would do nothing."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import NEWSWATCH, run_newswatch

from crawler.domain.config import ConfigError, config_warnings, load_config, parse_config

FILE = Path("config.yaml")

TWELVE_RULES = "".join(f"  - name: r{n}\n    keywords: [a]\n" for n in range(1, 13))

ERRORS = [
    pytest.param(
        "sources:\n  - name: wire\n    feed: https://example.com/rss\n    evry: 10m\n",
        ["sources[0].evry (line 4): unknown key; did you mean every?"],
        id="misspelt-key",
    ),
    pytest.param(
        "recipents:\n  - email: ana@example.org\n",
        ["recipents (line 1): unknown key; did you mean recipients?"],
        id="misspelt-top-level-key",
    ),
    pytest.param(
        'digest:\n  schedul: "0 7 * * *"\ndelivery:\n  smtp: {host: localhost, prot: 25}\n'
        "domains:\n  example.com:\n    delai: 2s\n",
        [
            "digest.schedul (line 2): unknown key; did you mean schedule?",
            "delivery.smtp.prot (line 4): unknown key; did you mean port?",
            "domains.example.com.delai (line 7): unknown key; did you mean delay?",
        ],
        id="misspelt-keys-in-nested-optional-and-keyed-sections",
    ),
    pytest.param(
        "rules:\n  - name: syria\n    keywords: [dam]\n    colour: red\n",
        [
            "rules[0].colour (line 4): unknown key (keys here: name, keywords, exclude, "
            "query, stem, language, tags, alert, channels, sources)"
        ],
        id="unknown-key-lists-the-few-keys",
    ),
    pytest.param(
        "sources:\n  - name: wire\n    feed: https://example.com/rss\n    colour: red\n",
        [
            "sources[0].colour (line 4): unknown key; check its spelling against the "
            "configuration reference"
        ],
        id="unknown-key-among-many",
    ),
    pytest.param(
        "rules:\n  - name: syria\n    keywords: [dam]\n  - name: quakes\n"
        "    keywords: [earthquake]\n    tags: [nature]\n"
        "recipients:\n  - email: ana@example.org\n    rules: [syra, floods]\n"
        "    tags: [natur]\n    channels: [chat]\n",
        [
            "recipients[0].rules[0] (line 9): recipient ana@example.org: no rule is named "
            "'syra'; did you mean syria?",
            "recipients[0].rules[1] (line 9): recipient ana@example.org: no rule is named "
            "'floods' (rules: syria, quakes)",
            "recipients[0].tags[0] (line 10): recipient ana@example.org: no rule has the "
            "tag 'natur'; did you mean nature?",
            "recipients[0].channels[0] (line 11): recipient ana@example.org: no channel is "
            "named 'chat' (channels: email)",
        ],
        id="recipient-names-unknown-rules-tags-channels",
    ),
    pytest.param(
        "recipients:\n  - email: ana@example.org\n    rules: [syria]\n",
        [
            "recipients[0].rules[0] (line 3): recipient ana@example.org: no rule is named "
            "'syria' (no rules are configured)"
        ],
        id="no-rules-to-name",
    ),
    pytest.param(
        f"rules:\n{TWELVE_RULES}recipients:\n  - email: ana@example.org\n    rules: [floods]\n",
        [
            "recipients[0].rules[0] (line 28): recipient ana@example.org: no rule is named "
            "'floods' (rules: r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 and 2 more)"
        ],
        id="known-names-capped",
    ),
    pytest.param(
        "channels:\n  - name: desk\n    kind: webhook\n    url: https://hooks.example.org/x\n"
        "    secret_env: HOME\noperators:\n  channels: [dsk, email]\n"
        "rules:\n  - name: syria\n    keywords: [dam]\n    alert: immediate\n"
        "    channels: [dek]\n  - name: quakes\n    keywords: [dam]\n    channels: [desk]\n",
        [
            "operators.channels[0] (line 7): operators.channels: no channel is named 'dsk'; "
            "did you mean desk?",
            "operators.channels[1] (line 7): operators.channels: email is not a channel "
            "here; email goes to operators.recipients",
            "rules[0].channels[0] (line 12): rule syria: no channel is named 'dek'; did you "
            "mean desk?",
            "rules[1].channels (line 15): rule quakes: channels take its immediate alerts; "
            "give the rule alert: immediate, or list the channel in a recipient's channels "
            "for digests",
        ],
        id="channel-names-of-operators-and-rules",
    ),
    pytest.param(
        "sources:\n  - name: wire\n    feed: https://example.com/rss\n"
        "  - name: wire\n    feed: https://example.com/rss2\n"
        "rules:\n  - name: syria\n    keywords: [dam]\n    sources: [wir]\n"
        "recipients:\n  - email: ana@example.org\n    rules: [syira]\n"
        "  - email: Ana@example.org\ndigest:\n  recipients: [ana@example.org]\n",
        [
            "sources[1].name (line 4): two sources are named 'wire' (the first at "
            "sources[0].name); names must be unique",
            "rules[0].sources[0] (line 9): rule syria: no source is named 'wir'; did you "
            "mean wire?",
            "recipients[0].rules[0] (line 12): recipient ana@example.org: no rule is named "
            "'syira'; did you mean syria?",
            "recipients[1].email (line 13): ana@example.org is listed twice (first at "
            "recipients[0].email); list a recipient once",
            "digest.recipients[0] (line 15): ana@example.org is listed twice (first at "
            "recipients[0].email); list a recipient once",
        ],
        id="every-cross-section-problem-at-once-in-file-order",
    ),
    pytest.param(
        "sources:\n  - name: wire\n    feed: https://example.com/rss\n    evry: 10m\n"
        "  - name: gulf\n    feed: ftp://example.com/rss\n"
        "rules:\n  - name: syria\n    keywords: [dam]\n    sources: [wire, gulf, wir]\n"
        "  - name: quakes\n    keywords: [dam]\n    query: x\n"
        "digest:\n  timezone: Mars/Base\n"
        "recipients:\n  - email: ana@example.org\n    rules: [syra, quakes]\n",
        [
            "sources[0].evry (line 4): unknown key; did you mean every?",
            "sources[1].feed (line 6): expected an http(s) URL, got 'ftp://example.com/rss'",
            "rules[1] (line 11): give either keywords or query",
            "digest.timezone (line 15): unknown time zone 'Mars/Base'; expected an IANA name "
            "such as Europe/Paris",
            # The source gulf and the rule quakes are at fault, not the names of them.
            "rules[0].sources[2] (line 10): rule syria: no source is named 'wir'; did you "
            "mean wire?",
            "recipients[0].rules[0] (line 18): recipient ana@example.org: no rule is named "
            "'syra'; did you mean syria?",
        ],
        id="names-checked-despite-errors-elsewhere",
    ),
    pytest.param(
        "rules: dam\nrecipients:\n  - email: ana@example.org\n    rules: [syra]\n",
        ["rules (line 1): Input should be a valid list (got 'dam')"],
        id="names-of-a-broken-list-not-checked",
    ),
    pytest.param(
        "recipients:\n  - email: ana@example.org\n    quiet_days: saturday\n",
        [
            "recipients[0].quiet_days[0] (line 3): Input should be 'mon', 'tue', 'wed', "
            "'thu', 'fri', 'sat' or 'sun'"
        ],
        id="one-text-as-a-list-is-still-checked",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_configuration_errors_teach(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, FILE)
    assert str(caught.value).splitlines() == [f"{FILE}: {line}" for line in expected]


ONE_TEXT_LISTS = [
    pytest.param(
        "rules:\n  - name: r\n    keywords: dam\n", "rules.0.keywords", ["dam"], id="keywords"
    ),
    pytest.param(
        "rules:\n  - name: r\n    keywords: [dam]\n    exclude: football\n",
        "rules.0.exclude",
        ["football"],
        id="exclude",
    ),
    pytest.param(
        "rules:\n  - name: r\n    keywords: [dam]\n"
        "recipients:\n  - email: ana@example.org\n    rules: r\n    quiet_days: sat\n",
        "recipients.0.rules",
        ["r"],
        id="recipient-rules",
    ),
    pytest.param(
        "recipients:\n  - email: ana@example.org\n    quiet_days: sat\n",
        "recipients.0.quiet_days",
        ["sat"],
        id="quiet-days",
    ),
    pytest.param(
        "sources:\n  - name: wire\n    feed: https://example.com/rss\n    tags: energy\n"
        "rules:\n  - name: r\n    keywords: [dam]\n    sources: tag:energy\n",
        "rules.0.sources",
        ["tag:energy"],
        id="rule-sources",
    ),
    pytest.param(
        "digest:\n  recipients: ana@example.org\n",
        "digest.recipients",
        ["ana@example.org"],
        id="digest-recipients",
    ),
]


@pytest.mark.parametrize(("text", "where", "expected"), ONE_TEXT_LISTS)
def test_one_text_is_a_list_of_one(text: str, where: str, expected: list[str]) -> None:
    value: object = parse_config(text, FILE)
    for part in where.split("."):
        value = value[int(part)] if part.isdigit() else getattr(value, part)
    assert value == expected


SOURCE = "sources:\n  - name: wire\n    feed: https://example.com/rss\n"
RULE = "rules:\n  - name: syria\n    keywords: [dam]\n"
READER = "recipients:\n  - email: ana@example.org\n"

WARNINGS = [
    pytest.param(SOURCE + RULE + READER, [], id="a-config-that-works"),
    pytest.param(
        "",
        [
            "warning: no sources, so nothing is polled; add one with `newswatch sources add "
            "URL` or under sources:",
            "warning: no rules, so no article is matched and nothing is sent; add one under "
            "rules: (try it first with `newswatch rules test --query`)",
        ],
        id="empty",
    ),
    pytest.param(
        "sources: []\n" + RULE + READER,
        [
            "sources (line 1): warning: no sources, so nothing is polled; add one with "
            "`newswatch sources add URL` or under sources:"
        ],
        id="no-sources",
    ),
    pytest.param(
        SOURCE.replace("rss\n", "rss\n    enabled: false\n") + RULE + READER,
        ["sources (line 1): warning: every source has enabled: false; none is polled"],
        id="every-source-disabled",
    ),
    pytest.param(
        SOURCE + RULE,
        [
            "warning: no recipients and no rule has channels, so matches are stored and "
            "never sent; add one under recipients:"
        ],
        id="no-recipients",
    ),
    pytest.param(
        SOURCE
        + RULE
        + "  - name: quakes\n    keywords: [earthquake]\n"
        + READER
        + "    rules: syria\n",
        [
            "rules[1] (line 7): warning: no recipient receives rule quakes (their rules and "
            "tags leave it out); list it in a recipient's rules"
        ],
        id="a-rule-nobody-receives",
    ),
    pytest.param(
        SOURCE + RULE + "    alert: immediate\n" + READER + "    alerts: false\n",
        [
            "rules[0].alert (line 7): warning: rule syria is immediate but its recipients "
            "have alerts: false, so its alerts reach nobody"
        ],
        id="an-immediate-rule-nobody-receives",
    ),
]


@pytest.mark.parametrize(("text", "expected"), WARNINGS)
def test_a_config_that_would_do_nothing_is_warned_of(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert config_warnings(load_config(path), path) == [f"{path}: {line}" for line in expected]


def test_check_config_prints_the_warnings(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(RULE + READER, encoding="utf-8")
    result = run_newswatch(path, "check-config")
    assert result.returncode == 0, result.stderr
    assert f"{path}: warning: no sources, so nothing is polled" in result.stdout
    assert "1 rule, 1 recipient," in result.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Syra", "no rule is named 'Syra' in the configuration; did you mean syria?"),
        pytest.param(
            "Nonexistent",
            "no rule is named 'Nonexistent' in the configuration (rules: syria, quakes)",
        ),
    ],
)
def test_rules_test_of_an_unknown_rule_names_the_rules(
    tmp_path: Path, name: str, expected: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        RULE
        + "  - name: quakes\n    keywords: [earthquake]\n"
        + f"database: sqlite:///{tmp_path}/n.db\n",
        encoding="utf-8",
    )
    result = run_newswatch(path, "rules", "test", name)
    assert result.returncode == 2
    assert expected in result.stderr.splitlines()


@pytest.mark.slow
def test_the_service_logs_the_warnings_when_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        RULE
        + READER
        + f"database: sqlite:///{tmp_path}/n.db\nweb: {{enabled: false}}\nworkers: 0\n",
        encoding="utf-8",
    )
    log = tmp_path / "service.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [NEWSWATCH, "--config", str(path), "run"], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "newswatch running" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        # A reload logs them again: the file may have changed to do nothing.
        process.send_signal(signal.SIGHUP)
        while "configuration reloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    started, reloaded = log.read_text().split("newswatch running", 1)
    warning = f"{path}: warning: no sources, so nothing is polled"
    assert warning in started
    assert "configuration reloaded" in reloaded
    assert warning in reloaded.split("configuration reloaded", 1)[0]
