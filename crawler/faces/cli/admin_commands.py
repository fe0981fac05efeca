"""The administration commands: check-config, db upgrade and db purge."""

from __future__ import annotations

import argparse

from crawler.domain.config import config_path, config_warnings, load_config
from crawler.domain.wording import counted
from crawler.faces.cli.common import EXIT_OK, _load, _open_store


def _check_config(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    config = load_config(path)
    delivery = (
        f"SMTP {config.delivery.smtp.host}:{config.delivery.smtp.port}"
        if config.delivery.smtp
        else f"outbox {config.delivery.outbox}"
    )
    print(
        f"{path}: OK — {counted(len(config.sources), 'source')}, "
        f"{counted(len(config.rules), 'rule')}, "
        f"{counted(len(config.all_recipients()), 'recipient')}, "
        f"digest '{config.digest.schedule}' "
        f"({config.digest.timezone}), delivery: {delivery}"
    )
    for warning in config_warnings(config, path):
        print(warning)
    if config.all_recipients() and config.web.public_url is None:
        print(
            f"{path}: warning: web.public_url is not set, so messages carry no feedback "
            "links (more like this, not relevant, mute, pause, unsubscribe) and no "
            "one-click List-Unsubscribe (RFC 8058); set it to where readers reach the web UI"
        )
    return EXIT_OK


def _db_upgrade(args: argparse.Namespace) -> int:
    config = _load(args)
    store = _open_store(config)
    store.close()
    print("database is at the latest schema")
    return EXIT_OK


def _db_purge(args: argparse.Namespace) -> int:
    from crawler.orchestration.retention import purge_old_articles

    config = _load(args)
    store = _open_store(config)
    try:
        purged, deleted = purge_old_articles(store, config)
    finally:
        store.close()
    print(
        f"{counted(purged, 'article body', 'article bodies')} purged, "
        f"{counted(deleted, 'old article')} deleted"
    )
    return EXIT_OK
