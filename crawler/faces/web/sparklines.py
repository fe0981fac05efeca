"""Sparklines for the status page: a day's count as a bar, a month in a word-sized
inline SVG, drawn on the server (no script, nothing the pages' Content-Security-
Policy must allow).

Pure functions of the numbers: ``spark_bars`` turns counts into bar geometry,
``spark_summary`` into the sentence a screen reader reads (the SVG's <title>), and
``render_sparkline`` into the markup, every piece of text escaped. A day with
nothing draws no bar, only the baseline: a quiet source looks quiet, and a status
page of 10,000 sources stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from markupsafe import Markup

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

# The drawing's size in CSS pixels: a table cell's worth, 4 px a day for 30 days.
SPARK_WIDTH = 120
SPARK_HEIGHT = 24
SPARK_GAP = 1.0  # between bars, so that neighbouring days stay apart
MIN_BAR = 1.0  # the smallest day that had anything is still seen


@dataclass(frozen=True)
class SparkBar:
    """One day's bar in the drawing's units: ``index`` is its day in the series."""

    index: int
    count: int
    x: float
    y: float
    width: float
    height: float


def spark_bars(
    counts: Sequence[int], *, width: float = SPARK_WIDTH, height: float = SPARK_HEIGHT
) -> list[SparkBar]:
    """A bar for each day with a count above 0, scaled so the largest count fills
    ``height``; days share ``width`` equally (an empty series has no bars).
    Negative counts are drawn as 0."""
    if not counts:
        return []
    top = max(counts)
    if top <= 0:
        return []
    slot = width / len(counts)
    bar_width = max(slot - SPARK_GAP, slot / 2)
    bars = []
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        bar_height = max(count / top * height, MIN_BAR)
        bars.append(
            SparkBar(
                index=index,
                count=count,
                x=index * slot + (slot - bar_width) / 2,
                y=height - bar_height,
                width=bar_width,
                height=bar_height,
            )
        )
    return bars


def spark_summary(counts: Sequence[int], first_day: date, noun: tuple[str, str]) -> str:
    """The series in one sentence: "12 articles in 30 days, most 4 on 2026-11-20"
    (the first day of the most, when several tie). ``noun``: singular and plural."""
    days = len(counts)
    total = sum(max(count, 0) for count in counts)
    text = (
        f"{total} {noun[0] if total == 1 else noun[1]} in {days} {'day' if days == 1 else 'days'}"
    )
    if total > 0:
        most = max(counts)
        on = first_day + timedelta(days=list(counts).index(most))
        text += f", most {most} on {on.isoformat()}"
    return text


def render_sparkline(
    counts: Sequence[int], first_day: date, *, noun: tuple[str, str], css_class: str = "spark"
) -> Markup:
    """``counts`` (one a day from ``first_day``, oldest first) as an inline SVG of
    bars on a baseline, named by its summary (role img, <title>). The bars are one
    path, a subpath each (``M x bottom v -height h width v height z``), coloured by
    the SVG's fill: a status page draws 10,000 of these, so each is a few hundred
    bytes, formatted once (its numbers joined as plain text, nothing to escape)."""
    summary = spark_summary(counts, first_day, noun)
    bars = "".join(
        f"M{_n(bar.x)} {SPARK_HEIGHT}v-{_n(bar.height)}h{_n(bar.width)}v{_n(bar.height)}z"
        for bar in spark_bars(counts)
    )
    base = _n(SPARK_HEIGHT - 0.5)
    svg = Markup(
        '<svg class="{}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" '
        'height="{}" role="img" aria-label="{}" fill="#1f5fbf"><title>{}</title>'
        '<line class="base" x1="0" y1="{}" x2="{}" y2="{}" stroke="#dde2ea"/>'
    ).format(
        css_class,
        SPARK_WIDTH,
        SPARK_HEIGHT,
        SPARK_WIDTH,
        SPARK_HEIGHT,
        summary,
        summary,
        base,
        SPARK_WIDTH,
        base,
    )
    if bars:
        svg += Markup('<path class="bars" d="{}"/>').format(bars)
    return svg + Markup("</svg>")


def _n(value: float) -> str:
    """A coordinate, short: two decimals at most."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
