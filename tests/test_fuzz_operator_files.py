"""Poison in the files and settings an operator supplies gets one clear error, never a crash.

A rule file, a scenario of ``triage rules test``, the reference data (persons and cases JSON
Lines) and the worker's ``TRIAGE_…`` settings, of any shape — wrong types at every key, YAML
tags (``!!python/object`` is refused, never constructed), aliases that expand into themselves
or into millions of values, numbers beyond every range, nesting thousands deep, bytes that are
not UTF-8 — end in the documented error (:class:`RulesetError`, :class:`ScenarioError`,
:class:`ReferenceDataError`, pydantic's ``ValidationError`` / :class:`ConfigError`) naming the
file and line or the variable; from the command line, one line and exit status 2. No message
shows a CPR number in clear. The compiled reference reader accepts exactly what the models
accept, with the same values.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from triage.failures import OperatorError, check_port_free
from triage.models.events import parse_record
from triage.models.reference import CaseRecord, PersonRecord
from triage.rules import DEFAULT_RULES, Ruleset, RulesetError, load_ruleset, parse_ruleset
from triage.scenarios.check import run_scenario
from triage.scenarios.spec import ScenarioError, load_scenario
from triage.simulate import simulate
from triage.snapshot import ReferenceDataError, case_of, load_reference, person_of
from triage.stream.settings import ConfigError, WorkerSettings, describe_settings_error

CPR = "0101901234"
CPR_IN_CLEAR = re.compile(r"(?<!\d)\d{10}(?!\d)")
TRIAGE = Path(sys.executable).with_name("triage")
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- values of every shape ----------------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from([CPR, "died", "address_changed", "applicant", "0561", "24h", "0",
                     "99999999999d", "-1h", "", " ", "a\n", "2025-03-03"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8) | st.sampled_from(
                          ["eq", "in", "gt", "event.type", "income.amount", CPR]),
                          inner, max_size=3), max_leaves=8)
POISON = st.sampled_from([
    "!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system ''",
    "!!python/object:object {}", "!foo 1", "!!int abc", "!!float abc",
    "!!timestamp 2025-13-45", "!!binary '%%%'", "!!set {a: null}", "!!omap [a: 1]",
    "9" * 5000, ".nan", "-.inf", "1e999", "&a [*a]", "&b {x: *b}", "*undefined",
    "[" * 2000 + "]" * 2000, "{? [a, b]: 1}", "{[x]: 1}", f"'{CPR}'", "{a: 1, a: 2}",
    "\"\\ud800\"", "'x\\n'", "|\n  multi\n  line"])


def yaml_value(value: Any) -> str:
    """``value`` written as one flow-style YAML value."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix(
        "\n...\n").strip()


def no_cpr(text: str) -> None:
    assert not CPR_IN_CLEAR.search(text), text


# --- rule files -----------------------------------------------------------------------------

RULE_KEYS = ("ruleset", "threshold", "description", "id", "rule-description", "when", "score",
             "reason", "title", "unit", "payment_hold", "condition", "extra")


def rule_file(values: dict[str, str]) -> bytes:
    v = {"ruleset": "test", "threshold": "0.5", "description": "d", "id": "a",
         "rule-description": "d", "when": "{}", "score": "0.5", "reason": "r", "title": "t",
         "unit": "jobcenter", "payment_hold": "false", "condition": "died", **values}
    extra = f"{v['extra']}: 1\n" if "extra" in values else ""
    return (f"ruleset: {v['ruleset']}\nthreshold: {v['threshold']}\n"
            f"description: {v['description']}\n{extra}rules:\n"
            f"  - id: {v['id']}\n    description: {v['rule-description']}\n"
            f"    when: {{event.type: {v['condition']}}}\n    score: {v['score']}\n"
            f"    reason: {v['reason']}\n    title: {v['title']}\n    unit: {v['unit']}\n"
            f"    payment_hold: {v['payment_hold']}\n"
            f"  - id: b\n    when: {v['when']}\n    score: 0.1\n    reason: r\n"
            f"    title: t\n").encode()


