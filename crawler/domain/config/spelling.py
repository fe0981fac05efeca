"""Hints for a misspelt key or name: "did you mean `every`?" when a known one is
close, else the known ones (a short list)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, get_args, get_origin

from pydantic import BaseModel

from crawler.domain.config.values import bare_type

if TYPE_CHECKING:
    from collections.abc import Sequence

# How many known names an "unknown name" message lists before "and N more".
MAX_NAMES_SHOWN = 10


def nearest_name(word: str, known: Sequence[str]) -> str | None:
    """The known name closest to ``word`` (a typo's distance, or a case slip)."""
    folded = {name.casefold(): name for name in reversed(known)}  # the first of equals
    found = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.75)
    return folded[found[0]] if found else None


def name_hint(word: str, known: Sequence[str], kind: str) -> str:
    """What follows "no rule is named 'syra'": ``; did you mean syria?`` when a known
    name is close, else the known ``kind`` (plural) names, at most MAX_NAMES_SHOWN."""
    if (near := nearest_name(word, known)) is not None:
        return f"; did you mean {near}?"
    if not known:
        return f" (no {kind} are configured)"
    shown = ", ".join(known[:MAX_NAMES_SHOWN])
    more = f" and {len(known) - MAX_NAMES_SHOWN} more" if len(known) > MAX_NAMES_SHOWN else ""
    return f" ({kind}: {shown}{more})"


def key_hint(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    """What follows "unknown key" for the key at ``loc`` (its path from ``model``, the
    unknown key last): the nearest key allowed there, or the keys allowed there when
    they are few, or a pointer to the reference."""
    section = _model_at(model, loc[:-1])
    word = loc[-1] if loc else None
    if section is None or not isinstance(word, str):
        return "; check its spelling against the configuration reference"
    keys = list(section.model_fields)
    if (near := nearest_name(word, keys)) is not None:
        return f"; did you mean {near}?"
    if len(keys) <= MAX_NAMES_SHOWN:
        return f" (keys here: {', '.join(keys)})"
    return "; check its spelling against the configuration reference"


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model of the section at ``loc`` (a pydantic error's location), or None when
    it is not one (a list of text, a key the schema does not have)."""
    current: object = model
    for part in loc:
        current = bare_type(current, part)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                if isinstance(part, str) and part == current.__name__:
                    continue  # pydantic names the member of a union of models
                return None
            current = field.annotation
        elif get_origin(current) in (list, tuple, set, frozenset) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = bare_type(current, None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None
