"""Poll a configuration's sources once, as `newswatch crawl` does, and print each
poll's outcome as one JSON line: what tests read of a poll beyond the log and the
database (the failure class, the bot-challenge evidence).

    python tests/poll_outcomes.py CONFIG
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

from crawler.orchestration.runtime import install_asyncio_reactor


def main(config_path: str) -> None:
    install_asyncio_reactor()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from crawler.domain.config import load_config
    from crawler.orchestration.runtime import run_once
    from crawler.orchestration.service import NewswatchService
    from crawler.storage.store import Store

    config = load_config(config_path)
    store = Store.from_url(config.database)
    store.upgrade()
    store.sync_sources(config.sources)
    outcomes = run_once(
        lambda: NewswatchService(config, store, cpu_workers=config.workers),
        lambda service: service.poll_all(),
    )
    for outcome in outcomes:
        record = dataclasses.asdict(outcome)
        record["blocked"] = outcome.blocked
        print(json.dumps(record, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
