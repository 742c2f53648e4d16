"""Charts as SVG, drawn on the server: no script library, no CDN, nothing fetched from outside.

Two shapes cover the page: :func:`columns` (suppressed / raised / invalid per hour or day,
stacked) and :func:`bars` (the same split per rule, event type or unit, as horizontal stacked
bars). Every label is escaped; every column and bar has a ``<title>`` with its figures, which a
browser shows on hover and a screen reader reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

OUTCOMES = (("suppressed", "#2f7d4a"), ("raised", "#c2452d"), ("invalid", "#8a8a8a"))
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _nice_step(value: int, lines: int = 4) -> int:
    """A round whole-number gridline step so that ``lines`` steps reach ``value``."""
    need = max(1, -(-value // lines))
    magnitude: int = 10 ** (len(str(need)) - 1)
    for factor in (1, 2, 5, 10):
        if need <= factor * magnitude:
            return int(factor * magnitude)
    return need


def _legend(x: float, y: float) -> str:
    parts = []
    for name, colour in OUTCOMES:
        parts.append(f'<rect x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10" '
                     f'fill="{colour}"/><text x="{x + 14:.0f}" y="{y:.0f}" {FONT}>{name}</text>')
        x += 84
    return "".join(parts)


def empty(width: int, height: int, message: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{escape(message)}"><text x="{width / 2:.0f}" '
            f'y="{height / 2:.0f}" text-anchor="middle" {FONT} fill="#666">{escape(message)}'
            f'</text></svg>')


def columns(points: Sequence[Mapping[str, object]], *, title: str, width: int = 1200,
            height: int = 260) -> str:
    """Stacked columns, one per ``point`` (``{"bucket": label, "suppressed": n, …}``)."""
    if not points:
        return empty(width, height, f"{title}: no decisions yet")
    left, right, top, bottom = 48, 12, 24, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(int(p.get(o, 0) or 0) for o, _ in OUTCOMES) for p in points]  # type: ignore[call-overload]
    step = _nice_step(max(totals))
    top_value = step * 4
    slot = plot_w / len(points)
    bar = max(1.0, slot * 0.8)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text x="{left}" y="14" {FONT} font-weight="bold">{escape(title)}</text>',
           _legend(width - 3 * 84 - right, 14)]
    for i in range(5):
        value = step * i
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#ddd"/><text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
                   f'{FONT} fill="#555">{value:,.0f}</text>')
    for i, point in enumerate(points):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        label = escape(str(point.get("bucket")))
        figures = ", ".join(f"{o} {int(point.get(o, 0) or 0):,}" for o, _ in OUTCOMES)  # type: ignore[call-overload]
        out.append(f"<g><title>{label}: {figures}</title>")
        for outcome, colour in OUTCOMES:
            n = int(point.get(outcome, 0) or 0)  # type: ignore[call-overload]
            if n <= 0:
                continue
            h = plot_h * n / top_value
            y -= h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                       f'fill="{colour}"/>')
        out.append("</g>")
    every = max(1, len(points) // 6)
    for i in range(0, len(points), every):
        x = left + i * slot + slot / 2
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle" {FONT} '
                   f'fill="#555">{escape(str(points[i].get("bucket")))}</text>')
    out.append("</svg>")
    return "".join(out)


def bars(rows: Sequence[tuple[str, Mapping[str, int]]], *, title: str, width: int = 720,
         row_height: int = 20, limit: int = 15) -> str:
    """Horizontal stacked bars, one per ``(label, {outcome: n})``, largest first."""
    rows = sorted(rows, key=lambda r: (-sum(r[1].values()), r[0]))[:limit]
    height = 40 + row_height * max(1, len(rows))
    if not rows:
        return empty(width, 80, f"{title}: no decisions yet")
    label_w, right = 220, 60
    plot_w = width - label_w - right
    top_value = max(1, max(sum(r[1].values()) for r in rows))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text x="4" y="14" {FONT} font-weight="bold">{escape(title)}</text>',
           _legend(width - 3 * 84 - 8, 14)]
    for i, (label, counts) in enumerate(rows):
        y = 28 + i * row_height
        total = sum(counts.values())
        figures = ", ".join(f"{o} {counts.get(o, 0):,}" for o, _ in OUTCOMES)
        out.append(f"<g><title>{escape(label)}: {figures}</title>"
                   f'<text x="{label_w - 6}" y="{y + row_height * 0.65:.1f}" text-anchor="end" '
                   f'{FONT}>{escape(label[:34])}</text>')
        x = float(label_w)
        for outcome, colour in OUTCOMES:
            n = counts.get(outcome, 0)
            if n <= 0:
                continue
            w = plot_w * n / top_value
            out.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{max(w, 1):.1f}" '
                       f'height="{row_height - 5}" fill="{colour}"/>')
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + row_height * 0.65:.1f}" {FONT} '
                   f'fill="#333">{total:,}</text></g>')
    out.append("</svg>")
    return "".join(out)
