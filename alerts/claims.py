"""Who is sending a delivery right now: the run identities of delivery claims.

A digest or alert run claims each delivery in the ledger before it sends it
(``Store.claim_delivery``), so no other run sends the same message meanwhile —
not a catch-up run and a cron tick of one service, not a `newswatch digest`
beside `newswatch run`, not two schedulers of a cluster. A claim names its run
and holds until a lease ends. A run that died while holding one (SIGKILL mid-send)
must not keep its message waiting for the lease: a claim made on this host by a
process that is gone, or by an earlier process that had this one's pid (a
restarted container), or by a run of this process that has ended, is abandoned and
may be taken over at once. Claims made on other hosts are trusted until the lease.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

__all__ = ["claim_lease", "is_abandoned", "sending_run"]

# A run's lease on a delivery: far longer than any send (a few SMTP round trips of
# at most the socket timeout each), so a live run never loses its claim mid-send.
MIN_LEASE = timedelta(minutes=15)
LEASE_PER_TIMEOUT = 10

_counter = itertools.count(1)
_live: set[str] = set()
_live_lock = threading.Lock()
_token = secrets.token_hex(4)
_process: tuple[int, str] | None = None


def claim_lease(smtp_timeout: timedelta | None) -> timedelta:
    """How long a run's claim on a delivery holds before others may take it."""
    return max(MIN_LEASE, (smtp_timeout or timedelta(0)) * LEASE_PER_TIMEOUT)


def _process_identity() -> str:
    """host:pid:token of this process (made again in a forked child)."""
    global _process, _token
    pid = os.getpid()
    if _process is None or _process[0] != pid:
        if _process is not None:
            _token = secrets.token_hex(4)
        _process = (pid, f"{socket.gethostname()[:120]}:{pid}:{_token}")
    return _process[1]


@contextlib.contextmanager
def sending_run() -> Iterator[str]:
    """A new run identity, alive (for is_abandoned) while the block runs."""
    run = f"{_process_identity()}:{next(_counter)}"
    with _live_lock:
        _live.add(run)
    try:
        yield run
    finally:
        with _live_lock:
            _live.discard(run)


def is_abandoned(run: str) -> bool:
    """True when the run that holds a claim is known to be gone."""
    host, _, rest = run.rpartition(":")[0].partition(":")  # drop the run number
    pid_text, _, token = rest.partition(":")
    if host != socket.gethostname()[:120] or not pid_text.isdigit():
        return False  # another host's run: trusted until its lease ends
    pid = int(pid_text)
    if pid == os.getpid():
        if token != _process_identity().rsplit(":", 1)[1]:
            return True  # an earlier process with this pid
        with _live_lock:
            return run not in _live
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False
