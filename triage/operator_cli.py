"""The operator's commands against a running worker, over its HTTP endpoints
(:mod:`triage.stream.operator`): ``triage rules promote|reload`` and ``triage silences …``.

The worker's URL is ``--url`` (default ``http://127.0.0.1:6066``, or ``TRIAGE_WORKER_URL``); the
operator token comes from ``--token-file`` or ``TRIAGE_OPERATOR_TOKEN`` /
``TRIAGE_OPERATOR_TOKEN_FILE``, never from the command line (it would show in ``ps`` and the
shell history). A refused change prints every reason (``triage: …`` per line) and exits 1; a
worker that does not answer exits 2 with one line.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

DEFAULT_URL = "http://127.0.0.1:6066"


class OperatorCommandError(Exception):
    """The worker could not be asked (unreachable, no token). ``str()`` is one line."""


def add_arguments(rules: Any, sub: Any, window: Any) -> None:
    """``rules promote``, ``rules reload`` (into the ``rules`` subparsers) and ``silences``."""
    def connection(parser: argparse.ArgumentParser, changing: bool = True) -> None:
        parser.add_argument("--url", default=os.environ.get("TRIAGE_WORKER_URL", DEFAULT_URL),
                            help=f"the worker's web address (default {DEFAULT_URL}, or "
                                 "TRIAGE_WORKER_URL)")
        if not changing:
            return
        parser.add_argument("--token-file", type=Path, metavar="FILE",
                            help="file holding the operator token (default: "
                                 "TRIAGE_OPERATOR_TOKEN, TRIAGE_OPERATOR_TOKEN_FILE)")
        parser.add_argument("--as", dest="operator", default=os.environ.get("USER", "operator"),
                            help="who makes the change, for the audit trail (default $USER)")

    promote = rules.add_parser("promote", help="make a rule file active on the running worker "
                                               "(validated first; audited)")
    promote.add_argument("path", type=Path, metavar="DRAFT.yaml")
    connection(promote)
    reload = rules.add_parser("reload", help="make the running worker re-read TRIAGE_RULES "
                                             "(as SIGHUP does)")
    connection(reload)

    silences = sub.add_parser("silences", help="silence verdicts on the running worker").\
        add_subparsers(dest="silences_command", required=True, metavar="SUBCOMMAND")
    listing = silences.add_parser("list", help="the silences and their state (with "
                                               "TRIAGE_VIEWER_TOKEN when the worker has one)")
    connection(listing, changing=False)
    add = silences.add_parser("add", help="suppress verdicts matching facts for a time span")
    add.add_argument("id", help="lower-case letters, digits and '-'")
    add.add_argument("--match", action="append", required=True, metavar="FACT=VALUE",
                     help="a fact and its value (repeatable; all must hold)")
    add.add_argument("--author", default=os.environ.get("USER"), required=not os.environ.get(
        "USER"))
    add.add_argument("--comment", required=True)
    add.add_argument("--starts", metavar="TIME", help="RFC 3339 with offset (default: now)")
    add.add_argument("--for", dest="duration", type=window, default=timedelta(hours=2),
                     help="how long (default 2h)")
    connection(add)
    expire = silences.add_parser("expire", help="end a silence now")
    expire.add_argument("id")
    connection(expire)


def token(args: argparse.Namespace) -> str:
    path = args.token_file or os.environ.get("TRIAGE_OPERATOR_TOKEN_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OperatorCommandError(f"cannot read the operator token file {path}: "
                                       f"{exc.strerror}") from None
    found = os.environ.get("TRIAGE_OPERATOR_TOKEN")
    if not found:
        raise OperatorCommandError("no operator token: --token-file FILE, or "
                                   "TRIAGE_OPERATOR_TOKEN / TRIAGE_OPERATOR_TOKEN_FILE")
    return found


def _call(args: argparse.Namespace, method: str, path: str, *, changing: bool = True,
          **kwargs: Any) -> tuple[int, Any]:
    headers = {"X-Triage-Operator": str(getattr(args, "operator", "operator"))[:100]}
    if changing:
        headers["Authorization"] = f"Bearer {token(args)}"
    viewer = os.environ.get("TRIAGE_VIEWER_TOKEN")
    if not changing and viewer:
        headers["Authorization"] = f"Bearer {viewer}"
    url = args.url.rstrip("/") + path
    try:
        response = httpx.request(method, url, headers=headers, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise OperatorCommandError(f"--url {args.url}: the worker did not answer "
                                   f"({type(exc).__name__}); check the URL and that it runs"
                                   ) from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"errors": [response.text[:300]]}


def _refused(status: int, body: Any) -> int:
    for problem in (body.get("errors") if isinstance(body, dict) else None) or [str(body)]:
        print(f"triage: {problem}", file=sys.stderr)
    print(f"triage: refused (HTTP {status}); nothing changed", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "silences_command", None) or args.rules_command
    if command == "promote":
        try:
            text = args.path.read_bytes()
        except OSError as exc:
            raise OperatorCommandError(f"{args.path}: cannot read: {exc.strerror}") from None
        status, body = _call(args, "POST", "/api/rules/promote",
                             params={"file": args.path.name}, content=text)
    elif command == "reload":
        status, body = _call(args, "POST", "/api/rules/reload")
    elif command == "list":
        status, body = _call(args, "GET", "/api/silences", changing=False)
        if status == 200:
            for s in body["silences"]:
                print(f"{s['id']}  {s['state']:8}  {s['starts_at']} .. {s['ends_at']}  "
                      f"{orjson.dumps(s['matchers']).decode()}  {s['author']}: {s['comment']}")
            return 0
    elif command == "add":
        starts = datetime.fromisoformat(args.starts) if args.starts else datetime.now(UTC)
        matchers = {}
        for item in args.match:
            fact, sep, value = item.partition("=")
            if not sep:
                raise OperatorCommandError(f"--match {item}: expected FACT=VALUE")
            matchers[fact.strip()] = _value(value.strip())
        silence = {"id": args.id, "matchers": matchers, "author": args.author,
                   "comment": args.comment, "starts_at": starts.isoformat(),
                   "ends_at": (starts + args.duration).isoformat()}
        status, body = _call(args, "POST", "/api/silences", json=silence)
    else:
        status, body = _call(args, "DELETE", f"/api/silences/{args.id}")
    if status != 200:
        return _refused(status, body)
    print(orjson.dumps(body).decode())
    return 0


def _value(text: str) -> Any:
    """``true``/``false``/numbers as JSON, anything else as text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
