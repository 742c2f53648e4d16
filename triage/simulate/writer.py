"""The output files: events.jsonl (streamed), labels.jsonl, persons.jsonl and cases.jsonl.

:class:`CorpusWriter` owns line numbering. Each valid event is written once with its label; then,
by chance, the same bytes are queued to be written again a few to a few hundred lines later (a
redelivery: same line, same event id, no second label). Just as rarely a broken copy of the event
(see :mod:`.malformed`) is written right before it, labelled ``invalid`` by line number.

Label lines: ``{"line", "event_id", "expect", "scenario", "cases"}`` where ``line`` is the 1-based
line of the event's first occurrence, ``expect`` is ``raised`` when ``cases`` is non-empty,
``suppressed`` when it is empty, and ``invalid`` for malformed lines.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from triage.simulate import malformed

REDELIVERY_RATE = 0.005
MALFORMED_RATE = 0.002


class CorpusWriter:
    def __init__(self, outdir: Path, rng: random.Random, new_id: Callable[[], str]) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        self.outdir = outdir
        self._rng = rng
        self._new_id = new_id
        self._events: BinaryIO = (outdir / "events.jsonl").open("wb", buffering=1 << 20)
        self._labels: BinaryIO = (outdir / "labels.jsonl").open("wb", buffering=1 << 20)
        self._redeliveries: list[tuple[int, int, bytes]] = []
        self._seq = 0
        self.lines = 0
        self.scenarios: Counter[str] = Counter()
        self.expected: Counter[str] = Counter()
        self.malformed_kinds: Counter[str] = Counter()
        self.redelivered = 0

    # --- reference files -----------------------------------------------------------------------

    def reference(self, name: str, records: Iterable[dict[str, Any]]) -> int:
        count = 0
        with (self.outdir / name).open("wb") as f:
            for record in records:
                f.write(orjson.dumps(record) + b"\n")
                count += 1
        return count

    # --- the event stream ----------------------------------------------------------------------

    def event(self, event: dict[str, Any], scenario: str, cases: list[str]) -> None:
        """Write a valid event and its label (maybe preceded by a malformed line)."""
        if self._rng.random() < MALFORMED_RATE:
            data, event_id, kind = malformed.corrupt(self._rng, event, self._new_id())
            self.malformed_kinds[kind] += 1
            self._label(self._line(data), event_id, "invalid", "malformed", [])
        data = orjson.dumps(event)
        line = self._line(data)
        self._label(line, event["event_id"], "raised" if cases else "suppressed", scenario, cases)
        if self._rng.random() < REDELIVERY_RATE:
            self._seq += 1
            due = self.lines + self._rng.randint(3, 300)
            heapq.heappush(self._redeliveries, (due, self._seq, data))

    def _line(self, data: bytes) -> int:
        """Write redeliveries that are due, then ``data``; return ``data``'s line number."""
        while self._redeliveries and self._redeliveries[0][0] <= self.lines:
            self.lines += 1
            self._events.write(heapq.heappop(self._redeliveries)[2] + b"\n")
            self.redelivered += 1
        self.lines += 1
        self._events.write(data + b"\n")
        return self.lines

    def _label(self, line: int, event_id: str | None, expect: str, scenario: str,
               cases: list[str]) -> None:
        self.scenarios[scenario] += 1
        self.expected[expect] += 1
        self._labels.write(orjson.dumps({
            "line": line, "event_id": event_id, "expect": expect, "scenario": scenario,
            "cases": cases,
        }) + b"\n")

    def close(self) -> None:
        """Deliver what is still queued for redelivery, then close the files."""
        while self._redeliveries:
            self.lines += 1
            self._events.write(heapq.heappop(self._redeliveries)[2] + b"\n")
            self.redelivered += 1
        self._events.close()
        self._labels.close()
