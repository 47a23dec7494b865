"""Charts as inline SVG, rendered on the server: no script, no network, readable on a phone.

Two shapes are all the console needs: bars (a distribution, counts per
plugin) and lines (a score over weeks). A ``viewBox`` lets the browser scale
them to the screen's width; text is escaped like any other markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 24, 44
COLORS = ("#2f6fdf", "#d9822b", "#3a9a5b", "#b8457a", "#7a5cc4", "#6b7280")


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, series: Sequence[str] = ()) -> Markup:
    """Bars per label; ``values`` may hold one number per label, or a tuple per label for grouped bars."""
    groups = [tuple(v) if isinstance(v, tuple | list) else (v,) for v in values]
    width_of_group = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    per_bar = width_of_group * 0.8 / max(1, max((len(g) for g in groups), default=1))
    top = _nice_top(max((x for g in groups for x in g), default=0))
    if top < 4 and all(float(x).is_integer() for g in groups for x in g):
        top = 4  # counts: whole-number ticks
    parts = [_frame(title, top)]
    for i, (label, group) in enumerate(zip(labels, groups, strict=True)):
        x0 = LEFT + i * width_of_group + width_of_group * 0.1
        for j, value in enumerate(group):
            h = (HEIGHT - TOP - BOTTOM) * (value / top if top else 0)
            x, y = x0 + j * per_bar, HEIGHT - BOTTOM - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(per_bar - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{COLORS[j % len(COLORS)]}"><title>{escape(label)}: {value:g}</title></rect>'
            )
            if len(labels) <= 16:
                parts.append(f'<text x="{x + per_bar / 2 - 1:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                             f'font-size="11">{value:g}</text>')  # fmt: skip
        parts.append(_x_label(x0 + width_of_group * 0.4, label, i, len(labels)))
    parts.append(_legend(series))
    return _svg(title, parts)


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]],
               *, low: float = 0, high: float | None = None) -> Markup:  # fmt: skip
    """One line per series over the labels; a None is a gap (no answers that week)."""
    values = [v for points in series.values() for v in points if v is not None]
    high = high if high is not None else _nice_top(max(values, default=0))
    span = (high - low) or 1
    step = (WIDTH - LEFT - RIGHT) / max(1, len(labels) - 1)
    parts = [_frame(title, high, low)]
    for j, (name, points) in enumerate(series.items()):
        color = COLORS[j % len(COLORS)]
        path, pen_down = [], False
        for i, value in enumerate(points):
            if value is None:
                pen_down = False
                continue
            x = LEFT + i * step
            y = HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (value - low) / span
            path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
            pen_down = True
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                         f"<title>{escape(name)} {escape(labels[i])}: {value:g}</title></circle>")  # fmt: skip
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2"/>')
    for i, label in enumerate(labels):
        parts.append(_x_label(LEFT + i * step, label, i, len(labels)))
    parts.append(_legend(list(series)))
    return _svg(title, parts)


def _frame(title: str, top: float, low: float = 0) -> str:
    lines = [f'<text x="{LEFT}" y="14" font-size="13" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        value = low + (top - low) * k / 4
        y = HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * k / 4
        lines.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        lines.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value:g}</text>')
    return "".join(lines)


def _x_label(x: float, label: str, index: int, count: int) -> str:
    every = -(-count // 12)  # at most a dozen labels fit under a phone-wide chart
    if index % every:
        return ""
    return f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="11">{escape(label)}</text>'


def _legend(names: Sequence[str]) -> str:
    if len(names) < 2:
        return ""
    items = []
    for j, name in enumerate(names):
        x = LEFT + j * 140
        items.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{COLORS[j % len(COLORS)]}"/>'
                     f'<text x="{x + 14}" y="{HEIGHT - 7}" font-size="11">{escape(name)}</text>')  # fmt: skip
    return "".join(items)


def _svg(title: str, parts: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">{"".join(parts)}</svg>'
    )


def _nice_top(value: float) -> float:
    """A round number at or above ``value`` for the axis (at least 1)."""
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 100_000, 1_000_000):
        if value <= step:
            return step
    return value
