"""``make bench``: ``triage rules diff`` against one plain replay of the same history.

The diff decides the history once, under the base ruleset with the draft as the core's shadow,
and compares every verdict; a replay decides it once and writes the decisions. The ratio
``diff / replay`` (best of three each, runs interleaved, same process, same ≥ 100,000-event
corpus) says what carrying a second ruleset costs; the target is ≤ 1.6 (two replays would be
≥ 2). The ratio is taken on process CPU time, which other processes on a shared machine do not
inflate; wall time is printed beside it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.replay_bench import CORPUS_EVENTS, replay_once


def draft_ruleset(folder: Path) -> Path:
    """The default ruleset with two scores lowered: moves out of the municipality and split
    households suppressed (a risky draft, so the comparison has work to do)."""
    from triage.rules import DEFAULT_RULES

    data = yaml.safe_load(DEFAULT_RULES.read_text())
    data["ruleset"] = "draft"
    for rule in data["rules"]:
        if rule["id"] in ("flytning-husstand-ud-af-kommunen", "husstand-splittet"):
            rule["score"] = 0.3
    path = folder / "draft.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def timed_replay(corpus: Path, events: Path, out: Path) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    _, lines = replay_once(corpus, events, out)
    return time.process_time() - cpu, time.perf_counter() - wall, lines


def diff_once(corpus: Path, events: Path, draft: Path) -> tuple[float, float, dict]:
    from triage.backtest import DiffReport, backtest
    from triage.backtest.history import file_lines
    from triage.core import Triage
    from triage.gcpolicy import settle_long_lived
    from triage.pipeline import Pipeline
    from triage.rules import DEFAULT_RULES, load_ruleset
    from triage.snapshot import load_reference

    base, shadow = load_ruleset(DEFAULT_RULES), load_ruleset(draft)
    cpu, wall = time.process_time(), time.perf_counter()
    pipeline = Pipeline(Triage(load_reference(corpus / "persons.jsonl", corpus / "cases.jsonl"),
                               base))
    settle_long_lived()  # as `triage rules diff` does
    report = backtest(file_lines(events), pipeline, shadow,
                      DiffReport(base.version, shadow.version))
    data = report.to_json()
    return time.process_time() - cpu, time.perf_counter() - wall, data


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
        draft = draft_ruleset(Path(tmp))
        replays, diffs = [], []
        for _ in range(3):
            replays.append(timed_replay(corpus, events, Path(tmp) / "d.jsonl"))
            diffs.append(diff_once(corpus, events, draft))
        lines = replays[0][2]
        report = diffs[0][2]

    replay_cpu, replay_wall = min(r[0] for r in replays), min(r[1] for r in replays)
    diff_cpu, diff_wall = min(d[0] for d in diffs), min(d[1] for d in diffs)
    print(f"corpus                      {lines:,} events")
    print(f"triage replay               {replay_cpu:.2f} s CPU, {replay_wall:.2f} s wall   "
          f"({lines / replay_cpu:,.0f} events/CPU-s)")
    print(f"triage rules diff           {diff_cpu:.2f} s CPU, {diff_wall:.2f} s wall   "
          f"({lines / diff_cpu:,.0f} events/CPU-s)")
    print(f"ratio diff / replay         {diff_cpu / replay_cpu:.2f} CPU, "
          f"{diff_wall / replay_wall:.2f} wall   (target ≤ 1.6)")
    print(f"  verdicts compared {sum(report['verdicts'].values()):,}, changed "
          f"{report['changed']:,}, risk {report['risk']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
