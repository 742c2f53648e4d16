"""What the command line shows a person: progress bars, summary tables, the fact catalogue.

Kept apart from :mod:`triage.cli` so the commands read as what they do, and so nothing here is
imported by the core. Progress goes to stderr and only on a terminal; tables go to stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console as RichConsole
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from triage.facts import CATALOGUE
from triage.replay import ReplaySummary


class Console(RichConsole):
    """rich's console, but a reader that went away (``| head``) raises ``BrokenPipeError`` to
    the command line, which ends quietly with one exit status for every command (rich's own
    handling exits 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


@contextmanager
def progress(total_bytes: int, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A progress bar over bytes read, on stderr when it is a terminal; else a no-op."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _n: None
        return
    bar = Progress(TextColumn("replaying"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("replay", total=total_bytes)
    pending = 0

    def advance(n: int) -> None:
        nonlocal pending
        pending += n
        if pending >= 1 << 20:  # redraw per MiB, not per line: the bar must not cost throughput
            bar.update(task, advance=pending)
            pending = 0

    with bar:
        yield advance


def print_summary(summary: ReplaySummary, ruleset_version: str) -> None:
    console = Console()
    head = Table(title=f"Replay — ruleset {ruleset_version}", show_header=False)
    head.add_row("events (lines)", f"{summary.lines:,}")
    head.add_row("decisions", f"{summary.decisions:,}")
    for outcome in ("suppressed", "raised", "invalid"):
        head.add_row(f"  {outcome}", f"{summary.outcomes.get(outcome, 0):,}")
    head.add_row("redeliveries skipped", f"{summary.redeliveries:,}")
    head.add_row("arrived too late (raised where a case is touched)", f"{summary.late:,}")
    head.add_row("registered_at out of range", f"{summary.out_of_range:,}")
    head.add_row("tasks", f"{summary.tasks:,}")
    head.add_row("events per second", f"{summary.events_per_second:,.0f}")
    console.print(head)
    console.print(_crosstab("by event type", "event type", summary.by_type))
    console.print(_crosstab("by rule", "rule", summary.by_rule))


def _crosstab(title: str, label: str, counts: Any) -> Table:
    rows: dict[str, dict[str, int]] = {}
    for (key, outcome), n in counts.items():
        rows.setdefault(key, {})[outcome] = n
    table = Table(title=title)
    table.add_column(label)
    for outcome in ("suppressed", "raised", "invalid"):
        table.add_column(outcome, justify="right")
    for key in sorted(rows):
        table.add_row(key, *(f"{rows[key].get(o, 0):,}" for o in ("suppressed", "raised",
                                                                   "invalid")))
    return table


def print_simulation(summary: Any, outdir: Path) -> None:
    console = Console()
    table = Table(title=f"Simulated municipality in {outdir}", show_header=False)
    for key, value in vars(summary).items():
        if isinstance(value, dict):
            for k, v in sorted(value.items()):
                table.add_row(f"{key}: {k}", f"{v:,}" if isinstance(v, int) else str(v))
        else:
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


def print_facts(*, markdown: bool = False) -> None:
    if markdown:
        print("| fact | type | applies to | meaning |")
        print("| --- | --- | --- | --- |")
        for fact in CATALOGUE.values():
            kind = fact.type + (f" ({', '.join(fact.values)})" if fact.values else "")
            print(f"| `{fact.name}` | {kind} | {fact.applies_to} | {fact.description} |")
        return
    table = Table(title="Facts rules can test")
    for column in ("fact", "type", "applies to", "meaning"):
        table.add_column(column, overflow="fold")
    for fact in CATALOGUE.values():
        kind = fact.type + (f": {', '.join(fact.values)}" if fact.values else "")
        table.add_row(fact.name, kind, fact.applies_to, fact.description)
    Console(width=160).print(table)


def print_diff(report: dict[str, Any]) -> None:
    """The backtest's summary: the transition matrix, risk, and the rule pairs that changed."""
    console = Console()
    verdicts = report["verdicts"]
    matrix = Table(title=f"Backtest {report['base']} → {report['draft']}: "
                         f"{report['events']:,} events")
    matrix.add_column("base ↓ / draft →")
    matrix.add_column("raised", justify="right")
    matrix.add_column("suppressed", justify="right")
    for base in ("raised", "suppressed"):
        matrix.add_row(base, f"{verdicts[f'{base}->raised']:,}",
                       f"{verdicts[f'{base}->suppressed']:,}")
    console.print(matrix)
    changed = list(report["changed_by_rule"].items())
    if changed:
        rules = Table(title="where verdicts changed")
        rules.add_column("base rule -> draft rule")
        rules.add_column("changed", justify="right")
        rules.add_column("of verdicts", justify="right")
        for pair, n in changed[:15]:
            rules.add_row(pair, f"{n:,}", f"{report['by_rule'][pair]:,}")
        console.print(rules)
    style = "bold red" if report["risk"] else "green"
    console.print(f"[{style}]risk (raised → suppressed): {report['risk']:,}[/]   "
                  f"payment holds dropped: {report['hold_lost']:,}   "
                  f"verdicts changed: {report['changed']:,}")
