"""Stop signals that arrive while the service is still starting.

Importing Scrapy, running migrations and starting the worker pool take seconds;
a SIGTERM in that time must not kill the process mid-migration. Until the reactor
installs its own handlers, the signal is only remembered, and the service stops
as soon as it runs.
"""

from __future__ import annotations

import signal

_requested: list[int] = []


def catch_early_stop_signals() -> None:
    """Remember SIGINT/SIGTERM from now on instead of dying."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: _requested.append(number))


def stop_requested() -> bool:
    return bool(_requested)


def hand_over_to_reactor() -> None:
    """Give SIGINT back to Python's default just before the reactor starts: Twisted
    installs its own SIGINT handler only over the default one (SIGTERM it always
    takes). A signal in between is still caught by stop_requested()'s check."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
