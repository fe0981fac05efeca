"""The Alembic environment: the only way newswatch's tables are created or changed.

Layer 2, storage (part of crawler.storage). May import: crawler.storage,
crawler.domain.
"""
