"""HTML building blocks of the report: the page, key-figure cards, tables, notices.

Everything is escaped here; sections pass plain values. The page carries its
own CSS and no script, so one file opens anywhere, offline, and prints well.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from kbridge.analytics import Frame

__all__ = [
    "Formatter",
    "cards",
    "money",
    "number",
    "page",
    "percent",
    "table",
    "unavailable",
]

Formatter = Callable[[Any], str]

#: a date cell is never broken at its hyphens
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_CSS = """
:root { color-scheme: light; --ink:#1d2330; --muted:#5b6475; --line:#e3e6ec; --accent:#0072B2; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--ink); background: #f6f7f9; }
header { background: var(--ink); color: #fff; padding: 28px 40px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: #c9cfdb; }
nav { padding: 12px 40px; background: #fff; border-bottom: 1px solid var(--line); }
nav a { margin-right: 18px; color: var(--accent); text-decoration: none; }
main { max-width: 1100px; margin: 0 auto; padding: 8px 40px 48px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 22px 28px;
          margin: 24px 0; }
section h2 { margin: 0 0 6px; font-size: 21px; }
section h3 { margin: 22px 0 6px; font-size: 16px; }
p.intro { margin: 0 0 14px; color: var(--muted); max-width: 780px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 150px; }
.card b { display: block; font-size: 20px; }
.card span { color: var(--muted); font-size: 13px; }
svg.chart { max-width: 100%; height: auto; display: block; margin: 10px 0; }
/* a table wider than its card scrolls inside it; headings and text cells wrap first */
.table { overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
td { overflow-wrap: break-word; }
td.d { white-space: nowrap; }
th { background: #f0f2f6; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n { white-space: nowrap; }
p.more, p.note { color: var(--muted); font-size: 13px; margin: 4px 0; }
.unavailable { border-left: 4px solid #E69F00; background: #fff8eb; padding: 10px 14px;
               border-radius: 4px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 20px; }
@media print { body { background: #fff; } section { break-inside: avoid; } nav { display: none; } }
"""


def number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}" if isinstance(value, int | float) else escape(str(value))


def percent(value: Any) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f} %"


def money(value: Any) -> str:
    return "–" if value is None else f"{float(value):,.2f}"


def cards(figures: Mapping[str, str]) -> str:
    """Key figures, label → already formatted value."""
    items = "".join(
        f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>'
        for k, v in figures.items()
    )
    return f'<div class="cards">{items}</div>'


def table(
    frame: Frame,
    columns: Sequence[tuple[str, str]],
    *,
    formats: Mapping[str, Formatter] | None = None,
    limit: int = 20,
) -> str:
    """``frame``'s first ``limit`` rows; ``columns`` are (frame column, heading)."""
    formats = formats or {}
    index = [frame.columns.index(c) for c, _ in columns]
    numeric = [
        any(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in frame.rows)
        for i in index
    ]
    head = "".join(
        f'<th class="n">{escape(h)}</th>' if n else f"<th>{escape(h)}</th>"
        for (_, h), n in zip(columns, numeric, strict=True)
    )
    body = []
    for row in frame.rows[:limit]:
        cells = []
        for (name, _), i, n in zip(columns, index, numeric, strict=True):
            fmt = formats.get(name)
            text = fmt(row[i]) if fmt is not None else number(row[i]) if n else _text(row[i])
            kind = "n" if n else "d" if _DATE.match(text) else ""
            cells.append(
                f'<td class="{kind}">{escape(text)}</td>' if kind else f"<td>{escape(text)}</td>"
            )
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = (
        f'<p class="more">Showing {limit} of {len(frame):,} rows.</p>' if len(frame) > limit else ""
    )
    return (
        f'<div class="table"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def _text(value: Any) -> str:
    return "–" if value is None else str(value)


def unavailable(reason: str) -> str:
    return f'<div class="unavailable"><b>Not available.</b> {escape(reason)}</div>'


def page(
    *, title: str, subtitle: str, sections: Sequence[tuple[str, str, str, str]], footer: str
) -> str:
    """The whole document; ``sections`` are (anchor, heading, intro, body HTML)."""
    nav = "".join(f'<a href="#{escape(a)}">{escape(h)}</a>' for a, h, _, _ in sections)
    body = "".join(
        f'<section id="{escape(a)}"><h2>{escape(h)}</h2><p class="intro">{escape(intro)}</p>'
        f"{html}</section>"
        for a, h, intro, html in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main><footer>{escape(footer)}</footer></body></html>\n"
    )
