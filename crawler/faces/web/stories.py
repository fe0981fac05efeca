"""The web UI's working pages on what was found: ``/stories`` (stories with their
outlets, copies, revisions and rules, a page at a time), ``/stories/ID`` (one story
in full, with who was sent it and who is still waiting) and ``/matches`` (matches
filtered by rule, source, recipient, date and sent or pending, copies of one story
grouped under it).

Filters are query parameters, so every view has an address to keep or share; a bad
value is answered 400 with one line saying which and why. Nothing here writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from markupsafe import Markup, escape

from alerts.ranking import score_story
from crawler.faces.web.common import (
    MATCHES_OF_ONE_RULE,
    MATCHES_PER_RULE,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    NO_TIME,
    Reply,
    one_line,
    safe_link,
)
from crawler.faces.web.site import Route
from crawler.storage.store import MAX_ROW_ID, MatchFilter, TimeWindow

if TYPE_CHECKING:
    from collections.abc import Sequence

    from twisted.web.server import Request

    from crawler.faces.web.site import WebUI
    from crawler.storage.store import MatchRecord, StoryPage, StoryRecord, StorySending

STORIES_PER_PAGE = 25
STORY_ID = r"(?P<story_id>[0-9]{1,12})"
STATES = {"any": "sent or pending", "sent": "sent", "pending": "pending"}
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff]"
)
_CURSOR = re.compile(r"(\d{1,20})-(\d{1,10})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class BadParameter(ValueError):
    """A query parameter the page cannot use; its message is shown as it is."""


@dataclass(frozen=True)
class Status:
    """Whether a story went out: its words and its badge's class."""

    text: str
    css: str


