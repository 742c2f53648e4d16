"""The backtest report as one self-contained HTML page: no scripts, no fonts, no CDN.

The transition matrix, the counts by event type and by rule pair, a chart of raised verdicts per
day under both rulesets (an inline SVG drawn here, server side), and the examples with both
verdicts' explanations and the facts behind them. The page is made from the report's JSON, so
it shows exactly what ``REPORT.json`` says; Jinja2 escapes every value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from triage.backtest.compare import RISK, TRANSITIONS

_ENV = Environment(loader=PackageLoader("triage.backtest", "."), undefined=StrictUndefined,
                   autoescape=select_autoescape(["html.j2"]), trim_blocks=True,
                   lstrip_blocks=True)


@dataclass(frozen=True)
class Chart:
    """An SVG line chart of raised per day: two polylines over a filled-in day axis."""

    width: int
    height: int
    base_points: str
    draft_points: str
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str]]
    days: int
    left: int
    right: int
    bottom: int


def raised_chart(per_day: dict[str, dict[str, int]], width: int = 900,
                 height: int = 260) -> Chart | None:
    """Days from the first to the last with verdicts (missing days count 0)."""
    if not per_day:
        return None
    first, last = date.fromisoformat(min(per_day)), date.fromisoformat(max(per_day))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    base = [per_day.get(d.isoformat(), {}).get("base", 0) for d in days]
    draft = [per_day.get(d.isoformat(), {}).get("draft", 0) for d in days]
    left, right, top, bottom = 48, 40, 12, 28
    top_value = max(1, *base, *draft)
    span_x = max(1, len(days) - 1)

    def x(i: int) -> float:
        return left + (width - left - right) * i / span_x

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / top_value)

    def points(series: list[int]) -> str:
        return " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series))

    y_ticks = [(y(v), v) for v in sorted({0, top_value // 2, top_value})]
    step = max(1, len(days) // 6)
    x_ticks = [(x(i), days[i].isoformat()) for i in range(0, len(days), step)]
    return Chart(width, height, points(base), points(draft), y_ticks, x_ticks, len(days),
                 left, width - right, height - bottom)


def render_html(report: dict[str, Any]) -> str:
    """The page for a report as :meth:`DiffReport.to_json` gives it."""
    verdicts = report["verdicts"]
    changed_rules = [(pair, n, report["by_rule"][pair])
                     for pair, n in report["changed_by_rule"].items()]
    return _ENV.get_template("report.html.j2").render(
        r=report, transitions=TRANSITIONS, risk_key=RISK,
        matrix=[(b, [(d, verdicts[f"{b}->{d}"]) for d in ("raised", "suppressed")])
                for b in ("raised", "suppressed")],
        pairs=sum(verdicts.values()), changed_rules=changed_rules,
        chart=raised_chart(report["raised_per_day"]))
