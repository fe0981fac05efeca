"""A digest or an alert as one chat message: the top stories, each a line with its
title, outlets and link, then "N more" with a link, cut to the channel's length."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.channel import ChannelMessage
    from alerts.render import DigestEntry

# Outlets named on a story's line before "and N more".
MAX_OUTLETS_SHOWN = 3
ELLIPSIS = "…"


def outlets(entry: DigestEntry) -> str:
    """ "Reuters, Al Jazeera and 3 more": the story's outlet first, then the others."""
    names = [entry.source, *(name for name in entry.also_reported_by if name != entry.source)]
    shown = names[:MAX_OUTLETS_SHOWN]
    rest = len(names) - len(shown)
    if rest:
        return f"{', '.join(shown)} and {rest} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def story_line(entry: DigestEntry) -> str:
    label = "updated: " if entry.updated else ""
    also = f" (also matches: {', '.join(entry.also_matches)})" if entry.also_matches else ""
    return f"• {label}{entry.title} ({outlets(entry)}) {entry.url}{also}"


def chat_text(message: ChannelMessage, max_chars: int) -> tuple[str, str]:
    """(title, body) of the message, the body at most ``max_chars`` characters.

    Stories go in the order the digest shows them, section by section; those that do
    not fit, and those the digest itself left out, become one closing line "N more"
    with the message's link to the rest. A single story longer than the limit is cut
    with an ellipsis rather than left out.
    """
    lines: list[str] = []
    left_out = 0
    first: tuple[str, str] | None = None  # the first story, should none fit whole
    for section in message.sections:
        header = f"{section.rule}:"
        entries = [story_line(entry) for entry in section.entries]
        left_out += section.more
        if first is None and entries:
            first = (header, entries[0])
        for index, line in enumerate(entries):
            candidate = [*lines, header, line] if index == 0 else [*lines, line]
            if len("\n".join([*candidate, _more_line(left_out + 1, message)])) > max_chars:
                left_out += len(entries) - index
                break
            lines = candidate
    if not lines and first is not None:
        left_out -= 1
        closing = [_more_line(left_out, message)] if left_out else []
        room = max_chars - len("\n".join([first[0], "", *closing]))
        cut = first[1] if len(first[1]) <= room else first[1][: max(room - 1, 0)] + ELLIPSIS
        lines = [first[0], cut]
    if left_out:
        lines.append(_more_line(left_out, message))
    manage = f"Mute, pause or unsubscribe: {message.manage_url}" if message.manage_url else ""
    if manage and len("\n".join([*lines, manage])) <= max_chars:
        lines.append(manage)  # one link per message: the reader's page has the rest
    body = "\n".join(lines) if lines else message.subject
    if len(body) > max_chars:
        body = body[: max(max_chars - len(ELLIPSIS), 0)] + ELLIPSIS
    return message.subject, body


def _more_line(count: int, message: ChannelMessage) -> str:
    stories = "story" if count == 1 else "stories"
    where = f": {message.more_url}" if message.more_url else ""
    return f"{count} more {stories}{where}"
