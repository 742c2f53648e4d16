"""``triage decisions show EVENT_ID | case CASE_ID | prune``: the decision log from a terminal.

``--db URL`` names the log (default: ``TRIAGE_DECISION_LOG``, else the worker's default SQLite
file in ``TRIAGE_DATA_DIR``). ``--json`` prints what the page's explorer API returns instead of
the readable explanation. Exit status 0 when found, 1 when the log holds nothing about it, 2
for an unusable URL (one line on stderr).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from triage.decisionlog.store import DecisionLog, default_url, open_log


def default_log_url() -> str:
    url = os.environ.get("TRIAGE_DECISION_LOG")
    if url:
        return url
    from triage.stream.settings import default_data_dir

    data_dir = os.environ.get("TRIAGE_DATA_DIR")
    return default_url(Path(data_dir) if data_dir else default_data_dir())


def explain_decision(decision: dict[str, Any], tasks: list[dict[str, Any]]) -> Iterator[str]:
    """A decision as a caseworker reads it: outcome, rule and reason; per case the verdict,
    its facts and its task."""
    kind = "/".join(x for x in (decision.get("event_source"), decision.get("event_type")) if x)
    yield (f"event {decision.get('event_id') or '(no id)'}: {decision['outcome']} by rule "
           f"{decision['rule']} (score {decision.get('score')}), ruleset {decision.get('ruleset')}")
    yield (f"  type {kind or '-'}; registered {decision.get('registered_at') or '-'}; "
           f"decided {decision.get('decided_at')}; correlation "
           f"{decision.get('correlation_id') or 'none'}")
    yield f"  reason: {decision.get('reason')}"
    if decision.get("error"):
        yield f"  error: {decision['error']}"
    by_id = {t["task_id"]: t for t in tasks}
    for verdict in decision.get("cases") or []:
        yield (f"  case {verdict['case_id']} ({verdict.get('unit')}): {verdict['outcome']} by "
               f"{verdict['rule']} (score {verdict.get('score')})"
               + (" — payment held" if verdict.get("payment_hold") else ""))
        yield f"    {verdict.get('title')}: {verdict.get('reason')}"
        facts = verdict.get("facts") or {}
        if facts:
            yield "    facts: " + ", ".join(f"{k}={_fact(v)}" for k, v in sorted(facts.items()))
        task_id = verdict.get("task_id")
        if task_id:
            task = by_id.get(task_id)
            yield (f"    task {task_id}" + (f": {task['title']} → {task['unit']}, events "
                                           f"{', '.join(task.get('event_ids', []))}"
                                           if task else " (not in the log)"))


def _fact(value: Any) -> str:
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


def run(command: str, target: str | None, db: str | None, as_json: bool,
        older_than: timedelta | None = None) -> int:
    log: DecisionLog = open_log(db or default_log_url())
    try:
        if command == "show":
            assert target is not None
            found = log.show(target)
            if found is None:
                print(f"triage: no decision about event {target} in the log", file=sys.stderr)
                return 1
            _print(found, as_json, explain_decision(found["decision"], found["tasks"]))
            return 0
        if command == "case":
            assert target is not None
            case = log.case(target)
            if not case["decisions"] and not case["tasks"]:
                print(f"triage: no decision about case {target} in the log", file=sys.stderr)
                return 1
            lines = [f"case {target}: {len(case['decisions'])} decisions, "
                     f"{len(case['tasks'])} tasks (newest first)"]
            for decision in case["decisions"]:
                lines += list(explain_decision(decision, case["tasks"]))
            _print(case, as_json, iter(lines))
            return 0
        assert older_than is not None
        removed = log.prune(datetime.now(UTC) - older_than)
        print(f"removed {removed['decisions']} decisions and {removed['tasks']} tasks decided "
              f"more than {older_than} ago")
        return 0
    finally:
        log.close()


def _print(data: Any, as_json: bool, lines: Iterator[str]) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in lines:
            print(line)
