"""Control records: a promote, a shadow and silences journalled at a point of the stream are
applied there — and applied again at the same point by a rebuild, record for record."""

from __future__ import annotations

from datetime import timedelta

import orjson

from tests.drafts import draft_text
from tests.world import T0, World, address
from triage.control import (
    EXPIRE,
    KIND_HEADER,
    RULESET,
    SHADOW,
    SILENCE,
    apply_control,
    check_silence,
    expire_record,
    kind_of,
    ruleset_record,
    shadow_record,
    silence_record,
)
from triage.core import Outputs

HOME, NEW = address("home"), address("new")


def journal() -> tuple[World, list[tuple[list, bytes]]]:
    """Events with operator changes between them, as the worker would journal them."""
    w = World()
    for name in ("mor", "far"):
        w.person(name, HOME)
    w.person("ole", address("h2"))
    w.case("C1", "kontanthjaelp", "mor", spouse="far")
    w.case("C2", "kontanthjaelp", "ole")
    w.move("mor", NEW, at=0)
    w.cpr_event("mor", "name_changed", at=1, code="A13")
    w.move("far", NEW, at=2)
    w.event("dar", "address_retired", at=3, address_id=address("h2")["address_id"],
            before=address("h2"), after=None)
    w.cpr_event("mor", "name_changed", at=5, code="A13")
    w.event("dar", "address_retired", at=6, address_id=address("h2")["address_id"],
            before=address("h2"), after=None)
    events = [([], line) for line in w.lines()]
    strict = draft_text(name="strict", scores={"stamdata": 0.8, "husstand-flyttet-samlet": 0.9})
    core = w.triage()
    silence = check_silence(core, {
        "id": "dar-fejl", "matchers": {"event.type": "address_retired"}, "author": "drift",
        "comment": "kendt fejl", "starts_at": T0.isoformat(),
        "ends_at": (T0 + timedelta(days=1)).isoformat()})
    records = [events[0], shadow_record(strict), events[1], ruleset_record(strict), events[2],
               silence_record(silence), events[3], events[4], shadow_record(None),
               expire_record("dar-fejl", T0 + timedelta(hours=5)), events[5]]
    return w, records


def run(w: World, records) -> tuple[Outputs, object]:
    core = w.triage()
    out = Outputs()
    for headers, value in records:
        kind = kind_of(headers)
        out.extend(apply_control(core, kind, value) if kind else core.process(value))
    out.extend(core.flush())
    return out, core


def test_changes_apply_where_they_stand_in_the_journal():
    w, records = journal()
    out, core = run(w, records)
    by_id = {d.event_id: d for d in out.decisions}
    default, strict = w.triage().ruleset.version, core.ruleset.version
    assert strict != default and set(core.rulesets) == {default, strict}
    assert (by_id["e2"].ruleset, by_id["e2"].outcome) == (default, "suppressed")
    assert (by_id["e5"].ruleset, by_id["e5"].outcome) == (strict, "raised")
    # the household move open at the promote is decided whole by the new ruleset
    assert {by_id[i].ruleset for i in ("e1", "e3")} == {strict}
    assert {by_id[i].cases[0].rule for i in ("e1", "e3")} == {"husstand-flyttet-samlet"}
    assert by_id["e4"].cases[0].rule == "silenced:dar-fejl"
    assert by_id["e6"].cases[0].rule == "dar-adresse-nedlagt"  # expired early, at 5h
    shadowed = {s.decision.event_id for s in out.shadow}
    assert shadowed == {"e1", "e2", "e3", "e4", "e5"}  # no shadow after it was removed
    assert core.shadow is None


def test_a_rebuild_from_the_journal_gives_the_same_outputs_record_for_record():
    w, records = journal()
    first, _ = run(w, records)
    again, _ = run(w, records)
    for a, b in ((first.decisions, again.decisions), (first.tasks, again.tasks),
                 ([s.decision for s in first.shadow], [s.decision for s in again.shadow])):
        assert [orjson.dumps(x) for x in a] == [orjson.dumps(x) for x in b]


def test_control_kinds_are_recognised_from_headers_and_events_are_not():
    for kind in (RULESET, SHADOW, SILENCE, EXPIRE):
        assert kind_of([(KIND_HEADER, kind.encode())]) == kind
    assert kind_of([(KIND_HEADER, b"tick")]) is None
    assert kind_of([]) is None and kind_of(None) is None


def test_a_ruleset_change_is_summarised_in_one_line_for_the_audit():
    from tests.drafts import draft
    from triage.rules import DEFAULT_RULES, load_ruleset
    from triage.rules.change import describe_change

    base = load_ruleset(DEFAULT_RULES)
    new = draft(name="d", scores={"stamdata": 0.6}, drop=("dar-administrativ",),
                prepend=[{"id": "ny", "score": 0.9, "when": {"event.type": "died"},
                          "reason": "r", "title": "t"}],
                edits={"barn-uden-betydning": {"title": "Nyt barn"}})
    line = describe_change(base, new)
    assert line.startswith(f"{base.version} → {new.version}: ")
    assert "1 added (ny)" in line and "1 removed (dar-administrativ)" in line
    assert "stamdata: score 0.0→0.6" in line and "barn-uden-betydning: title" in line
    assert "\n" not in line
    assert describe_change(base, base).endswith("no rule changed")
