"""Shared by the ``newswatch`` commands: exit codes, the logger, loading the
configuration and opening the store."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from crawler.domain.config import config_path, load_config
from crawler.orchestration.signals import stop_requested
from crawler.orchestration.startup import open_store_or_fail, wait_for_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from crawler.domain.config import Config
    from crawler.storage.store import Store

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

logger = logging.getLogger("newswatch")


def _load(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config))


def _connect(config: Config) -> Store:
    """The store, migrated, with the configured sources; raises when the database
    does not answer."""
    from crawler.storage.store import Store

    store = Store.from_url(config.database)
    try:
        store.upgrade()
        store.sync_sources(config.sources)
    except BaseException:
        store.close()
        raise
    return store


def _open_store(config: Config) -> Store:
    """The store for a one-shot command; a database that does not answer is one line."""
    return open_store_or_fail(config.database, lambda: _connect(config))


def _wait_for_store(config: Config, opener: Callable[[], Store] | None = None) -> Store | None:
    """The store for a long-lived command: waits for a database that does not answer
    yet (crawler.orchestration.startup); None when stopped while waiting."""
    return wait_for_store(
        config.database,
        opener or (lambda: _connect(config)),
        web=config.web,
        stop_requested=stop_requested,
    )


def _first_line(error: BaseException) -> str:
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0][:500] if lines else type(error).__name__
