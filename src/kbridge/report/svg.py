"""Charts as inline SVG strings: no JavaScript, no CDN, they render offline and in print.

Two shapes cover the report: horizontal bars (a value per label, e.g. revenue
per campaign) and lines over time (one or more series over shared x labels,
e.g. profiles per stage by month). Text is escaped; sizes are in CSS pixels
and the ``viewBox`` lets the browser scale the chart to the page width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

__all__ = ["PALETTE", "bar_chart", "line_chart"]

#: colour-blind-safe (Okabe–Ito), in series order
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


#: an x label's width is guessed from its length (12 px system-ui: digits ~7 px); the gap between
_CHAR_PX, _LABEL_GAP = 7.2, 6.0


def _text_width(text: str) -> float:
    return len(text) * _CHAR_PX


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 × 10^k)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    fmt: Callable[[float], str] = _fmt,
    color: str = PALETTE[0],
    width: int = 720,
) -> str:
    """Horizontal bars, one per label, longest bar scaled to the widest value."""
    if len(labels) != len(values):
        raise ValueError("bar_chart needs one value per label")
    bar, gap, label_w, value_w = 22, 8, 220, 90
    height = max(1, len(labels)) * (bar + gap) + gap
    top = max((v for v in values), default=0.0)
    scale = (width - label_w - value_w) / top if top > 0 else 0.0
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" xmlns="http://www.w3.org/2000/svg" {_FONT}>',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = gap + i * (bar + gap)
        w = max(0.0, value) * scale
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar * 0.7:.1f}" text-anchor="end">'
            f"{escape(_clip(str(label), 34))}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}" rx="3" fill="{color}">'
            f"<title>{escape(str(label))}: {escape(fmt(value))}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + bar * 0.7:.1f}">{escape(fmt(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    fmt: Callable[[float], str] = _fmt,
    width: int = 720,
    height: int = 280,
) -> str:
    """Lines over shared x labels with a legend; each series needs one value per label."""
    for name, values in series:
        if len(values) != len(x_labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(x_labels)} labels")
    rows = max(1, math.ceil(len(series) / 4))  # legend rows under the x labels
    shown = [_clip(str(label), 10) for label in x_labels]
    # every x label is centred on its point, so the right margin holds half the last one
    widest = max((_text_width(t) for t in shown), default=0.0)
    last_half = _text_width(shown[-1]) / 2 if shown else 0.0
    left, right, top, bottom = 60, max(16, math.ceil(last_half) + 2), 16, 36 + 18 * rows
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((v for _, vs in series for v in vs), default=0.0))
    n = len(x_labels)
    slot = plot_w / (n - 1) if n > 1 else float(plot_w)
    # labels at least their own width (and a gap) apart, never more than 12 on the axis
    step = max(1, math.ceil(n / 12), math.ceil((widest + _LABEL_GAP) / slot))

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * max(0.0, v) / peak

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" xmlns="http://www.w3.org/2000/svg" {_FONT}>',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):
        v = peak * k / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}"'
            f' stroke="#ddd"/><text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end"'
            f' fill="#555">{escape(fmt(v))}</text>'
        )
    marks = [i for i in range(n) if i % step == 0]
    if n > 1 and marks[-1] != n - 1:
        if (n - 1 - marks[-1]) * slot < widest + _LABEL_GAP:
            marks.pop()  # too close to the last label, which always shows: the last wins
        marks.append(n - 1)
    for i in marks:
        parts.append(
            f'<text x="{x(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle" fill="#555">'
            f"{escape(shown[i])}</text>"
        )
    for s, (name, values) in enumerate(series):
        color = PALETTE[s % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{points}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        for i, v in enumerate(values):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)} {escape(str(x_labels[i]))}: {escape(fmt(v))}</title>"
                "</circle>"
            )
        lx = left + (s % 4) * (plot_w / 4)
        ly = height - 8 - (rows - 1 - s // 4) * 18
        parts.append(
            f'<rect x="{lx:.1f}" y="{ly - 9}" width="12" height="12" fill="{color}"/>'
            f'<text x="{lx + 16:.1f}" y="{ly + 1}">{escape(_clip(name, 22))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
