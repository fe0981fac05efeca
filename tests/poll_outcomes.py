"""Poll a configuration's sources once, as `newswatch crawl` does, and print each
poll's outcome as one JSON line: what tests read of a poll beyond the log and the
database (the failure class, the bot-challenge evidence).

    python tests/poll_outcomes.py CONFIG [--at-once]

``--at-once`` starts every poll together with ``poll_source`` (the service's runner
and context, without the turns ``NewswatchService.poll`` takes first).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
from typing import TYPE_CHECKING

from crawler.orchestration.runtime import install_asyncio_reactor

if TYPE_CHECKING:
    from crawler.domain.items import PollOutcome
    from crawler.orchestration.service import NewswatchService


def main(config_path: str, at_once: bool = False) -> None:
    install_asyncio_reactor()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from crawler.domain.config import load_config
    from crawler.orchestration.poll import poll_source
    from crawler.orchestration.runtime import run_once
    from crawler.orchestration.service import NewswatchService
    from crawler.storage.store import Store

    config = load_config(config_path)
    store = Store.from_url(config.database)
    store.upgrade()
    store.sync_sources(config.sources)

    async def all_at_once(service: NewswatchService) -> list[PollOutcome]:
        polls = [poll_source(service.runner, service.context, s) for s in config.sources]
        return list(await asyncio.gather(*polls))

    outcomes = run_once(
        lambda: NewswatchService(config, store, cpu_workers=config.workers),
        all_at_once if at_once else lambda service: service.poll_all(),
    )
    for outcome in outcomes:
        record = dataclasses.asdict(outcome)
        record["blocked"] = outcome.blocked
        print(json.dumps(record, default=str))


if __name__ == "__main__":
    main(sys.argv[1], at_once="--at-once" in sys.argv[2:])
