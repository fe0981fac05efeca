"""The read-only JSON API for integrators, under ``/api/v1/`` (docs/api.md).

Matches, stories with their copies, sources and the delivery ledger, newest first,
filtered by rule and time and paginated by an opaque cursor: a position (the last
row's time and id) that the store continues after, so a client walking the pages
sees every row once even while new ones are stored. Every answer is JSON, errors
too (``{"error": {"code", "message", "parameter"}}``), except those the route table
gives before a handler runs (401, 405, 421: plain text). Titles, URLs and errors
from the web are JSON strings, never markup.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy.exc import SQLAlchemyError

from crawler.domain.urls import redact_text
from crawler.faces.web.common import JSON, Reply, one_line
from crawler.faces.web.site import Route
from crawler.storage.store import MAX_ROW_ID, TimeWindow

if TYPE_CHECKING:
    from twisted.web.server import Request

    from crawler.faces.web.site import WebUI
    from crawler.storage.store import ListingPage, TimeKey

logger = logging.getLogger(__name__)

VERSION = "v1"
ROOT = "/api/v1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_RULES = 50
MAX_CURSOR_CHARS = 2000
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f]")
# Story ids are database integers: a longer number is no story (the store says 404).
STORY_ID = r"(?P<story_id>[0-9]{1,12})"

PAGING = {
    "limit": f"rows per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    "cursor": "the position of the next page; take it from `next`, never build it",
}
WINDOW = {
    "since": "ISO 8601 time, inclusive (an offset or Z; without one, UTC)",
    "until": "ISO 8601 time, exclusive",
}
ENDPOINTS = [
    {
        "path": f"{ROOT}/matches",
        "description": "Rule matches, newest first, each with its article.",
        "parameters": {"rule": "a rule's name; repeat it or separate names by commas"}
        | WINDOW
        | PAGING,
    },
    {
        "path": f"{ROOT}/stories",
        "description": "Stories a rule matched (copies of one story grouped), "
        "by the time a copy was last seen, newest first.",
        "parameters": {"rule": "only stories one of these rules matched"} | WINDOW | PAGING,
    },
    {
        "path": f"{ROOT}/stories/{{id}}",
        "description": "One story with its copies and the rules that matched them.",
        "parameters": {},
    },
    {
        "path": f"{ROOT}/sources",
        "description": "The configured sources and how their polls went, by name.",
        "parameters": PAGING,
    },
    {
        "path": f"{ROOT}/deliveries",
        "description": "The delivery ledger, newest first.",
        "parameters": {
            "recipient": "one recipient's address",
            "channel": "one channel's name (email for email)",
            "kind": "digest or alert",
        }
        | WINDOW
        | PAGING,
    },
]


class ApiError(Exception):
    """A request the API answers with a JSON error."""

    def __init__(self, status: int, code: str, message: str, parameter: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.parameter = parameter


# Escaped as Go's encoding/json does: a body a browser sniffs anyway holds no markup.
_MARKUP_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def json_reply(body: Any, status: int = 200) -> Reply:
    # ensure_ascii: every character outside ASCII (U+2028 too) goes as an escape.
    text = json.dumps(body).translate(_MARKUP_ESCAPES)
    return Reply(status, text.encode() + b"\n", JSON)


def error_reply(error: ApiError) -> Reply:
    detail: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.parameter is not None:
        detail["parameter"] = error.parameter
    return json_reply({"error": detail}, error.status)


Endpoint = Callable[..., Awaitable[Reply]]


def answers_json(handler: Endpoint) -> Endpoint:
    """``handler``'s errors as JSON: a bad request, or a database that does not answer."""

    @wraps(handler)
    async def wrapper(self: Api, request: Request, **params: str) -> Reply:
        try:
            return await handler(self, request, **params)
        except ApiError as error:
            return error_reply(error)
        except SQLAlchemyError as error:
            logger.warning("api: the database did not answer: %s", one_line(str(error), 300))
            return error_reply(
                ApiError(503, "database_unavailable", "the database does not answer; try later")
            )

    return wrapper


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with its offset, e.g. ``2024-02-14T06:01:00+00:00``."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def parse_time(text: str, parameter: str) -> datetime:
    """An ISO 8601 time (a date alone is its midnight); without an offset, UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        hint = " (in a URL, write + as %2B)" if " " in text.strip() else ""
        raise ApiError(
            400,
            "bad_parameter",
            f"{parameter} must be an ISO 8601 time such as 2024-02-14T06:00:00Z{hint}",
            parameter,
        ) from None


def parse_limit(text: str) -> int:
    if not text:
        return DEFAULT_LIMIT
    if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT:
        return int(text)
    raise ApiError(
        400, "bad_parameter", f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit"
    )


def encode_cursor(listing: str, position: dict[str, Any]) -> str:
    data = json.dumps({"list": listing, **position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode_cursor(text: str, listing: str) -> dict[str, Any]:
    """The position in ``text``, a cursor of ``listing``; 400 for anything else."""
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("list") != listing:
        raise ApiError(
            400,
            "bad_parameter",
            f"cursor is not a cursor of {ROOT}/{listing}: take it from `next` as it is",
            "cursor",
        )
    return data


def time_key_of(text: str, listing: str) -> TimeKey | None:
    if not text:
        return None
    data = decode_cursor(text, listing)
    moment, row = data.get("t"), data.get("id")
    try:
        if not isinstance(moment, str) or type(row) is not int or not 0 <= row <= MAX_ROW_ID:
            raise ValueError(moment)
        return parse_time(moment, "cursor"), row
    except (ValueError, ApiError):
        raise damaged_cursor() from None


def checked_text(value: str, parameter: str) -> str:
    """``value`` of a filter; 400 when it holds a control character, which no name
    holds (and PostgreSQL refuses a NUL in a string)."""
    if CONTROL_CHARACTERS.search(value):
        raise ApiError(400, "bad_parameter", f"{parameter} holds a control character", parameter)
    return value


def damaged_cursor() -> ApiError:
    return ApiError(
        400, "bad_parameter", "cursor is damaged: take it from `next` as it is", "cursor"
    )


@dataclass(frozen=True)
class Query:
    """A listing request's filters and paging, as read from the query string."""

    limit: int
    window: TimeWindow
    cursor: str
    rules: tuple[str, ...] = ()

    def filters(self) -> list[tuple[str, str]]:
        """The filters as query parameters, for the next page's URL (a rule each:
        a rule's name may hold a comma)."""
        params = [("rule", rule) for rule in self.rules]
        for name, moment in (("since", self.window.since), ("until", self.window.until)):
            if moment is not None:
                params.append((name, moment.isoformat()))
        return params


