"""The ``triage`` command line: replay, simulate, rules.

Every failure an operator can cause (a missing file, a bad rule file, a bad window) ends with a
one-line message on stderr and exit status 2; ``triage replay`` exits 0 whenever it ran, whatever
it decided.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from triage import cli_output
from triage.core import Triage, parse_window
from triage.eventtime import DEFAULT_LATENESS, DEFAULT_MAX_JUMP
from triage.rules import DEFAULT_RULES, RulesetError, load_ruleset
from triage.snapshot import ReferenceDataError, load_reference


class UsageError(Exception):
    """An argument or file the command cannot use; printed as one line, exit status 2."""


def _window(text: str) -> timedelta:
    try:
        return parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _lateness(text: str) -> timedelta:
    if text.strip() in ("0", "0s"):
        return timedelta(0)
    return _window(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triage",
        description="Triage CPR, DAR and ATP events for municipal benefit cases.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rp = sub.add_parser("replay", help="decide a JSON Lines file of events, as the worker would")
    rp.add_argument("events", type=Path, metavar="EVENTS.jsonl")
    rp.add_argument("--persons", type=Path, required=True, metavar="PERSONS.jsonl")
    rp.add_argument("--cases", type=Path, required=True, metavar="CASES.jsonl")
    rp.add_argument("--rules", type=Path, default=DEFAULT_RULES, metavar="PATH",
                    help="rule file (default: the shipped rules/default.yaml)")
    rp.add_argument("--window", type=_window, default=timedelta(hours=24),
                    help="household correlation window, e.g. 24h, 90m (default 24h)")
    rp.add_argument("--lateness", type=_lateness, default=DEFAULT_LATENESS,
                    help="allowed lateness: how far behind a later-registered event an event "
                         "may arrive and still be put in its place in event time (default 1h; "
                         "0 for a file already in registered_at order)")
    rp.add_argument("--max-clock-jump", type=_window, default=DEFAULT_MAX_JUMP,
                    help="how far one event may move event time ahead on its own (default 7d)")
    rp.add_argument("--out", type=Path, required=True, metavar="DECISIONS.jsonl")
    rp.add_argument("--tasks", type=Path, metavar="TASKS.jsonl")
    rp.add_argument("--quiet", action="store_true", help="no progress bar and no summary")

    sp = sub.add_parser("simulate", help="generate a realistic municipality: demo data, corpus")
    sp.add_argument("outdir", type=Path, metavar="OUTDIR")
    sp.add_argument("--events", type=int, default=100_000, help="how many events (default 100000)")
    sp.add_argument("--seed", type=int, default=1)

    rules = sub.add_parser("rules", help="inspect rule files").add_subparsers(
        dest="rules_command", required=True, metavar="SUBCOMMAND")
    check = rules.add_parser("check", help="validate a rule file; print its version")
    check.add_argument("path", type=Path, nargs="?", default=DEFAULT_RULES)
    wp = sub.add_parser("worker", help="run the streaming worker (configuration: environment "
                                       "variables TRIAGE_…, or a TOML file, see README)")
    wp.add_argument("--config", type=Path, help="TOML configuration file (TRIAGE_CONFIG)")
    wp.add_argument("--loglevel", default="info")

    dp = sub.add_parser("dev", help="the embedded default: broker, demo data, worker, live view")
    dp.add_argument("--dir", type=Path, default=Path("demo"), help="demo data (default demo/)")
    dp.add_argument("--events", type=int, default=20_000,
                    help="events to simulate when the directory has none (default 20000)")
    dp.add_argument("--rate", type=float, default=500.0, help="events fed per second")
    dp.add_argument("--web-port", type=int, default=6066)
    dp.add_argument("--partitions", type=int, default=3)
    dp.add_argument("--lateness", type=_lateness, default=None,
                    help="allowed lateness of the worker and of the replay check (default 2d: "
                         "the demo's event time runs ~9 days per second)")
    dp.add_argument("--exit-when-done", action="store_true",
                    help="stop once every event is decided (default: run until Ctrl-C)")

    cs = sub.add_parser("casesystem", help="the reference case system (demo and tests)")
    cs_commands = cs.add_subparsers(dest="casesystem_command", required=True,
                                    metavar="SUBCOMMAND")
    serve = cs_commands.add_parser("serve", help="serve the case-system API over HTTP")
    serve.add_argument("--cases", type=Path, required=True, metavar="CASES.jsonl")
    serve.add_argument("--udk", type=Path, metavar="UDK.jsonl",
                       help="the § 8 benefit register: {cpr, benefits, income} per line")
    serve.add_argument("--tasks", type=Path, metavar="TASKS.jsonl",
                       help="append every task received to this file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    pa = sub.add_parser("poll-atp", help="poll the UDK § 8 register for case members; emit "
                                         "the differences as ATP events")
    pa.add_argument("--casesystem", required=True, metavar="URL",
                    help="the case system (cases, and the § 8 register endpoint)")
    pa_target = pa.add_mutually_exclusive_group(required=True)
    pa_target.add_argument("--kafka", metavar="BOOTSTRAP", help="produce to atp.events")
    pa_target.add_argument("--out", type=Path, help="append events to a JSON Lines file")
    pa.add_argument("--state", type=Path, help="where the last polled records are kept")
    pa.add_argument("--interval", type=_window, default=timedelta(minutes=15),
                    help="pause between rounds (default 15m)")
    pa.add_argument("--rounds", type=int, help="stop after this many rounds")

    ingest = sub.add_parser("ingest", help="turn registry files into canonical events")
    ingest_formats = ingest.add_subparsers(dest="ingest_command", required=True,
                                           metavar="FORMAT")
    extract = ingest_formats.add_parser("cpr-extract",
                                help="CPR fixed-width change extract (P12170) → cpr.events")
    extract.add_argument("file", type=Path)
    target = extract.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write canonical events as JSON Lines")
    target.add_argument("--kafka", metavar="BOOTSTRAP", help="produce to cpr.events")
    extract.add_argument("--allow-trimmed", action="store_true",
                         help="accept lines whose trailing spaces were trimmed")

    facts = rules.add_parser("facts", help="the fact catalogue rules can use")
    facts.add_argument("--format", choices=("table", "markdown"), default="table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "rules":
            return _rules(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "ingest":
            return _ingest(args)
        if args.command == "poll-atp":
            import asyncio

            from connectors.atp.run import poll_atp

            summary = asyncio.run(poll_atp(
                args.casesystem, bootstrap=args.kafka, out=args.out, state_path=args.state,
                interval=args.interval.total_seconds(), rounds=args.rounds))
            print(f"rounds: {summary.rounds}  events: {summary.events}  "
                  f"lookups failed: {summary.failures}")
            return 0
        if args.command == "casesystem":
            from connectors.casesystem.server import run_reference_server

            for path in (args.cases, args.udk):
                if path is not None and not path.is_file():
                    raise UsageError(f"{path}: no such file")
            run_reference_server(args.cases, args.udk, args.tasks, args.host, args.port)
            return 0
        if args.command == "dev":
            from triage.dev import DEMO_LATENESS, run_dev

            return run_dev(args.dir, events=args.events, rate=args.rate,
                           web_port=args.web_port, partitions=args.partitions,
                           exit_when_done=args.exit_when_done,
                           lateness=args.lateness if args.lateness is not None
                           else DEMO_LATENESS)
    except (UsageError, ReferenceDataError) as exc:
        print(f"triage: {exc}", file=sys.stderr)
        return 2
    except RulesetError as exc:
        for problem in exc.problems:
            print(f"triage: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


def _replay(args: argparse.Namespace) -> int:
    from triage.pipeline import Pipeline
    from triage.replay import replay

    ruleset = load_ruleset(args.rules)
    cases = load_reference(args.persons, args.cases)
    try:
        events = args.events.open("rb")
    except OSError as exc:
        raise UsageError(f"{args.events}: cannot read: {exc.strerror}") from None
    try:
        out = args.out.open("wb")
        tasks = args.tasks.open("wb") if args.tasks else None
    except OSError as exc:
        raise UsageError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    if args.max_clock_jump <= args.lateness:
        raise UsageError("--max-clock-jump must be larger than --lateness")
    pipeline = Pipeline(Triage(cases, ruleset, window=args.window), lateness=args.lateness,
                        max_jump=args.max_clock_jump)
    size = args.events.stat().st_size
    with events, out, cli_output.progress(size, enabled=not args.quiet) as advance:
        summary = replay(events, pipeline, out, tasks, progress=advance)
    if tasks is not None:
        tasks.close()
    if not args.quiet:
        cli_output.print_summary(summary, ruleset.version)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from triage.simulate import simulate

    if args.events < 1:
        raise UsageError("--events must be at least 1")
    summary = simulate(args.outdir, seed=args.seed, events=args.events)
    cli_output.print_simulation(summary, args.outdir)
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from connectors.cpr import ingest_cpr_extract

    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    summary = ingest_cpr_extract(args.file, out=args.out, bootstrap=args.kafka,
                                 allow_trimmed=args.allow_trimmed)
    for line in summary.lines():
        print(line, file=sys.stderr if line.startswith("error") else sys.stdout)
    return 0


def _worker(args: argparse.Namespace) -> int:
    import os

    from pydantic import ValidationError

    from triage.stream.run import run_worker
    from triage.stream.settings import WorkerSettings

    if args.config:
        os.environ["TRIAGE_CONFIG"] = str(args.config)
    try:
        settings = WorkerSettings()
    except ValidationError as exc:
        from triage.models.events import format_validation_error

        raise UsageError(f"configuration: {format_validation_error(exc)}") from None
    return run_worker(settings, args.loglevel)


def _rules(args: argparse.Namespace) -> int:
    if args.rules_command == "check":
        ruleset = load_ruleset(args.path)
        print(f"{args.path}: {len(ruleset.rules)} rules, threshold {ruleset.threshold}, "
              f"version {ruleset.version}")
        return 0
    cli_output.print_facts(markdown=args.format == "markdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
