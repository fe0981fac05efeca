"""The README documents every configuration key and every dependency."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from crawler.domain.config import Config

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        nested = [
            a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested:
            origin = getattr(annotation, "__origin__", None)
            suffix = {list: "[]", dict: ".<host>"}.get(origin, "")  # type: ignore[call-overload]
            yield from _keys(nested[0], f"{prefix}{name}{suffix}.")
        else:
            yield f"{prefix}{name}"


def test_every_configuration_key_is_in_the_readme() -> None:
    documented = set(re.findall(r"^\| `([^`]+)` \|", README, flags=re.MULTILINE))
    missing = [key for key in _keys(Config) if key not in documented]
    assert missing == []


def test_every_dependency_is_in_the_readme_table() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    names = {
        re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower() for requirement in requirements
    }
    table = README.split("## Dependencies", 1)[1].split("\n## ", 1)[0].lower()
    missing = sorted(name for name in names if name not in table)
    assert missing == []
