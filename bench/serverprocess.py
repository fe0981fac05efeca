"""A loopback server in a process of its own, for the benchmarks (the generated news
site of bench/pipeline.py, the feed server of bench/sources.py): it prints one JSON
line when it listens and serves until its stdin closes, so that it goes away with
the benchmark however that ends."""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


class ServerProcess:
    """Starts ``command`` and waits up to ``ready_seconds`` for its JSON line
    (``info``); raises RuntimeError, naming ``what`` and its ``log``, if none comes."""

    def __init__(
        self,
        command: list[str],
        log: Path,
        what: str,
        ready_seconds: float,
        env: dict[str, str] | None = None,
    ) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], ready_seconds)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(f"{what} did not start; see {log}")
        self.info: dict[str, Any] = json.loads(line)
        # Straight to loopback, whatever proxy the environment names.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def pid(self) -> int:
        return self.process.pid

    def get_json(self, url: str) -> Any:
        """The JSON the server answers at ``url`` (its counters)."""
        with self._opener.open(url, timeout=10) as reply:
            return json.loads(reply.read())

    def stop(self) -> None:
        """Close its stdin (it exits), killed if it has not within 10 s."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()  # type: ignore[union-attr]
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
