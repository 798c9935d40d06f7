"""Small charts as inline SVG text for the HTML report: no plotting library, no external files."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

import numpy as np

PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
WIDTH, HEIGHT = 520, 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 46, 40
LEGEND_Y = 34  # legends run along the top, above the plot, where they hide no line


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]
    colour: str
    dashed: bool = False


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering low..high."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(low / step) * step
    return [start + k * step for k in range(int((high - start) / step + 1e-9) + 1)]


def _frame(title: str, x_label: str, y_label: str, body: list[str]) -> str:
    head = (
        f'<svg class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>'
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14">{escape(title)}</text>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{HEIGHT / 2}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 12 {HEIGHT / 2})">{escape(y_label)}</text>'
    )
    return head + "".join(body) + "</svg>"


class _Scale:
    def __init__(self, low: float, high: float, start: float, stop: float) -> None:
        if high <= low:
            low, high = low - 0.5, high + 0.5
        self.low, self.high, self.start, self.stop = low, high, start, stop

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.stop - self.start)


def _axes(xs: _Scale, ys: _Scale, x_ticks, y_ticks) -> list[str]:
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    parts = [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#444"/>',
    ]
    for tick in y_ticks:
        y = ys(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{tick:g}</text>'
        )
    for tick in x_ticks:
        x = xs(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" font-size="10">{tick:g}</text>'
        )
    return parts


def line_chart(
    series: list[Series],
    *,
    title: str,
    x_label: str = "epoch",
    y_label: str = "",
    markers: list[tuple[float, str]] = (),
) -> str:
    """Lines over a shared x axis; `markers` are labelled vertical lines (e.g. the best epoch)."""
    values = [(x, y) for s in series for x, y in s.points if y is not None and math.isfinite(y)]
    if not values:
        return _frame(title, x_label, y_label, [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text>'
        ])
    x_low, x_high = min(x for x, _ in values), max(x for x, _ in values)
    y_low, y_high = min(0.0, min(y for _, y in values)), max(y for _, y in values)
    xs = _Scale(x_low, x_high, MARGIN_LEFT, WIDTH - MARGIN_RIGHT)
    ys = _Scale(y_low, y_high * 1.05 or 1.0, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP)
    x_ticks = [t for t in _ticks(x_low, x_high) if float(t).is_integer()] or [x_low]
    body = _axes(xs, ys, x_ticks, _ticks(ys.low, ys.high))
    for x, label in markers:
        px = xs(x)
        # Labels near the right edge go on the left of their line, where there is room.
        left_side = px > WIDTH * 0.7
        anchor, text_x = ("end", px - 3) if left_side else ("start", px + 3)
        body.append(
            f'<line x1="{px:.1f}" y1="{MARGIN_TOP}" x2="{px:.1f}" y2="{HEIGHT - MARGIN_BOTTOM}" '
            f'stroke="#999" stroke-dasharray="3 3"/>'
            f'<text x="{text_x:.1f}" y="{MARGIN_TOP + 10}" text-anchor="{anchor}" font-size="10" '
            f'fill="#666">{escape(label)}</text>'
        )
    for number, s in enumerate(series):
        shown = [(x, y) for x, y in s.points if y is not None and math.isfinite(y)]
        if not shown:
            continue
        path = " ".join(f"{xs(x):.1f},{ys(y):.1f}" for x, y in shown)
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>'
        )
        for x, y in shown:
            body.append(f'<circle cx="{xs(x):.1f}" cy="{ys(y):.1f}" r="2.5" fill="{s.colour}"/>')
        legend_x = MARGIN_LEFT + 120 * number
        body.append(
            f'<line x1="{legend_x}" y1="{LEGEND_Y}" x2="{legend_x + 18}" y2="{LEGEND_Y}" '
            f'stroke="{s.colour}" stroke-width="2"{dash}/>'
            f'<text x="{legend_x + 22}" y="{LEGEND_Y + 4}" font-size="11">{escape(s.name)}</text>'
        )
    return _frame(title, x_label, y_label, body)


def _cross(x: float, y: float, arm: float = 5.0) -> str:
    return (f'<path class="suspect" d="M{x - arm:.1f} {y - arm:.1f}L{x + arm:.1f} {y + arm:.1f}'
            f'M{x - arm:.1f} {y + arm:.1f}L{x + arm:.1f} {y - arm:.1f}" stroke="black" '
            f'stroke-width="2"/>')


def scatter_chart(
    points: np.ndarray,
    labels: list[str],
    classes: list[str],
    *,
    title: str,
    marked: np.ndarray | None = None,
    crossed: np.ndarray | None = None,
) -> str:
    """One dot per point coloured by class; `marked` points get a black ring (outliers),
    `crossed` ones a black cross (suspect labels), as on the window's map."""
    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        return _frame(title, "", "", [])
    xs = _Scale(points[:, 0].min(), points[:, 0].max(), MARGIN_LEFT + 6, WIDTH - MARGIN_RIGHT - 6)
    ys = _Scale(points[:, 1].min(), points[:, 1].max(), HEIGHT - MARGIN_BOTTOM - 6, MARGIN_TOP + 6)
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(classes)}
    body = []
    for i, ((x, y), label) in enumerate(zip(points, labels, strict=True)):
        ring = marked is not None and bool(marked[i])
        stroke = ' stroke="black" stroke-width="2"' if ring else ""
        body.append(
            f'<circle cx="{xs(x):.1f}" cy="{ys(y):.1f}" r="{5 if ring else 3.5}" '
            f'fill="{colour.get(label, "#777")}" fill-opacity="0.8"{stroke}/>'
        )
        if crossed is not None and bool(crossed[i]):
            body.append(_cross(xs(x), ys(y)))
    step = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / max(1, len(classes))
    for number, name in enumerate(classes):
        legend_x = MARGIN_LEFT + step * number
        body.append(
            f'<circle cx="{legend_x:.1f}" cy="{LEGEND_Y}" r="4" fill="{colour[name]}"/>'
            f'<text x="{legend_x + 8:.1f}" y="{LEGEND_Y + 4}" font-size="11">{escape(name)}</text>'
        )
    return _frame(title, "first principal axis", "second principal axis", body)
