"""Charts as inline SVG, rendered on the server: no script, no network, readable on a phone.

Three shapes are all the console needs: bars (a distribution, counts per
plugin), lines (a score over weeks) and, when a line would be one dot, the
figure itself. A ``viewBox`` lets the browser scale them to the screen's
width; text is escaped like any other markup.

Readable at 390 px (issue 20):

- the drawing is ``WIDTH`` (360) units wide, about what a 390 px phone gives
  a chart, and text is ``FONT`` (12) units, so it never shows below 11 px
  there (the console's CSS caps the width on a desktop so it does not grow
  past 18 px either);
- count axes tick at whole numbers (1, 2, 5, 10, 20, 50... apart), score
  axes at round steps that divide their scale (CES 1, 3, 5, 7);
- bars whose labels would not fit under them (plugin names) are drawn
  sideways, one row per label; a value is written on a bar only where it
  fits;
- a line of a single point is shown as that point's figure and week.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 360, 220
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 36, 36
FONT = 12
#: An average glyph's width in units of the font size (system-ui digits and lower case).
GLYPH = 0.6
ROW = 24  # a sideways bar's row
FIGURE = 64  # a single figure's block
COLORS = ("#2f6fdf", "#d9822b", "#3a9a5b", "#b8457a", "#7a5cc4", "#6b7280")
NICE = (1, 2, 5)


def text_width(text: str, size: float = FONT) -> float:
    return len(text) * size * GLYPH


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, series: Sequence[str] = ()) -> Markup:
    """Bars per label; ``values`` may hold one number per label, or a tuple per label for grouped bars."""
    groups = [tuple(v) if isinstance(v, tuple | list) else (v,) for v in values]
    integer = all(float(x).is_integer() for g in groups for x in g)
    ticks = count_ticks(max((x for g in groups for x in g), default=0), integer=integer)
    width_of_group = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    if any(text_width(label) > width_of_group * 0.95 for label in labels):
        return _sideways_bars(title, labels, groups, ticks, series)
    top = ticks[-1]
    per_bar = width_of_group * 0.8 / max(1, max((len(g) for g in groups), default=1))
    parts = [_frame(title, ticks)]
    for i, (label, group) in enumerate(zip(labels, groups, strict=True)):
        x0 = LEFT + i * width_of_group + width_of_group * 0.1
        for j, value in enumerate(group):
            h = (HEIGHT - TOP - BOTTOM) * (value / top if top else 0)
            x, y = x0 + j * per_bar, HEIGHT - BOTTOM - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(per_bar - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{COLORS[j % len(COLORS)]}"><title>{escape(label)}: {value:g}</title></rect>'
            )
            if text_width(f"{value:g}") <= per_bar - 1:  # only where it fits above its own bar
                parts.append(f'<text x="{x + per_bar / 2 - 1:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                             f'font-size="{FONT}">{value:g}</text>')  # fmt: skip
        parts.append(_x_label(x0 + width_of_group * 0.4, label, i, len(labels), width_of_group))
    parts.append(_legend(series))
    return _svg(title, parts, HEIGHT)


def _sideways_bars(
    title: str, labels: Sequence[str], groups: list[tuple[float, ...]], ticks: list[float], series: Sequence[str]
) -> Markup:
    """One row per label: the label, then its bar(s) and value."""
    label_room = min(max(text_width(label) for label in labels) + 6, WIDTH * 0.45)
    chars = int((label_room - 6) / (FONT * GLYPH))
    x0, room = label_room, WIDTH - label_room - RIGHT - text_width(f"{ticks[-1]:g}") - 6
    per_bar = (ROW - 6) / max(1, max((len(g) for g in groups), default=1))
    parts = [f'<text x="0" y="16" font-size="{FONT + 1}" font-weight="bold">{escape(title)}</text>']
    for i, (label, group) in enumerate(zip(labels, groups, strict=True)):
        y0 = TOP + i * ROW
        shown = label if len(label) <= chars else label[: max(1, chars - 1)] + "…"
        parts.append(f'<text x="{x0 - 6:.1f}" y="{y0 + ROW / 2 + 4:.1f}" text-anchor="end" font-size="{FONT}">'
                     f"<title>{escape(label)}</title>{escape(shown)}</text>")  # fmt: skip
        for j, value in enumerate(group):
            w = room * (value / ticks[-1] if ticks[-1] else 0)
            y = y0 + 3 + j * per_bar
            parts.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(w, 1):.1f}" height="{max(per_bar - 2, 2):.1f}" '
                         f'fill="{COLORS[j % len(COLORS)]}"><title>{escape(label)}: {value:g}</title></rect>'
                         f'<text x="{x0 + w + 4:.1f}" y="{y + per_bar / 2 + 3:.1f}" font-size="{FONT}">'
                         f"{value:g}</text>")  # fmt: skip
    height = TOP + len(labels) * ROW + (20 if len(series) > 1 else 6)
    parts.append(_legend(series, height))
    return _svg(title, parts, height)


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]],
               *, low: float = 0, high: float | None = None, unit: str = "",
               counts: dict[str, Sequence[int]] | None = None) -> Markup:  # fmt: skip
    """One line per series over the labels; a None is a gap (no answers that week).

    A chart whose every series has at most one point shows that point's figure instead (or says
    there is nothing): a line of one dot over twelve weeks reads as nothing. ``counts``: how many
    answers each point stands for, said beside a single figure."""
    points = [(name, i, v) for name, values in series.items() for i, v in enumerate(values) if v is not None]
    if all(sum(1 for v in values if v is not None) <= 1 for values in series.values()):
        return _figures(title, labels, points, unit, counts or {})
    values = [v for _n, _i, v in points]
    ticks = scale_ticks(low, high) if high is not None else count_ticks(max(values, default=0), integer=False)
    low, high = ticks[0], ticks[-1]
    span = (high - low) or 1
    step = (WIDTH - LEFT - RIGHT) / max(1, len(labels) - 1)
    parts = [_frame(title, ticks)]
    for j, (name, line) in enumerate(series.items()):
        color = COLORS[j % len(COLORS)]
        path, pen_down = [], False
        for i, value in enumerate(line):
            if value is None:
                pen_down = False
                continue
            x = LEFT + i * step
            y = HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (value - low) / span
            path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
            pen_down = True
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                         f"<title>{escape(name)} {escape(labels[i])}: {value:g}{unit}</title></circle>")  # fmt: skip
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2"/>')
    for i, label in enumerate(labels):
        parts.append(_x_label(LEFT + i * step, label, i, len(labels), step))
    parts.append(_legend(list(series)))
    return _svg(title, parts, HEIGHT)


def _figures(title: str, labels: Sequence[str], points: list[tuple[str, int, float]], unit: str,
             counts: dict[str, Sequence[int]]) -> Markup:  # fmt: skip
    """The single point of each series as a figure with its week (or: no answers)."""
    parts = [f'<text x="0" y="16" font-size="{FONT + 1}" font-weight="bold">{escape(title)}</text>']
    if not points:
        parts.append(f'<text x="0" y="46" font-size="{FONT}" fill="#61707f">No answers in these weeks.</text>')
        return _svg(title, parts, 60)
    for k, (name, i, value) in enumerate(points):
        y = 56 + k * FIGURE
        n = counts.get(name, [])
        answers = f" · {n[i]} answer{'s' if n[i] != 1 else ''}" if i < len(n) else ""
        parts.append(f'<text x="0" y="{y}" font-size="30" font-weight="bold" fill="{COLORS[k % len(COLORS)]}">'
                     f"{value:g}{escape(unit)}</text>"
                     f'<text x="0" y="{y + 24}" font-size="{FONT}" fill="#61707f">{escape(name)}, week of '
                     f"{escape(labels[i])}{escape(answers)}</text>"
                     f'<text x="0" y="{y + 40}" font-size="{FONT}" fill="#61707f">the only week with answers '
                     f"in this period</text>")  # fmt: skip
    return _svg(title, parts, 56 + len(points) * FIGURE - 14)


def _frame(title: str, ticks: Sequence[float]) -> str:
    low, top = ticks[0], ticks[-1]
    span = (top - low) or 1
    lines = [f'<text x="0" y="16" font-size="{FONT + 1}" font-weight="bold">{escape(title)}</text>']
    for value in ticks:
        y = HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (value - low) / span
        lines.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        lines.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="{FONT}">{value:g}</text>')
    return "".join(lines)


def _x_label(x: float, label: str, index: int, count: int, room: float) -> str:
    """Every label that has room beside its neighbours: every second, third... when they are wide."""
    every = max(1, math.ceil((text_width(label) + 4) / max(room, 1)))
    if index % every:
        return ""
    return (f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 15}" text-anchor="middle" '
            f'font-size="{FONT}">{escape(label)}</text>')  # fmt: skip


def _legend(names: Sequence[str], bottom: float = HEIGHT) -> str:
    if len(names) < 2:
        return ""
    items, x = [], 0.0
    for j, name in enumerate(names):
        items.append(f'<rect x="{x:.1f}" y="{bottom - 14}" width="10" height="10" fill="{COLORS[j % len(COLORS)]}"/>'
                     f'<text x="{x + 14:.1f}" y="{bottom - 5}" font-size="{FONT}">{escape(name)}</text>')  # fmt: skip
        x += 14 + text_width(name) + 12
    return "".join(items)


def _svg(title: str, parts: list[str], height: float) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">{"".join(parts)}</svg>'
    )


def count_ticks(value: float, *, integer: bool = True) -> list[float]:
    """Ticks from 0 to a round top at or above ``value``: at most 5 steps of 1, 2, 5, 10, 20, 50...
    (whole numbers for counts; for other values a step may be 0.1, 0.2, 0.5...)."""
    if value <= 0:
        return [0, 1]
    magnitude = 10 ** math.floor(math.log10(value / 5)) if value > 5 or not integer else 1
    for factor in (1, 2, 5, 10):
        step = magnitude * factor
        if integer:
            step = max(1, round(step))
        if math.ceil(value / step) <= 5:
            n = max(1, math.ceil(value / step))
            return [round(k * step, 10) for k in range(n + 1)]
    return [0, value]  # not reached


def scale_ticks(low: float, high: float) -> list[float]:
    """Ticks over a fixed scale (CSAT 0-100, NPS -100-100, CES 1-7): the roundest step that divides it
    into at most 6 parts."""
    span = high - low
    for step in (1, 2, 5, 10, 20, 25, 50, 100):
        if span / step <= 6 and float(span / step).is_integer():
            return [low + k * step for k in range(int(span / step) + 1)]
    return [low, high]