def rules_outcome(data: bytes) -> Ruleset | RulesetError:
    try:
        return parse_ruleset(data, "r.yaml")
    except RulesetError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert re.match(r"r\.yaml:\d+: ", problem), problem
            assert len(problem) < 4000, problem[:200]
            no_cpr(problem)
        return exc


@FAST
@given(st.dictionaries(st.sampled_from(RULE_KEYS),
                       st.one_of(VALUES.map(yaml_value), POISON), min_size=1, max_size=3))
def test_a_rule_file_with_anything_at_any_key_loads_or_is_refused_at_its_line(values):
    result = rules_outcome(rule_file(values))
    if isinstance(result, Ruleset):  # what loads is what the language allows
        for rule in result.rules:
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", rule.id)
            assert 0.0 <= rule.score <= 1.0 and isinstance(rule.description, str)


@FAST
@given(st.data())
def test_a_damaged_default_ruleset_loads_or_is_refused_at_its_line(data):
    text = bytearray(DEFAULT_RULES.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text) - 1))
        cut = data.draw(st.integers(0, 40))
        text[at:at + cut] = data.draw(st.binary(max_size=8) | POISON.map(str.encode)
                                      | st.sampled_from([b"&a ", b"*a", b"? ", b"- ", b"{",
                                                         b"[", b": ", b"\t", b"\xff"]))
    rules_outcome(bytes(text))


def test_the_default_ruleset_and_the_rule_file_above_still_load():
    assert isinstance(rules_outcome(rule_file({})), Ruleset)
    assert load_ruleset(DEFAULT_RULES).name == "default"


@pytest.mark.parametrize(("values", "line", "message"), [
    # tags the safe loader does not know raised yaml's ConstructorError out of the loader
    ({"score": "!!python/object/apply:os.system ['echo pwned']"}, 8,
     "not a valid value: could not determine a constructor for the tag"),
    ({"threshold": "!!python/object:object {}"}, 2, "could not determine a constructor"),
    ({"condition": "!foo died"}, 7, "could not determine a constructor for the tag '!foo'"),
    # ValueError from PyYAML's int/float/timestamp constructors, and Python's digit limit
    ({"score": "!!int abc"}, 8, "not a valid value: invalid literal for int()"),
    ({"score": "!!timestamp 2025-13-45"}, 8, "not a valid value: month must be in 1..12"),
    ({"when": "{income.amount: {gt: " + "9" * 5000 + "}}"}, 14, "Exceeds the limit (4300"),
    # a key that is a list or a mapping: TypeError, unhashable type
    ({"extra": "[a, b]"}, 4, "a key must be a plain text, not a list or a mapping"),
    ({"when": "{[x]: 1}"}, 14, "b: a key must be a plain text"),
    # PyYAML composes recursively: RecursionError
    ({"when": "[" * 3000 + "]" * 3000}, 1, "not valid YAML: nested too deeply"),
    # "$" let a trailing newline through: an id or a version with a line break in it
    ({"id": "\"a\\n\""}, 5, "rule needs an 'id' of lower-case letters, digits and '-'"),
    ({"ruleset": "\"test\\n\""}, 1, "ruleset name must be lower-case letters"),
    # a condition on NaN never holds (and, with ne, always does); NaN scores were refused
    ({"when": "{income.amount: {ne: .nan}}"}, 14, "b: income.amount: nan is not a valid"),
    ({"when": "{income.amount: [1, .nan]}"}, 14, "nan is not a valid number value"),
    # str() of any YAML value was taken as the description
    ({"rule-description": "{a: 1}"}, 6, "a: 'description' must be a text"),
    ({"description": "[1, 2]"}, 3, "'description' must be a text"),
    # what the file says is quoted back masked
    ({"condition": f"'{CPR}'"}, 7, "a: event.type: '010190-****' is not a valid enum value"),
    ({"extra": CPR}, 4, "unknown key '010190-****'"),
])
def test_poison_in_a_rule_file_is_one_problem_at_its_line(values, line, message):
    result = rules_outcome(rule_file(values))
    assert isinstance(result, RulesetError)
    assert any(p.startswith(f"r.yaml:{line}: ") and message in p for p in result.problems), \
        result.problems


