"""A busy day's digest: time, peak memory and size of one reader's digest, with the
size budget (``digest.max_stories`` 50, ``digest.max_bytes`` 5 MB) and without it
(every story shown, as before the budget).

Each size of day (1,000 and 10,000 matches of one rule, 30 of another) is stored
in a fresh SQLite database; one digest run then builds and writes the email to an
outbox folder: the time and Python's peak allocation (tracemalloc, which also
slows the run down) of that run, and the size of the ``.eml``. The 10,000-match
day runs both ways, cut and whole, in one run.

Promise: a 10,000-match digest fits the budget (and Postfix's default 10 MB
limit), builds in at most a quarter of the time and half the peak memory of the
uncut digest, and costs at most 10x the 1,000-match digest (loading the matches
grows with them; rendering does not).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.delivery import OutboxDelivery
from alerts.digest import send_pending_digests
from alerts.rules import RuleMatch
from crawler.domain.config import Config, SourceConfig
from crawler.domain.items import ExtractedArticle
from crawler.storage.store import ArticleRecord, Store

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
POSTFIX_LIMIT = 10_240_000  # Postfix's default message_size_limit
BODY = (
    "Regime troops were locked in heavy fighting with ISIS in central Syria, where they "
    "seized the ancient city of Palmyra. "
) * 30  # ~3 kB, a real article's length


def config(*, cut: bool) -> Config:
    digest: dict[str, object] = {"sender": "news@example.org"}
    if not cut:  # every story shown, no budget to speak of: the digest before the budget
        digest |= {"max_stories": 10_000, "max_bytes": 50_000_000}
    return Config.model_validate(
        {
            "sources": [{"name": "wire", "feed": "https://wire.example/rss"}],
            "rules": [
                {"name": "syria", "keywords": ["Palmyra"]},
                {"name": "energy", "keywords": ["oil"]},
            ],
            "digest": digest,
            "recipients": [{"email": "ana@example.com"}],
            "web": {"public_url": "https://news.example.org/watch/"},
        }
    )


def fill(database: Path, matches: int) -> Store:
    store = Store.from_url(f"sqlite:///{database}")
    store.upgrade()
    store.sync_sources([SourceConfig(name="wire", feed="https://wire.example/rss")])
    batch = [
        (
            ArticleRecord(
                "wire",
                ExtractedArticle(
                    url=f"https://wire.example/{n}",
                    title=f"Palmyra report number {n}",
                    text=f"{BODY} Report {n}.",
                    published=NOW - timedelta(seconds=n),
                ),
            ),
            [RuleMatch("syria", ("Palmyra",))]
            + ([RuleMatch("energy", ("oil",))] if n < 30 else []),
        )
        for n in range(matches)
    ]
    for start in range(0, len(batch), 1000):
        store.insert_articles(batch[start : start + 1000])
    return store


def measure(folder: Path, matches: int, *, cut: bool) -> dict[str, float]:
    name = f"{matches}-{'cut' if cut else 'whole'}"
    store = fill(folder / f"{name}.db", matches)
    outbox = folder / name
    tracemalloc.start()
    started = time.perf_counter()
    report = send_pending_digests(store, config(cut=cut), OutboxDelivery(outbox), NOW)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.close()
    assert report.sent == {"ana@example.com": matches}, report
    [eml] = outbox.glob("*.eml")
    return {"seconds": seconds, "peak_mb": peak / 1e6, "bytes": eml.stat().st_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {
            (matches, cut): measure(Path(folder), matches, cut=cut)
            for matches, cut in ((1_000, True), (10_000, True), (10_000, False))
        }
    print("| matches | digest | build s | peak MB (Python) | email bytes |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for (matches, cut), row in results.items():
        print(
            f"| {matches:,} | {'cut to budget' if cut else 'every story'} | "
            f"{row['seconds']:.2f} | {row['peak_mb']:.0f} | {row['bytes']:,.0f} |"
        )
    busy, whole, small = results[(10_000, True)], results[(10_000, False)], results[(1_000, True)]
    budget = config(cut=True).digest.max_bytes
    checks = [
        (
            f"10,000-match digest = {busy['bytes']:,.0f} bytes (target ≤ {budget:,}, "
            f"the budget, and < Postfix's {POSTFIX_LIMIT:,})",
            busy["bytes"] <= budget and busy["bytes"] < POSTFIX_LIMIT,
        ),
        (
            f"build time cut / every story = {busy['seconds'] / whole['seconds']:.2f} "
            "(target ≤ 0.25)",
            busy["seconds"] / whole["seconds"] <= 0.25,
        ),
        (
            f"peak memory cut / every story = {busy['peak_mb'] / whole['peak_mb']:.2f} "
            "(target ≤ 0.5)",
            busy["peak_mb"] / whole["peak_mb"] <= 0.5,
        ),
        (
            f"build time 10,000 / 1,000 matches = {busy['seconds'] / small['seconds']:.1f} "
            "(target ≤ 10)",
            busy["seconds"] / small["seconds"] <= 10,
        ),
    ]
    print()
    print("targets:")
    for text, ok in checks:
        print(f"- {'met' if ok else 'MISSED'}: {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
