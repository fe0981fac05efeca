"""What a CPU worker does with one article page: extract it and key its body.

One task per page, so the body is decoded, parsed and normalised once, in the
worker, and the reactor and database threads receive ready-made results. The
extraction stack is imported inside the function: the crawling process only needs
its name (to hand it to the pool), and the workers import it once, preloaded by
their forkserver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.domain.dedup import BodyKeys, SignatureParams
    from crawler.domain.items import ExtractedArticle


def extract_with_keys(
    body: bytes, url: str, content_type: str | None, params: SignatureParams | None
) -> tuple[ExtractedArticle, BodyKeys]:
    """The article on the page, and its fingerprint and story signature."""
    from crawler.domain.dedup import body_keys
    from spiders.extract import extract_page

    article = extract_page(body, url, content_type)
    return article, body_keys(article.text, params)