def test_an_alias_bomb_in_a_rule_file_is_refused_in_a_short_message():
    lol = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
    data = ("ruleset: t\nx:\n  l0: &l0 [lol]\n" + lol + "rules:\n  - id: a\n"
            "    when: {event.code: {eq: *l8}}\n    score: 0.5\n    reason: r\n    title: t\n"
            "  - id: b\n    when: {event.type: *l8}\n    description: *l8\n    score: 0.5\n"
            "    reason: r\n    title: t\n").encode()
    result = rules_outcome(data)  # 9**8 values if expanded: a 40 GB message before the fix
    assert isinstance(result, RulesetError)
    assert any("a: event.code: [[[" in p for p in result.problems), result.problems
    assert any("b: 'description' must be a text" in p for p in result.problems)
    assert len(str(result)) < 5000


def test_a_tag_is_refused_never_constructed(tmp_path):
    marker = tmp_path / "pwned"
    data = rule_file({"score": f"!!python/object/apply:os.system ['touch {marker}']"})
    assert isinstance(rules_outcome(data), RulesetError)
    assert not marker.exists()


# --- scenario files -----------------------------------------------------------------------

SCENARIO = """scenario: s
addresses: {{home: {{}}, away: {{}}}}
persons:
  mor: {{at: {at}, born: {born}}}
cases:
  C1: {{benefit: {benefit}, applicant: mor, municipality: {municipality}, unit: {unit}}}
window: {window}
events:
  - {{id: e1, at: {when}, type: {type}, person: {person}, to: {to}, parents: {parents},
     fields: {fields}, expect: {{outcome: {outcome}, cases: {{C1: {{score: {score}}}}}}}}}
  - {{tick: {tick}}}
facts:
  - facts: {{event.type: died, income.amount: {amount}}}
    expect: {{outcome: raised}}
"""
SCENARIO_KEYS = {"at": "home", "born": "1980-01-01", "benefit": "kontanthjaelp",
                 "municipality": "'0561'", "unit": "jobcenter", "window": "24h", "when": "0",
                 "type": "address_changed", "person": "mor", "to": "away",
                 "parents": "null", "fields": "{}", "outcome": "raised", "score": "0.9",
                 "tick": "1h", "amount": "5"}
RULES = load_ruleset(DEFAULT_RULES)


def scenario_outcome(path: Path, text: str | bytes) -> None:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    try:
        run_scenario(load_scenario(path), RULES)
    except ScenarioError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.startswith(f"{path}:"), problem
            no_cpr(problem)
        raise


def test_the_scenario_above_runs():
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-scenario-{os.getpid()}.yaml"
    try:
        scenario_outcome(tmp, SCENARIO.format(**SCENARIO_KEYS))
    finally:
        tmp.unlink(missing_ok=True)


@SLOW
@given(st.dictionaries(st.sampled_from(sorted(SCENARIO_KEYS)),
                       st.one_of(VALUES.map(yaml_value), POISON), min_size=1, max_size=3))
def test_a_scenario_with_anything_at_any_key_runs_or_is_refused_at_its_line(tmp_path, values):
    with contextlib.suppress(ScenarioError):  # either outcome; nothing else
        scenario_outcome(tmp_path / "s.yaml", SCENARIO.format(**{**SCENARIO_KEYS, **values}))


