"""The pages readers reach from the links in their messages (docs/feedback.md):
``/act/<token>`` (a vote, a mute, a pause, an unsubscription), ``/unsubscribe/<token>``
(RFC 8058 one-click) and ``/reader/<token>`` (the reader's mutes and pauses).

The token is the credential: signed, timed, naming its reader (alerts/feedback.py).
A GET never changes anything (mail scanners follow links): it shows what a POST
would do, with a form whose hidden field is signed for this token and this page's
time (the CSRF check). A POST acts once; the same link posted again says so and does
nothing. The one-click unsubscribe is the exception: any POST of it leaves the
reader unsubscribed from the message's rules (RFC 8058 wants it idempotent, and a
mailbox provider may replay it after the reader re-subscribed) and says what it
changed. Each page answers to ``web.public_url``'s host only, and each client may
ask ``feedback.rate_limit`` times a minute (a token bucket; 429 past it): an IPv4
address, or an IPv6 address's /64 (``client_network``).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alerts.feedback import (
    ENTRY_LABELS,
    ONE_CLICK,
    READER,
    SECTION_LABELS,
    Claim,
    LinkSigner,
    pause_until,
    signing_key,
)
from alerts.learning import OUTLET, Taste, reader_tastes
from crawler.faces.web.common import TEXT, Reply
from crawler.faces.web.site import READING, Route
from crawler.storage.feedback import ACTIONS, LESS, MORE, MUTE, PAUSE, UNSUBSCRIBE
from crawler.storage.store import ReaderAnswer

if TYPE_CHECKING:
    from twisted.web.server import Request

    from crawler.faces.web.site import WebUI

POSTING = frozenset({b"POST"})
READING_AND_POSTING = READING | POSTING
ONE_CLICK_FIELD = b"List-Unsubscribe"
ONE_CLICK_VALUE = b"One-Click"
CSRF_FIELD = "form"
MAX_CLIENTS = 10_000  # clients the rate limiter remembers; the oldest go first
# A /64 is one IPv6 subnet (the low 64 bits are the interface identifier, RFC 4291)
# and a host may take any address in it (temporary addresses, RFC 8981): one client
# is at least one /64.
IPV6_CLIENT_PREFIX = 64
PAGE = "web/feedback.html.j2"
LINK_PATTERN = r"(?P<token>[A-Za-z0-9_.\-]+)"  # itsdangerous's URL-safe alphabet


def client_network(address: str) -> str:
    """What the rate limit counts a client by: an IPv4 address as it is, an IPv6
    address by its /64 (a client can rotate through its /64 at will), an
    IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer) as its IPv4 address;
    anything else (a Unix socket) as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)


