"""The problems between sections of a file that also has problems within them.

The checks between sections (a recipient naming an unknown rule) need every section
validated, and pydantic skips them once one value fails. So that a file's problems
all come out at once, the values at fault are set aside (a bad key left out, a bad
list item taken out) and the rest validated again; what the checks then find is
reported with the original key paths. A problem that may only come from what was
set aside (a rule naming a source whose entry is at fault) is not reported.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from crawler.domain.config.schema import Config
from crawler.domain.config.values import KeyedValueError, KeyedValueErrors

if TYPE_CHECKING:
    from collections.abc import Iterable

Loc = tuple[int | str, ...]

# Sections that are lists of entries other sections name (by name, tag or address).
_NAMED_LISTS = ("sources", "rules", "recipients", "channels")
# The keys of an entry that other sections name it by.
_NAMING_KEYS = ("name", "email", "tags")
# Rounds of setting aside and validating again: a bad key's removal may leave its
# entry without a required key, which takes the entry out in the next round.
_ROUNDS = 3


def reference_problems_despite(
    data: dict[str, Any], failed: Iterable[Loc]
) -> list[KeyedValueError]:
    """The checks between sections on ``data`` without what the errors at ``failed``
    point to: each problem at its key path in ``data``; none when too much is at fault
    to tell."""
    kept = copy.deepcopy(data)
    # For each named list: the index in ``data`` of each entry kept, in order.
    origin = {
        key: list(range(len(kept[key]))) for key in _NAMED_LISTS if isinstance(kept.get(key), list)
    }
    lost: set[str] = set()
    for _round in range(_ROUNDS):
        if not _set_aside(kept, origin, lost, failed):
            return []
        try:
            Config.model_validate(kept)
        except ValidationError as error:
            found, failed = _split(error)
            if failed:
                continue
            return [
                problem
                for problem in (_at_origin(each, origin) for each in found)
                if not _names_something_lost(problem.loc, data, lost)
            ]
        return []
    return []


def _split(error: ValidationError) -> tuple[list[KeyedValueError], list[Loc]]:
    """The problems the checks between sections found, and where the others are."""
    found: list[KeyedValueError] = []
    failed: list[Loc] = []
    for problem in error.errors():
        cause = problem.get("ctx", {}).get("error")
        if not problem["loc"] and isinstance(cause, KeyedValueErrors):
            found.extend(cause.errors)
        else:
            failed.append(tuple(problem["loc"]))
    return found, failed


def _set_aside(
    kept: dict[str, Any], origin: dict[str, list[int]], lost: set[str], failed: Iterable[Loc]
) -> bool:
    """Take out of ``kept`` what each location in ``failed`` points to: a key inside an
    entry or a section, else the entry; False when a whole named list is at fault."""
    taken: dict[str, set[int]] = {}
    for loc in failed:
        if not loc or loc[0] not in kept:
            return False
        section = loc[0]
        if section in origin:
            if len(loc) < 2 or not isinstance(loc[1], int) or loc[1] >= len(kept[section]):
                return False
            entry = kept[section][loc[1]]
            if len(loc) >= 3 and isinstance(entry, dict) and loc[2] in entry:
                value = entry.pop(loc[2])
                if loc[2] in _NAMING_KEYS:
                    lost.update(_texts(value))
            else:
                taken.setdefault(section, set()).add(loc[1])
        elif section in _NAMED_LISTS:
            return False  # not a list at all: everything naming its entries is in doubt
        elif len(loc) >= 2 and isinstance(kept[section], dict) and loc[1] in kept[section]:
            kept[section].pop(loc[1])
        else:
            kept.pop(section)
    for section, indexes in taken.items():
        for index in sorted(indexes, reverse=True):
            entry = kept[section].pop(index)
            del origin[section][index]
            if isinstance(entry, dict):
                for key in _NAMING_KEYS:
                    lost.update(_texts(entry.get(key)))
    return True


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [each for each in value if isinstance(each, str)]
    return []


def _at_origin(problem: KeyedValueError, origin: dict[str, list[int]]) -> KeyedValueError:
    loc = problem.loc
    if len(loc) >= 2 and loc[0] in origin and isinstance(loc[1], int):
        loc = (loc[0], origin[str(loc[0])][loc[1]], *loc[2:])
    return KeyedValueError(str(problem), loc)


def _names_something_lost(loc: Loc, data: object, lost: set[str]) -> bool:
    """Whether the value at ``loc`` in ``data`` names something set aside."""
    value: Any = data
    for part in loc:
        if isinstance(value, str):  # one text, taken as a list of one
            if part != 0:
                return False
            continue
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return False
    return any(text in lost or text.removeprefix("tag:") in lost for text in _texts(value))
