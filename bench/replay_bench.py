"""``make bench``: replay throughput against a plain ``json.loads`` of the same file, reference
loading, and memory.

Throughput, two ways, runs interleaved, best of three each:

* **whole process** (the issue-13 figure): ``triage replay … --quiet`` as its own process —
  interpreter start, imports, reading the reference data, deciding, writing decisions — against
  a separate ``python`` process that reads the file and ``json.loads`` every line. The ratio of
  their rates says what the whole of triage costs next to just reading the JSON; target ≥ 0.5;
* **in process**: the same two loops inside this process, reference data loaded beforehand
  (what the core and the pipeline cost per event).

Reference loading: the corpus's persons and cases loaded by :func:`triage.snapshot.
load_reference` in a new process, best of three, scaled to 100,000 persons.

Memory: replay runs in child processes on the corpus (N events), and on the corpus followed by
one and by two continuations of it (2N, 3N: the same events a year and two years later in event
time, with new ids). The core remembers the ids of the most recent 100,000 events
(``DEFAULT_DEDUP_KEEP``) to recognise redeliveries, so memory may grow until that bound; the
growth of peak RSS between 2N and 3N, per 1,000 events, shows whether it stays flat beyond it
(it holds only the register, the cases, open groups and the bounded recent ids).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

CORPUS_EVENTS = 100_000


def parse_all(path: Path) -> float:
    """Seconds to read and ``json.loads`` every line (malformed lines are caught, as any
    consumer must)."""
    started = time.perf_counter()
    loads = json.loads
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                with contextlib.suppress(ValueError):
                    loads(line)
    return time.perf_counter() - started


JSON_LOADS_PROCESS = """
import contextlib, json, sys
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        if line.strip():
            with contextlib.suppress(ValueError):
                json.loads(line)
"""


def process_seconds(command: list[str]) -> float:
    """Wall seconds of a child process from start to exit."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def whole_process(corpus: Path, events: Path, out: Path) -> tuple[float, float]:
    """Seconds of a ``json.loads`` process and of a ``triage replay`` process, best of three,
    interleaved."""
    loads = [sys.executable, "-c", JSON_LOADS_PROCESS, str(events)]
    replay = [sys.executable, "-m", "triage.cli", "replay", str(events), "--persons",
              str(corpus / "persons.jsonl"), "--cases", str(corpus / "cases.jsonl"),
              "--out", str(out), "--quiet"]
    runs = [(process_seconds(loads), process_seconds(replay)) for _ in range(3)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def reference_seconds(corpus: Path) -> tuple[float, int]:
    """Best-of-three seconds to load the corpus's persons and cases, each time in a new process
    (as every start and every replay does: not in this one, whose heap the replays above have
    filled), and how many persons."""
    code = ("import sys, time; from triage.snapshot import load_reference; "
            "started = time.perf_counter(); index = load_reference(sys.argv[1], sys.argv[2]); "
            "print(time.perf_counter() - started, len(index.register))")
    best, persons = float("inf"), 0
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", code, str(corpus / "persons.jsonl"),
                              str(corpus / "cases.jsonl")], capture_output=True, text=True,
                             check=True)
        seconds, count = run.stdout.split()
        best, persons = min(best, float(seconds)), int(count)
    return best, persons


def replay_once(corpus: Path, events: Path, out: Path) -> tuple[float, int]:
    from triage.core import Triage
    from triage.gcpolicy import settle_long_lived
    from triage.pipeline import Pipeline
    from triage.replay import replay
    from triage.rules import DEFAULT_RULES, load_ruleset
    from triage.snapshot import load_reference

    pipeline = Pipeline(Triage(load_reference(corpus / "persons.jsonl",
                                              corpus / "cases.jsonl"),
                               load_ruleset(DEFAULT_RULES)))
    settle_long_lived()  # as `triage replay` does
    with events.open("rb") as lines, out.open("wb") as decisions:
        summary = replay(lines, pipeline, decisions)
    return summary.seconds, summary.lines