class Api:
    """The ``/api/v1/`` routes, over the site's store, configuration and threads."""

    def __init__(self, site: WebUI) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route(ROOT, self.index),
            Route(f"{ROOT}/matches", self.matches),
            Route(f"{ROOT}/stories", self.stories),
            Route(f"{ROOT}/stories/{STORY_ID}", self.story),
            Route(f"{ROOT}/sources", self.sources),
            Route(f"{ROOT}/deliveries", self.deliveries),
            # Last: any other path under the API is a JSON 404, not the HTML page.
            Route(f"{ROOT}/.*", self.not_found),
        ]

    # -- reading a request -------------------------------------------------------

    def _query(self, request: Request, *, by_rule: bool = True, by_time: bool = True) -> Query:
        arg = self.site.arg
        window = TimeWindow()
        if by_time:
            window = TimeWindow(
                *(
                    parse_time(arg(request, name), name) if arg(request, name).strip() else None
                    for name in ("since", "until")
                )
            )
        rules: tuple[str, ...] = ()
        if by_rule:
            configured = set(self.site.config.rule_names())
            names = (
                name.strip()
                for raw in request.args.get(b"rule", [])
                for value in [raw.decode("utf-8", errors="replace")]
                # A configured name is taken whole (it may hold a comma); else a list.
                for name in ([value] if value in configured else value.split(","))
            )
            rules = tuple(dict.fromkeys(checked_text(name, "rule") for name in names if name))[
                :MAX_RULES
            ]
        # Not through arg(), which cuts at MAX_QUERY_CHARS: a source's name can be longer.
        cursor = request.args.get(b"cursor", [b""])[0][:MAX_CURSOR_CHARS]
        return Query(
            parse_limit(arg(request, "limit").strip()),
            window,
            cursor.decode("ascii", errors="replace").strip(),
            rules,
        )

    def _next_url(
        self, listing: str, params: list[tuple[str, str]], limit: int, cursor: str
    ) -> str:
        """The next page's URL: under ``web.public_url`` when set, else from the root."""
        public = self.site.config.web.public_url
        base = str(public).rstrip("/") if public else ""
        query = urlencode([*params, ("limit", str(limit)), ("cursor", cursor)])
        return f"{base}{ROOT}/{listing}?{query}"

    def _listing(
        self,
        listing: str,
        page: ListingPage[Any],
        rows: list[dict[str, Any]],
        query: Query,
        params: list[tuple[str, str]],
        position: Callable[[Any], dict[str, Any]],
    ) -> Reply:
        following = None
        if page.next_key is not None:
            cursor = encode_cursor(listing, position(page.next_key))
            following = self._next_url(listing, params, query.limit, cursor)
        return json_reply({"data": rows, "next": following})

    # -- the endpoints -----------------------------------------------------------

    @answers_json
    async def index(self, request: Request) -> Reply:
        return json_reply(
            {
                "version": VERSION,
                "documentation": "docs/api.md",
                "pagination": "pages of `data`; `next` is the next page's URL, or null",
                "endpoints": ENDPOINTS,
            }
        )

    @answers_json
    async def not_found(self, request: Request) -> Reply:
        raise ApiError(404, "not_found", f"no such endpoint; see {ROOT}/ for the list")

    @answers_json
    async def matches(self, request: Request) -> Reply:
        query = self._query(request)
        after = time_key_of(query.cursor, "matches")
        page = await self.site.blocking(
            lambda: self.site.store.match_page(
                rules=query.rules, window=query.window, after=after, limit=query.limit
            )
        )
        rows = [
            {
                "id": row["id"],
                "rule": row["rule"],
                "matched_at": iso(row["matched_at"]),
                "terms": list(row["terms"] or ()),
                "article": {
                    "id": row["article_id"],
                    "url": row["url"],
                    "title": row["title"],
                    "source": row["source"],
                    "published": iso(row["published_at"]),
                    "story_id": row["story_id"],
                },
            }
            for row in page.rows
        ]
        return self._listing("matches", page, rows, query, query.filters(), _time_position)

    @answers_json
    async def stories(self, request: Request) -> Reply:
        query = self._query(request)
        after = time_key_of(query.cursor, "stories")
        page = await self.site.blocking(
            lambda: self.site.store.story_page(
                rules=query.rules, window=query.window, after=after, limit=query.limit
            )
        )
        rows = [_story(row) for row in page.rows]
        return self._listing("stories", page, rows, query, query.filters(), _time_position)

    @answers_json
    async def story(self, request: Request, story_id: str) -> Reply:
        row = await self.site.blocking(self.site.store.story, int(story_id))
        if row is None:
            raise ApiError(404, "not_found", f"no story has the id {int(story_id)}")
        return json_reply({"data": _story(row)})

    @answers_json
    async def sources(self, request: Request) -> Reply:
        query = self._query(request, by_rule=False, by_time=False)
        after = None
        if query.cursor:
            name = decode_cursor(query.cursor, "sources").get("name")
            if not isinstance(name, str) or CONTROL_CHARACTERS.search(name):
                raise damaged_cursor()
            after = name
        configured = {source.name: source for source in self.site.config.sources}
        page = await self.site.blocking(
            lambda: self.site.store.source_page(list(configured), after=after, limit=query.limit)
        )
        rows = [
            {
                "name": row["name"],
                "kind": row["kind"],
                "url": redact_text(row["url"]),
                "discovered_url": redact_text(row["discovered_url"])
                if row["discovered_url"]
                else None,
                "enabled": configured[row["name"]].enabled,
                "last_poll": iso(row["last_polled_at"]),
                "last_success": iso(row["last_success_at"]),
                "consecutive_failures": row["consecutive_failures"] or 0,
                # Redacted again: a row written before userinfo was kept out of errors.
                "last_error": redact_text(row["last_error"]) if row["last_error"] else None,
                "articles": row["articles"],
            }
            for row in page.rows
        ]
        return self._listing("sources", page, rows, query, [], lambda name: {"name": name})

    @answers_json
    async def deliveries(self, request: Request) -> Reply:
        query = self._query(request, by_rule=False)
        after = time_key_of(query.cursor, "deliveries")
        filters = {
            name: checked_text(value, name)
            for name in ("recipient", "channel", "kind")
            if (value := self.site.arg(request, name).strip())
        }
        page = await self.site.blocking(
            lambda: self.site.store.delivery_page(
                recipient=filters.get("recipient"),
                channel=filters.get("channel"),
                kind=filters.get("kind"),
                window=query.window,
                after=after,
                limit=query.limit,
            )
        )
        rows = [
            {
                "id": row["id"],
                "recipient": row["recipient"],
                "channel": row["channel"],
                "kind": row["kind"],
                "state": _delivery_state(row),
                "created": iso(row["created_at"]),
                "sent": iso(row["sent_at"]),
                "failed": iso(row["failed_at"]),
                "attempts": row["attempts"],
                "articles": row["articles"],
                "last_error": redact_text(row["last_error"]) if row["last_error"] else None,
            }
            for row in page.rows
        ]
        params = [*filters.items(), *query.filters()]
        return self._listing("deliveries", page, rows, query, params, _time_position)


def _time_position(key: TimeKey) -> dict[str, Any]:
    moment, row = key
    return {"t": iso(moment), "id": row}


def _story(row: dict[str, Any]) -> dict[str, Any]:
    articles = row["articles"]
    return {
        "id": row["id"],
        "title": articles[0]["title"] if articles else None,
        "first_seen": iso(row["first_seen"]),
        "last_seen": iso(row["last_seen"]),
        "rules": row["rules"],
        "articles": [
            {
                "id": article["id"],
                "url": article["url"],
                "title": article["title"],
                "source": article["source"],
                "published": iso(article["published_at"]),
            }
            for article in articles
        ],
    }


def _delivery_state(row: dict[str, Any]) -> str:
    if row["sent_at"] is not None:
        return "sent"
    return "failed" if row["failed_at"] is not None else "pending"