class StoryPages:
    """The stories and matches pages, over the site's store, configuration and threads."""

    def __init__(self, site: WebUI) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/stories", self.stories_page),
            Route(f"/stories/{STORY_ID}", self.story_page),
            Route("/matches", self.matches_page),
        ]

    def _refuse(self, current: str, error: BadParameter) -> Reply:
        return self.site.page(
            "web/message.html.j2", "Bad request", current, status=400, message=str(error)
        )

    def _text(self, request: Request, name: str) -> str | None:
        """A filter's value, or None when it is not given; refused with a control
        character (no name holds one, and PostgreSQL refuses a NUL)."""
        value = self.site.arg(request, name).strip()
        if _CONTROL.search(value):
            raise BadParameter(f"{name}: holds a control character")
        return value or None

    # -- /stories ----------------------------------------------------------------------

    async def stories_page(self, request: Request) -> Reply:
        try:
            rule = self._text(request, "rule")
            matched = self.site.arg(request, "matched") == "1"
            after = _cursor(self.site.arg(request, "before"))
        except BadParameter as error:
            return self._refuse("/stories", error)
        page: StoryPage = await self.site.blocking(
            lambda: self.site.store.story_list(
                rule=rule, matched_only=matched, after=after, limit=STORIES_PER_PAGE
            )
        )
        filters = [("rule", rule or ""), ("matched", "1" if matched else "")]
        older = None
        if page.next_key is not None:
            moment, story = page.next_key
            older = "/stories?" + urlencode(
                [*((k, v) for k, v in filters if v), ("before", _encode(moment, story))]
            )
        return self.site.page(
            "web/stories.html.j2",
            "Stories",
            "/stories",
            stories=[self._story_summary(story) for story in page.stories],
            rules=self._rule_choices(rule),
            rule=one_line(rule or "", MAX_TITLE_CHARS),
            matched=matched,
            first_page=after is None,
            first_link="/stories?" + urlencode([(k, v) for k, v in filters if v]),
            older=older,
            per_page=STORIES_PER_PAGE,
        )

    def _story_summary(self, story: StoryRecord) -> dict[str, Any]:
        return {
            "id": story.id,
            "title": one_line(story.title, MAX_TITLE_CHARS) or "(untitled)",
            "outlets": [one_line(outlet, MAX_TITLE_CHARS) for outlet in story.outlets],
            "copies": [self._copy_view(copy) for copy in story.copies],
            "revisions": story.earlier_revisions,
            "rules": [one_line(rule, MAX_TITLE_CHARS) for rule in story.rules],
            "last_seen": self.site.when(story.last_seen),
            "status": _sent(story),
        }

    def _copy_view(self, copy: Any) -> dict[str, Any]:
        return {
            "id": copy.article_id,
            "title": one_line(copy.title, MAX_TITLE_CHARS) or "(untitled)",
            "link": safe_link(copy.url),
            "url": one_line(copy.url, MAX_URL_CHARS),
            "source": one_line(copy.source, MAX_TITLE_CHARS) or NO_TIME,
            "published": self.site.when(copy.published_at),
            "fetched": self.site.when(copy.fetched_at),
            "revision": copy.revision,
        }

    # -- /stories/ID -------------------------------------------------------------------

    async def story_page(self, request: Request, story_id: str) -> Reply:
        wanted = int(story_id)
        story: StoryRecord | None = (
            await self.site.blocking(self.site.store.story_record, wanted)
            if 0 < wanted <= MAX_ROW_ID
            else None
        )
        if story is None:
            return self.site.page(
                "web/message.html.j2",
                "Story not found",
                "/stories",
                status=404,
                message="No stored story has this number (retention may have removed it).",
            )
        sources = {copy.article_id: copy.source for copy in story.copies}
        return self.site.page(
            "web/story.html.j2",
            f"Story: {one_line(story.title, MAX_TITLE_CHARS) or '(untitled)'}",
            "/stories",
            story=self._story_summary(story),
            first_seen=self.site.when(story.first_seen),
            revisions=[
                {
                    "source": one_line(sources.get(text.article_id, ""), MAX_TITLE_CHARS),
                    "revision": text.revision,
                    "title": one_line(text.title, MAX_TITLE_CHARS) or "(untitled)",
                    "fetched": self.site.when(text.fetched_at),
                }
                for text in story.revisions
            ],
            matches=[
                {
                    "rule": one_line(match.rule, MAX_TITLE_CHARS),
                    "source": one_line(sources.get(match.article_id, ""), MAX_TITLE_CHARS),
                    "terms": ", ".join(one_line(term, 100) for term in match.terms),
                    "matched": self.site.when(match.matched_at),
                }
                for match in story.matches
            ],
            sent=_sent(story),
            readers=self._readers(story),
            sendings=[
                {
                    "recipient": one_line(sending.recipient, MAX_TITLE_CHARS),
                    "channel": one_line(sending.channel, MAX_TITLE_CHARS),
                    "kind": sending.kind,
                    "source": one_line(sources.get(sending.article_id, ""), MAX_TITLE_CHARS),
                    "revision": sending.revision,
                    "state": _sending_state(sending),
                    "created": self.site.when(sending.created_at),
                    "sent": self.site.when(sending.sent_at),
                }
                for sending in story.sendings
            ],
        )

    def _readers(self, story: StoryRecord) -> list[dict[str, Any]]:
        """Each configured reader of a rule the story matched: sent it, queued, or
        still to get it in their next digest."""
        rules = set(story.rules)
        readers = []
        for recipient in self.site.config.all_recipients():
            theirs = [rule for rule in recipient.rules if rule in rules]
            if not theirs:
                continue
            mine = [s for s in story.sendings if s.recipient.lower() == recipient.email.lower()]
            readers.append(
                {
                    "email": one_line(recipient.email, MAX_TITLE_CHARS),
                    "rules": ", ".join(one_line(rule, MAX_TITLE_CHARS) for rule in theirs),
                    "status": story_status(mine, name_readers=False),
                }
            )
        return readers

    # -- /matches ----------------------------------------------------------------------

    async def matches_page(self, request: Request) -> Reply:
        try:
            wanted, form = self._match_filter(request)
        except BadParameter as error:
            return self._refuse("/matches", error)
        one_rule = len(wanted.rules) == 1
        per_rule = MATCHES_OF_ONE_RULE if one_rule else MATCHES_PER_RULE
        now = datetime.now(UTC)
        nobody = form["recipient"] and not wanted.rules  # a reader of no rule at all

        def read() -> tuple[list[tuple[MatchRecord, float, str, str]], dict[int, Any]]:
            if nobody:
                return [], {}
            # Scoring reads every body (about a millisecond each, up to 2,000 of
            # them): in the web UI's thread, never on the reactor's.
            rows = []
            for match in self.site.store.filtered_matches(wanted, per_rule):
                score = score_story(
                    title=match.title,
                    body=match.body,
                    terms=match.terms,
                    outlets=match.outlets,
                    published=match.published_at,
                    now=now,
                )
                factors = f"{score.relevance:.3g} × {score.prominence:.3g} × {score.freshness:.3g}"
                rows.append((match, score.total, score.explain(), factors))
            sendings = self.site.store.story_sendings([row[0].story_id for row in rows])
            return rows, sendings

        rows, sendings = await self.site.blocking(read)
        sections = self._match_sections(rows, sendings, wanted.recipient)
        return self.site.page(
            "web/matches.html.j2",
            "Matches",
            "/matches",
            sections=sections,
            per_rule=per_rule,
            form=form,
            filtered=any(form.values()),
            reader=one_line(form["recipient"], MAX_TITLE_CHARS),
            choices={
                "rules": self._rule_choices(form["rule"] or None),
                "sources": _choices(
                    [source.name for source in self.site.config.sources], form["source"]
                ),
                "recipients": _choices(
                    [r.email for r in self.site.config.all_recipients()], form["recipient"]
                ),
                "states": list(STATES.items()),
            },
            zone=self.site.zone.key,
        )

    def _match_filter(self, request: Request) -> tuple[MatchFilter, dict[str, str]]:
        """The filter the query string asks for, and its values for the form."""
        rule = self._text(request, "rule")
        source = self._text(request, "source")
        recipient = self._text(request, "recipient")
        state = self.site.arg(request, "state").strip() or "any"
        if state not in STATES:
            raise BadParameter(f"state: {one_line(state, 40)!r} is none of any, sent, pending")
        since = self._day(request, "since")
        until = self._day(request, "until")
        if since and until and until < since:
            raise BadParameter("until: the day is before since's")
        rules: tuple[str, ...] = (rule,) if rule else ()
        if recipient is not None:
            config = self.site.config
            try:
                reader = config.recipient(recipient)
            except KeyError:
                raise BadParameter(
                    f"recipient: no recipient has the address {one_line(recipient, 100)!r}"
                ) from None
            recipient = reader.email
            rules = tuple(r for r in reader.rules if not rule or r == rule)
        zone = self.site.zone
        window = TimeWindow(
            since=datetime.combine(since, time.min, tzinfo=zone) if since else None,
            until=datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)
            if until
            else None,
        )
        form = {
            "rule": rule or "",
            "source": source or "",
            "recipient": recipient or "",
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
            "state": state if state != "any" else "",
        }
        wanted = MatchFilter(
            rules=rules,
            source=source,
            recipient=recipient,
            window=window,
            state=state,  # type: ignore[arg-type]  # checked against STATES above
        )
        return wanted, form

    def _day(self, request: Request, name: str) -> date | None:
        text = self.site.arg(request, name).strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise BadParameter(
                f"{name}: {one_line(text, 40)!r} is not a day (YYYY-MM-DD)"
            ) from None

    def _match_sections(
        self,
        rows: list[tuple[MatchRecord, float, str, str]],
        sendings: dict[int, list[StorySending]],
        recipient: str | None,
    ) -> list[dict[str, Any]]:
        """A section per rule (in the configuration's order), in it a group per story
        (by its newest match), in the group its copies' matches."""
        grouped: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for match, total, parts, factors in rows:
            grouped.setdefault(match.rule, {}).setdefault(match.story_id, []).append(
                {
                    "title": one_line(match.title, MAX_TITLE_CHARS) or "(untitled)",
                    "link": safe_link(match.url),
                    "url": one_line(match.url, MAX_URL_CHARS),
                    "source": one_line(match.source, MAX_TITLE_CHARS),
                    "published": self.site.when(match.published_at),
                    "matched": self.site.when(match.matched_at),
                    "terms": ", ".join(one_line(term, 100) for term in match.terms),
                    "score": f"{total:.3g}",
                    "score_parts": parts,
                    "score_factors": factors,
                }
            )
        order = {rule: n for n, rule in enumerate(self.site.config.rule_names())}
        sections = []
        for rule, stories in sorted(
            grouped.items(), key=lambda item: (order.get(item[0], len(order)), item[0])
        ):
            groups = []
            for story, entries in stories.items():
                carried = sendings.get(story, [])
                if recipient is not None:
                    carried = [s for s in carried if s.recipient == recipient]
                groups.append({"story": story, "entries": entries, "status": story_status(carried)})
            sections.append(
                {
                    "rule": one_line(rule, MAX_TITLE_CHARS),
                    "groups": groups,
                    "count": sum(len(entries) for entries in stories.values()),
                }
            )
        return sections

    def _rule_choices(self, chosen: str | None) -> list[dict[str, Any]]:
        return _choices(self.site.config.rule_names(), chosen or "")