class RateLimiter:
    """A token bucket per client (``client_network``): ``per_minute`` requests at
    once, refilled at that rate. In memory: each process of a cluster counts its own."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, when)
        self._lock = threading.Lock()

    def allow(self, client: str, per_minute: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, then = self._buckets.pop(client, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - then) * per_minute / 60)
            allowed = tokens >= 1
            self._buckets[client] = (tokens - 1 if allowed else tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                del self._buckets[next(iter(self._buckets))]
            return allowed


class Actions:
    """The readers' pages, over the site's store, configuration and threads."""

    def __init__(self, site: WebUI) -> None:
        self.site = site
        self.limiter = RateLimiter()

    def routes(self) -> list[Route]:
        token = LINK_PATTERN
        return [
            Route(rf"/act/{token}", self.act, READING_AND_POSTING, access="public"),
            Route(rf"/act/{token}/undo", self.undo, POSTING, access="public"),
            Route(rf"/unsubscribe/{token}", self.one_click, READING_AND_POSTING, "public"),
            Route(rf"/reader/{token}", self.reader_page, access="public"),
            Route(
                rf"/reader/{token}/(?P<change>unmute|release|pause|unsubscribe|forget)",
                self.reader_change,
                POSTING,
                access="public",
            ),
        ]

    # -- checks shared by every page --------------------------------------------------

    async def _signer(self) -> LinkSigner:
        key = await self.site.blocking(signing_key, self.site.config, self.site.store)
        return LinkSigner(key, self.site.config.feedback.link_ttl)

    async def _claim(
        self, request: Request, token: str, kinds: frozenset[str]
    ) -> tuple[Claim, LinkSigner] | Reply:
        """The token's claim, or the reply that refuses it (429, 403)."""
        address = getattr(request.getClientAddress(), "host", "unknown")
        client = client_network(str(address))
        if not self.limiter.allow(client, self.site.config.feedback.rate_limit):
            return Reply(
                429, b"429 too many requests: try again in a minute\n", TEXT, {"Retry-After": "60"}
            )
        signer = await self._signer()
        config = self.site.config
        claim = signer.read(token, [*config.all_recipients(), *config.channel_recipients()])
        if claim is None or claim.answer.action not in kinds:
            return self._page(
                "This link does not work",
                "The link is wrong or has expired (links work for a limited time). "
                "Nothing was changed.",
                status=403,
            )
        return claim, signer

    def _form_ok(self, request: Request, signer: LinkSigner, claim: Claim) -> bool:
        return signer.form_ok(claim.token, self.site.arg(request, CSRF_FIELD))

    def _page(self, heading: str, message: str, *, status: int = 200, **context: Any) -> Reply:
        context.setdefault("forms", [])
        context.setdefault("quote", "")
        return self.site.page(
            PAGE, heading, "", status=status, heading=heading, message=message, **context
        )

    def _refused_form(self) -> Reply:
        return self._page(
            "This form has expired",
            "The form was not sent from this page, or it waited too long. Nothing was "
            "changed: open the link from your message again.",
            status=403,
        )

    # -- /act/<token> ------------------------------------------------------------------

    async def act(self, request: Request, token: str) -> Reply:
        checked = await self._claim(request, token, ACTIONS)
        if isinstance(checked, Reply):
            return checked
        claim, signer = checked
        used = await self.site.blocking(self.site.store.link_used, claim.token_id)
        form = {"action": "", "label": "", CSRF_FIELD: signer.form_token(token)}
        # Relative, so that the forms work under a web.public_url with a path.
        undo = {**form, "action": f"{token}/undo", "label": "Undo"}
        if request.method != b"POST":
            if used:
                return self._page(
                    "Already done", "This link was used before.", quote=claim.answer.title,
                    forms=[undo],
                )  # fmt: skip
            return self._page(
                _label(claim.answer.action),
                _to_do(claim.answer),
                quote=claim.answer.title,
                forms=[{**form, "label": _label(claim.answer.action)}],
            )
        if not self._form_ok(request, signer, claim):
            return self._refused_form()
        now = datetime.now(UTC)
        answer = _at(claim.answer, now)
        done = await self.site.blocking(self.site.store.record_answer, claim.token_id, answer, now)
        if not done:
            return self._page(
                "Already done",
                "This link was used before; nothing was changed this time.",
                quote=answer.title,
                forms=[undo],
            )
        return self._page("Done", _done(answer), quote=answer.title, forms=[undo])

    async def undo(self, request: Request, token: str) -> Reply:
        checked = await self._claim(request, token, ACTIONS | {ONE_CLICK})
        if isinstance(checked, Reply):
            return checked
        claim, signer = checked
        if not self._form_ok(request, signer, claim):
            return self._refused_form()
        undone = await self.site.blocking(
            self.site.store.undo_answer,
            claim.recipient.email,
            claim.token_id,
            datetime.now(UTC),
        )
        if not undone:
            return self._page("Nothing to undo", "This link's answer was already taken back.")
        return self._page("Undone", "Taken back: it is as if the link had not been used.")

    # -- /unsubscribe/<token> (RFC 8058) ----------------------------------------------

    async def one_click(self, request: Request, token: str) -> Reply:
        checked = await self._claim(request, token, frozenset({ONE_CLICK}))
        if isinstance(checked, Reply):
            return checked
        claim, signer = checked
        rules = ", ".join(claim.answer.rules)
        if request.method != b"POST":
            return self._page(
                "Unsubscribe",
                f"Unsubscribe from {rules}: nothing of these rules will be sent to you "
                "again, on any channel, until you undo it on your page.",
                forms=[
                    {
                        "action": "",
                        "label": "Unsubscribe",
                        ONE_CLICK_FIELD.decode(): ONE_CLICK_VALUE.decode(),
                    }
                ],
            )
        # RFC 8058: the POST itself is the confirmation; its body names the action.
        if request.args.get(ONE_CLICK_FIELD, [b""])[:1] != [ONE_CLICK_VALUE]:
            return Reply(400, b"400 bad request: send List-Unsubscribe=One-Click\n", TEXT)
        # Not one-time like the other links: whatever happened since (a re-subscribe
        # on the reader's page), a one-click POST leaves the reader unsubscribed, and
        # a mailbox provider's replay is no different from the first.
        added = await self.site.blocking(
            self.site.store.unsubscribe_by_link,
            claim.token_id,
            claim.recipient.email,
            claim.answer.rules,
            datetime.now(UTC),
        )
        if not added:
            return self._page(
                "Already unsubscribed",
                f"You were already unsubscribed from {rules}; nothing changed.",
            )
        already = [rule for rule in claim.answer.rules if rule not in added]
        undo = {
            "action": f"../act/{token}/undo",
            "label": "Undo",
            CSRF_FIELD: signer.form_token(token),
        }
        return self._page(
            "Unsubscribed",
            f"You are unsubscribed from {', '.join(added)}"
            + (f" (you already were from {', '.join(already)})." if already else "."),
            forms=[undo],
        )

    # -- /reader/<token> ---------------------------------------------------------------

    async def reader_page(self, request: Request, token: str) -> Reply:
        checked = await self._claim(request, token, frozenset({READER}))
        if isinstance(checked, Reply):
            return checked
        claim, signer = checked
        now = datetime.now(UTC)
        store = self.site.store
        email = claim.recipient.email
        muted = await self.site.blocking(store.muted_stories, email)
        held = await self.site.blocking(store.held_rules, email, now)
        rules = claim.recipient.rules
        learn_after = self.site.config.feedback.learn_after
        tastes = await self.site.blocking(reader_tastes, store, email, rules, learn_after, now)
        form = signer.form_token(token)
        held_names = {hold.rule for hold in held}
        return self.site.page(
            "web/reader.html.j2",
            "Your digest",
            "",
            token=token,
            form=form,
            muted=muted,
            held=held,
            free_rules=[rule for rule in claim.recipient.rules if rule not in held_names],
            tastes=[_taught(tastes[rule]) for rule in rules if rule in tastes],
            when=self.site.when,
        )

    async def reader_change(self, request: Request, token: str, change: str) -> Reply:
        checked = await self._claim(request, token, frozenset({READER}))
        if isinstance(checked, Reply):
            return checked
        claim, signer = checked
        if not self._form_ok(request, signer, claim):
            return self._refused_form()
        store = self.site.store
        email = claim.recipient.email
        now = datetime.now(UTC)
        if change == "unmute":
            story = self.site.arg(request, "story")
            if story.isdigit():
                await self.site.blocking(store.unmute_story, email, int(story), now)
        else:
            rule = self.site.arg(request, "rule")
            if rule not in claim.recipient.rules:
                return Reply(400, b"400 bad request: not one of your rules\n", TEXT)
            if change == "forget":
                await self.site.blocking(store.forget_votes, email, rule, now)
            elif change == "release":
                await self.site.blocking(store.release_rule, email, rule, now)
            else:
                until = pause_until(now) if change == "pause" else None
                await self.site.blocking(store.hold_rule, email, rule, until, now)
        # Post/redirect/get: a reload of the page does not post again. Back to the
        # reader's page at its own address (from /reader/T/pause, "../T" is /reader/T),
        # where the forms' relative actions ("T/unmute") resolve again.
        return Reply(303, b"", TEXT, {"Location": f"../{token}"})


