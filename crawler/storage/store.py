"""All of newswatch's SQL: every query the service runs is a method here.

The rest of the code speaks in domain terms (``new_urls``, ``save_article``,
``pending_items``, ``mark_sent``) and never builds a query itself. Methods are
blocking; the service calls them from its one database thread, never from the
reactor thread.

``Store`` is assembled here from one mixin of queries per entity: sources and
polls (crawler/storage/sources.py), articles and stories (articles.py),
deliveries and the ledger (deliveries.py), the ledger as a reader's feed, their
history and the delivery history read it (ledger_views.py), each channel's state
(channel_states.py), search (search.py), the JSON API's paginated listings
(listings.py), the web UI's stories and filtered matches (story_views.py),
the service's own keys (keys.py), readers' answers to their
digests (feedback.py), the WebSub subscriptions (websub.py) and the status
page's counts per day (trends.py), all on
``StoreBase`` (engine.py); the records it returns are in records.py. This module
re-exports what callers need, so ``crawler.storage.store`` is the one import path.
"""

from __future__ import annotations

from crawler.storage.articles import ArticleQueries
from crawler.storage.channel_states import ChannelStateQueries
from crawler.storage.deliveries import DeliveryQueries, make_message_id
from crawler.storage.engine import (
    MIGRATIONS,
    SCHEMA_REVISION,
    create_database_engine,
    upgrade_database,
)
from crawler.storage.feedback import FeedbackQueries
from crawler.storage.health import HealthQueries
from crawler.storage.keys import LINK_SIGNING_KEY, KeyQueries
from crawler.storage.ledger_views import LedgerViewQueries
from crawler.storage.listings import (
    MAX_ROW_ID,
    ListingPage,
    ListingQueries,
    TimeKey,
    TimeWindow,
)
from crawler.storage.records import (
    ArticleRecord,
    ChannelState,
    DeliveryRecord,
    FeedItem,
    HeldRule,
    KnownArticle,
    MutedStory,
    MutedText,
    PendingItem,
    ReaderAnswer,
    SentStory,
    StoredArticle,
)
from crawler.storage.search import SearchQueries
from crawler.storage.sent_messages import SentCopy, SentMessageQueries
from crawler.storage.sources import SourceQueries
from crawler.storage.story_views import (
    MatchFilter,
    MatchRecord,
    StoryPage,
    StoryRecord,
    StorySending,
    StoryViewQueries,
)
from crawler.storage.trends import TrendQueries
from crawler.storage.websub import WebSubQueries, WebSubRecord

__all__ = [
    "LINK_SIGNING_KEY",
    "MAX_ROW_ID",
    "MIGRATIONS",
    "SCHEMA_REVISION",
    "ArticleRecord",
    "ChannelState",
    "DeliveryRecord",
    "FeedItem",
    "HeldRule",
    "KnownArticle",
    "ListingPage",
    "MatchFilter",
    "MatchRecord",
    "MutedStory",
    "MutedText",
    "PendingItem",
    "ReaderAnswer",
    "SentCopy",
    "SentStory",
    "Store",
    "StoredArticle",
    "StoryPage",
    "StoryRecord",
    "StorySending",
    "TimeKey",
    "TimeWindow",
    "WebSubRecord",
    "create_database_engine",
    "make_message_id",
    "upgrade_database",
]


class Store(
    SourceQueries,
    ArticleQueries,
    DeliveryQueries,
    LedgerViewQueries,
    ChannelStateQueries,
    SearchQueries,
    ListingQueries,
    StoryViewQueries,
    KeyQueries,
    FeedbackQueries,
    HealthQueries,
    WebSubQueries,
    SentMessageQueries,
    TrendQueries,
):
    """The database, spoken to in domain terms."""