def story_status(sendings: Sequence[StorySending], *, name_readers: bool = True) -> Status:
    """Sent (to whom), waiting in a delivery not yet accepted, or pending."""
    sent = [s for s in sendings if s.sent_at is not None]
    if sent:
        readers = ", ".join(dict.fromkeys(one_line(s.recipient, 100) for s in sent))
        return Status(f"sent to {readers}" if name_readers else "sent", "ok")
    queued = [s for s in sendings if s.failed_at is None]
    if queued:
        readers = ", ".join(dict.fromkeys(one_line(s.recipient, 100) for s in queued))
        return Status(f"queued for {readers}" if name_readers else "queued", "pending")
    return Status("pending", "idle")


def _sent(story: StoryRecord) -> Status:
    """A story no rule matched is for nobody: not "pending"."""
    if not story.matches and not story.sendings:
        return Status("no rule matched", "idle")
    return story_status(story.sendings)


def _sending_state(sending: StorySending) -> Status:
    if sending.sent_at is not None:
        return Status("sent", "ok")
    if sending.failed_at is not None:
        return Status("refused, not retried", "failing")
    return Status("waiting to be sent", "pending")


def _choices(names: list[str], chosen: str) -> list[dict[str, Any]]:
    """A select's options: the configured names, and the chosen one too when it is
    not (a rule removed since a digest linked to it). The value is the name exactly
    (it is what the filter compares), its invisible and control characters written
    as character references so that none is in the page; the label is cut to a line."""
    if chosen and chosen not in names:
        names = [*names, chosen]
    return [
        {
            "value": _attribute(name),
            "label": one_line(name, MAX_TITLE_CHARS),
            "selected": name == chosen,
        }
        for name in names
    ]


def _attribute(text: str) -> Markup:
    """``text`` escaped, its invisible and control characters as character references."""
    pieces = []
    position = 0
    for found in _INVISIBLE.finditer(text):
        pieces.append(escape(text[position : found.start()]))
        pieces.append(Markup("&#x{:x};").format(ord(found.group())))
        position = found.end()
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


def _encode(moment: datetime, story: int) -> str:
    """A page's position as the address carries it: microseconds since 1970, story."""
    return f"{(moment - _EPOCH) // _MICROSECOND}-{story}"


def _cursor(text: str) -> tuple[datetime, int] | None:
    if not text:
        return None
    found = _CURSOR.fullmatch(text)
    if found is None or int(found.group(2)) > MAX_ROW_ID:
        raise BadParameter("before: not a position in the list; take it from the Older link")
    try:
        return _EPOCH + int(found.group(1)) * _MICROSECOND, int(found.group(2))
    except OverflowError:
        raise BadParameter(
            "before: not a position in the list; take it from the Older link"
        ) from None
