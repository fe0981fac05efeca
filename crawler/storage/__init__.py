"""Layer 2, storage: the database and the state scale-out processes share.

The ORM models and migrations, the queries (one module per entity: sources and
polls, articles and stories, deliveries and the ledger, each channel's state,
search, the JSON API's paginated listings, WebSub subscriptions) and the Redis and PostgreSQL
coordination of scale-out. All SQL lives here.
May import: crawler.domain.
"""
