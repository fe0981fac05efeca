"""``newswatch status`` as tables on a terminal.

The tables keep to the terminal's width (80 columns is the common case): a table
drops its least needed columns until it fits, and long texts (a source's last error,
a channel's) follow their table one line each, cut to the width. Values such as
times are never cut: a column is dropped whole instead. ``--wide`` shows every
column, whatever the width. A table that shows a schedule's time zone shows its
times in that zone; the others say "times UTC" in their title.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.cells import cell_len

from crawler.domain.wording import counted

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import Console
    from rich.table import Table

# The narrowest width the tables are laid out for; a narrower terminal wraps them.
MIN_WIDTH = 40
# Names (sources, recipients, channels) are wrapped only past this many characters:
# till then the table drops a column rather than break a name.
NAME_FLOOR = 30


@dataclass(frozen=True)
class Column:
    """One column of a table: its header, how to show a row in it, and whether it may
    be dropped to fit the width (``drop`` orders them: 1 goes first)."""

    header: str
    value: Callable[[dict[str, Any]], str]
    drop: int = 0  # 0: always shown
    numeric: bool = False
    whole: bool = False  # never wrapped nor cut (times, counts)
    # Wrapped no narrower than this (names): a column is dropped first.
    floor: int = 0


def print_status(report: dict[str, Any], *, wide: bool = False) -> None:
    """The status report (see ``_status``) as tables: Sources, Poll schedule, Rules,
    Digests, Channels, and the scale-out line."""
    from rich.console import Console

    console = Console(width=max(shutil.get_terminal_size().columns, MIN_WIDTH))
    now = datetime.now(UTC)
    _print_sources(console, report["sources"], now, wide=wide)
    planned = [row for row in report["sources"] if row["configured"] and row["poll_reason"]]
    if planned:
        _print_table(
            console,
            "Poll schedule (times UTC)",
            planned,
            [
                Column("source", lambda row: row["name"], floor=NAME_FLOOR),
                Column("next poll", lambda row: _when(row["next_poll_at"], now, wide), whole=True),
                Column("interval and why", lambda row: row["poll_reason"]),
            ],
            wide=wide,
        )
    _print_table(
        console,
        "Rules",
        report["rules"],
        [
            Column("rule", lambda rule: rule["name"]),
            Column("matches", lambda rule: str(rule["matches"]), numeric=True, whole=True),
            Column("delivery", lambda rule: rule["alert"]),
        ],
        wide=wide,
    )
    _print_digests(console, report["digests"], now, wide=wide)
    _print_channels(console, report["channels"], now, wide=wide)
    if report["unsent"]:
        console.print(f"Unsent, waiting for a retry: {report['unsent']}")
    if "cluster" in report:
        cluster = report["cluster"]
        if "error" in cluster:
            console.print(f"Scale-out: Redis did not answer: {cluster['error']}", markup=False)
        else:
            console.print(
                f"Scale-out: active scheduler {cluster['leader'] or '— (none)'}; "
                f"{counted(len(cluster['workers']), 'worker')}; "
                f"{counted(cluster['poll_jobs_waiting'], 'poll job')} and "
                f"{counted(cluster['requests_queued'], 'request')} queued",
                markup=False,
            )


def _print_sources(
    console: Console, sources: list[dict[str, Any]], now: datetime, *, wide: bool
) -> None:
    rows = []
    for row in sources:
        state = row["state"] or row["status"]
        if state == "ok" and row["consecutive_failures"]:
            state = "ok, retrying"  # failed lately, not yet for long enough to be failing
        why = (
            row["last_error"]
            if state.startswith("ok")
            else (row["state_reason"] or row["last_error"])
        )
        rows.append(
            {
                **row,
                "shown_state": state + ("" if row["configured"] else " (not configured)"),
                "why": _one_line(why or ""),
            }
        )
    columns = [
        Column("source", lambda row: row["name"], floor=NAME_FLOOR),
        Column("kind", lambda row: row["kind"], drop=1),
        Column("state", lambda row: row["shown_state"]),
        Column("last poll", lambda row: _when(row["last_polled_at"], now, wide), whole=True),
        Column(
            "last success", lambda row: _when(row["last_success_at"], now, wide), drop=2, whole=True
        ),
        Column("articles", lambda row: str(row["articles"]), drop=4, numeric=True, whole=True),
        Column(
            "failures",
            lambda row: str(row["consecutive_failures"]),
            drop=3,
            numeric=True,
            whole=True,
        ),
    ]
    if wide:
        columns.append(Column("why / last error", lambda row: row["why"]))
    _print_table(console, "Sources (times UTC)", rows, columns, wide=wide)
    if not wide:
        _print_long_texts(
            console,
            "Why, or the last error, of each source:",
            [(row["name"], row["why"]) for row in rows if row["why"]],
        )


def _print_digests(
    console: Console, digests: list[dict[str, Any]], now: datetime, *, wide: bool
) -> None:
    def when(digest: dict[str, Any], key: str) -> str:
        return _when(digest[key], now, wide, zone=ZoneInfo(digest["timezone"]))

    _print_table(
        console,
        "Digests (times in the schedule's zone)",
        digests,
        [
            Column("recipient", lambda digest: digest["recipient"], floor=NAME_FLOOR),
            Column("schedule", lambda digest: digest["schedule"], drop=2),
            Column("last", lambda digest: when(digest, "last"), drop=1, whole=True),
            Column("next", lambda digest: when(digest, "next"), whole=True),
        ],
        wide=wide,
    )


def _print_channels(
    console: Console, channels: list[dict[str, Any]], now: datetime, *, wide: bool
) -> None:
    """The Channels table; each channel's last error (a long line: it often quotes a
    URL) follows the table, one line each, unless ``wide``."""
    if not channels:
        console.print("Channels: none (no recipients)")
        return
    columns = [
        Column("channel", lambda channel: channel["name"], floor=NAME_FLOOR),
        Column("kind", lambda channel: channel["kind"] or "removed", drop=1),
        Column("readers", lambda ch: str(len(ch["recipients"])), drop=2, numeric=True, whole=True),
        Column("last sent", lambda channel: _when(channel["last_sent_at"], now, wide), whole=True),
        Column("pending", lambda channel: str(channel["pending"]), numeric=True, whole=True),
        Column("failed", lambda channel: str(channel["failed"]), drop=3, numeric=True, whole=True),
        Column(
            "last error",
            lambda channel: (
                _when(channel["last_error_at"], now, wide) if channel["last_error"] else ""
            ),
            drop=4,
            whole=True,
        ),
    ]
    errors = [(channel["name"], _one_line(channel["last_error"] or "")) for channel in channels]
    if wide:
        columns.append(
            Column("error message", lambda channel: _one_line(channel["last_error"] or ""))
        )
    _print_table(console, "Channels (times UTC)", channels, columns, wide=wide)
    if not wide:
        _print_long_texts(
            console, "Last error of each channel:", [(name, e) for name, e in errors if e]
        )


def _print_table(
    console: Console,
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    wide: bool,
) -> None:
    """Print ``rows`` as a table with ``columns``. Unless ``wide``, the droppable
    columns are dropped (in their order) until the table fits the console's width,
    and the wrappable ones are narrowed (widest first, never below their longest
    word or their floor); ``wide`` shows every column at its full width, past the
    console's if need be."""
    cells = {column: [column.value(row) for row in rows] for column in columns}
    shown = list(columns)
    if wide:
        widths = [_natural(column, cells[column]) for column in shown]
        console.width = max(console.width, sum(widths) + GAP * (len(widths) - 1))
    else:
        droppable = sorted((c for c in columns if c.drop), key=lambda c: c.drop)
        while droppable and _total(shown, cells, _narrowest) > console.width:
            shown.remove(droppable.pop(0))
        widths = _fit(shown, cells, console.width)
    table = _table(title, shown, widths)
    for index in range(len(rows)):
        table.add_row(*(cells[column][index] for column in shown))
    console.print(table)


