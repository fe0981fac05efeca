"""The links in a message that answer it (docs/feedback.md): per story *more like
this*, *not relevant* and *mute this story*; per rule *pause for a week* and
*unsubscribe*; the RFC 8058 one-click unsubscribe of the whole message; the
reader's own page; and the message itself in the browser ("view in browser").

Each link is a token signed with itsdangerous (HMAC-SHA256, with its time), under
``web.secret_env``'s key or else the service's own key in the database, which every
process of a cluster shares and which survives restarts. A token names its reader
by an HMAC of their address (no address in a URL), and stops working after
``feedback.link_ttl``. Links exist only when ``web.public_url`` says where the
reader can reach the web UI.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, URLSafeTimedSerializer

from alerts.render import ActionLink
from crawler.storage.feedback import LESS, MORE, MUTE, PAUSE, UNSUBSCRIBE, story_key
from crawler.storage.store import LINK_SIGNING_KEY, ReaderAnswer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alerts.render import DigestEntry, DigestSection
    from crawler.domain.config import Config, Recipient
    from crawler.storage.store import Store

PAUSE_FOR = timedelta(days=7)
READER = "reader"  # the reader's page: not an answer, and not one-time
ONE_CLICK = "one-click"  # RFC 8058: the List-Unsubscribe URL, all the message's rules
ACT_PATH = "/act/"
ONE_CLICK_PATH = "/unsubscribe/"
READER_PATH = "/reader/"
VIEW_PATH = "/view/"  # a sent message in the browser (crawler/faces/web/sent.py)
MAX_TITLE_IN_LINK = 120
_SALT = "newswatch reader link"
_CSRF_SALT = "newswatch reader form"
_VIEW_SALT = "newswatch sent message"
CSRF_TTL = timedelta(hours=2)  # how long a confirmation page's form may wait
ENTRY_LABELS = {MORE: "More like this", LESS: "Not relevant", MUTE: "Mute this story"}
SECTION_LABELS = {PAUSE: "Pause for a week", UNSUBSCRIBE: "Unsubscribe"}


def signing_key(config: Config, store: Store) -> bytes:
    """The key that signs readers' links: ``web.secret_env``'s value when set, else
    the service's own ``link-signing`` key in the database."""
    secret = config.web.secret()
    return secret.encode() if secret else store.service_key(LINK_SIGNING_KEY)


