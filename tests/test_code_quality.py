"""The linters and the type checker, run by the suite so a green run means clean code.

Each runs the tool the developer runs by hand (CONTRIBUTING.md), with the settings in
pyproject.toml, and shows its report when it fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600
    )


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("check", "."), id="lint"),
        pytest.param(("format", "--check", "."), id="format"),
    ],
)
def test_ruff_is_clean(command: tuple[str, ...]) -> None:
    result = _run(str(TOOLS / "ruff"), *command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    """crawler, spiders and alerts, with the strictness stated in pyproject.toml."""
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
