"""The shape of the code base, checked so that it cannot drift (issue 17's guard rails).

- No module in crawler/, spiders/ or alerts/ is over 600 lines, except the ones
  listed in LONG_MODULES while they wait to be split: those may only shrink.
- No import cycle between the long-lived service and the web UI that reads it.
- Every package is installed (listed in pyproject.toml), and the module paths that
  are written as strings (the CPU pool's preload, the metrics extension) resolve:
  no import checker sees them, and a wrong one fails quietly.
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

from scrapy.utils.misc import load_object

from crawler.orchestration.metrics import EXTENSION
from crawler.orchestration.workers import PRELOADED_MODULES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crawler", "spiders", "alerts")
MAX_LINES = 600
# Modules still to be split (issue 17), at their line counts when this test came in:
# a change may shrink them, never grow them. Remove an entry once its module is split.
LONG_MODULES = {
    "crawler/domain/query.py": 1524,
    "spiders/extract.py": 1394,
    "crawler/domain/config.py": 1180,
    "crawler/storage/store.py": 1057,
    "spiders/feedparse.py": 824,
    "crawler/faces/cli.py": 748,
    "crawler/faces/web.py": 656,
}


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                  if "migrations" not in path.relative_to(ROOT).parts)


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top, in functions or under TYPE_CHECKING."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_is_over_600_lines_and_the_long_ones_only_shrink() -> None:
    lines = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for path in _modules()}
    too_long = {name: count for name, count in lines.items()
                if count > LONG_MODULES.get(name, MAX_LINES)}
    assert too_long == {}, f"over {MAX_LINES} lines (or longer than before): {too_long}"
    split = [name for name in LONG_MODULES if lines.get(name, 0) <= MAX_LINES]
    assert split == [], f"split or short now: take them out of LONG_MODULES: {split}"


def test_the_service_does_not_import_the_web_ui() -> None:
    """crawler.faces.web reads the service; the CLI hands the service its web starter."""
    assert not {name for name in _imported(ROOT / "crawler" / "service.py")
                if name == "crawler.faces.web" or name.startswith("crawler.faces.web.")}


def test_every_package_is_installed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
                 ["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts)
             for package in PACKAGES for path in (ROOT / package).rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages"


def test_module_paths_written_as_strings_resolve() -> None:
    for name in PRELOADED_MODULES:  # a wrong one: the forkserver silently skips it
        assert importlib.util.find_spec(name) is not None, name
    assert load_object(EXTENSION).__name__ == EXTENSION.rsplit(".", 1)[1]
