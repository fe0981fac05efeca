"""Imported once by the CPU pool's forkserver: the workers it forks inherit it.

Importing this module imports the extraction, dedup and feed-parsing stacks and
warms them up (spiders.extract.warm_up), so each worker starts ready, and the
models they all read are in memory once, shared copy-on-write, not once per worker.
"""

from __future__ import annotations

import gc

import datasketch  # noqa: F401 - imported for the workers (scipy: ~0.8 s each)

import crawler.dedup  # noqa: F401
import spiders.feedparse  # noqa: F401
from spiders.extract import warm_up

warm_up()
# Out of the collector's sight: a collection in a worker would otherwise write to
# every object inherited from here, turning the shared pages into private copies.
gc.freeze()
