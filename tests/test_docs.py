"""The docs say what the code does: the fact table is the generated catalogue, the settings
table is the settings class, every command-line option is documented, links stay inside the
repository."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from triage.cli import build_parser, main
from triage.stream.settings import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RULES_DOC = ROOT / "docs" / "rules.md"
# Documents other branches write; listed in the README's index before they land.
PENDING_DOCS = {"docs/security.md", "docs/dashboard.md", "docs/rules-ops.md",
                "docs/event-time.md", "docs/mutation.md"}


def section(text: str, heading: str) -> str:
    """The text under a Markdown heading, up to the next heading of the same or higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def test_the_fact_table_is_the_generated_catalogue():
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["rules", "facts", "--format", "markdown"]) == 0
    generated = buffer.getvalue().strip()
    assert generated.count("\n") > 20
    assert generated in RULES_DOC.read_text(), "docs/rules.md fact table is stale: regenerate " \
        "it with `triage rules facts --format markdown`"


def test_every_rule_in_the_default_ruleset_is_exercised_by_some_test():
    """Each shipped rule id appears in a test, so no impact rule goes untested."""
    import yaml

    rules = yaml.safe_load((ROOT / "rules" / "default.yaml").read_text())["rules"]
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    untested = [r["id"] for r in rules if r["id"] not in tests]
    assert untested == []


def settings_rows() -> dict[str, str]:
    """README settings table: variable → default cell."""
    rows = {}
    for line in section(README.read_text(), "Settings").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`TRIAGE_[A-Z0-9_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def _required() -> dict[str, Any]:
    return {name: "x" for name, field in WorkerSettings.model_fields.items()
            if field.is_required()}


def _parsed(name: str, text: str) -> Any:
    """``text`` as the settings class reads it for the field ``name``."""
    values = {**_required(), "cases": "c.jsonl", name: text}
    try:
        return getattr(WorkerSettings.model_validate(values), name)
    except ValidationError as exc:
        raise AssertionError(f"TRIAGE_{name.upper()}: README default {text!r} is not a valid "
                             f"value: {exc}") from None


def test_the_settings_table_is_the_settings_class():
    """Generic: a row per field, a field per row, and each default the class's. A default in
    backticks must read (through the class's own validation) as the class's default; prose
    is allowed only where the default is computed or none (``None``, a path outside the
    repository)."""
    rows = settings_rows()
    fields = {f"TRIAGE_{name.upper()}": (name, f)
              for name, f in WorkerSettings.model_fields.items()}
    assert set(fields) - set(rows) == set(), "settings missing from the README's table"
    assert set(rows) - set(fields) == set(), "README rows for settings that do not exist"
    for variable, cell in rows.items():
        name, field = fields[variable]
        if field.is_required():
            assert cell == "(required)", variable
            continue
        code = re.match(r"`([^`]+)`", cell)
        if field.default_factory is not None:
            assert cell, variable  # prose: the default is computed
            continue
        default = field.get_default()
        if isinstance(default, Path) and default.is_relative_to(ROOT):
            assert code and (ROOT / code.group(1)).resolve() == default.resolve(), variable
        elif default is None or isinstance(default, Path) or field.default_factory is not None:
            assert cell, variable  # prose: the default is computed, or there is none
            if default is None:
                assert not code or code.group(1).startswith("TRIAGE_"), \
                    f"{variable}: the default is none, not {code.group(1)!r}"
        else:
            assert code, f"{variable}: give the default {default!r} in backticks"
            assert _parsed(name, code.group(1)) == default, \
                f"{variable}: README says {code.group(1)}, the code {default!r}"


def cli_options() -> dict[str, set[str]]:
    """Every command's long options: ``"rules check"`` → ``{"--format", …}``."""
    found: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    walk(child, f"{name} {sub}".strip())
            elif name and action.help != argparse.SUPPRESS:
                found.setdefault(name, set()).update(
                    o for o in action.option_strings if o.startswith("--") and o != "--help")

    walk(build_parser(), "")
    return found


def test_every_command_and_option_is_in_the_readme_synopsis():
    synopsis = section(README.read_text(), "Commands")
    block = re.search(r"```\n(.*?)```", synopsis, re.S)
    assert block
    lines = re.sub(r"\n\s+", " ", block.group(1)).splitlines()
    for command, options in cli_options().items():
        usage = [line for line in lines if line.startswith(f"triage {command} ")
                 or line == f"triage {command}"]
        assert usage, f"`triage {command}` is missing from the README's Commands"
        missing = {o for o in options if not re.search(rf"{re.escape(o)}\b", usage[0])}
        assert missing == set(), f"triage {command}: undocumented options {sorted(missing)}"


def cli_defaults() -> dict[tuple[str, str], Any]:
    found = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    walk(child, f"{name} {sub}".strip())
            elif name and action.option_strings and action.default not in (None, False,
                                                                             argparse.SUPPRESS):
                found[(name, action.option_strings[-1])] = action.default

    walk(build_parser(), "")
    return found


def test_defaults_shown_in_the_synopsis_are_the_codes():
    block = re.search(r"```\n(.*?)```", section(README.read_text(), "Commands"), re.S)
    assert block
    lines = re.sub(r"\n\s+", " ", block.group(1)).splitlines()
    for (command, option), default in cli_defaults().items():
        usage = next(line for line in lines if line.startswith(f"triage {command}"))
        shown = re.search(rf"\[{re.escape(option)} ([^\]|]+)\]", usage)
        if shown is None or shown.group(1).isupper():  # a placeholder (FILE, N), not a value
            continue
        value = shown.group(1)
        if hasattr(default, "total_seconds"):
            from triage.core import parse_window

            assert parse_window(value) == default, (command, option)
        else:
            assert str(default) == value or type(default)(value) == default, \
                f"triage {command} {option}: README shows {value}, the code {default}"


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def test_links_in_the_docs_stay_inside_the_repository_and_resolve():
    for doc in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target, _anchor in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # an external URL, not a file
            path = (doc.parent / target).resolve()
            assert path.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
            relative = path.relative_to(ROOT).as_posix()
            assert path.exists() or relative in PENDING_DOCS, f"{doc.name}: {target} is missing"


def test_every_alert_has_its_runbook_section():
    import yaml

    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    operations = (ROOT / "docs" / "operations.md").read_text()
    for rule in (r for g in groups["groups"] for r in g["rules"]):
        assert f"\n### {rule['alert']}\n" in operations, rule["alert"]
