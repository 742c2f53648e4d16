"""``triage replay``: decide a JSON Lines file of events with the streaming worker's own pipeline.

Lines are taken in file order — the order they arrived — and go through the same
:class:`~triage.pipeline.Pipeline` the worker uses: the event-time stage puts them in
``registered_at`` order within the allowed lateness (``--lateness``), then the core decides. It
streams: lines are read, decided and written one at a time, so memory holds only the register,
the cases, the events within the lateness, the open household moves and the recent event ids —
never the input or the output.
The summary (events, suppressed, raised, invalid, by type and by rule, events per second) is
counted on the way.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from triage.core import Outputs
from triage.pipeline import Pipeline

T = TypeVar("T")


@dataclass
class ReplaySummary:
    """What a replay did, for the summary table and for tests."""

    lines: int = 0
    decisions: int = 0
    tasks: int = 0
    late: int = 0
    out_of_range: int = 0
    seconds: float = 0.0
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """Decisions by (event kind, rule, outcome): one count per decision on the way, the
    summary's tables derived from it once at the end."""

    @property
    def outcomes(self) -> Counter[str]:
        return self._by(lambda kind, rule, outcome: outcome)

    @property
    def by_type(self) -> Counter[tuple[str, str]]:
        return self._by(lambda kind, rule, outcome: (kind, outcome))

    @property
    def by_rule(self) -> Counter[tuple[str, str]]:
        return self._by(lambda kind, rule, outcome: (rule, outcome))

    def _by(self, key: Callable[[str, str, str], T]) -> Counter[T]:
        out: Counter[T] = Counter()
        for (kind, rule, outcome), n in self.counts.items():
            out[key(kind, rule, outcome)] += n
        return out

    @property
    def redeliveries(self) -> int:
        """Lines that produced no decision of their own: repeated event ids."""
        return self.lines - self.decisions

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def count(self, out: Outputs) -> None:
        counts = self.counts
        for decision, kind in zip(out.decisions, out.kinds, strict=True):
            key = (kind, decision.rule, decision.outcome)
            counts[key] = counts.get(key, 0) + 1
        self.decisions += len(out.decisions)
        self.tasks += len(out.tasks)
        self.late += out.late
        self.out_of_range += out.out_of_range


def replay(lines: Iterable[bytes], pipeline: Pipeline, decisions_out: BinaryIO,
           tasks_out: BinaryIO | None = None,
           progress: Callable[[int], None] | None = None) -> ReplaySummary:
    """Decide every non-blank line in order, flush at the end, write decisions (and tasks) as
    JSON Lines. ``progress`` is called with the number of bytes read, line by line."""
    summary = ReplaySummary()
    started = time.perf_counter()
    write_decision = decisions_out.write
    write_task = tasks_out.write if tasks_out is not None else None

    def emit(out: Outputs) -> None:
        for decision in out.decisions:
            write_decision(decision.to_json() + b"\n")
        if write_task is not None:
            for task in out.tasks:
                write_task(task.to_json() + b"\n")
        summary.count(out)

    def counted(lines: Iterable[bytes]) -> Iterator[bytes]:
        for line in lines:
            if line.strip():
                summary.lines += 1
            yield line

    for out in decide_stream(counted(lines), pipeline, progress):
        emit(out)
    summary.seconds = time.perf_counter() - started
    return summary


def decide_stream(lines: Iterable[bytes], pipeline: Pipeline,
                  progress: Callable[[int], None] | None = None) -> Iterator[Outputs]:
    """The one way history is decided, for ``triage replay`` and ``triage rules diff``: every
    non-blank line in arrival order through the pipeline (event-time order within the allowed
    lateness, then the core), then a flush (windows still open close as if they had passed).
    ``progress`` is called with the number of bytes of each line read."""
    for line in lines:
        if progress is not None:
            progress(len(line))
        if not line.strip():
            continue
        yield pipeline.process(line)
    yield pipeline.flush()
