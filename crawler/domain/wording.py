"""Counts as people read them: "1 new article", "3 new articles", "0 articles".

Every message that shows a count (the command line, log lines, the web UI) words it
with ``counted``, so none says "1 articles".

Layer 1, domain (part of crawler.domain). Pure: imports nothing of newswatch.
"""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``number`` and ``noun`` in the form that number takes: ``noun`` for exactly
    one, else ``plural`` (by default ``noun`` with an "s": pass it for the others,
    such as "copy", "copies")."""
    return f"{number} {noun if number == 1 else (plural or noun + 's')}"
