"""Rules limited to sources: ``rules[].sources``, a list of source names and
``tag:NAME`` entries (every source carrying that tag, e.g. an OPML import's folder).

The entries are checked against the configured sources when the file is loaded
(an unknown name or a tag no source carries is an error, with the nearest
spelling), and resolved to source names each time rules are compiled, so a source
tagged or renamed in a reload is in or out of the rule's scope from then on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Protocol

from pydantic import AfterValidator, BeforeValidator

from crawler.domain.config.spelling import nearest_name
from crawler.domain.config.values import KeyedValueError, Name, _shown

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

TAG_PREFIX = "tag:"


class _Source(Protocol):
    """What a scope needs of a SourceConfig (watch.py imports this module)."""

    @property
    def name(self) -> str: ...
    @property
    def tags(self) -> Sequence[str]: ...


class _Rule(Protocol):
    """What a scope needs of a RuleConfig."""

    @property
    def name(self) -> str: ...
    @property
    def sources(self) -> Sequence[str] | None: ...


def _tag_mapping_as_text(entry: object) -> object:
    # YAML reads `- tag: energy` (with a space) as the mapping {"tag": "energy"}: the
    # same intent as `tag:energy`, so it is taken as such.
    if isinstance(entry, dict) and len(entry) == 1 and isinstance(entry.get("tag"), str):
        return f"{TAG_PREFIX}{entry['tag'].strip()}"
    if isinstance(entry, dict) and list(entry) == ["tag"] and entry["tag"] is None:
        raise ValueError("`tag:` names no tag; write tag:NAME, such as tag:energy")
    if isinstance(entry, dict):
        raise ValueError(
            f"expected a source name or tag:NAME, got the mapping {_shown(entry)} "
            "(in YAML, `tag: energy` with a space is a mapping; write tag:energy)"
        )
    return entry


def _tag_has_a_name(entry: str) -> str:
    if entry.startswith(TAG_PREFIX) and not entry.removeprefix(TAG_PREFIX).strip():
        raise ValueError(f"{_shown(entry)} names no tag; write tag:NAME, such as tag:energy")
    return entry


SourceEntry = Annotated[
    Name, BeforeValidator(_tag_mapping_as_text), AfterValidator(_tag_has_a_name)
]


def tag_of(entry: str) -> str | None:
    """The tag a ``tag:NAME`` entry names (``NAME``); None for a source name."""
    return entry.removeprefix(TAG_PREFIX).strip() if entry.startswith(TAG_PREFIX) else None


def resolve_sources(
    entries: Sequence[str] | None, sources: Iterable[_Source]
) -> frozenset[str] | None:
    """The names of the sources ``entries`` cover: each source named, and each source
    carrying a tag named. None (no ``sources:`` key) means every source."""
    if entries is None:
        return None
    names = {entry for entry in entries if tag_of(entry) is None}
    tags = {tag for entry in entries if (tag := tag_of(entry)) is not None}
    return frozenset(
        source.name for source in sources if source.name in names or tags.intersection(source.tags)
    )


def source_scope_problems(
    rules: Sequence[_Rule], sources: Sequence[_Source]
) -> list[KeyedValueError]:
    """Every ``rules[].sources`` entry that names no configured source or a tag no
    source carries, each at its own key path, with the nearest spelling if one is
    close (a tag written as a name, or a name as a tag, included)."""
    names = [source.name for source in sources]
    tags = list(dict.fromkeys(tag for source in sources for tag in source.tags))
    problems = []
    for index, rule in enumerate(rules):
        for position, entry in enumerate(rule.sources or ()):
            tag = tag_of(entry)
            if tag is None and entry not in names:
                message = f"rule {rule.name}: no source is named {entry!r}"
                hint = _nearest(entry, names) or (
                    f"{TAG_PREFIX}{entry}" if entry in tags else _nearest(entry, tags, TAG_PREFIX)
                )
            elif tag is not None and tag not in tags:
                message = f"rule {rule.name}: no source has the tag {tag!r}"
                hint = _nearest(tag, tags, TAG_PREFIX) or (
                    f"{tag}, the source" if tag in names else _nearest(tag, names)
                )
                if not hint:
                    known = ", ".join(tags[:20]) if tags else "no source has tags"
                    message += f" (tags: {known}; a source's `tags` or an OPML folder gives one)"
            else:
                continue
            if hint:
                message += f"; did you mean {hint}?"
            problems.append(KeyedValueError(message, ("rules", index, "sources", position)))
    return problems


def _nearest(word: str, candidates: Sequence[str], prefix: str = "") -> str | None:
    """The candidate closest to ``word`` (a typo's distance), with ``prefix``."""
    found = nearest_name(word, candidates)
    return f"{prefix}{found}" if found else None
