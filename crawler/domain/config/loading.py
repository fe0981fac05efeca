"""Loading config.yaml: reading the file, checking the YAML tree, validating it
against the schema, and error messages naming the file, key path and line."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from crawler.domain.config.access import load_cookies_file
from crawler.domain.config.browser import find_chromium
from crawler.domain.config.channels import apprise_url_problem
from crawler.domain.config.references import format_loc
from crawler.domain.config.salvage import reference_problems_despite
from crawler.domain.config.schema import Config
from crawler.domain.config.spelling import key_hint
from crawler.domain.config.values import (
    _CONTROL_CHARACTER,
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_PATH,
    MAX_CONFIG_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    SAFE_LOADER,
    ConfigError,
    KeyedValueError,
    KeyedValueErrors,
    _one_line,
    _shown,
)

if TYPE_CHECKING:
    from collections.abc import Sequence


def check_scale_out(config: Config, path: Path, role: str) -> None:
    """Raise ConfigError unless ``config`` can run ``role`` (``scheduler`` or ``worker``)
    of the scale-out mode: a Redis URL and a PostgreSQL database shared by every process."""
    problems = []
    node = None
    with contextlib.suppress(OSError, UnicodeDecodeError, yaml.YAMLError):
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if config.redis is None:
        problems.append(
            f"{path}: redis (line {_line_of(node, ('redis',))}): required by the {role} role: "
            "the URL of the Redis that holds the shared crawl queue, such as "
            "redis://127.0.0.1:6379/0"
        )
    if not config.database.startswith(("postgresql:", "postgresql+")):
        problems.append(
            f"{path}: database (line {_line_of(node, ('database',))}): the {role} role needs a "
            "PostgreSQL database shared by every process, such as "
            f"postgresql+psycopg://newswatch@dbhost/newswatch (got {config.database!r})"
        )
    if problems:
        raise ConfigError("\n".join(problems))


def config_warnings(config: Config, path: Path) -> list[str]:
    """What makes a valid ``config`` do nothing, one line each (file, key path, line):
    no source polled, no rule, nobody to read the matches, a rule nobody receives.
    Not errors: a file being built up, or a source paused, is a fine thing to load."""
    node = None
    with contextlib.suppress(OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)

    def at(loc: tuple[int | str, ...]) -> str:
        written = isinstance(node, yaml.MappingNode) and any(
            key.value == loc[0] for key, _value in node.value
        )
        if not written:  # a section left out: no line to point to
            return f"{path}: warning"
        return f"{path}: {format_loc(loc)} (line {_line_of(node, loc)}): warning"

    warnings = []
    if not config.sources:
        warnings.append(
            f"{at(('sources',))}: no sources, so nothing is polled; add one with "
            "`newswatch sources add URL` or under sources:"
        )
    elif not any(source.enabled for source in config.sources):
        warnings.append(f"{at(('sources',))}: every source has enabled: false; none is polled")
    if not config.rules:
        warnings.append(
            f"{at(('rules',))}: no rules, so no article is matched and nothing is sent; "
            "add one under rules: (try it first with `newswatch rules test --query`)"
        )
    recipients = config.all_recipients()
    if config.rules and not recipients and not config.channel_recipients():
        warnings.append(
            f"{at(('recipients',))}: no recipients and no rule has channels, so matches "
            "are stored and never sent; add one under recipients:"
        )
        return warnings
    for index, rule in enumerate(config.rules):
        if rule.channels:
            continue
        readers = [recipient for recipient in recipients if rule.name in recipient.rules]
        if not readers:
            warnings.append(
                f"{at(('rules', index))}: no recipient receives rule {rule.name} (their "
                "rules and tags leave it out); list it in a recipient's rules"
            )
        elif rule.alert == "immediate" and not any(reader.alerts for reader in readers):
            warnings.append(
                f"{at(('rules', index, 'alert'))}: rule {rule.name} is immediate but its "
                "recipients have alerts: false, so its alerts reach nobody"
            )
    return warnings


def config_path(explicit: str | Path | None = None) -> Path:
    """The file to read: ``--config``, else ``$NEWSWATCH_CONFIG``, else ``./config.yaml``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(path: str | Path) -> Config:
    """Read and validate ``path``; raise ConfigError naming file, key path and line."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: the file is {size:,} bytes; a configuration is at "
                f"most {MAX_CONFIG_BYTES:,} (is it the right file?)"
            )
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration: {error}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            f"{path}: line {line}: cannot read the configuration: it is not "
            f"UTF-8 text (byte 0x{data[error.start]:02x})"
        ) from error
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate YAML ``text`` that came from ``path`` (used in messages).

    Returns the Config, or raises ConfigError: one line per problem, each starting
    with ``path`` and naming the key path and the line (or, for text that is not
    YAML, the line and column). The work is bounded by the text's size: the YAML
    tree is checked (size with aliases expanded, nesting, keys) before anything is
    built from it, and every value has a bounded size.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # only from a caller: a file is decoded UTF-8
        line = text.count("\n", 0, error.start) + 1
        raise ConfigError(
            f"{path}: line {line}: U+{ord(text[error.start]):04X} is not a "
            "character (a lone surrogate)"
        ) from None
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        locations: dict[int, tuple[int | str, ...]] = {}
        if node is not None:
            if problems := _structure_problems(node, path, locations):
                raise ConfigError("\n".join(problems))
            data = loader.construct_document(node)
        else:
            data = None
    except _UnreadableValue as error:
        loc = locations.get(id(error.node), ())
        raise ConfigError(
            f"{path}: {format_loc(loc)} (line {error.node.start_mark.line + 1}): {error.reason}"
        ) from error
    except yaml.YAMLError as error:
        raise ConfigError(_yaml_error_message(path, error, text)) from error
    except RecursionError:  # the pure-Python composer, on very deep nesting
        raise ConfigError(f"{path}: line 1: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: line 1: expected a mapping of settings at the top level")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        message = _validation_message(path, node, error)
        failed = [tuple(problem["loc"]) for problem in error.errors()]
        # An error at the top level is the checks between sections': they ran.
        if all(failed) and (also := reference_problems_despite(data, failed)):
            message = "\n".join([message, *_keyed_lines(path, node, also)])
        raise ConfigError(message) from error
    if problems := _missing_secrets(config, node, path):
        raise ConfigError("\n".join(problems))
    config = _resolve_paths(config, path)
    if problems := _cookies_file_problems(config, node, path):
        raise ConfigError("\n".join(problems))
    return _with_chromium(config, node, path)


_TAG_KINDS = {
    "tag:yaml.org,2002:int": "an integer", "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false", "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date", "tag:yaml.org,2002:binary": "base64 data",
}  # fmt: skip
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _UnreadableValue(yaml.YAMLError):
    """A scalar the safe constructor cannot turn into a value: 2020-99-99, ``!!int abc``,
    a number of 5,000 digits."""

    def __init__(self, node: yaml.Node, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


class _ConfigLoader(SAFE_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader; a value its constructors cannot build is an `_UnreadableValue`
    naming the node, not whatever exception the constructor raised."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        # What SafeConstructor's scalar constructors raise: int("x"), value[0] of
        # "!!int" alone, {...}["maybe"] for a bool, None.groupdict() for "!!timestamp x".
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError) as error:
            kind = _TAG_KINDS.get(node.tag, f"a {node.tag} value")
            value = node.value if isinstance(node, yaml.ScalarNode) else node.tag
            reason = str(error) if not isinstance(error, KeyError) else "not one of its forms"
            raise _UnreadableValue(
                node,
                f"cannot read {_shown(value, 40)} as {kind}: "
                f"{_one_line(reason, 80)}; quote it if it is text",
            ) from error


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _expanded_size(root: yaml.Node) -> tuple[int, yaml.Node | None]:
    """How many values the document holds once aliases are expanded (at most
    MAX_YAML_NODES + 1), and a node that holds itself through an alias, if any.

    Computed without expanding the aliases (an alias is the same node object, sized
    once) and without recursion: an explicit stack, children before their parent.
    """
    sizes: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_sized = stack.pop()
        if children_sized:
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[id(node)] = min(total, MAX_YAML_NODES + 1)
            continue
        if id(node) in sizes:
            continue
        if id(node) in entered:  # reached again from inside itself
            return 0, node
        entered.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)], None


def _structure_problems(
    root: yaml.Node, path: Path, locations: dict[int, tuple[int | str, ...]]
) -> list[str]:
    """What makes the YAML tree unusable before any value is read: too many values
    with aliases expanded, an alias inside itself, nesting deeper than
    MAX_YAML_DEPTH, keys that are not text or given twice, control characters.
    Fills `locations` with the key path of each node (the first, for an alias)."""
    size, cycle = _expanded_size(root)
    if cycle is not None:
        return [
            f"{path}: line {cycle.start_mark.line + 1}: invalid YAML: an alias (*name) "
            "refers to a value it is part of"
        ]
    if size > MAX_YAML_NODES:
        return [
            f"{path}: line 1: with its YAML aliases (*name) expanded the file holds more "
            f"than {MAX_YAML_NODES:,} values; at most {MAX_YAML_NODES:,} are allowed, so "
            "that a small file cannot expand into an enormous one"
        ]
    problems: list[str] = []
    # Depth first, in document order; each path once (at most MAX_YAML_NODES).
    stack: list[tuple[yaml.Node, tuple[int | str, ...]]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        locations.setdefault(id(node), loc)
        where = f"{path}: {format_loc(loc)} (line {node.start_mark.line + 1})"
        if len(loc) > MAX_YAML_DEPTH:
            problems.append(
                f"{where}: nested more than {MAX_YAML_DEPTH} levels deep; no "
                "setting is more than five levels down"
            )
            continue
        if isinstance(node, yaml.ScalarNode):
            if found := _CONTROL_CHARACTER.search(node.value):
                problems.append(
                    f"{where}: the value holds the control character "
                    f"U+{ord(found[0]):04X}; remove it"
                )
            continue
        if isinstance(node, yaml.SequenceNode):
            stack.extend(
                (child, (*loc, index)) for index, child in reversed(list(enumerate(node.value)))
            )
            continue
        children: list[tuple[yaml.Node, tuple[int | str, ...]]] = []
        first_lines: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.tag == _MERGE_TAG:  # <<: *defaults merges that mapping into this one
                children.append((value, loc))
                continue
            if not (isinstance(key, yaml.ScalarNode) and key.tag == _STR_TAG):
                if isinstance(key, yaml.ScalarNode):
                    kind = _TAG_KINDS.get(key.tag, f"a {_shown(key.tag, 40)} value")
                    problem = f"the key {_shown(key.value, 40)} is read as {kind}; quote it"
                else:
                    kind = "a list" if isinstance(key, yaml.SequenceNode) else "a mapping"
                    problem = f"a key must be text, not {kind}"
                problems.append(f"{path}: {format_loc(loc)} (line {line}): {problem}")
                continue
            key_loc = (*loc, key.value)
            if found := _CONTROL_CHARACTER.search(key.value):
                problems.append(
                    f"{path}: {format_loc(key_loc)} (line {line}): the key holds "
                    f"the control character U+{ord(found[0]):04X}; remove it"
                )
            elif key.value in first_lines:
                problems.append(
                    f"{path}: {format_loc(key_loc)} (line {line}): the key is "
                    f"given twice (first on line {first_lines[key.value]}); "
                    "keep one"
                )
            else:
                first_lines[key.value] = line
            children.append((value, key_loc))
        stack.extend(reversed(children))
    return problems


def _resolve_paths(config: Config, path: Path) -> Config:
    """Relative folders in the file are relative to the file, not the working directory."""
    base = path.resolve().parent
    delivery = config.delivery.model_copy(update={"outbox": base / config.delivery.outbox})
    update: dict[str, Any] = {"delivery": delivery}
    if config.digest.templates is not None:
        digest = config.digest.model_copy(update={"templates": base / config.digest.templates})
        update["digest"] = digest
    if config.database.startswith("sqlite:///") and not config.database.startswith("sqlite:////"):
        relative = config.database.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            update["database"] = f"sqlite:///{base / relative}"
    sources = [
        source.model_copy(update={"cookies_file": base / source.cookies_file})
        if source.cookies_file is not None
        else source
        for source in config.sources
    ]
    domains = {
        host: domain.model_copy(update={"cookies_file": base / domain.cookies_file})
        if domain.cookies_file is not None
        else domain
        for host, domain in config.domains.items()
    }
    return config.model_copy(update=update | {"sources": sources, "domains": domains})


def _cookies_file_problems(config: Config, node: yaml.Node | None, path: Path) -> list[str]:
    """Each ``cookies_file`` that cannot be read as a Netscape cookies.txt file: the key,
    its line, and the line of the cookies file at fault (never its content)."""
    files: list[tuple[tuple[int | str, ...], Path]] = [
        (("sources", index, "cookies_file"), source.cookies_file)
        for index, source in enumerate(config.sources)
        if source.cookies_file is not None
    ]
    files += [
        (("domains", host, "cookies_file"), domain.cookies_file)
        for host, domain in config.domains.items()
        if domain.cookies_file is not None
    ]
    problems = []
    for loc, cookies in files:
        try:
            load_cookies_file(cookies)
        except ValueError as error:
            where = f"{path}: {format_loc(loc)} (line {_line_of(node, loc)})"
            problems.append(f"{where}: {_one_line(str(error), 300)}")
    return problems


def _missing_secrets(config: Config, node: yaml.Node | None, path: Path) -> list[str]:
    wanted: list[tuple[tuple[int | str, ...], str, str]] = []
    smtp = config.delivery.smtp
    if smtp is not None and smtp.password_env is not None:
        wanted.append((("delivery", "smtp", "password_env"), smtp.password_env, "SMTP password"))
    if config.web.enabled and config.web.token_env is not None:
        wanted.append((("web", "token_env"), config.web.token_env, "web access token"))
    for index, channel in enumerate(config.channels):
        if channel.url_env is not None:
            what = "Apprise URL" if channel.kind == "apprise" else "webhook URL"
            wanted.append((("channels", index, "url_env"), channel.url_env, what))
        if channel.secret_env is not None:
            wanted.append((("channels", index, "secret_env"), channel.secret_env, "signing secret"))
    problems = [
        f"{path}: {format_loc(loc)} (line {_line_of(node, loc)}): the environment variable "
        f"{variable} is not set; export it with the {what}"
        for loc, variable, what in wanted
        if not os.environ.get(variable)
    ]
    return problems + _unusable_channel_urls(config, node, path)


def _unusable_channel_urls(config: Config, node: yaml.Node | None, path: Path) -> list[str]:
    """An Apprise URL Apprise cannot use, or a webhook URL from a variable that is not
    http(s), named with the key and line that point to it (nothing is sent)."""
    problems = []
    for index, channel in enumerate(config.channels):
        url = channel.target_url() if channel.url_env is not None else None
        if not url:
            continue
        loc = ("channels", index, "url_env")
        where = f"{path}: {format_loc(loc)} (line {_line_of(node, loc)})"
        if channel.kind == "apprise":
            if (problem := apprise_url_problem(url)) is not None:
                problems.append(f"{where}: ${channel.url_env} is {problem}")
        elif not url.startswith(("http://", "https://")):
            problems.append(f"{where}: ${channel.url_env} must hold an http(s) URL")
    return problems


def _yaml_error_message(path: Path, error: yaml.YAMLError, text: str) -> str:
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow
        where = f"line {text.count(chr(10), 0, error.position) + 1}"
    else:
        where = "line 1"
    problem = getattr(error, "problem", None) or getattr(error, "reason", None) or str(error)
    return f"{path}: {where}: invalid YAML: {_one_line(str(problem), 200)}"


def _validation_message(path: Path, node: yaml.Node | None, error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        loc = tuple(problem["loc"])
        cause = problem.get("ctx", {}).get("error")
        if isinstance(cause, KeyedValueErrors):
            lines.extend(_keyed_lines(path, node, cause.errors, loc))
            continue
        if isinstance(cause, KeyedValueError):
            loc = (*loc, *cause.loc)
        lines.append(
            f"{path}: {format_loc(loc)} (line {_line_of(node, loc)}): "
            f"{_one_line(_describe(problem, loc), 300)}"
        )
    return "\n".join(lines)


def _keyed_lines(
    path: Path,
    node: yaml.Node | None,
    errors: Sequence[KeyedValueError],
    below: tuple[int | str, ...] = (),
) -> list[str]:
    """A line for each of ``errors`` (their keys below ``below``), in the file's order,
    as a reader goes through them to fix them."""
    found = [((*below, *each.loc), str(each)) for each in errors]
    return [
        f"{path}: {format_loc(at)} (line {line}): {_one_line(message, 300)}"
        for line, at, message in sorted(
            ((_line_of(node, at), at, message) for at, message in found),
            key=lambda each: each[0],
        )
    ]


def _describe(problem: Any, loc: tuple[int | str, ...]) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return f"unknown key{key_hint(Config, loc)}"
    if kind == "missing":
        return "required key is missing"
    message = str(problem["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type"):
        return f"{message} (got {_shown(problem['input'])})"
    return message


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    line = 1
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line = key.start_mark.line + 1
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        node = child
    return line


def _with_chromium(config: Config, node: yaml.Node | None, path: Path) -> Config:
    """With a source rendered in a browser, the Chromium it needs, found now (the
    file's error, not a poll's); without one, the config as it is, nothing looked up."""
    index = next((i for i, source in enumerate(config.sources) if source.uses_browser), None)
    if index is None:
        return config
    source = config.sources[index]
    rendering: tuple[int | str, ...] = (
        "sources",
        index,
        "render" if source.render == "browser" else "render_articles",
    )
    policy = config.fetch_policy
    if policy.deny_private_addresses or policy.deny_networks:
        # Chromium follows a redirect by itself, past the address check every other
        # request of a page gets: the policy could not be kept.
        raise ConfigError(
            f"{path}: {format_loc(rendering)} (line {_line_of(node, rendering)}): "
            f"source {source.name} is rendered in a browser, which cannot be held to "
            "fetch_policy (Chromium follows redirects itself, to any address); render "
            "no source, or lift fetch_policy"
        )
    chromium, problem = find_chromium(config.browser.executable)
    if chromium is None:
        loc = ("browser", "executable") if config.browser.executable is not None else rendering
        raise ConfigError(
            f"{path}: {format_loc(loc)} (line {_line_of(node, loc)}): "
            f"source {source.name} is rendered in a browser, but {problem}"
        )
    browser = config.browser.model_copy(update={"executable": chromium})
    return config.model_copy(update={"browser": browser})
