"""The checks of config.yaml that span sections: names unique, and each name one part
gives (a rule in a recipient's ``rules``, a channel in a rule's ``channels``, a source
in a rule's ``sources``) naming something configured.

Every check runs, and each problem is a `KeyedValueError` at the key it is about
(``recipients[0].rules[1]``), so the loader reports them all at once, each on its
own line; a misspelt name gets the nearest configured one, and a name with none
near lists those that exist.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from crawler.domain.config.access import browser_proxy_problem, site_access_for
from crawler.domain.config.scopes import source_scope_problems
from crawler.domain.config.spelling import name_hint
from crawler.domain.config.values import KeyedValueError, _shown
from crawler.domain.items import EMAIL_CHANNEL

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from crawler.domain.config.access import SiteAccessConfig
    from crawler.domain.config.channels import ChannelConfig
    from crawler.domain.config.polling import PollingConfig
    from crawler.domain.config.watch import RecipientConfig, RuleConfig, SourceConfig


class _Digest(Protocol):
    """``digest``: its recipients are plain addresses."""

    @property
    def recipients(self) -> Sequence[str]: ...


class _Operators(Protocol):
    @property
    def channels(self) -> Sequence[str]: ...


class _Web(Protocol):
    @property
    def enabled(self) -> bool: ...


class Config(Protocol):
    """What the checks read of schema.Config (which calls them, so is not imported)."""

    @property
    def sources(self) -> Sequence[SourceConfig]: ...
    @property
    def rules(self) -> Sequence[RuleConfig]: ...
    @property
    def recipients(self) -> Sequence[RecipientConfig]: ...
    @property
    def channels(self) -> Sequence[ChannelConfig]: ...
    @property
    def digest(self) -> _Digest: ...
    @property
    def operators(self) -> _Operators: ...
    @property
    def web(self) -> _Web: ...
    @property
    def polling(self) -> PollingConfig: ...
    @property
    def domains(self) -> Mapping[str, SiteAccessConfig]: ...


def reference_problems(config: Config) -> list[KeyedValueError]:
    """Every problem the checks that span sections find (the loader puts them in the
    file's order)."""
    checks: tuple[Callable[[Config], list[KeyedValueError]], ...] = (
        _duplicate_names,
        _source_bounds_disordered,
        _rendered_pages_without_their_proxy,
        lambda config: source_scope_problems(config.rules, config.sources),
        _rule_channel_problems,
        _recipient_reference_problems,
        _feeds_without_the_web_ui,
        _operator_channel_problems,
    )
    return [problem for check in checks for problem in check(config)]


def _duplicate_names(config: Config) -> list[KeyedValueError]:
    """A name given twice, at the second, naming the first."""
    named: list[tuple[str, Sequence[tuple[tuple[int | str, ...], str]]]] = [
        ("source", [(("sources", i, "name"), s.name) for i, s in enumerate(config.sources)]),
        ("rule", [(("rules", i, "name"), r.name) for i, r in enumerate(config.rules)]),
        ("channel", [(("channels", i, "name"), c.name) for i, c in enumerate(config.channels)]),
        (
            "recipient",
            [(("recipients", i, "email"), r.email.lower()) for i, r in enumerate(config.recipients)]
            + [
                (("digest", "recipients", i), email.lower())
                for i, email in enumerate(config.digest.recipients)
            ],
        ),
    ]
    problems = []
    for what, entries in named:
        first: dict[str, tuple[int | str, ...]] = {}
        for loc, name in entries:
            if name in first:
                problem = (
                    f"{name} is listed twice (first at {format_loc(first[name])}); list "
                    "a recipient once"
                    if what == "recipient"
                    else f"two {what}s are named {name!r} (the first at "
                    f"{format_loc(first[name])}); names must be unique"
                )
                problems.append(KeyedValueError(problem, loc))
            else:
                first[name] = loc
    return problems


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``('rules', 2, 'keywords')`` → ``rules[2].keywords``; a key that is not a plain
    word is quoted, cut and kept on one line."""
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
            continue
        name = part if isinstance(part, str) else repr(part)
        if not re.fullmatch(r"[\w.:<>\[\]-]{1,80}", name, flags=re.ASCII):
            name = _shown(name, 40)
        text += f".{name}" if text else name
    return text or "(top level)"


def _source_bounds_disordered(config: Config) -> list[KeyedValueError]:
    problems = []
    for index, source in enumerate(config.sources):
        low = source.min_interval or config.polling.min_interval
        high = source.max_interval or config.polling.max_interval
        if low > high:
            problems.append(
                KeyedValueError(
                    f"source {source.name}: its min_interval is longer than its "
                    "max_interval (with polling's defaults)",
                    ("sources", index, "min_interval" if source.min_interval else "max_interval"),
                )
            )
    return problems


def _rendered_pages_without_their_proxy(config: Config) -> list[KeyedValueError]:
    domains = {host.lower(): domain for host, domain in config.domains.items()}
    problems = []
    for index, source in enumerate(config.sources):
        if not source.uses_browser:
            continue
        host = (urlsplit(source.url).hostname or "").rstrip(".").lower()
        proxy = site_access_for(source.site_access(), domains.get(host)).proxy_url()
        if (problem := browser_proxy_problem(proxy)) is not None:
            key = "render" if source.render == "browser" else "render_articles"
            problems.append(
                KeyedValueError(f"source {source.name}: {problem}", ("sources", index, key))
            )
    return problems


def _rule_channel_problems(config: Config) -> list[KeyedValueError]:
    known = [channel.name for channel in config.channels]
    known_set = set(known)
    feeds = {channel.name for channel in config.channels if channel.kind == "feed"}
    problems = []
    for index, rule in enumerate(config.rules):
        for position, name in enumerate(rule.channels):
            where = ("rules", index, "channels", position)
            if name == EMAIL_CHANNEL and name not in known_set:
                problems.append(
                    KeyedValueError(
                        f"rule {rule.name}: email is no channel of a rule; email goes to "
                        "recipients, list the rule in theirs",
                        where,
                    )
                )
            elif name not in known_set:
                problems.append(
                    KeyedValueError(
                        f"rule {rule.name}: no channel is named {name!r}"
                        + name_hint(name, known, "channels"),
                        where,
                    )
                )
            elif name in feeds:
                # A feed is served per recipient: a rule's own would have no URL, and
                # its alerts would be recorded delivered into a feed nobody can read.
                problems.append(
                    KeyedValueError(
                        f"rule {rule.name}: {name} is a feed channel, read per recipient: "
                        "list it in a recipient's channels (its ?rule= URL gives one "
                        "rule's feed)",
                        where,
                    )
                )
        if rule.channels and rule.alert != "immediate":
            # A digest goes out on a reader's schedule, in their time zone; a
            # channel named by a rule has neither.
            problems.append(
                KeyedValueError(
                    f"rule {rule.name}: channels take its immediate alerts; give the rule "
                    "alert: immediate, or list the channel in a recipient's channels for "
                    "digests",
                    ("rules", index, "channels"),
                )
            )
    return problems


def _recipient_reference_problems(config: Config) -> list[KeyedValueError]:
    rules = [rule.name for rule in config.rules]
    tags = list(dict.fromkeys(tag for rule in config.rules for tag in rule.tags))
    channels = [EMAIL_CHANNEL, *(channel.name for channel in config.channels)]
    rule_set, tag_set, channel_set = set(rules), set(tags), set(channels)
    problems = []
    for index, recipient in enumerate(config.recipients):
        who = f"recipient {recipient.email}"
        for position, name in enumerate(recipient.rules or ()):
            if name not in rule_set:
                problems.append(
                    KeyedValueError(
                        f"{who}: no rule is named {name!r}" + name_hint(name, rules, "rules"),
                        ("recipients", index, "rules", position),
                    )
                )
        for position, tag in enumerate(recipient.tags):
            if tag not in tag_set:
                problems.append(
                    KeyedValueError(
                        f"{who}: no rule has the tag {tag!r}" + name_hint(tag, tags, "tags"),
                        ("recipients", index, "tags", position),
                    )
                )
        for position, name in enumerate(recipient.channels or ()):
            if name not in channel_set:
                problems.append(
                    KeyedValueError(
                        f"{who}: no channel is named {name!r}"
                        + name_hint(name, channels, "channels"),
                        ("recipients", index, "channels", position),
                    )
                )
    return problems


def _feeds_without_the_web_ui(config: Config) -> list[KeyedValueError]:
    if config.web.enabled:
        return []
    # Its deliveries would be recorded while no process serves its URL.
    return [
        KeyedValueError(
            f"channel {channel.name} is a feed, which the web UI serves, and "
            "web.enabled is false; enable the web UI or remove the channel",
            ("channels", index, "kind"),
        )
        for index, channel in enumerate(config.channels)
        if channel.kind == "feed"
    ]


def _operator_channel_problems(config: Config) -> list[KeyedValueError]:
    kinds = {channel.name: channel.kind for channel in config.channels}
    problems = []
    for index, name in enumerate(config.operators.channels):
        where = ("operators", "channels", index)
        if name == EMAIL_CHANNEL and name not in kinds:
            problems.append(
                KeyedValueError(
                    "operators.channels: email is not a channel here; email goes to "
                    "operators.recipients",
                    where,
                )
            )
        elif name not in kinds:
            problems.append(
                KeyedValueError(
                    f"operators.channels: no channel is named {name!r}"
                    + name_hint(name, list(kinds), "channels"),
                    where,
                )
            )
        elif kinds[name] == "feed":
            problems.append(
                KeyedValueError(
                    f"operators.channels: {name} is a feed, read per recipient; operators "
                    "are told on a webhook or apprise channel, or by email",
                    where,
                )
            )
    return problems
