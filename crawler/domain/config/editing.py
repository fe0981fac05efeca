"""Edits of ``config.yaml`` that keep the user's file as it was around them: its
comments, key order, quoting and layout (ruamel.yaml's round trip), for the
commands that add and remove sources (`newswatch sources import`, `sources
remove`). The edited text is validated like any configuration before it replaces
the file, and replaces it whole (a temporary file renamed over it): a running
service's hot reload never reads half a file, nor an invalid one.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from crawler.domain.config.loading import parse_config
from crawler.domain.config.values import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from crawler.domain.config.schema import Config

__all__ = ["add_sources", "remove_source"]


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments and layout kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long URL
    yaml.indent(mapping=2, sequence=4, offset=2)  # "  - name: …", as config.yaml has it
    return yaml


def _read(path: Path) -> Any:
    try:
        document = _yaml().load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the configuration to edit it: {error}") from None
    if document is None:
        document = _yaml().load("{}\n")
    if not hasattr(document, "get"):
        raise ConfigError(f"{path}: the configuration is not a mapping of keys")
    return document


def _write(path: Path, document: Any) -> Config:
    """Validate the edited ``document`` as ``path``'s configuration, then put it in
    place of the file; returns the new configuration."""
    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    text = buffer.getvalue()
    config = parse_config(text, path)  # raises ConfigError: the file is left as it was
    folder = path.resolve().parent
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return config


def add_sources(path: Path, sources: Sequence[Mapping[str, Any]]) -> Config:
    """Append ``sources`` (as ``sources[]`` entries) to the file's ``sources:`` list
    (made if missing); returns the new configuration."""
    document = _read(path)
    listed = document.get("sources")
    if listed is None:
        document["sources"] = listed = CommentedSeq()
    trailing = _take_trailing_comment(listed)
    for source in sources:
        listed.append(_entry(source))
    if trailing is not None and listed:
        _give_trailing_comment(listed[-1], trailing)
    return _write(path, document)


def _entry(source: Mapping[str, Any]) -> CommentedMap:
    """A source as the file writes it: lists in flow style (``tags: [a, b]``)."""
    entry = CommentedMap()
    for key, value in source.items():
        if isinstance(value, list):
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        entry[key] = value
    return entry


def _take_trailing_comment(listed: Any) -> Any:
    """The comment (or blank line) after the list's last entry, taken off it: new
    entries go above it, so the blank line before the next key stays there."""
    if not listed or not isinstance(listed[-1], CommentedMap) or not listed[-1]:
        return None
    last = listed[-1]
    key = list(last.keys())[-1]
    slots = last.ca.items.get(key)
    if not slots or len(slots) < 3 or slots[2] is None:
        return None
    token = slots[2]
    slots[2] = None
    return token


def _give_trailing_comment(entry: Any, token: Any) -> None:
    if not isinstance(entry, CommentedMap) or not entry:
        return
    key = list(entry.keys())[-1]
    entry.ca.items.setdefault(key, [None, None, None, None])[2] = token


def remove_source(path: Path, name: str) -> Config:
    """Remove the source called ``name`` from the file; ConfigError if there is none."""
    document = _read(path)
    listed = document.get("sources") or []
    kept = [
        i
        for i, source in enumerate(listed)
        if not (hasattr(source, "get") and source.get("name") == name)
    ]
    if len(kept) == len(listed):
        raise ConfigError(f"{path}: no source named {name!r} to remove")
    for index, rule in enumerate(document.get("rules") or []):
        if hasattr(rule, "get") and name in (rule.get("sources") or []):
            # Said as such: the check of the edited file would call it an unknown name.
            raise ConfigError(
                f"{path}: rule {rule.get('name')} names the source {name} in "
                f"rules[{index}].sources; take it out there first (nothing was removed)"
            )
    for index in reversed(range(len(listed))):
        if index not in kept:
            del listed[index]
    return _write(path, document)
