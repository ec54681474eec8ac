"""Charts for the board, drawn on the server as SVG (pure; no chart library to vendor,
nothing for the browser to load: the page is the chart).

Two charts a supervisor would rather look at than read: the day's funnel (horizontal
bars, each stage's count and its share of the surveys) and the hourly volume (surveys
sent and replies received per local hour).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

# One palette for both charts; colours a colour-blind reader tells apart (Okabe-Ito).
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
GREY = "#777777"


def funnel_svg(stages: Sequence[tuple[str, int]], *, width: int = 560) -> str:
    """A horizontal bar per stage (label, count), the first being 100 %."""
    row, label_w, pad = 28, 120, 8
    top = max((n for _, n in stages), default=0) or 1
    bar_w = width - label_w - 110
    height = row * len(stages) + pad * 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart funnel" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        "<title>当日漏斗</title>",
    ]
    first = stages[0][1] if stages else 0
    for i, (label, n) in enumerate(stages):
        y = pad + i * row
        w = round(bar_w * n / top)
        share = f"{100 * n / first:.0f}%" if first else "—"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 18}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{max(w, 1)}" height="{row - 8}" '
            f'fill="{BLUE if i == 0 else GREEN}" data-stage="{escape(label)}" data-n="{n}"/>'
            f'<text x="{label_w + max(w, 1) + 6}" y="{y + 18}">{n}（{share}）</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def hourly_svg(surveys: Sequence[int], replies: Sequence[int], *, width: int = 560) -> str:
    """Two bars per hour 00..23: surveys (blue) and replies (orange)."""
    height, left, bottom, top_pad = 180, 30, 24, 22
    top = max([*surveys, *replies, 1])
    slot = (width - left - 6) / 24
    bar = max(1.0, slot / 2 - 1)
    plot_h = height - bottom - top_pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart hourly" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        "<title>分时量</title>",
        f'<rect x="{left}" y="4" width="10" height="10" fill="{BLUE}"/>'
        f'<text x="{left + 14}" y="13">调查短信</text>'
        f'<rect x="{left + 90}" y="4" width="10" height="10" fill="{ORANGE}"/>'
        f'<text x="{left + 104}" y="13">回复</text>',
        f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{top}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" '
        f'stroke="{GREY}"/>',
    ]
    for h in range(24):
        x = left + h * slot
        for j, (series, colour) in enumerate(((surveys, BLUE), (replies, ORANGE))):
            n = series[h] if h < len(series) else 0
            bh = round(plot_h * n / top)
            parts.append(
                f'<rect x="{x + j * (bar + 1):.1f}" y="{height - bottom - bh}" '
                f'width="{bar:.1f}" height="{bh}" fill="{colour}"><title>{h:02d}时 {n}</title>'
                "</rect>"
            )
        if h % 3 == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 8}">{h:02d}</text>')
    parts.append("</svg>")
    return "".join(parts)
