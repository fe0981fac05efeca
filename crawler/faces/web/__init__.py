"""The service's web face: status pages, ``/healthz``, ``/readyz`` and ``/metrics``.

Served by ``twisted.web`` on the service's own reactor (Scrapy's asyncio reactor),
bound to ``web.host:web.port``. Every database call and every scrape of the
database-backed metrics runs in the web UI's own small thread pool, never on the
reactor thread: a slow page never holds up crawling, the health check never waits
behind a batch of article writes on the database thread, and a database that
hangs cannot use up the reactor's pool, which Scrapy needs for DNS lookups.

Pages are rendered server-side from ``alerts/templates/web/*.html.j2`` with the
digest's own Jinja2 environment (autoescaped), with no JavaScript but the
workbench's small progressive enhancement. Everything
from the web (titles, URLs, authors, errors) is escaped, and links are made only
for http(s) URLs. With ``web.token_env`` set, every path but the health checks wants the
token (``Authorization: Bearer …``, ``?token=…``, or the session cookie set after
a good ``?token=``); neither the token, nor the SMTP password, nor a source's
password is ever written into a response. Every path but the health checks also checks
the ``Host`` header, so that a page on another site cannot read these pages
through DNS rebinding: the UI answers to IP addresses, ``localhost``, its bind
address, ``web.allowed_hosts`` and the host of ``web.public_url``, and to any
other name with 421.

Routes (the route table and access checks are in ``site.py``). Pages (``pages.py``):
``/`` status (with 30-day sparklines of each source's new articles and each
rule's matches, ``trends.py`` and ``sparklines.py``), ``/sources/NAME`` (a
source's health, with its chart of new articles per day drawn as inline SVG by
``charts.py``), ``/digests`` (with each message's size and time to send),
``/preview?recipient=EMAIL``, ``/metrics``; ``health.py``: ``/healthz`` (liveness)
and ``/readyz`` (also 503 when no source has succeeded for too long). Stories and
matches (``stories.py``): ``/stories`` (``?rule=NAME``, ``?matched=1``, paged by
``?before=``), ``/stories/ID``, ``/matches`` (filtered by ``rule``, ``source``,
``recipient``, ``since`` and ``until`` days, ``state=sent|pending``). Trying queries
(``workbench.py``): ``/search?q=…`` (the rule language, hits highlighted) and
``/workbench?q=…&rule=NAME&days=N`` (a draft query against a configured rule; the
one page with a script, ``/workbench.js``, which its CSP allows from this site
only). The
read-only JSON API (``api.py``, docs/api.md), behind the same token:
``/api/v1/`` (its index), ``/api/v1/matches``, ``/api/v1/stories``,
``/api/v1/stories/ID``, ``/api/v1/sources``, ``/api/v1/deliveries``; filtered by
``rule``, ``since``, ``until`` (and recipient, channel, kind for deliveries) and
paginated by ``limit`` and ``cursor``, errors as JSON.
The private Atom feeds (``feeds.py``): ``/feeds/<token>``, whose token is their
credential instead of the web token.
The readers' pages (``actions.py``, docs/feedback.md), reached from the links in
their messages, the signed token their credential, answering only to
``web.public_url``'s host and rate-limited per client address:
``/act/<token>`` (GET: a confirmation page; POST with its form token: a vote, a
mute, a pause or an unsubscription, once), ``/act/<token>/undo`` (POST),
``/unsubscribe/<token>`` (RFC 8058: GET a page, POST
``List-Unsubscribe=One-Click`` unsubscribes at once), ``/reader/<token>`` (the
reader's mutes and paused rules) and ``/reader/<token>/unmute|release|pause|unsubscribe``
(POST). Every POST body is capped (413).
Sent messages as they were sent (``sent.py``): ``/view/<token>``, an email's "view
in browser" link (a reader's page, as above), and ``/digests/<id>`` from the
delivery history (behind the web token); ``?format=text`` for the text part.
The WebSub callbacks (``websub.py``), where hubs verify subscriptions (GET) and
deliver feeds (POST, its body capped at ``download_maxsize``): ``/websub/<id>``,
the unguessable id their credential with the delivery's signature, answering only
to ``web.public_url``'s host and rate-limited per client address.

Layer 5, faces (part of crawler.faces). May import: every layer below.
"""

from __future__ import annotations

from crawler.faces.web.common import PREVIEW_CSP, is_allowed_host, parse_search, safe_link
from crawler.faces.web.server import start_web
from crawler.faces.web.site import Route, WebUI

__all__ = [
    "PREVIEW_CSP",
    "Route",
    "WebUI",
    "is_allowed_host",
    "parse_search",
    "safe_link",
    "start_web",
]
