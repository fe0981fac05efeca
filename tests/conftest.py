"""Shared fixtures: the fixture news site, databases (SQLite and PostgreSQL), configs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import smtpserver
import yaml
from hypothesis import HealthCheck, settings
from newssite import NewsSite
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# Fuzzing profiles (hypothesis). "ci", the default, fits the CI time limit and is
# derandomised, so a run is repeatable; "long" is the thorough run before a release:
# NEWSWATCH_FUZZ=long .venv/bin/python -m pytest tests/fuzz (see README, Development).
# No deadline in either: the test machines are shared and noisy, and time limits
# live in the code under test (step and size bounds), not in wall-clock asserts.
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("NEWSWATCH_FUZZ", "ci"))

POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

# The console script next to this interpreter: tests run the command a user runs.
NEWSWATCH = shutil.which("newswatch", path=str(Path(sys.executable).parent)) or "newswatch"


@pytest.fixture
def news_site() -> Iterator[NewsSite]:
    site = NewsSite().start()
    yield site
    site.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the database the end-to-end tests' service runs on (default: sqlite)",
    )


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its URL."""
    name = f"newswatch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with fresh_postgres_database() as url:
        yield url


class _ServiceDatabase:
    """The database site_config() gives the service in the current test.

    SQLite in the test's folder by default; with ``--database=postgresql`` a fresh
    PostgreSQL database, made when a test first asks and dropped after it.
    """

    def __init__(self) -> None:
        self.postgresql = False
        self.url: str | None = None
        self.cleanup = ExitStack()

    def url_for(self, folder: Path) -> str:
        if not self.postgresql:
            return f"sqlite:///{folder / 'newswatch.db'}"
        if self.url is None:
            self.url = self.cleanup.enter_context(fresh_postgres_database())
        return self.url


_SERVICE_DATABASE = _ServiceDatabase()


@pytest.fixture(autouse=True)
def _service_database(request: pytest.FixtureRequest) -> Iterator[None]:
    _SERVICE_DATABASE.postgresql = request.config.getoption("--database") == "postgresql"
    with _SERVICE_DATABASE.cleanup:
        yield
    _SERVICE_DATABASE.url = None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'newswatch.db'}"
    return request.getfixturevalue("postgres_url")


def write_config(folder: Path, **settings: Any) -> Path:
    """Write a config.yaml into ``folder`` from keyword settings; return its path."""
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


def site_config(site: NewsSite, folder: Path, **overrides: Any) -> dict[str, Any]:
    """A configuration polling the fixture site's two feeds, delivering to the outbox."""
    settings: dict[str, Any] = {
        "database": _SERVICE_DATABASE.url_for(folder),
        "user_agent_contact": "https://example.org/newswatch-tests",
        "workers": 0,
        "sources": [
            {"name": "world", "feed": site.url("world/rss.xml"), "every": "1h"},
            {"name": "tech", "feed": site.url("tech/atom.xml"), "every": "1h"},
        ],
        "rules": [
            {
                "name": "syria",
                "keywords": ["Palmyra", "Al-Qaryatain", "ISIS"],
                "exclude": ["football"],
            },
            {"name": "chips", "keywords": ["memory chip", "semiconductor"]},
        ],
        "digest": {
            "schedule": "0 7 * * *",
            "timezone": "Asia/Kolkata",
            "recipients": ["analyst@example.com"],
            "subject": "newswatch: {count} new articles",
        },
        "delivery": {"outbox": str(folder / "outbox")},
        "web": {"port": 0},
    }
    settings.update(overrides)
    return settings


smtp_server = pytest.fixture(smtpserver.smtp_server)


def run_newswatch(
    config: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``newswatch`` command as a user would (in ``env``, default:
    this process's environment); capture its output."""
    return subprocess.run(
        [NEWSWATCH, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (the system's, as .ci/run installs it) driven by Playwright."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run should have installed it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()