@pytest.mark.parametrize(("values", "message"), [
    # PyYAML's ValueError and TypeError (unhashable key) out of the loader
    ({"when": "!!int abc"}, ":9: not a valid value: invalid literal for int()"),
    ({"fields": "{[a]: 1}"}, ":10: a key must be a plain value, not a list or a mapping"),
    ({"to": "!!python/object/apply:os.system [x]"}, ":9: tag 'tag:yaml.org,2002:python/"),
    # an alias inside itself: RecursionError while making plain data
    ({"fields": "&a {x: *a}"}, ":10: an alias of a value inside itself"),
    ({"parents": "[" * 3000 + "]" * 3000}, ":1: not valid YAML: nested too deeply"),
    # timedelta's and datetime's OverflowError, which pydantic lets through
    ({"window": "99999999999d"}, ":7: window: '99999999999d' is too long a duration"),
    ({"when": "99999999999d"}, ":9: at: '99999999999d' is too far from the start"),
    ({"tick": "-30000000h"}, ":11: tick: '-30000000h' is too far from the start"),
    # CaseRecord's ValidationError was not caught where the world is built
    ({"municipality": "abc"}, ":6: C1: municipality_code: must be 1 to 4 digits"),
    ({"unit": "''"}, ":6: C1: unit: String should have at least 1 character"),
    # enumerate(5): TypeError
    ({"parents": "5"}, ":9: parents: a list of persons"),
    # orjson cannot write an integer beyond 64 bits: TypeError
    ({"fields": "{amount: " + "9" * 30 + "}"}, ":9: event e1 cannot be written as JSON"),
    # a rule-table row's value reached the matchers: "abc" > 5, [a] in frozenset
    ({"amount": "abc"}, ":13: income.amount: 'abc' is not a valid number value"),
    ({"amount": "[5]"}, ":13: income.amount: [5] is not a valid number value"),
    # a CPR number where a name belongs is quoted back masked
    ({"person": f"'{CPR}'"}, ":9: '010190-****' is not one of the persons (mor)"),
])
def test_poison_in_a_scenario_is_one_problem_at_its_line(tmp_path, values, message):
    path = tmp_path / "s.yaml"
    with pytest.raises(ScenarioError) as raised:
        scenario_outcome(path, SCENARIO.format(**{**SCENARIO_KEYS, **values}))
    assert any(p.startswith(f"{path}{message}") for p in raised.value.problems), \
        raised.value.problems


def test_an_alias_bomb_in_a_scenario_is_refused_quickly(tmp_path):
    lol = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 8))
    path = tmp_path / "s.yaml"
    with pytest.raises(ScenarioError) as raised:  # 9**7 values: 35 s and gigabytes before
        scenario_outcome(path, "l0: &l0 [lol]\n" + lol + "scenario: s\n")
    [problem] = raised.value.problems
    assert re.fullmatch(rf"{re.escape(str(path))}:\d: more than 100000 values \(aliases "
                        r"expanding too far\?\)", problem), problem