@dataclass(frozen=True)
class _Taught:
    """A rule's taste as the reader's page shows it."""

    rule: str
    summary: str
    up: tuple[str, ...]
    down: tuple[str, ...]


def _taught(taste: Taste, count: int = 6) -> _Taught:
    up, down = taste.strongest(count) if taste.active else ([], [])
    return _Taught(
        taste.rule,
        taste.summary(),
        tuple(_feature(feature) for feature, _ in up),
        tuple(_feature(feature) for feature, _ in down),
    )


def _feature(feature: str) -> str:
    """A word as is; an outlet as "from Sky Sports"."""
    return f"from {feature.removeprefix(OUTLET)}" if feature.startswith(OUTLET) else feature


def _label(action: str) -> str:
    return {**ENTRY_LABELS, **SECTION_LABELS}.get(action, action)


def _at(answer: ReaderAnswer, now: datetime) -> ReaderAnswer:
    """The answer as of ``now``: a pause runs for a week from the click."""
    if answer.action != PAUSE:
        return answer
    return ReaderAnswer(
        PAUSE, answer.recipient, rules=answer.rules, until=pause_until(now), title=answer.title
    )


def _to_do(answer: ReaderAnswer) -> str:
    """What a POST will do, in words (titles are quoted apart, escaped by the page)."""
    rules = ", ".join(answer.rules)
    return {
        MORE: f"Tell newswatch you want more stories like this one under {rules}.",
        LESS: f"Tell newswatch this story is not relevant to {rules}.",
        MUTE: "Mute this story: its copies, revisions and follow-ups will not be sent to you"
        " again.",
        PAUSE: f"Pause {rules} for a week: nothing of it will be sent to you meanwhile.",
        UNSUBSCRIBE: f"Unsubscribe from {rules}: nothing of it will be sent to you again.",
    }[answer.action]


def _done(answer: ReaderAnswer) -> str:
    rules = ", ".join(answer.rules)
    until = f"{answer.until:%Y-%m-%d %H:%M} UTC" if answer.until else ""
    return {
        MORE: f"Noted: more stories like this one under {rules}.",
        LESS: f"Noted: this story is not relevant to {rules}.",
        MUTE: "Muted: this story, its copies, revisions and follow-ups will not be sent to"
        " you again.",
        PAUSE: f"Paused: nothing of {rules} will be sent to you until {until}.",
        UNSUBSCRIBE: f"Unsubscribed: nothing of {rules} will be sent to you again.",
    }[answer.action]
