"""The docs say what the code does: the README's fact table is the generated catalogue."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from triage.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_fact_table_is_the_generated_catalogue():
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["rules", "facts", "--format", "markdown"]) == 0
    generated = buffer.getvalue().strip()
    assert generated.count("\n") > 20
    assert generated in README.read_text(), "README fact table is stale: regenerate it with " \
        "`triage rules facts --format markdown`"


def test_every_rule_in_the_default_ruleset_is_exercised_by_some_test():
    """Each shipped rule id appears in a test, so no rule of DOMAIN.md goes untested."""
    import yaml

    rules = yaml.safe_load((README.parent / "rules" / "default.yaml").read_text())["rules"]
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    untested = [r["id"] for r in rules if r["id"] not in tests]
    assert untested == []
