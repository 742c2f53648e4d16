"""What changed between two rulesets, in one line: for audit records and promote responses."""

from __future__ import annotations

from triage.rules.engine import Ruleset
from triage.rules.model import Rule

_FIELDS = ("matchers", "score", "reason", "title", "unit", "payment_hold")


def describe_change(old: Ruleset, new: Ruleset) -> str:
    """E.g. ``default@1a2b… → draft@3c4d…: 1 added (x), 1 removed (y), 2 changed (stamdata:
    score 0.0→0.6; husstand-splittet: when), order changed, threshold 0.5→0.6``."""
    before = {r.id: r for r in old.rules}
    after = {r.id: r for r in new.rules}
    parts = []
    added = [i for i in after if i not in before]
    removed = [i for i in before if i not in after]
    changed = [f"{i}: {_what(before[i], after[i])}" for i in after
               if i in before and _what(before[i], after[i])]
    if added:
        parts.append(f"{len(added)} added ({', '.join(added)})")
    if removed:
        parts.append(f"{len(removed)} removed ({', '.join(removed)})")
    if changed:
        parts.append(f"{len(changed)} changed ({'; '.join(changed)})")
    kept_before = [i for i in before if i in after]
    kept_after = [i for i in after if i in before]
    if kept_before != kept_after:
        parts.append("order changed")  # first match wins: order is meaning
    if old.threshold != new.threshold:
        parts.append(f"threshold {old.threshold}→{new.threshold}")
    return f"{old.version} → {new.version}: {', '.join(parts) or 'no rule changed'}"


def _what(a: Rule, b: Rule) -> str:
    out = []
    for name in _FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if x != y:
            out.append("when" if name == "matchers" else
                       f"{name} {x}→{y}" if name in ("score", "payment_hold", "unit") else name)
    return ", ".join(out)
