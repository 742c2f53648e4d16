"""The ``triage`` command line: replay, simulate, rules, worker, dev, the connectors.

Every failure an operator can cause (a missing file, a bad rule file, a bad window, a taken
port, a service that does not answer, a configuration that cannot be used) ends with a one-line
message on stderr — what is wrong and how to fix it — and exit status 2, with nothing it started
left running; ``triage replay`` exits 0 whenever it ran, whatever it decided. Output cut short by
its reader (``| head``) ends quietly with status 141, as a process killed by SIGPIPE would;
Ctrl-C with 130.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from triage import cli_output, operator_cli
from triage.core import Triage, parse_window
from triage.eventtime import DEFAULT_LATENESS, DEFAULT_MAX_JUMP
from triage.gcpolicy import settle_long_lived
from triage.private_files import PRIVATE_UMASK, open_private
from triage.rules import DEFAULT_RULES, RulesetError, load_ruleset
from triage.snapshot import ReferenceDataError, load_reference

if TYPE_CHECKING:
    from connectors.ids import IdKey


class UsageError(Exception):
    """An argument or file the command cannot use; printed as one line, exit status 2."""


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError("must be a whole number ≥ 0")
    return int(text)



def _poller_arguments(parser: argparse.ArgumentParser, topic: str, state_help: str,
                      interval: str) -> None:
    """The options every registry poller shares: where events go, its state, its pace."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--kafka", metavar="BOOTSTRAP", help=f"produce to {topic}")
    target.add_argument("--out", type=Path, help="append events to a JSON Lines file")
    parser.add_argument("--state", type=Path, help=state_help)
    parser.add_argument("--interval", type=_window, default=_window(interval),
                        help=f"pause between rounds (default {interval})")
    parser.add_argument("--rounds", type=int, help="stop after this many rounds")

def _window(text: str) -> timedelta:
    try:
        return parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _lateness(text: str) -> timedelta:
    if text.strip() in ("0", "0s"):
        return timedelta(0)
    return _window(text)