def continued(events: Path, copies: int, out: Path) -> Path:
    """``events`` followed by ``copies`` continuations of itself, each a year (364 days) later in
    event time with new ids; ``events`` itself when ``copies`` is 0. Lines that are no event are
    repeated as they are."""
    if copies == 0:
        return events
    lines = events.read_bytes().splitlines(keepends=True)
    with out.open("wb") as dst:
        dst.writelines(lines)
        for k in range(1, copies + 1):
            for line in lines:
                try:
                    event = json.loads(line)
                    event["event_id"] = f"{event['event_id']}+{k}y"
                    at = datetime.fromisoformat(event["registered_at"]) + timedelta(days=364 * k)
                    event["registered_at"] = at.isoformat()
                    dst.write(json.dumps(event).encode() + b"\n")
                except (ValueError, TypeError, KeyError):
                    dst.write(line)
    return out


def peak_rss_child(corpus: Path, events: Path) -> int:
    """Peak RSS (KiB) of a child process that loads the reference data and replays: its
    ``VmHWM``, the peak of its own memory. (Not ``getrusage``'s ``ru_maxrss``: Linux carries that
    over from the parent across ``fork`` and ``exec``, so it showed this process's size — the
    corpus generator's heap — for both corpus sizes.)"""
    code = ("import sys; from pathlib import Path; from bench.replay_bench import replay_once; "
            "replay_once(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])); "
            "print(next(line.split()[1] for line in open('/proc/self/status') "
            "if line.startswith('VmHWM:')))")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, "-c", code, str(corpus), str(events),
                              str(Path(tmp) / "d.jsonl")], capture_output=True, text=True,
                             check=True)
    return int(run.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=CORPUS_EVENTS)
    parser.add_argument("--corpus", type=Path, help="reuse a `triage simulate` directory")
    args = parser.parse_args()

    from triage.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or Path(tmp) / "corpus"
        if args.corpus is None:
            print(f"generating a {args.events:,}-event corpus …", flush=True)
            simulate(corpus, seed=7, events=args.events)
        events = corpus / "events.jsonl"
        lines = sum(1 for line in events.open("rb") if line.strip())
        json_s = min(parse_all(events) for _ in range(3))
        replay_s = min(replay_once(corpus, events, Path(tmp) / "d.jsonl")[0] for _ in range(3))
        json_proc_s, replay_proc_s = whole_process(corpus, events, Path(tmp) / "p.jsonl")
        reference_s, persons = reference_seconds(corpus)
        rss = [peak_rss_child(corpus, continued(events, copies, Path(tmp) / f"x{copies}.jsonl"))
               for copies in (0, 1, 2)]

    json_rate, replay_rate = lines / json_s, lines / replay_s
    growth = (rss[2] - rss[1]) / lines * 1000
    print(f"corpus                      {lines:,} events, {persons:,} persons")
    print("whole process (start, imports, reference data, decide, write):")
    print(f"  json.loads process        {lines / json_proc_s:,.0f} events/s "
          f"({json_proc_s:.2f} s)")
    print(f"  triage replay process     {lines / replay_proc_s:,.0f} events/s "
          f"({replay_proc_s:.2f} s)")
    print(f"  ratio replay / json.loads {json_proc_s / replay_proc_s:.2f}   (target ≥ 0.5)")
    print("in process (reference data loaded beforehand):")
    print(f"  json.loads                {json_rate:,.0f} events/s")
    print(f"  triage replay             {replay_rate:,.0f} events/s")
    print(f"  ratio replay / json.loads {replay_rate / json_rate:.2f}")
    print(f"reference load              {reference_s:.3f} s for {persons:,} persons = "
          f"{reference_s / persons * 100_000:.2f} s per 100,000 persons")
    for copies, peak in enumerate(rss, start=1):
        print(f"peak RSS, {copies * lines:,} events{' ' * (8 - len(f'{copies * lines:,}'))}"
              f"{peak / 1024:,.1f} MiB")
    print(f"RSS growth per 1,000 events from {2 * lines:,} to {3 * lines:,}: {growth:,.1f} KiB   "
          "(flat: close to 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
