"""For the tests that a secret (a password, token, cookie, API key) shows nowhere: the
service run as a user runs it, its pages and command outputs gathered, every stored
value dumped, and one check over all of it; and a configuration's one-line error."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conftest import NEWSWATCH, run_newswatch
from sqlalchemy import create_engine, inspect, text

from crawler.domain.config import ConfigError, load_config

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

WEB_UI_LINE = re.compile(r"web UI at http://127\.0\.0\.1:(\d+)/")


@contextmanager
def running_service(
    config: Path, log: Path, environment: dict[str, str], *options: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``newswatch [options] run`` as a user starts it, all its output in ``log``;
    stopped with SIGTERM (a clean shutdown) on leaving."""
    with log.open("wb") as output:
        service = subprocess.Popen(
            [NEWSWATCH, "--config", str(config), *options, "run"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        yield service
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)


def web_port(log: Path, deadline: float) -> str:
    """The web UI's port once the service's log names it; fails the test, with the end
    of the log, at ``deadline`` (a ``time.monotonic()`` value)."""
    while not (found := WEB_UI_LINE.search(log.read_text())):
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)
    return found.group(1)


def get_page(port: str, path: str, headers: dict[str, str] | None = None) -> str:
    """The web UI's page at ``path``, as text."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def command_outputs(
    config: Path, environment: dict[str, str], *commands: list[str]
) -> list[subprocess.CompletedProcess[str]]:
    """Each ``newswatch`` command run as a user runs it, its output captured."""
    return [run_newswatch(config, *command, env=environment) for command in commands]


def printed(outputs: Iterable[subprocess.CompletedProcess[str]]) -> str:
    """What the commands printed, stdout then stderr, one after another."""
    return "".join(out.stdout + out.stderr for out in outputs)


def everything_stored(database: str) -> str:
    """Every value of every row of every table, as text."""
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            return "\n".join(
                repr(tuple(row))
                for table in inspect(engine).get_table_names()
                for row in connection.execute(text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


def assert_shown_nowhere(
    secrets: Iterable[str], logs: str, stored: str, pages: dict[str, str]
) -> None:
    """No secret in the logs and outputs, the database or any page (named on failure)."""
    for secret in secrets:
        assert secret not in logs
        assert secret not in stored
        for path, page in pages.items():
            assert secret not in page, path


def config_error(folder: Path, source: dict[str, Any], **top: Any) -> str:
    """The error of a config.yaml with this one source (and ``top`` keys): the test
    fails if it loads."""
    path = folder / "config.yaml"
    settings = {"sources": [source], **top}
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return str(raised.value)