def token_id(token: str) -> str:
    """What the ledger of used links keeps of a token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


def reader_tag(key: bytes, address: str) -> str:
    """Who a link is for, without their address: an HMAC of it under ``key``."""
    message = f"newswatch reader\n{address.lower()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:24]


@dataclass(frozen=True)
class Claim:
    """What a valid token says: whose it is and what it asks for (``answer.action``
    is one of the actions, ``one-click`` or ``reader``)."""

    token: str
    answer: ReaderAnswer
    recipient: Recipient

    @property
    def token_id(self) -> str:
        return token_id(self.token)

    @property
    def one_time(self) -> bool:
        return self.answer.action != READER


class LinkSigner:
    """Makes and reads the tokens of readers' links under one key."""

    def __init__(self, key: bytes, ttl: timedelta) -> None:
        self._key = key
        self.ttl = ttl
        self._tokens = URLSafeTimedSerializer(
            key, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )
        self._forms = URLSafeTimedSerializer(
            key, salt=_CSRF_SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )
        self._views = URLSafeTimedSerializer(
            key, salt=_VIEW_SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def make(self, action: str, address: str, **fields: Any) -> str:
        payload = {"a": action, "r": reader_tag(self._key, address)}
        payload.update({name: value for name, value in fields.items() if value is not None})
        return self._tokens.dumps(payload)

    def read(self, token: str, recipients: Sequence[Recipient]) -> Claim | None:
        """The claim of ``token``; None when it is tampered with, expired, or names
        no configured reader."""
        try:
            payload = self._tokens.loads(token, max_age=int(self.ttl.total_seconds()))
        except BadData:
            return None
        if not isinstance(payload, dict):
            return None
        tag = str(payload.get("r", ""))
        found = None
        for recipient in recipients:
            if hmac.compare_digest(reader_tag(self._key, recipient.email), tag):
                found = recipient
        if found is None:
            return None
        try:
            answer = ReaderAnswer(
                action=str(payload["a"]),
                recipient=found.email,
                rules=tuple(str(rule) for rule in payload.get("u", ())),
                story_id=_integer(payload.get("s")),
                article_id=_integer(payload.get("i")),
                title=str(payload.get("t", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return Claim(token, answer, found)

    def view_token(self, delivery_id: int, address: str) -> str:
        """The token of a "view in browser" link: one delivery, for its reader."""
        return self._views.dumps({"d": delivery_id, "r": reader_tag(self._key, address)})

    def read_view(self, token: str) -> tuple[int, str] | None:
        """The delivery a view token names and its reader's tag (``is_for`` checks
        it); None when the token is tampered with or expired."""
        try:
            payload = self._views.loads(token, max_age=int(self.ttl.total_seconds()))
            return int(payload["d"]), str(payload["r"])
        except (BadData, KeyError, TypeError, ValueError):
            return None

    def is_for(self, tag: str, address: str) -> bool:
        """True when a token's reader ``tag`` names ``address``."""
        return hmac.compare_digest(reader_tag(self._key, address), tag)

    def form_token(self, token: str) -> str:
        """The hidden field of a confirmation page's form: bound to the link's token
        and to the time the page was made."""
        return self._forms.dumps(token_id(token))

    def form_ok(self, token: str, offered: str) -> bool:
        try:
            bound = self._forms.loads(offered, max_age=int(CSRF_TTL.total_seconds()))
        except BadData:
            return False
        return isinstance(bound, str) and hmac.compare_digest(bound, token_id(token))


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


class ReaderLinks:
    """The links of one message to one reader."""

    def __init__(self, root: str, signer: LinkSigner, address: str) -> None:
        self.root = root.rstrip("/")
        self.signer = signer
        self.address = address

    def _url(self, path: str, action: str, **fields: Any) -> str:
        return f"{self.root}{path}{self.signer.make(action, self.address, **fields)}"

    def entry_actions(self, rule: str, entry: DigestEntry) -> tuple[ActionLink, ...]:
        if entry.article_id is None:
            return ()
        story = story_key(entry.story_id, entry.article_id)
        title = entry.title[:MAX_TITLE_IN_LINK]
        return tuple(
            ActionLink(
                action,
                label,
                self._url(ACT_PATH, action, u=[rule], s=story, i=entry.article_id, t=title),
            )
            for action, label in ENTRY_LABELS.items()
        )

    def section_actions(self, rule: str) -> tuple[ActionLink, ...]:
        return tuple(
            ActionLink(action, label, self._url(ACT_PATH, action, u=[rule]))
            for action, label in SECTION_LABELS.items()
        )

    def one_click(self, rules: Sequence[str]) -> str:
        """The RFC 8058 List-Unsubscribe URL: every rule of this message."""
        return self._url(ONE_CLICK_PATH, ONE_CLICK, u=list(rules))

    def reader_page(self) -> str:
        return self._url(READER_PATH, READER)

    def view_page(self, delivery_id: int) -> str:
        """The "view in browser" link of one delivery: the message as it was sent."""
        return f"{self.root}{VIEW_PATH}{self.signer.view_token(delivery_id, self.address)}"


def reader_links(
    store: Store, config: Config, address: str, key: bytes | None = None
) -> ReaderLinks | None:
    """The links of a message to ``address``; None without ``web.public_url``."""
    if config.web.public_url is None:
        return None
    signer = LinkSigner(key or signing_key(config, store), config.feedback.link_ttl)
    return ReaderLinks(str(config.web.public_url), signer, address)


def with_actions(
    sections: Sequence[DigestSection], links: ReaderLinks | None
) -> list[DigestSection]:
    """``sections`` with their entries' and their own answer links (as they were
    without ``links``). An entry's answers name the rule it stands under (in the
    opening "Top stories" block, its own rule's); that block is no rule, so it has
    no pause or unsubscribe links of its own."""
    if links is None:
        return list(sections)
    return [
        replace(
            section,
            entries=tuple(
                replace(entry, actions=links.entry_actions(entry.rule or section.rule, entry))
                for entry in section.entries
            ),
            actions=() if section.top else links.section_actions(section.rule),
        )
        for section in sections
    ]


def pause_until(now: datetime) -> datetime:
    return now + PAUSE_FOR