def _instant(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time or date: {text!r}") from None
    if when.utcoffset() is None:
        if len(text) > 10:
            raise argparse.ArgumentTypeError(f"{text!r}: a time needs an offset, e.g. "
                                             f"2025-03-01T00:00:00+01:00")
        when = when.replace(tzinfo=UTC)
    return when


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

    rules = sub.add_parser("rules", help="check, test, backtest and promote rule files"
                           ).add_subparsers(
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

    fd = sub.add_parser("feed", help="produce a JSON Lines file of events to the input topics, "
                                     "in order, at a pace (demo, load tests)")
    fd.add_argument("events", type=Path, metavar="EVENTS.jsonl")
    fd.add_argument("--kafka", required=True, metavar="BOOTSTRAP",
                    help="produce to cpr.events, dar.events, atp.events, keyed per CONTRACT.md")
    fd.add_argument("--rate", type=float, default=500.0,
                    help="events per second (default 500)")

    cs = sub.add_parser("casesystem", help="the reference case system (demo and tests)")
    cs_commands = cs.add_subparsers(dest="casesystem_command", required=True,
                                    metavar="SUBCOMMAND")
    serve = cs_commands.add_parser("serve", help="serve the case-system API over HTTP")
    serve.add_argument("--cases", type=Path, required=True, metavar="CASES.jsonl")
    serve.add_argument("--udk", type=Path, metavar="UDK.jsonl",
                       help="the § 8 benefit register: {cpr, benefits, income} per line")
    serve.add_argument("--store", type=Path, metavar="TASKS.sqlite",
                       help="the task store, kept across restarts (default: "
                            "$XDG_STATE_HOME/triage/casesystem/tasks.sqlite)")
    serve.add_argument("--tasks", type=Path, dest="store", help=argparse.SUPPRESS)
    serve.add_argument("--token-file", type=Path, metavar="FILE",
                       help="the bearer token clients must send (default: "
                            "TRIAGE_CASESYSTEM_TOKEN or TRIAGE_CASESYSTEM_TOKEN_FILE)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    pa = sub.add_parser("poll-atp", help="poll the UDK § 8 register for case members; emit "
                                         "the differences as ATP events")
    pa.add_argument("--casesystem", required=True, metavar="URL",
                    help="the case system (cases, and the § 8 register endpoint)")
    _poller_arguments(pa, "atp.events", "where the last polled records are kept", "15m")

    ingest = sub.add_parser("ingest", help="turn registry files into canonical events")
    ingest_formats = ingest.add_subparsers(dest="ingest_command", required=True,
                                           metavar="FORMAT")
    formats = {
        "cpr-extract": ("CPR fixed-width change extract (P12170), any delivered form "
                        "→ cpr.events", "FILE"),
        "envelope": ("business-event messages (KOMBIT XML, Datafordeler/SF1320 JSON) "
                     "→ cpr.events", "FILE_OR_DIR"),
        "dar-replication": ("DAWA-compatible replication events → dar.events", "FILE"),
    }
    for name, (text, metavar) in formats.items():
        fp = ingest_formats.add_parser(name, help=text)
        fp.add_argument("file", type=Path, metavar=metavar)
        target = fp.add_mutually_exclusive_group(required=True)
        target.add_argument("--out", type=Path, help="write canonical events as JSON Lines "
                                                     "(created with mode 0600)")
        target.add_argument("--kafka", metavar="BOOTSTRAP", help="produce to the topic")
        fp.add_argument("--max-errors", type=_count, default=0, metavar="N",
                        help="exit 1 only when more than N records failed (default 0)")
        fp.add_argument("--id-key", metavar="KEY",
                        help="secret for event ids derived from CPR data (default: "
                             "$TRIAGE_ID_KEY; a public development key, with a warning)")
        if name == "cpr-extract":
            fp.add_argument("--allow-trimmed", action="store_true",
                            help="no-op: trimmed lines are always padded")
        if name == "envelope":
            fp.add_argument("--persons", type=Path, metavar="PERSONS.jsonl",
                            help="persons to look the message's person up in")
            fp.add_argument("--actions", type=Path, metavar="ACTIONS.csv",
                            help="the municipality's ObjektHandling table (uuid;event;name)")
        if name == "dar-replication":
            fp.add_argument("--book", type=Path, metavar="BOOK.json",
                            help="address book state (udtræk and positions); updated")

    snap = sub.add_parser("snapshot", help="build the persons snapshot the service starts from")
    snap_formats = snap.add_subparsers(dest="snapshot_command", required=True,
                                       metavar="FORMAT")
    sc = snap_formats.add_parser("cpr-extract",
                                 help="a full CPR extract of the residents → persons JSON Lines")
    sc.add_argument("file", type=Path, metavar="FILE")
    sc.add_argument("--out", type=Path, required=True, metavar="PERSONS.jsonl")
    sc.add_argument("--max-errors", type=_count, default=0, metavar="N")

    pd = sub.add_parser("poll-dar", help="poll a DAWA-compatible replication service; emit "
                                         "the address changes as DAR events")
    pd.add_argument("--url", required=True, metavar="BASE",
                    help="the service's base URL (…/replikering/… lives under it)")
    _poller_arguments(pd, "dar.events", "address book and positions (mode 0600)", "5m")

    dec = sub.add_parser("decisions", help="read the decision log: why was this event or "
                                           "case decided so?")
    dec_commands = dec.add_subparsers(dest="decisions_command", required=True,
                                      metavar="SUBCOMMAND")
    for name, what, help_text in (
            ("show", "EVENT_ID", "the decision about one event, with its explanation"),
            ("case", "CASE_ID", "every decision about one case, newest first")):
        one = dec_commands.add_parser(name, help=help_text)
        one.add_argument("target", metavar=what)
        one.add_argument("--json", action="store_true", help="print JSON, as the page's API")
    prune = dec_commands.add_parser("prune", help="remove decisions decided before a time")
    prune.add_argument("--older-than", type=_window, required=True, metavar="DURATION",
                       help="e.g. 90d: remove what was decided longer ago")
    for one in dec_commands.choices.values():
        one.add_argument("--db", metavar="URL", help="sqlite:///path or postgresql://… "
                         "(default: TRIAGE_DECISION_LOG, else the worker's default file)")

    facts = rules.add_parser("facts", help="the fact catalogue rules can use")
    facts.add_argument("--format", choices=("table", "markdown"), default="table")

    rt = rules.add_parser("test", help="run rule scenarios (worlds, timelines, expectations) "
                                       "through the core")
    rt.add_argument("paths", type=Path, nargs="*", metavar="PATH",
                    help="scenario files or directories (default: the shipped "
                         "rules/scenarios/)")
    rt.add_argument("--rules", type=Path, default=DEFAULT_RULES, metavar="FILE",
                    help="the ruleset to test (default: rules/default.yaml)")
    rt.add_argument("--coverage", action="store_true",
                    help="also fail (exit 1) when a rule of the ruleset is not exercised")
    rt.add_argument("--quiet", action="store_true", help="print failures and the summary only")

    rd = rules.add_parser("diff", help="backtest a draft ruleset against history, beside the "
                                       "base ruleset, in one pass")
    rd.add_argument("events", type=Path, nargs="?", metavar="EVENTS.jsonl",
                    help="history as JSON Lines (or --kafka: the worker's journal topic)")
    rd.add_argument("--kafka", metavar="BOOTSTRAP",
                    help="read history from the journal topic on this broker")
    rd.add_argument("--topic", default="triage.routed", help="journal topic (--kafka)")
    rd.add_argument("--partition", type=int, help="journal partition (--kafka; needed when "
                                                  "the topic has several)")
    rd.add_argument("--base", type=Path, default=DEFAULT_RULES, metavar="BASE.yaml",
                    help="the ruleset in force (default: rules/default.yaml)")
    rd.add_argument("--draft", type=Path, required=True, metavar="DRAFT.yaml")
    rd.add_argument("--persons", type=Path, required=True, metavar="PERSONS.jsonl")
    rd.add_argument("--cases", type=Path, required=True, metavar="CASES.jsonl")
    rd.add_argument("--window", type=_window, default=timedelta(hours=24),
                    help="household correlation window (default 24h)")
    rd.add_argument("--lateness", type=_lateness, default=DEFAULT_LATENESS,
                    help="allowed lateness, as for replay (default 1h; 0 for history already "
                         "in registered_at order)")
    rd.add_argument("--max-clock-jump", type=_window, default=DEFAULT_MAX_JUMP,
                    help="how far one event may move event time ahead on its own (default 7d)")
    rd.add_argument("--from", dest="since", type=_instant, metavar="TIME",
                    help="count events registered at or after TIME (RFC 3339, or a date: "
                         "00:00 UTC)")
    rd.add_argument("--to", dest="until", type=_instant, metavar="TIME",
                    help="count events registered before TIME")
    rd.add_argument("--report", type=Path, required=True, metavar="REPORT.json")
    rd.add_argument("--html", type=Path, metavar="REPORT.html",
                    help="also write a self-contained HTML report")
    rd.add_argument("--examples", type=int, default=5, metavar="N",
                    help="examples kept per changed (transition, rule pair) cell (default 5)")
    rd.add_argument("--fail-on-risk", action="store_true",
                    help="exit 1 when the draft would suppress anything the base raises")
    operator_cli.add_arguments(rules, sub, _window)
    rd.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Whatever this process creates — outputs, state, faust's data, SQLite journals, logs —
    # is private to this user (files 0600, directories 0700): they may hold CPR numbers.
    os.umask(PRIVATE_UMASK)
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # as if killed by SIGPIPE


def _run(args: argparse.Namespace) -> int:
    from triage.failures import OperatorError

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
        if args.command == "snapshot":
            return _snapshot(args)
        if args.command == "poll-dar":
            return _poll_dar(args)
        if args.command == "decisions":
            from triage.decisionlog import LogUrlError
            from triage.decisionlog.cli import run

            try:
                return run(args.decisions_command, getattr(args, "target", None), args.db,
                           getattr(args, "json", False), getattr(args, "older_than", None))
            except LogUrlError as exc:
                raise UsageError(str(exc)) from None
        if args.command == "poll-atp":
            return _poll_atp(args)
        if args.command == "silences":
            return operator_cli.run(args)
        if args.command == "feed":
            return _feed(args)
        if args.command == "casesystem":
            return _casesystem(args)
        if args.command == "dev":
            from triage.dev import DEMO_LATENESS, run_dev

            return run_dev(args.dir, events=args.events, rate=args.rate,
                           web_port=args.web_port, partitions=args.partitions,
                           exit_when_done=args.exit_when_done,
                           lateness=args.lateness if args.lateness is not None
                           else DEMO_LATENESS)
    except (UsageError, ReferenceDataError, OperatorError,
            operator_cli.OperatorCommandError) as exc:
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
        out = open_private(args.out)
        tasks = open_private(args.tasks) if args.tasks else None
    except OSError as exc:
        raise UsageError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    if args.max_clock_jump <= args.lateness:
        raise UsageError("--max-clock-jump must be larger than --lateness")
    pipeline = Pipeline(Triage(cases, ruleset, window=args.window), lateness=args.lateness,
                        max_jump=args.max_clock_jump)
    settle_long_lived()
    size = args.events.stat().st_size
    with events, out, cli_output.progress(size, enabled=not args.quiet) as advance:
        summary = replay(events, pipeline, out, tasks, progress=advance)
    if tasks is not None:
        tasks.close()
    if not args.quiet:
        cli_output.print_summary(summary, ruleset.version)
    return 0


def _casesystem(args: argparse.Namespace) -> int:
    from connectors.casesystem.auth import CredentialsError, read_token_file, token_from_env
    from connectors.casesystem.server import run_reference_server
    from triage.failures import check_port_free
    from triage.private_files import state_dir

    for path in (args.cases, args.udk):
        if path is not None and not path.is_file():
            raise UsageError(f"{path}: no such file")
    try:
        token = read_token_file(args.token_file) if args.token_file else token_from_env()
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    if token is None:
        raise UsageError("the case system needs a bearer token: --token-file FILE, or "
                         "TRIAGE_CASESYSTEM_TOKEN / TRIAGE_CASESYSTEM_TOKEN_FILE")
    store = args.store or state_dir("casesystem") / "tasks.sqlite"
    check_port_free(args.host, args.port, "--port")
    try:
        run_reference_server(args.cases, args.udk, store, args.host, args.port, token=token)
    except ValueError as exc:  # a cases or UDK file line that is not a valid record
        raise UsageError(f"{exc} (fix the file; every line must be one record)") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"{args.host}:{args.port} is already in use: stop what listens "
                             "there or choose another --port") from None
        raise UsageError(f"{exc.filename or 'casesystem'}: {exc.strerror}") from None
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from triage.simulate import simulate

    if args.events < 1:
        raise UsageError("--events must be at least 1")
    if args.outdir.exists() and not args.outdir.is_dir():
        raise UsageError(f"{args.outdir} is a file: give OUTDIR a directory (it is created)")
    summary = simulate(args.outdir, seed=args.seed, events=args.events)
    cli_output.print_simulation(summary, args.outdir)
    return 0


def _id_key(value: str | None) -> IdKey:
    from connectors.ids import ENV_VAR, IdKey

    key = IdKey.from_config(value, warn=False)
    if key.development:
        print(f"triage: warning: {ENV_VAR} is not set: event ids use the public development "
              f"key and can be recomputed from CPR numbers; set {ENV_VAR} or --id-key in "
              "production", file=sys.stderr)
    return key


def _ingest(args: argparse.Namespace) -> int:
    from connectors.output import IngestFailed

    if not args.file.exists():
        raise UsageError(f"{args.file}: no such file")
    key = _id_key(args.id_key) if args.ingest_command != "dar-replication" else None
    try:
        if args.ingest_command == "cpr-extract":
            from connectors.cpr import ingest_cpr_extract

            if args.file.is_dir():
                raise UsageError(f"{args.file}: is a directory, not an extract")
            summary = ingest_cpr_extract(args.file, out=args.out, bootstrap=args.kafka,
                                         key=key)
        elif args.ingest_command == "envelope":
            from connectors.envelope.ingest import ingest_envelopes

            summary = ingest_envelopes(args.file, out=args.out, bootstrap=args.kafka,
                                       persons=args.persons, actions=args.actions, key=key)
        else:
            from connectors.dar.ingest import ingest_dar_replication

            summary = ingest_dar_replication(args.file, out=args.out, bootstrap=args.kafka,
                                             book_path=args.book)
    except IngestFailed as exc:
        raise UsageError(str(exc)) from None
    for line in summary.lines():
        print(line, file=sys.stderr)
    return summary.exit_status(args.max_errors)


def _snapshot(args: argparse.Namespace) -> int:
    from connectors.cpr.snapshot import write_persons
    from connectors.output import IngestFailed

    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    try:
        summary = write_persons(args.file, args.out)
    except IngestFailed as exc:
        raise UsageError(str(exc)) from None
    for line in summary.lines():
        print(line, file=sys.stderr)
    return summary.exit_status(args.max_errors)


def _poll_dar(args: argparse.Namespace) -> int:
    import asyncio

    from connectors.dar.poller import poll_dar
    from connectors.output import IngestFailed

    try:
        summary = asyncio.run(poll_dar(args.url, bootstrap=args.kafka, out=args.out,
                                       state_path=args.state,
                                       interval=args.interval.total_seconds(),
                                       rounds=args.rounds))
    except IngestFailed as exc:
        raise UsageError(str(exc)) from None
    print(f"rounds: {summary.rounds}  events: {summary.events}  problems: "
          f"{len(summary.problems)}  failed rounds: {summary.failures}", file=sys.stderr)
    for problem in summary.problems:
        print(f"problem {problem}", file=sys.stderr)
    if summary.rounds and summary.failures == summary.rounds:
        raise UsageError(f"--url {args.url}: every round failed: the replication service did "
                         "not answer; check the URL and that it runs")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from connectors.casesystem.client import CaseSystemError
    from triage.failures import check_kafka_reachable, check_port_free
    from triage.stream.kafka_security import kafka_client_kwargs
    from triage.stream.run import run_worker
    from triage.stream.settings import ConfigError, WorkerSettings, describe_settings_error
    from triage.task_ids import TaskKeyError

    if args.config:
        os.environ["TRIAGE_CONFIG"] = str(args.config)
    try:
        settings = WorkerSettings()
    except ConfigError as exc:
        raise UsageError(f"configuration: {exc}") from None
    except ValidationError as exc:
        raise UsageError(f"configuration: {describe_settings_error(exc)}") from None
    check_port_free(settings.web_host, settings.web_port, "TRIAGE_WEB_PORT")
    try:
        client_kwargs = kafka_client_kwargs(settings)
    except ConfigError as exc:
        raise UsageError(f"configuration: {exc}") from None
    check_kafka_reachable(settings.bootstrap, "TRIAGE_BOOTSTRAP", **client_kwargs)
    try:
        return run_worker(settings, args.loglevel)
    except TaskKeyError as exc:
        raise UsageError(f"configuration: {exc}") from None
    except CaseSystemError as exc:
        raise UsageError(f"TRIAGE_CASESYSTEM_URL {settings.casesystem_url}: the case system "
                         f"did not answer ({exc}); check the URL and that it runs") from None


def _poll_atp(args: argparse.Namespace) -> int:
    import asyncio

    from aiokafka.errors import KafkaConnectionError

    from connectors.atp.run import poll_atp
    from connectors.casesystem.auth import CredentialsError, token_from_env
    from connectors.casesystem.client import LookupUnavailable

    try:
        token = token_from_env()
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    try:
        summary = asyncio.run(poll_atp(
            args.casesystem, bootstrap=args.kafka, out=args.out, state_path=args.state,
            interval=args.interval.total_seconds(), rounds=args.rounds, token=token))
    except LookupUnavailable as exc:
        raise UsageError(f"--casesystem {args.casesystem}: the case system did not answer "
                         f"({exc}); check the URL and that it runs") from None
    except KafkaConnectionError:
        raise UsageError(f"--kafka {args.kafka}: no Kafka broker answers there; check the "
                         "address and that the broker runs") from None
    print(f"rounds: {summary.rounds}  events: {summary.events}  "
          f"lookups failed: {summary.failures}")
    return 0


def _feed(args: argparse.Namespace) -> int:
    import asyncio

    from triage.dev import Progress, feed
    from triage.failures import check_kafka_reachable

    if not args.events.is_file():
        raise UsageError(f"{args.events}: no such file")
    if args.rate <= 0:
        raise UsageError("--rate must be above 0 (events per second)")
    check_kafka_reachable(args.kafka, "--kafka")
    progress = Progress()
    asyncio.run(feed(args.kafka, args.events, args.rate, progress))
    print(f"fed {progress.produced} events to {args.kafka}")
    return 0


def _rules(args: argparse.Namespace) -> int:
    if args.rules_command in ("promote", "reload"):
        return operator_cli.run(args)
    if args.rules_command == "test":
        return _rules_test(args)
    if args.rules_command == "diff":
        return _rules_diff(args)
    if args.rules_command == "check":
        ruleset = load_ruleset(args.path)
        print(f"{args.path}: {len(ruleset.rules)} rules, threshold {ruleset.threshold}, "
              f"version {ruleset.version}")
        return 0
    cli_output.print_facts(markdown=args.format == "markdown")
    return 0


def _rules_diff(args: argparse.Namespace) -> int:
    import orjson

    from triage.backtest import DiffReport, backtest
    from triage.backtest.history import HistoryError, file_lines, journal_lines
    from triage.pipeline import Pipeline

    if (args.events is None) == (args.kafka is None):
        raise UsageError("rules diff: give EVENTS.jsonl or --kafka BOOTSTRAP (one of them)")
    if args.examples < 0:
        raise UsageError("--examples must be 0 or more")
    if args.since and args.until and args.until <= args.since:
        raise UsageError("--to must be after --from")
    base, draft = load_ruleset(args.base), load_ruleset(args.draft)
    cases = load_reference(args.persons, args.cases)
    if args.events is not None and not args.events.is_file():
        raise UsageError(f"{args.events}: no such file")
    for target in (args.report, args.html):
        if target is not None and not target.parent.is_dir():
            raise UsageError(f"{target}: no such directory")
    report = DiffReport(base.version, draft.version, args.since, args.until,
                        examples_per_cell=args.examples)
    if args.max_clock_jump <= args.lateness:
        raise UsageError("--max-clock-jump must be larger than --lateness")
    pipeline = Pipeline(Triage(cases, base, window=args.window), lateness=args.lateness,
                        max_jump=args.max_clock_jump)
    settle_long_lived()
    try:
        if args.events is not None:
            size = args.events.stat().st_size
            with cli_output.progress(size, enabled=not args.quiet) as advance:
                backtest(file_lines(args.events), pipeline, draft, report, progress=advance)
        else:
            backtest(journal_lines(args.kafka, args.topic, args.partition), pipeline, draft,
                     report)
    except HistoryError as exc:
        raise UsageError(str(exc)) from None
    data = report.to_json()
    try:
        args.report.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        if args.html is not None:
            from triage.backtest.html import render_html

            args.html.write_text(render_html(data), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    if not args.quiet:
        cli_output.print_diff(data)
    return 1 if args.fail_on_risk and report.risk > 0 else 0


def _rules_test(args: argparse.Namespace) -> int:
    from triage.scenarios import SCENARIOS, run_suite, scenario_files
    from triage.scenarios.spec import shown_path

    ruleset = load_ruleset(args.rules)
    paths = args.paths or [SCENARIOS]
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
    files = scenario_files(paths)
    if not files:
        raise UsageError(f"no scenario files (*.yaml) in {', '.join(map(str, paths))}")
    suite = run_suite(files, ruleset)
    for result in suite.results:
        shown = shown_path(Path(result.path))
        if result.failures:
            print(f"FAIL {shown}: {result.name} — {len(result.failures)} of "
                  f"{result.checked} expectations failed")
            for failure in result.failures:
                print(f"  {failure}")
        elif not args.quiet:
            print(f"ok   {shown}: {result.name} ({result.checked} expectations)")
    for problem in suite.invalid:
        print(f"ERROR {problem}")
    status = suite.exit_status
    unexercised = suite.unexercised(ruleset) if args.coverage else []
    if unexercised:
        print(f"not exercised by any scenario ({len(unexercised)} rules of "
              f"{ruleset.version}): {', '.join(unexercised)}")
        status = status or 1
    failed = sum(1 for r in suite.results if r.failures)
    print(f"{len(files)} scenario files, {suite.checked} expectations, ruleset "
          f"{ruleset.version}: {len(suite.results) - failed} passed, {failed} failed, "
          f"{len(files) - len(suite.results)} could not be run")
    return status


if __name__ == "__main__":
    sys.exit(main())
