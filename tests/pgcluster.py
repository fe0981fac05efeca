"""A PostgreSQL server of the test's own, on its own port, that the test may stop and
start again: a real restart, not killed connections, and never the shared server.

Made with the machine's PostgreSQL binaries (``initdb``, ``pg_ctl``), run as the
``postgres`` user when the tests run as root (PostgreSQL refuses to run as root).
Trust authentication on 127.0.0.1 only; the data folder is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from smtpserver import free_port

_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))


def available() -> str | None:
    """None when a private cluster can be made here, else why not."""
    if not _BINARIES and shutil.which("pg_ctl") is None:
        return "no PostgreSQL server binaries (pg_ctl, initdb) on this machine"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as postgres"
    return None


class PrivateCluster:
    """``with PrivateCluster() as cluster: cluster.url … cluster.restart()``."""

    def __init__(self) -> None:
        self.bin = _BINARIES[-1].parent if _BINARIES else Path(shutil.which("pg_ctl")).parent
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="newswatch-pg-"))
        self.data = self.folder / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/newswatch"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *command],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            cwd=self.folder,
        )

    def __enter__(self) -> PrivateCluster:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.start()
        self._run(
            str(self.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "newswatch",
        )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.folder} -c fsync=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session (what a restart does); ``immediate`` is a crash."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def __exit__(self, *exc_info: object) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False
        )
        shutil.rmtree(self.folder, ignore_errors=True)
