"""The scenario file format: what an operator writes, validated with every problem at ``file:line``.

A scenario is a YAML file with a small world and a timeline (see ``docs/rules-ops.md``)::

    scenario: familie flytter samlet
    addresses: {hjem: {}, nyt: {}}
    persons:
      mor: {at: hjem}
      barn: {at: hjem, born: 2015-04-01}
    cases:
      C1: {benefit: kontanthjaelp, applicant: mor, children: [barn]}
    events:
      - {id: mor-flytter, at: 0h, type: address_changed, person: mor, to: nyt,
         expect: {cases: {C1: {outcome: suppressed, rule: husstand-flyttet-samlet}}}}
      - {id: barn-flytter, at: 2h, type: address_changed, person: barn, to: nyt}
    tasks: []

The YAML is composed into nodes first, so every value keeps its line; the structure is then
validated by pydantic models that forbid unknown keys (a misspelt ``expect`` must not silently
test nothing), and each pydantic error is reported at the line of the value it names.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from triage.core import parse_window
from triage.cprnumber import mask_in_text
from triage.models.events import CivilStatus
from triage.models.reference import Benefit
from triage.yaml_nodes import YamlProblem, compose, plain_value

START = datetime.fromisoformat("2025-03-03T08:00:00+01:00")
"""Virtual time zero when a scenario names no ``start``."""

_OFFSET = re.compile(r"^(-)?((?:\d+(?:\.\d+)?[dhms])+)$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
MAX_VALUES = 100_000
"""The most values a scenario may hold once its aliases are expanded (an alias bomb of nine
nested lists of nine would be 387 million)."""


class ScenarioError(ValueError):
    """A scenario that cannot be run; ``problems`` are ``file:line: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        # a problem quotes what the file says (a name, a key, a value): a scenario names
        # persons, and an operator may write a real CPR number where a name belongs
        problems = [mask_in_text(p) for p in problems]
        super().__init__("\n".join(problems))
        self.problems = problems


def virtual_time(value: Any, start: datetime) -> datetime:
    """``0``, ``2h``, ``1d6h``, ``-30m``, a number of hours, or an RFC 3339 time."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("a time needs an offset, e.g. 2025-03-03T08:00:00+01:00")
        return value
    try:  # timedelta and datetime raise OverflowError (not ValueError) beyond their range
        if isinstance(value, int | float) and not isinstance(value, bool):
            return start + timedelta(hours=value)
        text = str(value).strip().replace(" ", "")
        if text in ("0", "-0"):
            return start
        match = _OFFSET.match(text)
        if match:
            delta = sum((timedelta(**{_UNITS[u]: float(n)}) for n, u in _PART.findall(match[2])),
                        timedelta())
            return start - delta if match[1] else start + delta
    except OverflowError:
        raise ValueError(f"{_short(value)} is too far from the start") from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a virtual time: {text!r} (use e.g. 0, 30m, 2h, 1d6h, or an "
                         f"RFC 3339 time)") from None
    if when.utcoffset() is None:
        raise ValueError("a time needs an offset, e.g. 2025-03-03T08:00:00+01:00")
    return when


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class AddressSpec(_Spec):
    """A named DAR address. Its id is derived from the name; road ≥ 9900 is no fixed address."""

    municipality: str = "0561"
    road: str = "0100"
    house_number: str = "1"
    postcode: str = "6700"


class PersonSpec(_Spec):
    at: str | None = None
    """The address the person is registered at in the snapshot (a name), or none."""
    civil: CivilStatus = "U"
    spouse: str | None = None
    born: date = date(1985, 6, 15)
    status: str = "01"
    known: bool = True
    """False: not in the register snapshot (someone arriving from elsewhere, a new number)."""
    cpr: str | None = None
    """An explicit CPR number (else one is derived from ``born`` and the order of persons)."""


class CaseSpec(_Spec):
    benefit: Benefit
    applicant: str
    spouse: str | None = None
    children: list[str] = Field(default_factory=list)
    unit: str = "jobcenter"
    municipality: str = "0561"


class VerdictExpect(_Spec):
    """What one (event, case) verdict must be; unnamed fields are not checked."""

    outcome: Literal["raised", "suppressed"] | None = None
    rule: str | None = None
    title: str | None = None
    unit: str | None = None
    payment_hold: bool | None = None
    score: float | None = None


class EventExpect(_Spec):
    """What an event's decision must be. ``cases``, when given, lists every verdict."""

    outcome: Literal["raised", "suppressed", "invalid"] | None = None
    rule: str | None = None
    cases: dict[str, VerdictExpect] | None = None


EVENT_FIELDS = frozenset({
    "code", "derived_marker", "move_date", "date", "country_code", "civil_status", "spouse",
    "child", "parents", "address", "to", "from", "protected", "new_cpr", "after", "benefit",
    "amount", "period_from", "period_to", "income_type", "period", "single", "what",
    "unclassified_reason"})
