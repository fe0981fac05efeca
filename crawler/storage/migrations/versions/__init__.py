"""One Alembic revision per schema change, applied in order; a released one is never
edited.

Layer 2, storage (part of crawler.storage). May import: nothing of newswatch (a
revision must describe the schema as it was, not as the models are now).
"""
