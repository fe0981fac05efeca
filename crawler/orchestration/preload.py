"""Imported once by the CPU pool's forkserver: the workers it forks inherit it.

Importing this module imports the extraction, dedup and feed-parsing stacks and
warms them up (spiders.extract.warm_up), so each worker starts ready, and the
models they all read are in memory once, shared copy-on-write, not once per worker.
"""

from __future__ import annotations

import gc

import feedparser  # noqa: F401  (imported by spiders.feedparse only when a feed is read)

import crawler.domain.dedup  # noqa: F401
import spiders.feedparse  # noqa: F401
from crawler.orchestration.workers import release_free_memory, return_large_blocks_promptly
from spiders.extract import warm_up

return_large_blocks_promptly()
warm_up()
# What the warm-up freed (the justext stoplists are built from per-language sets)
# goes back to the system rather than into every worker's copy of this process.
gc.collect()
release_free_memory()
# Out of the collector's sight: a collection in a worker would otherwise write to
# every object inherited from here, turning the shared pages into private copies.
gc.freeze()