"""Event fields a scenario may set by name (CONTRACT.md); ``fields`` takes anything else."""


class EventSpec(_Spec):
    """One event of the timeline. Person and address fields take names from the world."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    id: str | None = None
    at: Any = 0
    type: str | None = None
    source: Literal["cpr", "dar", "atp"] | None = None
    person: str | None = None
    raw: str | None = None
    """A literal line to feed as it is (a malformed message), instead of a built event."""
    fields: dict[str, Any] = Field(default_factory=dict)
    """Extra event fields, copied as they are."""
    unavailable: str | None = None
    """Pretend a lookup for this event failed, with this reason (the core raises it as
    could-not-check for every case it knows the event touches)."""
    expect: EventExpect | None = None

    @model_validator(mode="after")
    def _known_fields(self) -> EventSpec:
        unknown = sorted(set(self.model_extra or ()) - EVENT_FIELDS)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (event fields: "
                             f"{', '.join(sorted(EVENT_FIELDS))}; anything else under 'fields')")
        return self

    def event_fields(self) -> dict[str, Any]:
        """The event fields given by name (those beyond the spec's own keys)."""
        return dict(self.model_extra or {})


class TickSpec(_Spec):
    """Move event time forward without an event (what the worker's clock tick does)."""

    tick: Any


class TaskExpect(_Spec):
    """One expected task. ``events`` (ids) picks the task when a case has several."""

    case: str
    events: list[str] | None = None
    rule: str | None = None
    title: str | None = None
    unit: str | None = None
    benefit: str | None = None
    payment_hold: bool | None = None


class FactsCheck(_Spec):
    """A rule-table row: which rule decides an (event, case) with exactly these facts.

    For the combinations no event can reach through the case lookup (the explicit "otherwise"
    rules that keep an outsider suppressed rather than unclassified), and for trying a draft
    on a hand-made situation, like ``amtool config routes test``."""

    facts: dict[str, Any] = Field(min_length=1)
    expect: VerdictExpect


class SilenceSpec(_Spec):
    id: str
    matchers: dict[str, Any]
    author: str = "scenario"
    comment: str = "scenario"
    from_: Any = Field(default=0, alias="from")
    until: Any


def _step_kind(value: Any) -> str:
    return "tick" if isinstance(value, dict) and "tick" in value else "event"


class Scenario(_Spec):
    scenario: str = Field(min_length=1)
    description: str = ""
    start: datetime = START
    window: str = "24h"
    lateness: str = "1h"
    """The allowed lateness (the service's default): how far an event may arrive behind a
    later-registered one and still be put in its place; beyond it, ``arrived-too-late``."""
    max_clock_jump: str = "7d"
    """How far one event may move event time ahead on its own (the service's default)."""
    addresses: dict[str, AddressSpec] = Field(default_factory=dict)
    persons: dict[str, PersonSpec] = Field(default_factory=dict)
    cases: dict[str, CaseSpec] = Field(default_factory=dict)
    silences: list[SilenceSpec] = Field(default_factory=list)
    events: list[Annotated[Annotated[TickSpec, Tag("tick")] | Annotated[EventSpec, Tag("event")],
                           Discriminator(_step_kind)]] = Field(default_factory=list)
    tasks: list[TaskExpect] | None = None
    """Every task the run must create (exactly these); absent: tasks are not checked."""
    facts: list[FactsCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_test(self) -> Scenario:
        if not self.events and not self.facts:
            raise ValueError("a scenario needs 'events' (a timeline) or 'facts' (rule-table "
                             "rows)")
        return self

    @field_validator("window", "max_clock_jump")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value

    @field_validator("lateness")
    @classmethod
    def _lateness(cls, value: str) -> str:
        if value.strip() not in ("0", "0s"):
            parse_window(value)
        return value

    @property
    def lateness_delta(self) -> timedelta:
        return timedelta(0) if self.lateness.strip() in ("0", "0s") else parse_window(self.lateness)

    @property
    def max_clock_jump_delta(self) -> timedelta:
        return parse_window(self.max_clock_jump)

    @model_validator(mode="after")
    def _clock_bound(self) -> Scenario:
        if self.max_clock_jump_delta <= self.lateness_delta:
            raise ValueError("max_clock_jump must be larger than lateness")
        return self

    @field_validator("start")
    @classmethod
    def _start(cls, value: datetime) -> datetime:
        if value.utcoffset() is None:
            raise ValueError("start needs an offset, e.g. 2025-03-03T08:00:00+01:00")
        return value


class Located:
    """A scenario as written: the validated spec, its file, and the line of every value."""

    def __init__(self, spec: Scenario, path: Path, lines: dict[tuple[Any, ...], int]) -> None:
        self.spec, self.path, self._lines = spec, path, lines

    def line(self, *where: Any) -> int:
        """The line of the value at ``where`` (a path of keys and indexes), or of its nearest
        enclosing value."""
        return _line(self._lines, where)

    def at(self, *where: Any) -> str:
        return f"{shown_path(self.path)}:{self.line(*where)}"


def shown_path(path: Path) -> str:
    """The path relative to the working directory when it lies below it (shorter to read)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _line(lines: dict[tuple[Any, ...], int], where: tuple[Any, ...]) -> int:
    while where and where not in lines:
        where = where[:-1]
    return lines.get(where, 1)


def load_scenario(path: str | Path) -> Located:
    """Read and validate a scenario file; :class:`ScenarioError` lists every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{shown_path(path)}: cannot read scenario: {exc}"]) from None
    try:
        root = compose(text)
    except YamlProblem as exc:
        raise ScenarioError([f"{shown_path(path)}:{exc.line}: {exc}"]) from None
    if not isinstance(root, yaml.MappingNode):
        raise ScenarioError([f"{shown_path(path)}:1: a scenario is a mapping with 'scenario:' "
                             f"and 'events:'"])
    lines: dict[tuple[Any, ...], int] = {}
    problems: list[str] = []
    try:
        data = _plain(root, (), lines, problems, path, _Walk())
    except _TooLarge as exc:
        raise ScenarioError([f"{shown_path(path)}:{exc.line}: {exc}"]) from None
    except RecursionError:
        raise ScenarioError([f"{shown_path(path)}:1: not valid YAML: nested too deeply"]) from None
    if problems:
        raise ScenarioError(problems)
    try:
        spec = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([_problem(err, path, lines) for err in exc.errors(
            include_url=False, include_context=False)]) from None
    return Located(spec, path, lines)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}…"


def _problem(err: Any, path: Path, lines: dict[tuple[Any, ...], int]) -> str:
    where = tuple(err["loc"])
    if len(where) > 2 and where[0] == "events" and where[2] in ("tick", "event"):
        where = where[:2] + where[3:]  # the union's tag is not the operator's business
    field = ".".join(str(p) for p in where) or "scenario"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key (see docs/rules-ops.md for the scenario format)"
    named = re.match(r"unknown key '([^']+)'", message)
    if named and (*where, named[1]) in lines:
        where = (*where, named[1])
    return f"{shown_path(path)}:{_line(lines, where)}: {field}: {message}"


class _TooLarge(Exception):
    """A scenario whose aliases expand beyond :data:`MAX_VALUES` values, or into themselves."""

    def __init__(self, node: yaml.Node, problem: str) -> None:
        super().__init__(problem)
        self.line = node.start_mark.line + 1


class _Walk:
    """What :func:`_plain` has walked: how many values, and the collections it is inside (an
    alias of one of them is a cycle, which plain data cannot hold)."""

    def __init__(self) -> None:
        self.values = 0
        self.inside: set[int] = set()


_COLLECTION_TAGS = {yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG}


def _plain(node: yaml.Node, where: tuple[Any, ...], lines: dict[tuple[Any, ...], int],
           problems: list[str], path: Path, walk: _Walk) -> Any:
    """Plain Python data from a YAML node, recording each value's line; duplicate keys are
    problems (PyYAML would keep the last one silently), and so are values PyYAML cannot
    construct (``!!int abc``) and tags it would not construct safely (``!!python/…``)."""
    line = node.start_mark.line + 1
    lines[where] = line
    walk.values += 1
    if walk.values > MAX_VALUES:
        raise _TooLarge(node, f"more than {MAX_VALUES} values (aliases expanding too far?)")
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in walk.inside:
            raise _TooLarge(node, "an alias of a value inside itself")
        if node.tag not in _COLLECTION_TAGS:
            problems.append(f"{shown_path(path)}:{line}: tag {node.tag!r} is not allowed here")
            return None
        walk.inside.add(id(node))
        try:
            return _collection(node, where, lines, problems, path, walk)
        finally:
            walk.inside.discard(id(node))
    return _scalar(node, problems, path)


def _collection(node: yaml.MappingNode | yaml.SequenceNode, where: tuple[Any, ...],
                lines: dict[tuple[Any, ...], int], problems: list[str], path: Path,
                walk: _Walk) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*where, i), lines, problems, path, walk)
                for i, item in enumerate(node.value)]
    out: dict[Any, Any] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):  # ``? [a, b]``: a key that is unhashable
            problems.append(f"{shown_path(path)}:{knode.start_mark.line + 1}: a key must be a "
                            f"plain value, not a list or a mapping")
            continue
        key = _scalar(knode, problems, path)
        if key in out:
            problems.append(f"{shown_path(path)}:{knode.start_mark.line + 1}: "
                            f"duplicate key {key!r}")
        out[key] = _plain(vnode, (*where, key), lines, problems, path, walk)
    return out


def _scalar(node: yaml.Node, problems: list[str], path: Path) -> Any:
    try:
        return plain_value(node)
    except YamlProblem as exc:
        problems.append(f"{shown_path(path)}:{exc.line}: {exc}")
        return None
