"""The non-body fields of the extraction corpus, against their recorded snapshot.

Work on the body extractor must not move anything else a page yields: its URL
(the URL dedup key), title, dates, authors, language, image, description, section
and keywords. ``tests/fixtures/extraction/fields.json`` records them for every
corpus page as the code extracted them when the snapshot was written; this script
compares today's extraction with it, and bench/extraction.py and
tests/test_extract_fields.py use the same comparison (``field_changes``).

    python bench/extraction_fields.py           # which pages and fields differ (exit 1 if any)
    python bench/extraction_fields.py --write   # record the current fields as the snapshot

Writing the snapshot is a deliberate act: the diff of fields.json is the review of
every field that changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scoring import BUNDLED_CORPUS, CorpusPage, load_corpus

from spiders.extract import extract_article

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from crawler.domain.items import ExtractedArticle

SNAPSHOT = BUNDLED_CORPUS / "fields.json"
# Every field of ExtractedArticle but the body (``text``), in its order.
FIELDS = (
    "url",
    "title",
    "published",
    "updated",
    "authors",
    "language",
    "image",
    "description",
    "section",
    "keywords",
)
PageFields = dict[str, Any]


def article_fields(article: ExtractedArticle) -> PageFields:
    """The article's non-body fields as JSON values: datetimes in ISO format, tuples
    as lists, None as null."""
    fields: PageFields = {}
    for name in FIELDS:
        value = getattr(article, name)
        if isinstance(value, tuple):
            value = list(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        fields[name] = value
    return fields


def corpus_fields(pages: Iterable[CorpusPage]) -> dict[str, PageFields]:
    """{page id: its non-body fields} as the current code extracts them."""
    return {page.id: article_fields(extract_article(page.html, page.url)) for page in pages}


def load_snapshot(path: Path = SNAPSHOT) -> dict[str, PageFields]:
    result: dict[str, PageFields] = json.loads(path.read_text(encoding="utf-8"))
    return result


def write_snapshot(fields: Mapping[str, PageFields], path: Path = SNAPSHOT) -> None:
    """Pages sorted by id, one field a line, non-ASCII as it is: a diff shows a
    changed field on its own line."""
    ordered = {page_id: fields[page_id] for page_id in sorted(fields)}
    path.write_text(json.dumps(ordered, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of one page that is not what the snapshot recorded. A page missing
    on one side has the field ``"page"`` and ``"absent"`` on that side."""

    page_id: str
    field: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.page_id[:8]} {self.field}: {self.old!r} -> {self.new!r}"


def field_changes(
    snapshot: Mapping[str, PageFields], current: Mapping[str, PageFields]
) -> list[FieldChange]:
    """Every (page, field) whose current value differs from the snapshot's, in page
    and field order; empty when nothing moved."""
    changes = []
    for page_id in sorted(snapshot.keys() | current.keys()):
        if page_id not in current:
            changes.append(FieldChange(page_id, "page", "present", "absent"))
        elif page_id not in snapshot:
            changes.append(FieldChange(page_id, "page", "absent", "present"))
        else:
            old, new = snapshot[page_id], current[page_id]
            changes.extend(
                FieldChange(page_id, name, old.get(name), new.get(name))
                for name in FIELDS
                if old.get(name) != new.get(name)
            )
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--write", action="store_true", help=f"record the current fields in {SNAPSHOT}"
    )
    args = parser.parse_args(argv)

    current = corpus_fields(load_corpus(BUNDLED_CORPUS))
    if args.write:
        write_snapshot(current)
        print(f"wrote the fields of {len(current)} pages to {SNAPSHOT}")
        return 0
    changes = field_changes(load_snapshot(), current)
    for change in changes:
        print(change.describe())
    pages = len({change.page_id for change in changes})
    print(
        f"{len(changes)} fields differ on {pages} of {len(current)} pages"
        if changes
        else f"all {len(current)} pages' fields are as in {SNAPSHOT.name}"
    )
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
