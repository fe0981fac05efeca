"""Reading feeds: RSS 0.9x/1.0/2.0, Atom and JSON Feed bytes to entries (pure functions).

Nothing here fetches; the spider hands over the body, the URL and the HTTP
Content-Type, and gets entries back, or a FeedError that says why there are none.

The pipeline, in order:

1. JSON Feed 1.0/1.1 is read here (feedparser does not read it).
2. The bytes are decoded here, not by feedparser: a byte order mark wins, then a
   body that is valid UTF-8 wins over a single-byte charset it claims (servers and
   generators often label UTF-8 as ISO-8859-1 or windows-1252), then the HTTP and
   XML declarations, then detection. A UTF-8 body with a few stray legacy bytes
   keeps its UTF-8 and reads the stray bytes as windows-1252, instead of turning
   the whole feed into mojibake.
3. Harmless breakage that would push feedparser onto its lenient parser is repaired
   on the text: a declaration after blank lines, control characters, HTML named
   entities such as ``&hellip;``, character references to surrogates.
4. feedparser reads the text (with its HTML sanitising and relative-link
   resolution on). If the XML is still broken, lxml's recovering parser
   (no entity expansion, no DTD, no network) reads it too and the reading with
   more entries wins. Entries cut off by a truncated document are dropped, since
   their link may be cut off too.

Layer 3, stages (part of spiders). May import: spiders, crawler.storage,
crawler.domain; never alerts.
"""

from spiders.feedparse.fields import EARLIEST_YEAR, LATEST_YEAR, aware_utc, is_crawlable_url
from spiders.feedparse.model import FeedEntry, FeedError, ParsedFeed
from spiders.feedparse.parse import parse_feed

__all__ = [
    "EARLIEST_YEAR",
    "LATEST_YEAR",
    "FeedEntry",
    "FeedError",
    "ParsedFeed",
    "aware_utc",
    "is_crawlable_url",
    "parse_feed",
]
