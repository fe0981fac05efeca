"""Layer 1, domain: pure values and rules, no I/O.

Configuration schema and loading, URL canonicalisation, the article and item types
that several stages share, dedup keys and MinHash, the query language.
May import: the standard library and third-party packages only (no other layer).
"""
