"""The shape of the code base, checked so that it cannot drift (README "Architecture").

- Every import points down the layers, `spiders` and `alerts` stay independent
  (import-linter's contracts in pyproject.toml, with no ignored imports), and no
  module or package (folder) imports itself back through others.
- Every module of `crawler/` lives in one of its four layer packages, and each
  package's docstring says its layer; the README's Architecture section names
  every package.
- No module in crawler/, spiders/ or alerts/ is over 600 lines.
- Every package is installed (listed in pyproject.toml), and the module paths that
  are written as strings (the CPU pool's preload, the metrics extension) resolve:
  no import checker sees them, and a wrong one fails quietly.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest
from scrapy.utils.misc import load_object

from crawler.orchestration.metrics import EXTENSION
from crawler.orchestration.workers import PRELOADED_MODULES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crawler", "spiders", "alerts")
LAYER_PACKAGES = ("crawler.domain", "crawler.storage", "crawler.orchestration", "crawler.faces")
MAX_LINES = 600
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _modules() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def _packages() -> set[str]:
    return {
        ".".join(path.parent.relative_to(ROOT).parts)
        for package in PACKAGES
        for path in (ROOT / package).rglob("__init__.py")
    }


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of ``graph``: its strongly connected parts of two or more nodes (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def import_graph() -> grimp.ImportGraph:
    """Every import between newswatch's modules: at the top, in functions, for typing."""
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_imports_point_down_the_layers() -> None:
    """import-linter's report names the import that broke a contract."""
    settings = PYPROJECT["tool"]["importlinter"]
    contracts = settings["contracts"]
    assert {contract["type"] for contract in contracts} >= {"layers", "independence"}
    assert not any("ignore_imports" in contract for contract in contracts)
    assert not any(contract.get("exclude_type_checking_imports") for contract in contracts)
    # The command, in its own process: in this one, Twisted's zope.interface has
    # decorated classes in a way import-linter's option check trips over.
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--config",
            "pyproject.toml",
            "--no-cache",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_no_module_imports_itself_back(import_graph: grimp.ImportGraph) -> None:
    graph = {
        module: import_graph.find_modules_directly_imported_by(module)
        for module in import_graph.modules
    }
    assert _strongly_connected(graph) == []


def test_no_package_imports_itself_back(import_graph: grimp.ImportGraph) -> None:
    """Folders, each with its own modules only: no cycle between any two of them."""
    packages = _packages()

    def folder(module: str) -> str:
        return module if module in packages else module.rsplit(".", 1)[0]

    graph: dict[str, set[str]] = {}
    for module in import_graph.modules:
        for imported in import_graph.find_modules_directly_imported_by(module):
            if folder(imported) != folder(module):
                graph.setdefault(folder(module), set()).add(folder(imported))
    assert _strongly_connected(graph) == []


def test_every_crawler_module_is_in_a_layer() -> None:
    outside = [
        _module_name(path)
        for path in (ROOT / "crawler").rglob("*.py")
        if not _module_name(path).startswith(tuple(f"{p}." for p in LAYER_PACKAGES))
        and _module_name(path) not in (*LAYER_PACKAGES, "crawler")
    ]
    assert outside == []


def test_the_container_package_imports_nothing() -> None:
    """`crawler` holds layers below and above the stages: it must not import any."""
    tree = ast.parse((ROOT / "crawler" / "__init__.py").read_text(encoding="utf-8"))
    imports = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]
    assert imports == []


def test_each_package_says_its_layer_and_what_it_may_import() -> None:
    silent = []
    for package in sorted(_packages() - {"crawler"}):
        docstring = ast.get_docstring(
            ast.parse(
                (ROOT / package.replace(".", "/") / "__init__.py").read_text(encoding="utf-8")
            )
        )
        if not docstring or not re.search(r"Layer \d", docstring) or "May import" not in docstring:
            silent.append(package)
    assert silent == []


def test_the_readme_architecture_names_every_package() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([\w.]+)` \|", section, flags=re.MULTILINE))
    assert named == _packages()
    for layer in (*LAYER_PACKAGES, "spiders", "alerts"):
        assert layer in section.split("```")[1], f"{layer} is missing from the diagram"


def test_no_module_is_over_600_lines() -> None:
    lines = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in _modules()
    }
    too_long = {name: count for name, count in lines.items() if count > MAX_LINES}
    assert too_long == {}, f"over {MAX_LINES} lines: split by responsibility: {too_long}"


def test_every_package_is_installed() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert _packages() - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - _packages() == set(), "no such package: take it out of pyproject.toml"


def test_module_paths_written_as_strings_resolve() -> None:
    for name in PRELOADED_MODULES:  # a wrong one: the forkserver silently skips it
        assert importlib.util.find_spec(name) is not None, name
    assert load_object(EXTENSION).__name__ == EXTENSION.rsplit(".", 1)[1]
    script = PYPROJECT["project"]["scripts"]["newswatch"]
    module, function = script.split(":")
    assert callable(getattr(importlib.import_module(module), function))
