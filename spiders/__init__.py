"""Layer 3, stages: fetch, parse and extract (the Scrapy spiders, middlewares and
pipeline, feed and sitemap parsing, article extraction).

May import: crawler.storage, crawler.domain (and `crawler.__version__`).
Never alerts: the two stages are independent of each other.
"""
