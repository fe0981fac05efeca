"""Delivery channels beside email: signed webhooks and chat or push apps through Apprise.

A channel takes one ``ChannelMessage`` (a digest or an alert, as the sections the
email shows) and delivers it, or raises ``ChannelError`` saying whether a retry may
succeed. The message carries its idempotency key, the same on every retry of the
same delivery, so a receiver can drop a repeat.

Layer 3, stages (part of alerts). May import: alerts, crawler.storage,
crawler.domain; never spiders.
"""
