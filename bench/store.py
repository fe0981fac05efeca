"""Articles stored per second, with deduplication, on SQLite and PostgreSQL in one run.

Each row of the table ingests the same generated articles (realistic sizes, one in
five a duplicate by URL or by body) through crawler.orchestration.ingest, either one article per
transaction or in batches of 50 (what the service does), into a fresh database.

    python bench/store.py [--articles 2000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.rules import RuleMatch
from crawler.domain.config import SourceConfig
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_batch
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator

POSTGRES = os.environ.get(
    "NEWSWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WORDS = [
    "government",
    "troops",
    "city",
    "council",
    "minister",
    "said",
    "on",
    "Tuesday",
    "the",
    "ancient",
    "town",
    "of",
    "report",
    "officials",
    "election",
    "market",
    "prices",
    "energy",
    "oil",
    "gas",
    "court",
    "ruling",
    "police",
    "spokesman",
    "statement",
    "agency",
    "capital",
    "border",
    "talks",
    "ceasefire",
    "aid",
    "workers",
]


def make_items(count: int, seed: int = 7) -> list[tuple[ArticleItem, list[RuleMatch]]]:
    rng = random.Random(seed)
    items = []
    for n in range(count):
        # One in ten repeats an earlier URL, one in ten an earlier body.
        kind = rng.random()
        source_n = rng.randrange(max(n, 1)) if kind < 0.2 and n else n
        url_n = source_n if kind < 0.1 else n
        body_rng = random.Random(source_n)
        body = " ".join(body_rng.choice(WORDS) for _ in range(600))
        article = ExtractedArticle(
            url=f"https://news{url_n % 50}.example/story/{url_n}",
            title=f"Story {source_n}: {' '.join(body.split()[:8])}",
            text=body,
            published=datetime(2024, 2, 14, tzinfo=UTC),
            authors=("AFP",),
            language="en",
        )
        matches = [RuleMatch("energy", ("oil",))] if "oil" in body[:200] else []
        items.append((ArticleItem("wire", article.url, article), matches))
    return items


@contextmanager
def fresh_database(kind: str, postgres: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    name = f"newswatch_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(url: str, items: list[tuple[ArticleItem, list[RuleMatch]]], batch: int) -> float:
    store = Store.from_url(url)
    store.upgrade()
    store.sync_sources([SourceConfig(name="wire", feed="https://news.example/rss")])
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        ingest_batch(store, items[start : start + batch])
    elapsed = time.perf_counter() - started
    stored = store.count_articles()
    store.close()
    expected = len({item.article.url for item, _ in items})
    if stored > expected:
        raise SystemExit(f"stored {stored} articles, more than the {expected} distinct URLs")
    return len(items) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--postgres", default=POSTGRES)
    args = parser.parse_args()
    items = make_items(args.articles)
    rows = []
    for kind in ("sqlite", "postgresql"):
        for batch in (1, 50):
            with fresh_database(kind, args.postgres) as url:
                rows.append((kind, batch, measure(url, items, batch)))
    base = rows[0][2]
    print(f"{args.articles} articles (1 in 5 a duplicate by URL or body), one run\n")
    print("| database | batch | articles/s | vs SQLite, batch 1 |")
    print("| --- | --- | --- | --- |")
    for kind, batch, rate in rows:
        print(f"| {kind} | {batch} | {rate:,.0f} | {rate / base:.2f}× |")


if __name__ == "__main__":
    main()
