"""newswatch's own layers, around the two stage packages `spiders` and `alerts`.

Bottom to top: `crawler.domain` (pure types and rules), `crawler.storage` (the
database), then the stages (`spiders`, `alerts`, top-level packages), then
`crawler.orchestration` (polls, ingest, the service) and `crawler.faces` (CLI, web
UI, demo). Imports point down only; tests/test_architecture.py runs the contract.
This module holds the version and imports nothing.
"""

from __future__ import annotations

__version__ = "0.1.0"
