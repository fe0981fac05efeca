"""No loss elsewhere: the corpus pages' non-body fields stay as the snapshot recorded.

tests/fixtures/extraction/fields.json holds, for every page of the extraction
corpus, the URL, title, dates, authors, language, image, description, section and
keywords that extraction gave when it was written (bench/extraction_fields.py
--write). Work on the body must leave them as they are; a change that means to
move one rewrites the snapshot, and its diff shows what moved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spiders.extract import extract_article

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))  # the one comparison
from extraction_fields import FIELDS, article_fields, field_changes, load_snapshot
from scoring import BUNDLED_CORPUS, CorpusPage, load_corpus

CORPUS_PAGES: dict[str, CorpusPage] = {page.id: page for page in load_corpus(BUNDLED_CORPUS)}
SNAPSHOT = load_snapshot()


def test_the_snapshot_covers_every_corpus_page_and_field() -> None:
    assert sorted(SNAPSHOT) == sorted(CORPUS_PAGES)
    assert len(CORPUS_PAGES) >= 90
    assert all(list(fields) == list(FIELDS) for fields in SNAPSHOT.values())


@pytest.mark.parametrize("page_id", sorted(CORPUS_PAGES), ids=lambda page_id: page_id[:8])
def test_corpus_page_fields_are_as_in_the_snapshot(page_id: str) -> None:
    page = CORPUS_PAGES[page_id]

    current = article_fields(extract_article(page.html, page.url))

    changes = field_changes({page_id: SNAPSHOT[page_id]}, {page_id: current})
    assert not changes, "fields.json records other values (old -> new):\n" + "\n".join(
        f"  {change.field}: {change.old!r} -> {change.new!r}" for change in changes
    )