# The space between two columns (a cell's padding on each side).
GAP = 2


def _natural(column: Column, values: Sequence[str]) -> int:
    return max(cell_len(text) for text in [column.header, *values])


def _narrowest(column: Column, values: Sequence[str]) -> int:
    """How narrow a column can be: a value shown whole at its width, a text no
    narrower than its longest word (a name: its floor)."""
    natural = _natural(column, values)
    if column.whole:
        return natural
    longest_word = max(
        cell_len(word) for text in [column.header, *values] for word in text.split() or [""]
    )
    return min(natural, max(longest_word if not column.floor else column.floor, 1))


def _total(
    columns: Sequence[Column],
    cells: dict[Column, list[str]],
    width_of: Callable[[Column, Sequence[str]], int],
) -> int:
    return sum(width_of(column, cells[column]) for column in columns) + GAP * (len(columns) - 1)


def _fit(columns: Sequence[Column], cells: dict[Column, list[str]], width: int) -> list[int]:
    """Each column's width so that the table fits ``width`` if it can: the widest
    narrowable column gives up a character at a time."""
    widths = [_natural(column, cells[column]) for column in columns]
    floors = [_narrowest(column, cells[column]) for column in columns]
    excess = sum(widths) + GAP * (len(widths) - 1) - width
    while excess > 0:
        narrowable = [i for i, (w, f) in enumerate(zip(widths, floors, strict=True)) if w > f]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def _table(title: str, columns: Sequence[Column], widths: Sequence[int]) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title_justify="left",
    )
    for column, width in zip(columns, widths, strict=True):
        table.add_column(
            column.header,
            justify="right" if column.numeric else "left",
            no_wrap=column.whole,
            overflow="fold",
            width=width,
        )
    return table


def _print_long_texts(console: Console, heading: str, texts: list[tuple[str, str]]) -> None:
    """``name: text`` lines under a table, each cut to the console's width."""
    if not texts:
        return
    console.print(heading)
    width = console.width
    for name, text in texts:
        line = f"  {name}: {text}"
        console.print(line if len(line) <= width else line[: width - 1] + "…", markup=False)


def _when(moment: datetime | None, now: datetime, wide: bool, zone: tzinfo = UTC) -> str:
    """A time in ``zone``, to the minute: the date with its year when ``wide`` or in
    another year than now, the zone's name when it is not UTC."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone)
    shape = (
        "%m-%d %H:%M" if not wide and local.year == now.astimezone(zone).year else "%Y-%m-%d %H:%M"
    )
    return local.strftime(shape) + ("" if zone is UTC else local.strftime(" %Z"))


def _one_line(text: str) -> str:
    """``text`` with its runs of white space (new lines too) as single spaces."""
    return " ".join(text.split())
