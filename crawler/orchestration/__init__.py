"""Layer 4, orchestration: what runs the stages, in order, for as long as it runs.

One poll of one source, ingest (dedup and story grouping, then storage), the crawl
context the spiders call back into, the CPU worker pool, the scale-out roles, the
long-lived service with its scheduler, metrics, signals and start-up checks, and
its WebSub subscriptions.
May import: spiders, alerts, crawler.storage, crawler.domain.
"""