def test_rules_test_reports_a_poisoned_scenario_with_exit_2_and_no_traceback(tmp_path):
    (tmp_path / "s.yaml").write_text(SCENARIO.format(**{**SCENARIO_KEYS, "parents": "5"}))
    run = subprocess.run([str(TRIAGE), "rules", "test", str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert "parents: a list of persons" in run.stdout


# --- reference data -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("corpus")
    simulate(out, seed=7, events=2000)
    lines = {name: [orjson.loads(line) for line in (out / f"{name}.jsonl").read_bytes()
                    .splitlines()[:40]] for name in ("persons", "cases")}
    return lines


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False,
                                                                             allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from([CPR, "3004774360", "0561", "561", "applicant",
                                              "G", "01", "1977-04-30", "", "٠٥٦١"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3), max_leaves=6)
RAW_JSON = st.sampled_from([b"1" + b"0" * 400, b"1e400", b"-1e999", b'"\xff"', b'"\xed\xa0\x80"',
                            b'"\\ud800"', b"[" * 1010 + b"]" * 1010, b"[" * 2000 + b"]" * 2000,
                            b"NaN", b"1" + b"0" * 5000])


def mutated(data: Any, draw: Any) -> bytes:
    """A line of ``data`` with one field (top level or nested) replaced, removed or added,
    perhaps with raw JSON no Python value writes, perhaps with its bytes damaged."""
    record = orjson.loads(orjson.dumps(data))
    target = record
    nested = [k for k, v in record.items() if isinstance(v, dict)] + \
        (["members"] if record.get("members") else [])
    if nested and draw(st.booleans()):
        key = draw(st.sampled_from(nested))
        target = record[key][0] if key == "members" else record[key]
    key = draw(st.sampled_from([*target, "extra"]))
    action = draw(st.sampled_from(["replace", "remove", "raw"]))
    if action == "remove":
        target.pop(key, None)
    else:
        target[key] = "\x00RAW\x00" if action == "raw" else draw(JSON_VALUES)
    line = orjson.dumps(record).replace(b'"\\u0000RAW\\u0000"', draw(RAW_JSON))
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.binary(max_size=4)) + line[at + draw(st.integers(0, 3)):]
    return line


def person_values(p: Any) -> tuple[Any, ...]:
    return p.cpr, p.address, p.civil_status, p.spouse_cpr, p.status


def case_values(c: Any) -> tuple[Any, ...]:
    return (c.case_id, c.benefit, c.municipality_code, c.unit,
            [(m.cpr, m.role) for m in c.members], c.applicant)


def modelled(model: type, line: bytes) -> Any:
    """What the model path makes of ``line``: the record, or None when it refuses it."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    try:
        return parse_record(model, data)
    except ValueError:
        return None


@FAST
@given(st.data())
def test_the_fast_person_reader_accepts_only_what_the_model_accepts(corpus, data):
    line = mutated(data.draw(st.sampled_from(corpus["persons"])), data.draw)
    fast = person_of(line, {})
    if fast is not None:
        model = modelled(PersonRecord, line)
        assert model is not None, line
        assert person_values(fast) == person_values(model)


@FAST
@given(st.data())
def test_the_fast_case_reader_accepts_only_what_the_model_accepts(corpus, data):
    line = mutated(data.draw(st.sampled_from(corpus["cases"])), data.draw)
    fast = case_of(line)
    if fast is not None:
        model = modelled(CaseRecord, line)
        assert model is not None, line
        assert case_values(fast) == case_values(model)


@FAST
@given(st.data())
def test_poisoned_reference_data_is_one_error_naming_file_and_line(tmp_path, corpus, data):
    persons, cases = tmp_path / "persons.jsonl", tmp_path / "cases.jsonl"
    poisoned = data.draw(st.sampled_from(["persons", "cases"]))
    lines = {name: [orjson.dumps(r) for r in corpus[name][:3]] for name in corpus}
    lines[poisoned][1] = mutated(data.draw(st.sampled_from(corpus[poisoned])), data.draw)
    persons.write_bytes(b"\n".join(lines["persons"]) + b"\n")
    cases.write_bytes(b"\n".join(lines["cases"]) + b"\n")
    try:
        load_reference(persons, cases)
    except ReferenceDataError as exc:
        no_cpr(str(exc))
        assert "\n" not in str(exc)
        assert str(exc).startswith(f"{tmp_path / poisoned}.jsonl"), exc


PERSON = {"cpr": "3004774360", "address": {
    "address_id": "a-1", "municipality_code": "0561", "road_code": "0129", "house_number": "62",
    "floor": None, "door": "tv", "postcode": "6715", "label": "Søhaven 62"},
    "civil_status": "U", "spouse_cpr": None, "birth_date": "1977-04-30", "status": "01"}
CASE = {"case_id": "KH-1", "benefit": "kontanthjaelp", "municipality_code": "0561",
        "unit": "jobcenter", "members": [{"cpr": "3004774360", "role": "applicant"}]}


def with_raw(record: dict[str, Any], raw: bytes, nested: str | None = None) -> bytes:
    """``record`` with an unknown field holding ``raw`` JSON (in ``nested``, when given)."""
    line = orjson.dumps(record)
    if nested is None:
        return line[:-1] + b', "note": ' + raw + b"}"
    at = line.index(f'"{nested}":'.encode()) + len(nested) + 4
    return line[:at] + b'"note": ' + raw + b", " + line[at:]


@pytest.mark.parametrize("raw", [b"1" + b"0" * 400, b"1e400", b'"\xff"', b'"\xed\xa0\x80"',
                                 b"[" * 2000 + b"]" * 2000])
@pytest.mark.parametrize(("record", "nested", "read"), [
    (PERSON, None, person_of), (PERSON, "address", person_of), (CASE, None, case_of),
    (CASE, "members", case_of)])
def test_an_unknown_field_the_model_cannot_read_is_left_to_the_model(raw, record, nested, read):
    """msgspec skipped over the value of an unknown field without checking it: not UTF-8, a
    number beyond a double — lines orjson (the model's parser) refuses; 2,000 brackets deep
    was a RecursionError out of the reader."""
    if nested == "members":
        line = orjson.dumps(record).replace(b'{"cpr"', b'{"note": ' + raw + b', "cpr"')
    else:
        line = with_raw(record, raw, nested)
    assert read(line) is None
    assert modelled(PersonRecord if record is PERSON else CaseRecord, line) is None


def test_an_unknown_field_the_model_can_read_is_still_read_fast():
    line = with_raw(PERSON, b"[" * 500 + b"]" * 500, "address")
    fast = person_of(line)
    assert fast is not None and person_values(fast) == person_values(
        modelled(PersonRecord, line))


def test_a_persons_file_nested_too_deeply_is_a_reference_data_error(tmp_path):
    persons, cases = tmp_path / "p.jsonl", tmp_path / "c.jsonl"
    persons.write_bytes(with_raw(PERSON, b"[" * 2000 + b"]" * 2000) + b"\n")
    cases.write_bytes(orjson.dumps(CASE) + b"\n")
    with pytest.raises(ReferenceDataError, match=rf"^{re.escape(str(persons))}:1: not valid JSON"):
        load_reference(persons, cases)


# --- the worker's settings and the command line ---------------------------------------------


def settings_outcome(tmp_path: Path, **values: Any) -> None:
    try:
        WorkerSettings(persons="p.jsonl", cases="c.jsonl", data_dir=tmp_path / "data",
                       **values)
    except ValidationError as exc:
        line = describe_settings_error(exc)
        assert "\n" not in line and line.startswith("TRIAGE_"), line
        no_cpr(line)
    except ConfigError as exc:
        assert "\n" not in str(exc)


DURATIONS = ("window", "session_timeout", "fetch_wait", "tick", "lateness", "max_clock_jump",
             "max_idle", "decision_retention")


@FAST
@given(st.sampled_from([*DURATIONS, "web_port", "input_partitions", "max_message_bytes",
                        "checkpoint_interval", "municipality"]),
       st.one_of(st.text(max_size=12), st.from_regex(r"\A-?[0-9]{1,25}(\.[0-9]+)?(ms|[smhd])?\Z"),
                 st.integers(), st.floats(), st.sampled_from(["99999999999d", "1e400s", CPR])))
def test_any_setting_value_is_used_or_one_line_naming_the_variable(tmp_path, name, value):
    settings_outcome(tmp_path, **{name: value})


@pytest.mark.parametrize(("values", "message"), [
    # timedelta's OverflowError went through pydantic as a traceback
    ({"window": "99999999999d"}, "TRIAGE_WINDOW: too long a duration"),
    ({"tick": "99999999999999999999ms"}, "TRIAGE_TICK: too long a duration"),
    ({"lateness": "1" * 400 + "s"}, "TRIAGE_LATENESS: too long a duration"),
    # accepted, then OverflowError from bind() / nonsense topics
    ({"web_port": 99999}, "TRIAGE_WEB_PORT: Input should be less than or equal to 65535"),
    ({"web_port": -1}, "TRIAGE_WEB_PORT: Input should be greater than or equal to 0"),
    ({"input_partitions": 0}, "TRIAGE_INPUT_PARTITIONS: Input should be greater than or equal"),
    ({"max_message_bytes": -1}, "TRIAGE_MAX_MESSAGE_BYTES: Input should be greater than or"),
    # the message quoted the value, which the module promises never to show
    ({"window": CPR}, "TRIAGE_WINDOW: not a duration (use e.g. 24h, 90m, 3600s, 2d or 10ms)"),
    ({"tick": "s3cret-token"}, "TRIAGE_TICK: not a duration (use e.g. 24h"),
])
def test_an_unusable_setting_is_one_line_naming_it(tmp_path, values, message):
    with pytest.raises(ValidationError) as raised:
        WorkerSettings(persons="p", cases="c", data_dir=tmp_path / "data", **values)
    line = describe_settings_error(raised.value)
    assert line.startswith(message), line
    assert str(values[next(iter(values))]) not in line


def test_a_data_dir_that_cannot_be_made_is_a_settings_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for data_dir, reason in ((blocker, "not a directory"), (blocker / "sub", "Not a directory")):
        with pytest.raises(ValidationError) as raised:  # was an OSError out of pydantic
            WorkerSettings(persons="p", cases="c", data_dir=data_dir)
        assert "TRIAGE_DATA_DIR:" in describe_settings_error(raised.value)
        assert reason in describe_settings_error(raised.value)


def test_a_configuration_file_nested_too_deeply_is_a_config_error(tmp_path, monkeypatch):
    config = tmp_path / "triage.toml"
    config.write_text("window = " + "[" * 3000 + "]" * 3000 + "\n")
    monkeypatch.setenv("TRIAGE_CONFIG", str(config))
    with pytest.raises(ConfigError, match="not valid TOML: nested too deeply"):
        WorkerSettings(persons="p", cases="c", data_dir=tmp_path / "data")  # RecursionError


@pytest.mark.parametrize("host", ["127.0.0.1\x00", "::1\x00"])
def test_a_host_with_a_nul_is_an_operator_error(host):
    with pytest.raises(OperatorError, match="choose another host or port with TRIAGE_WEB_HOST"):
        check_port_free(host, 0, "TRIAGE_WEB_HOST")  # bind() raised TypeError


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    run = subprocess.run([str(TRIAGE), *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})}, cwd=cwd)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    last = run.stderr.strip().splitlines()[-1]
    no_cpr(run.stderr)
    return last


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    (out / "persons.jsonl").write_bytes(orjson.dumps(PERSON) + b"\n")
    (out / "cases.jsonl").write_bytes(orjson.dumps(CASE) + b"\n")
    (out / "events.jsonl").write_bytes(b"")
    (out / "tag.yaml").write_bytes(rule_file({"score": "!!python/object:object {}"}))
    return out


@pytest.mark.parametrize(("args", "message"), [
    (("replay", "events.jsonl", "--window", "99999999999d"),
     "argument --window: '99999999999d' is too long a duration"),
    (("replay", "events.jsonl", "--lateness", "1" * 400 + "s"), "is too long a duration"),
    (("replay", "events.jsonl", "--rules", "tag.yaml"),
     "triage: tag.yaml:8: not a valid value: could not determine a constructor"),
    (("rules", "diff", "events.jsonl", "--draft", "tag.yaml", "--report", "r.json"),
     "triage: tag.yaml:8: not a valid value"),
    (("rules", "diff", "events.jsonl", "--draft", str(DEFAULT_RULES), "--report", "r.json",
      "--max-clock-jump", "99999999999d"), "argument --max-clock-jump: '99999999999d' is too"),
    (("rules", "test", "--rules", "tag.yaml"), "triage: tag.yaml:8: not a valid value"),
])
def test_the_command_line_refuses_poison_in_one_line_with_exit_2(reference, args, message):
    extra = ["--persons", "persons.jsonl", "--cases", "cases.jsonl"] if args[0] == "replay" \
        or args[1] == "diff" else []
    extra += ["--out", "o.jsonl"] if args[0] == "replay" else []
    assert message in cli(*args, *extra, cwd=reference)


def test_the_worker_refuses_an_overflowing_duration_in_one_line(reference, tmp_path):
    env = {"TRIAGE_PERSONS": str(reference / "persons.jsonl"),
           "TRIAGE_CASES": str(reference / "cases.jsonl"), "TRIAGE_DATA_DIR": str(tmp_path),
           "TRIAGE_WINDOW": "99999999999d", "TRIAGE_CONFIG": ""}
    assert cli("worker", env=env) == "triage: configuration: TRIAGE_WINDOW: too long a duration"
