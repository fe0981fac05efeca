"""``newswatch demo`` as a newcomer meets it: a digest within a minute on every run,
in the same folder, and a status page of its own even when 8787 is someone else's."""

from __future__ import annotations

import contextlib
import email
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from email import policy
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH

from crawler.faces.demo import (
    DEMO_CONFIG_MARK,
    DemoFolderError,
    claim_demo_folder,
    web_port_for_demo,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# What the issue promises a newcomer: the first digest within a minute of starting.
DIGEST_DEADLINE = 60.0
# Only a bound on a broken demo (no banner at all, or no stop on Ctrl-C).
STARTUP_BOUND = 120.0


class DemoRun:
    """A ``newswatch demo`` subprocess: its banner lines, as they are printed."""

    def __init__(self, folder: Path, log: Path, *args: str) -> None:
        self.started = time.monotonic()
        self.folder = folder
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [NEWSWATCH, "demo", "--folder", str(folder), *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def banner(self) -> dict[str, str]:
        """The banner's ``name: value`` lines, once it is printed whole."""
        fields: dict[str, str] = {}
        while True:
            line = self.lines.get(timeout=STARTUP_BOUND)
            if line.startswith("Stop with Ctrl-C"):
                return fields
            name, _, value = line.strip().partition(":")
            if value:
                fields[name] = value.strip()

    def wait_for_digest(self) -> Path | None:
        """The first digest in the outbox, or None if none came within the deadline."""
        outbox = self.folder / "outbox"
        while time.monotonic() - self.started < DIGEST_DEADLINE:
            digests = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
            if digests:
                return digests[0]
            time.sleep(0.5)
        return None

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self) -> int:
        """Its exit code, once it has stopped by itself (``--duration``)."""
        return self.process.wait(timeout=STARTUP_BOUND)

    def errors(self) -> str:
        return self.log.read_text()


@contextlib.contextmanager
def _demo(folder: Path, log: Path, *args: str) -> Iterator[DemoRun]:
    run = DemoRun(folder, log, *args)
    try:
        yield run
    finally:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def _text_of(digest: Path) -> str:
    message = email.message_from_bytes(digest.read_bytes(), policy=policy.default)
    return "\n".join(
        part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
    )


@pytest.mark.slow
def test_each_demo_run_in_the_same_folder_writes_a_digest_within_a_minute(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "demo"
    earlier: list[Path] = []
    for run_number in (1, 2):
        with _demo(folder, tmp_path / f"run{run_number}.log", "--web-port", "0") as demo:
            banner = demo.banner()
            digest = demo.wait_for_digest()
            assert demo.stop() == 0, demo.errors()
        assert digest is not None, f"run {run_number}: no digest within a minute"
        text = _text_of(digest)
        assert "Palmyra" in text
        # Its links lead to the site this run serves, not to an earlier run's port.
        assert f"{banner['demo news site']}articles/" in text
        assert (banner.get("fresh start") is not None) == (run_number == 2)
        assert "newswatch stopped" in demo.errors()
        assert "Traceback" not in demo.errors()
        # The earlier run's digest was cleared: what the outbox shows is this run's.
        assert not any(path.exists() for path in earlier)
        earlier.append(digest)


@pytest.mark.slow
def test_a_demo_started_while_8787_is_taken_prints_its_own_status_page(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        occupier = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # already taken by another program: as good
            occupier.bind(("127.0.0.1", 8787))
            occupier.listen()
        # --duration: the demo stops by itself, as its knob promises, and exits 0.
        demo = stack.enter_context(
            _demo(tmp_path / "demo", tmp_path / "demo.log", "--duration", "30")
        )
        banner = demo.banner()
        url = banner["status page"].split()[0]
        with urllib.request.urlopen(url, timeout=30) as response:
            page = response.read().decode()
        assert demo.finish() == 0, demo.errors()
    assert url.startswith("http://127.0.0.1:")
    assert not url.startswith("http://127.0.0.1:8787/")
    assert "(port 8787 is taken)" in banner["status page"]
    # The page is this demo's: it lists the feeds of the site this demo serves.
    assert f"{banner['demo news site']}world/rss.xml" in page
    assert "newswatch stopped" in demo.errors()
    assert "Traceback" not in demo.errors()


def _demo_config(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(f"{DEMO_CONFIG_MARK}, afresh on each run\n")


def test_a_fresh_run_clears_only_the_demos_own_files(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    _demo_config(folder)
    (folder / "outbox").mkdir()
    own = [
        folder / "newswatch-demo.db",
        folder / "newswatch-demo.db-wal",
        folder / "outbox" / "20260101T000000Z-you@example.org-1.eml",
    ]
    kept = [folder / "notes.txt", folder / "outbox" / "keep.txt", folder / "other.db"]
    for path in own + kept:
        path.write_text("x")
    claimed = claim_demo_folder(folder)
    os.close(claimed.lock)
    assert claimed.cleared
    assert [path for path in own if path.exists()] == []
    assert [path for path in kept if not path.exists()] == []


def test_a_new_folder_is_claimed_with_nothing_to_clear(tmp_path: Path) -> None:
    claimed = claim_demo_folder(tmp_path / "new" / "demo")
    os.close(claimed.lock)
    assert claimed.path.is_dir()
    assert not claimed.cleared


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param(
            {"config.yaml": "sources: []\n", "newswatch-demo.db": "x"},
            "is not a demo folder: its config.yaml was not written by `newswatch demo`",
            id="someone-elses-config",
        ),
        pytest.param(
            {"outbox/20260101T000000Z-me@example.org-1.eml": "x"},
            "is not a demo folder: it holds digests in outbox/ but no configuration",
            id="digests-without-a-demo-config",
        ),
    ],
)
def test_a_folder_that_is_not_the_demos_is_refused_untouched(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    with pytest.raises(DemoFolderError, match=re.escape(message)):
        claim_demo_folder(tmp_path)
    assert {name: (tmp_path / name).read_text() for name in files} == files


def test_a_folder_another_demo_runs_in_is_refused(tmp_path: Path) -> None:
    running = claim_demo_folder(tmp_path)
    (tmp_path / "newswatch-demo.db").write_text("the running demo's")
    try:
        with pytest.raises(DemoFolderError, match="another `newswatch demo` is running in"):
            claim_demo_folder(tmp_path)
    finally:
        os.close(running.lock)
    assert (tmp_path / "newswatch-demo.db").read_text() == "the running demo's"


def test_the_web_port_is_kept_when_free_and_left_to_the_system_when_taken() -> None:
    with socket.socket() as occupier:
        occupier.bind(("127.0.0.1", 0))
        occupier.listen()
        taken = occupier.getsockname()[1]
        assert web_port_for_demo("127.0.0.1", taken) == 0
    # The same port once its listener is gone (Twisted would bind it too).
    assert web_port_for_demo("127.0.0.1", taken) == taken
    assert web_port_for_demo("127.0.0.1", 0) == 0


def test_the_demo_refuses_a_folder_not_its_own_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("sources: []\n")
    result = subprocess.run(
        [NEWSWATCH, "demo", "--folder", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=STARTUP_BOUND,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"newswatch demo: {tmp_path} is not a demo folder: its config.yaml was not written "
        "by `newswatch demo`; choose another --folder"
    ]
    assert (tmp_path / "config.yaml").read_text() == "sources: []\n"
