"""Layer 3, stages: match, digest and deliver (watch rules, digest building and
rendering, the delivery ledger's claims, email delivery, and the channels beside
email: signed webhooks, chat and push apps through Apprise, private Atom feeds).

May import: crawler.storage, crawler.domain.
Never spiders: the two stages are independent of each other.
"""
