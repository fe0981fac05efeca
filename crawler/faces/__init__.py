"""Layer 5, faces: what a person or another program talks to.

The `newswatch` CLI, the web UI (status, matches, search, previews, healthz,
metrics) and the demo.
May import: every layer below (crawler.orchestration, spiders, alerts,
crawler.storage, crawler.domain).
"""
