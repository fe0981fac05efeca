"""Charts for the web UI's pages, drawn on the server as inline SVG: no script, no
request for anything else, nothing the pages' Content-Security-Policy must allow.

Pure functions of the numbers to show; every piece of text in the drawing is
escaped. Colours come from the page's style sheet by class (``.chart .bar`` and so
on), with presentation attributes as a fallback for an SVG seen on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markupsafe import Markup

from crawler.domain.wording import counted

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

# The drawing's own units (the viewBox); the page scales it to its width.
WIDTH = 640
HEIGHT = 220
LEFT = 40  # room for the count labels
RIGHT = 8
TOP = 28  # room for the legend
BOTTOM = 26  # room for the date labels
BAR_SHARE = 0.7  # of each day's slot; the rest is the gap between bars
DATE_EVERY = 7  # a date label every week, ending on the last day


@dataclass(frozen=True)
class DayCount:
    """One day of a chart: what happened, and what was expected (None: no
    expectation to draw)."""

    day: date
    count: int
    expected: float | None = None


def render_daily_chart(days: Sequence[DayCount], *, title: str, chart_id: str = "chart") -> Markup:
    """A bar per day of ``days`` (oldest first) with its count, and a line with a
    dot per day for the expected count where there is one; ``title`` names the
    chart for screen readers and as its tooltip. ``chart_id`` must be unique in
    the page (the accessible name refers to it)."""
    if not days:
        return Markup("")
    expected = [day.expected for day in days if day.expected is not None]
    top = _nice_ceiling(max([1.0, *(day.count for day in days), *expected]))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / len(days)
    bottom = TOP + plot_height

    def y_of(value: float) -> float:
        return bottom - value / top * plot_height

    parts = [
        Markup(
            '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
            'role="img" aria-labelledby="{}-title {}-desc" font-size="11" fill="#5b6475">'
        ).format(WIDTH, HEIGHT, chart_id, chart_id),
        Markup('<title id="{}-title">{}</title>').format(chart_id, title),
        Markup('<desc id="{}-desc">{}</desc>').format(chart_id, _summary(days)),
    ]
    for tick in (0.0, top / 2, top):
        y = y_of(tick)
        parts.append(
            Markup(
                '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#dde2ea"/>'
                '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>'
            ).format(LEFT, _n(y), WIDTH - RIGHT, _n(y), LEFT - 6, _n(y + 4), _number(tick))
        )
    for index, day in enumerate(days):
        x = LEFT + index * slot + slot * (1 - BAR_SHARE) / 2
        y = y_of(day.count)
        parts.append(
            Markup(
                '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="#1f5fbf">'
                "<title>{}</title></rect>"
            ).format(_n(x), _n(y), _n(slot * BAR_SHARE), _n(bottom - y), _day_text(day))
        )
        if (len(days) - 1 - index) % DATE_EVERY == 0:
            # The last day's label ends at the edge rather than running off it.
            last = index == len(days) - 1
            parts.append(
                Markup('<text class="tick" x="{}" y="{}" text-anchor="{}">{}</text>').format(
                    _n(WIDTH - RIGHT if last else LEFT + (index + 0.5) * slot),
                    HEIGHT - 8,
                    "end" if last else "middle",
                    f"{day.day:%b %d}",
                )
            )
    points = [
        (LEFT + (index + 0.5) * slot, y_of(day.expected), day)
        for index, day in enumerate(days)
        if day.expected is not None
    ]
    if points:
        parts.append(
            Markup(
                '<polyline class="expected" points="{}" fill="none" stroke="#8a5a00" '
                'stroke-width="2"/>'
            ).format(" ".join(f"{_n(x)},{_n(y)}" for x, y, _ in points))
        )
        parts.extend(
            Markup(
                '<circle class="expected-dot" cx="{}" cy="{}" r="2.5" fill="#8a5a00">'
                "<title>{}</title></circle>"
            ).format(_n(x), _n(y), _day_text(day))
            for x, y, day in points
        )
    parts.append(_legend(with_expected=bool(points)))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _legend(*, with_expected: bool) -> Markup:
    legend = Markup(
        '<rect class="swatch" x="{}" y="8" width="10" height="10" fill="#1f5fbf"/>'
        '<text x="{}" y="17">new articles per day</text>'
    ).format(LEFT, LEFT + 14)
    if with_expected:
        legend += Markup(
            '<line class="expected" x1="{}" y1="13" x2="{}" y2="13" stroke="#8a5a00" '
            'stroke-width="2"/><text x="{}" y="17">expected from its rhythm</text>'
        ).format(LEFT + 170, LEFT + 186, LEFT + 192)
    return legend


def _summary(days: Sequence[DayCount]) -> str:
    """The chart in one sentence, for screen readers."""
    total = sum(day.count for day in days)
    text = (
        f"{counted(len(days), 'day')} from {days[0].day.isoformat()} to "
        f"{days[-1].day.isoformat()}: {counted(total, 'new article')}"
    )
    expected = [day.expected for day in days if day.expected is not None]
    if expected:
        text += f"; its rhythm expected {sum(expected):.1f}"
    return text + "."


def _day_text(day: DayCount) -> str:
    text = f"{day.day.isoformat()}: {day.count} new"
    if day.expected is not None:
        text += f" (expected {day.expected:.1f})"
    return text


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (whole
    numbers only: a count axis has no half articles at the top)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(max(step * power, 1))
    return float(10 * power)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def _n(value: float) -> str:
    """A coordinate, short: two decimals at most."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
