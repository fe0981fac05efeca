"""What a reader's long history costs the digest: the time to find a reader's pending
matches (``Store.pending_items``) as the articles they already got grow.

Each row is a fresh SQLite database with one rule's matches, half of them already
delivered to the reader (each its own story, so every pending article is checked
against the reader's whole history for another copy of its story). Rows are run
once with the ledger's indexes and, at the same size, once with the
(recipient, channel, story) index dropped, as before migration 0011.

Promise: the cost per pending article stays flat as the history grows (25,000
delivered costs at most 2x per article what 5,000 does), and the index makes the
big case at least 20x faster than without it.

    python bench/ledger.py [--sizes 5000 25000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.storage.models import Article, Delivery, DeliveryItem, Match
from crawler.storage.store import Store, upgrade_database

READER = "ana@example.org"
STORY_INDEX = "ix_delivery_items_recipient_channel_story"


def filled_store(folder: Path, delivered: int) -> Store:
    """``2 × delivered`` matched articles, the first half delivered to the reader."""
    store = Store.from_url(f"sqlite:///{folder / 'ledger.sqlite'}")
    upgrade_database(store.engine)
    now = datetime.now(UTC)
    articles = range(1, 2 * delivered + 1)
    with store.engine.begin() as connection:
        connection.execute(
            insert(Article),
            [
                {"id": n, "url": f"https://news.example/{n}", "title": f"Story {n}",
                 "body": "text", "story_id": n, "fetched_at": now}
                for n in articles
            ],
        )  # fmt: skip
        connection.execute(
            insert(Match), [{"rule": "floods", "article_id": n, "terms": []} for n in articles]
        )
        connection.execute(
            insert(Delivery),
            [{"id": 1, "recipient": READER, "message_id": "<history@example.org>",
              "created_at": now, "sent_at": now}],
        )  # fmt: skip
        connection.execute(
            insert(DeliveryItem),
            [
                {"delivery_id": 1, "recipient": READER, "channel": "email",
                 "article_id": n, "revision": 1, "story_id": n}
                for n in range(1, delivered + 1)
            ],
        )  # fmt: skip
    return store


def pending_seconds(store: Store, expected: int) -> float:
    started = time.perf_counter()
    pending = store.pending_items(READER, ["floods"], with_bodies=False)
    elapsed = time.perf_counter() - started
    assert len(pending) == expected, (len(pending), expected)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 25000])
    sizes = sorted(parser.parse_args().sizes)
    rows: list[tuple[int, str, float]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            store = filled_store(Path(folder), size)
            rows.append((size, "indexed", pending_seconds(store, size)))
            if size == sizes[-1]:
                with store.engine.begin() as connection:
                    connection.execute(text(f"DROP INDEX {STORY_INDEX}"))
                rows.append((size, "no story index", pending_seconds(store, size)))
            store.engine.dispose()

    print(f"{'delivered':>10} {'pending':>8} {'ledger':<15} {'seconds':>8} {'µs/article':>11}")
    for size, label, seconds in rows:
        print(f"{size:>10,} {size:>8,} {label:<15} {seconds:>8.2f} {seconds / size * 1e6:>11.1f}")

    per_article = {(size, label): seconds / size for size, label, seconds in rows}
    small, big = sizes[0], sizes[-1]
    growth = per_article[(big, "indexed")] / per_article[(small, "indexed")]
    speedup = per_article[(big, "no story index")] / per_article[(big, "indexed")]
    targets = [
        (growth <= 2.0, f"cost per pending article at {big:,} delivered ≤ 2x at {small:,} "
                        f"({growth:.2f}x)"),
        (speedup >= 20.0, f"the story index makes {big:,} delivered ≥ 20x faster "
                          f"({speedup:.0f}x)"),
    ]  # fmt: skip
    print("targets:")
    for ok, line in targets:
        print(f"- {'met' if ok else 'MISSED'}: {line}")


if __name__ == "__main__":
    main()
