"""Secrets (the SMTP password, the web token) never show in logs, pages or /metrics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH, site_config, write_config
from smtpserver import RecordingSmtpServer

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

PASSWORD = "correct-horse-battery-staple-42"
TOKEN = "web-token-5f3a9c1e7b2d4068"
WEB_UI_LINE = re.compile(r"web UI at http://127\.0\.0\.1:(\d+)/")


@pytest.mark.slow
def test_secrets_stay_out_of_logs_pages_and_metrics(news_site: NewsSite, tmp_path: Path) -> None:
    settings = site_config(news_site, tmp_path)
    # The server knows another password: logins fail and get logged, with reasons.
    with RecordingSmtpServer(username="newswatch", password="something-else") as smtp:
        settings["delivery"] = {"smtp": {"host": smtp.host, "port": smtp.port,
                                         "username": "newswatch",
                                         "password_env": "NEWSWATCH_TEST_SMTP_PASSWORD"}}
        settings["web"] = {"port": 0, "token_env": "NEWSWATCH_TEST_WEB_TOKEN"}
        settings["digest"]["schedule"] = "*/2 * * * * *"  # a (failing) digest every 2 s
        config = write_config(tmp_path, **settings)
        environment = {**os.environ, "NEWSWATCH_TEST_SMTP_PASSWORD": PASSWORD,
                       "NEWSWATCH_TEST_WEB_TOKEN": TOKEN}
        log = tmp_path / "service.log"
        with log.open("wb") as output:
            service = subprocess.Popen([NEWSWATCH, "--config", str(config), "run"],
                                       stdout=output, stderr=subprocess.STDOUT, env=environment)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                "not sent" not in log.read_text() or not WEB_UI_LINE.search(log.read_text())
            ):
                time.sleep(0.5)
            port = WEB_UI_LINE.search(log.read_text()).group(1)  # type: ignore[union-attr]
            pages = []
            for path in ("/", "/metrics", "/digests", "/matches", f"/?token={TOKEN}"):
                request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                                 headers={"Authorization": f"Bearer {TOKEN}"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    pages.append(response.read().decode())
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
        digest = subprocess.run([NEWSWATCH, "--config", str(config), "digest"],
                                capture_output=True, text=True, env=environment, timeout=120,
                                check=False)
    logs = log.read_text() + digest.stdout + digest.stderr
    assert "not sent" in logs  # the failures were logged…
    assert "authentication" in logs.lower() or "535" in logs  # …with their reason
    for secret in (PASSWORD, TOKEN):
        assert secret not in logs
        assert all(secret not in page for page in pages)
    assert "newswatch_emails_failed_total" in pages[1]
