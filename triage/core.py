"""The triage core: one event in, decisions and tasks out. Every driver runs exactly this code.

``triage replay``, the streaming worker, rule backtests and the tests all feed events to a
:class:`Triage` and write what it returns; none of them decides anything. The core is
deterministic: given the same reference data, ruleset, window and input order, it produces the
same decisions and tasks (up to the ``decided_at``/``created_at`` wall-clock stamps, which come
from the injected ``clock``).

One step, for each event in arrival order:

1. **Parse and validate** (:func:`triage.models.parse_event`). An invalid line yields an
   ``invalid`` decision and a dead-letter entry, and the run goes on.
2. **Deduplicate** by ``event_id``: a redelivery yields nothing.
3. **Advance the event-time clock** to ``registered_at``: household moves whose window has
   passed are closed, and the events that waited for them are decided.
4. **Judge** the event for every case it touches (:mod:`triage.enrich`), letting household moves
   collect their members (:mod:`triage.correlation`) and the ruleset decide each (event, case)
   (:mod:`triage.rules`). A verdict that depends on an undecided household move waits.
5. **Apply** the event to the register, so the next event sees its effect.
6. **Emit** the decision of every event whose verdicts are all known, and one task per raised
   (correlated group or event, case).

Beside the active ruleset a core may carry a **shadow** ruleset (:meth:`Triage.use_shadow`): its
verdicts are evaluated on the very same judgements — the same facts, the same household moves —
and emitted as :class:`ShadowDecision` records beside the real decisions, never as tasks. The real
decisions and tasks are exactly what they are without a shadow; ``triage rules diff`` and the
worker's shadow mode both rest on that. The active ruleset can be switched at any point of the
stream (:meth:`Triage.use_ruleset`); every decision carries the version that decided it.
**Silences** (:mod:`triage.silences`) are a stage between evaluating and emitting: a raised
verdict that an operator's silence matches is suppressed as ``silenced:<id>``.

Tasks are bundled per **correlation group**: a household move, or the copies of one CPR event
registered on several people (a birth on the child and both parents, a marriage on both spouses,
a death and its derived copies) within the window. The first raised verdict of a group creates
the task; later verdicts of the same group and case point to that task instead of creating
another.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from triage.cases import Case, CaseIndex
from triage.correlation import HouseholdCorrelator, HouseholdMove, short_id
from triage.cprnumber import mask
from triage.dedup import Admission, SeenIds, conflict_id, content_digest, raw_digest
from triage.enrich import case_facts, event_facts, subject_of, touched_cases
from triage.facts import PENDING_FACTS
from triage.fallback import NO_BENEFIT, NO_CASE, fallback_unit_from_env
from triage.models.events import (
    AddressChanged,
    ChildAdded,
    CivilStatusChanged,
    CprNumberChanged,
    DarEvent,
    DeathAnnulled,
    Event,
    InvalidEvent,
    MasterDataChanged,
    PersonGone,
    UnknownEvent,
    parse_event,
)
from triage.models.outputs import CaseVerdict, Decision, Task
from triage.register import STATUS_BY_EVENT
from triage.rules import PENDING, Rule, Ruleset, evaluate
from triage.rules.model import MISSING
from triage.silences import Silences
from triage.task_ids import TaskIds, task_key_from_env

DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_DEDUP_HORIZON = timedelta(days=7)
DEFAULT_DEDUP_KEEP = 100_000
"""Event ids are forgotten only when older than the horizon *and* beyond this many of the most
recent: a sparse stream (few events a day) keeps its ids for much longer than the horizon."""

UNCLASSIFIED = Rule(
    id="unclassified", matchers=(), score=1.0,
    reason="Ingen regel kunne klassificere hændelsen; den skal vurderes manuelt.",
    title="Hændelse kunne ikke klassificeres — manuel vurdering")
NO_AFFECTED_CASE = Rule(
    id="no-affected-case", matchers=(), score=0.0,
    reason="Hændelsen berører ingen aktiv sag.", title="Ingen aktiv sag berørt")
COULD_NOT_CHECK_TITLE = "Hændelse kunne ikke kontrolleres — manuel vurdering"


def could_not_check(reason: str) -> Rule:
    """The built-in verdict when a lookup the decision needs has failed: raise, never guess
    (DOMAIN.md, "When the service cannot know")."""
    return Rule(id="could-not-check", matchers=(), score=1.0,
                reason=f"Hændelsen kunne ikke kontrolleres ({reason}); den skal vurderes manuelt.",
                title=COULD_NOT_CHECK_TITLE)


ARRIVED_TOO_LATE = Rule(
    id="arrived-too-late", matchers=(), score=1.0,
    reason="Hændelsen kom for sent til at kunne kontrolleres mod sin husstand og de andre "
           "hændelser fra samme tid; den skal vurderes manuelt.",
    title="Hændelse modtaget for sent — manuel vurdering")
"""Built-in: the event arrived more than the allowed lateness behind a later-registered one
(DOMAIN.md "Event time and arrival order"): raised for every case it touches, never folded into a
household move or another group."""
OUT_OF_RANGE = Rule(
    id="registered-at-out-of-range", matchers=(), score=1.0,
    reason="Hændelsens registreringstidspunkt ligger langt fra alle andre hændelsers; den er ikke "
           "brugt til at flytte tiden og skal vurderes manuelt.",
    title="Hændelse med usandsynligt registreringstidspunkt — manuel vurdering")
"""Built-in: the event's registered_at lies beyond the clock bound and nothing confirmed it
(:mod:`triage.eventtime`): raised even when it touches no case, and not applied to the
register, so it changes nobody else's decision."""

Timing = Literal["timely", "late", "out-of-range"]

EVENT_ID_CONFLICT = Rule(
    id="event-id-conflict", matchers=(), score=1.0,
    reason="Hændelsens id er allerede brugt af en anden hændelse med et andet indhold; den kan "
           "ikke kontrolleres automatisk og skal vurderes manuelt.",
    title="Hændelse med genbrugt id — manuel vurdering")
"""The built-in verdict for an event whose id was already used by different content: raised
for every case it touches, never suppressed (:mod:`triage.dedup`)."""

_FALLBACK_IDS = frozenset({"could-not-check", ARRIVED_TOO_LATE.id, OUT_OF_RANGE.id,
                           EVENT_ID_CONFLICT.id})
"""Built-in verdicts that replace the rules for an event: no ruleset switch re-judges them."""

INVALID = Rule(
    id="invalid", matchers=(), score=0.0,
    reason="Hændelsen er ugyldig og er lagt i dead-letter.", title="Ugyldig hændelse")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Outputs:
    """What one step produced, in the order it must be written."""

    decisions: list[Decision] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    """``source/type`` of each decision's event (``invalid`` for invalid lines), for counting."""
    tasks: list[Task] = field(default_factory=list)
    deadletters: list[InvalidEvent] = field(default_factory=list)
    late: int = 0
    """Events decided as arrived too late (beyond the allowed lateness)."""
    out_of_range: int = 0
    """Events whose registered_at lay beyond the clock bound."""
    shadow: list[ShadowDecision] = field(default_factory=list)
    """What the shadow ruleset would have decided (empty without one); never tasks."""

    def extend(self, other: Outputs) -> None:
        self.decisions.extend(other.decisions)
        self.kinds.extend(other.kinds)
        self.tasks.extend(other.tasks)
        self.deadletters.extend(other.deadletters)
        self.late += other.late
        self.out_of_range += other.out_of_range
        self.shadow.extend(other.shadow)


@dataclass(slots=True)
class ShadowDecision:
    """The decision the shadow ruleset would have made for one event, and what it judged.

    ``decision`` has the shape of a real decision (``ruleset`` is the shadow's version; no
    verdict has a ``task_id``); ``facts[i]`` are the facts behind ``decision.cases[i]`` — the
    same facts the real verdict for that case was judged on. Invalid lines get no shadow
    decision: they are invalid under every ruleset."""

    decision: Decision
    kind: str
    registered_at: datetime
    facts: list[dict[str, Any]]


@dataclass(slots=True)
class _Judgement:
    """One (event, case): the facts seen when the event arrived, and the verdict once known."""

    case: Case
    facts: dict[str, Any]
    group_id: str | tuple[Any, ...] | None
    """A household move's id, a key shared by copies of one registry event, or None."""
    household: HouseholdMove | None
    rule: Rule | None = None
    """The active ruleset's verdict; None while it waits for the household move."""
    shadow: Rule | None = None
    """The shadow ruleset's verdict, likewise."""
    shadow_facts: dict[str, Any] | None = None
    """The facts the shadow verdict was judged on (the active verdict's may come later, with
    the household move decided: its explanation shows more)."""


@dataclass(slots=True)
class _Open:
    """An event whose decision (or shadow decision) waits for at least one household move."""

    event: Event
    judgements: list[_Judgement]
    decided: bool = False
    """Its decision has been emitted."""
    shadowed: bool = True
    """Its shadow decision has been emitted, or there is no shadow ruleset."""
    shadow_sent: bool = False
    """Its shadow decision has been emitted."""


@dataclass(slots=True)
class _Bundle:
    """A correlation group for tasks: its id, when it stops taking events, cases with a task."""

    group_id: str
    until: float
    tasked: set[str] = field(default_factory=set)


class Triage:
    """The deciding core over a register, a case index and a ruleset."""

    def __init__(self, cases: CaseIndex, ruleset: Ruleset, *, window: timedelta = DEFAULT_WINDOW,
                 dedup_horizon: timedelta = DEFAULT_DEDUP_HORIZON,
                 dedup_keep: int = DEFAULT_DEDUP_KEEP,
                 clock: Callable[[], datetime] = utc_now, task_key: bytes | None = None,
                 fallback_unit: str | None = None) -> None:
        """``task_key`` keys the task ids (:mod:`triage.task_ids`) and ``fallback_unit`` owns
        raised events that touch no case (:mod:`triage.fallback`); both default to their
        ``TRIAGE_…`` environment variables."""
        self.cases = cases
        self.register = cases.register
        self.ruleset = ruleset
        self.rulesets: dict[str, Ruleset] = {ruleset.version: ruleset}
        """Every ruleset this core has used, by version (a rebuild resolves switches by it)."""
        self.shadow: Ruleset | None = None
        self.silences = Silences(grace=window)
        self.window = window
        self.dedup_horizon = max(dedup_horizon, window)
        self.clock = clock
        self.households = HouseholdCorrelator(window)
        self._window_s = window.total_seconds()
        self._horizon_s = self.dedup_horizon.total_seconds()
        self.watermark: float | None = None
        """The event-time clock: the latest registered_at seen, in POSIX seconds."""
        self._seen = SeenIds(self._horizon_s, dedup_keep)
        self._seen_invalid = SeenIds(self._horizon_s, dedup_keep)
        self.conflicts = 0
        """Events decided as ``event-id-conflict`` so far."""
        self._task_ids = TaskIds(task_key if task_key is not None
                                 else task_key_from_env(warn=False))
        self.fallback_unit = fallback_unit or fallback_unit_from_env()
        self._bundles: dict[tuple[Any, ...], _Bundle] = {}
        self._bundle_expiry: deque[tuple[float, tuple[Any, ...]]] = deque()
        self._open: dict[str, _Open] = {}
        self._waiting: dict[str, list[str]] = {}  # household group id -> open event ids

    # --- driving ----------------------------------------------------------------------------

    def process(self, raw: bytes) -> Outputs:
        """Parse one message or line and decide it."""
        return self.decide(parse_event(raw))

    def decide(self, event: Event | InvalidEvent, *, unavailable: str | None = None,
               timing: Timing = "timely", at: float | None = None) -> Outputs:
        """Decide one event, in event-time order (:mod:`triage.eventtime` puts it there).

        ``unavailable`` says that a lookup the decision needs (the case system, a registry)
        failed, and why: every case the service knows the event touches is then raised as
        "could not be checked" — and the event too when it knows of none. ``timing`` says that
        the event could not be put in its place in event time: ``late`` (raised for every case
        it touches, by ``arrived-too-late``) or ``out-of-range`` (raised by
        ``registered-at-out-of-range`` even with no case, and not applied to the register).
        Neither moves the event-time clock. ``at`` is ``registered_at`` in POSIX seconds, when
        the caller has it already (the pipeline computes it once, on arrival)."""
        out = Outputs()
        if isinstance(event, InvalidEvent):
            if event.event_id is None or self._first_invalid(event):
                out.decisions.append(self._invalid(event))
                out.kinds.append("invalid")
                out.deadletters.append(event)
            return out
        if at is None:
            at = event.registered_at.timestamp()
        if timing == "timely":
            self._advance(at, out)
        seen_at = at if timing != "out-of-range" or self.watermark is None else self.watermark
        admitted = self._first_time(event, seen_at)
        if admitted is None:
            return out
        event, fallback = admitted
        if fallback is None and unavailable is not None:
            fallback = could_not_check(unavailable)
        if timing != "timely":
            if fallback is not EVENT_ID_CONFLICT:
                fallback = ARRIVED_TOO_LATE if timing == "late" else OUT_OF_RANGE
            if timing == "late":
                out.late += 1
            else:
                out.out_of_range += 1
        judgements = self._judge(event, at, fallback)
        if timing != "out-of-range":
            self._apply(event)
        if not judgements and fallback is ARRIVED_TOO_LATE:
            fallback = None  # late, but it touches no case: nothing to correlate it with
        self._settle(event, judgements, fallback, out)
        return out

    def advance(self, now: datetime | float, out: Outputs | None = None) -> Outputs:
        """Move the event-time clock to ``now`` (a datetime or POSIX seconds; never backwards)
        and decide what waited for windows that have now closed. The event-time stage calls
        this with its frontier, so windows close as the stream's time passes them. What is
        decided is added to ``out`` when given (and returned)."""
        out = Outputs() if out is None else out
        self._advance(now if isinstance(now, float) else now.timestamp(), out)
        return out

    def has_seen(self, event_id: str) -> bool:
        """Whether an event id is remembered (a later copy is a redelivery or a conflict)."""
        return event_id in self._seen

    def _advance(self, now: float, out: Outputs) -> None:
        if self.watermark is not None and now <= self.watermark:
            return
        self.watermark = now
        ready: list[_Open] = []
        shadow_ready: list[_Open] = []
        for move in self.households.expire(now):
            self._collect(move, ready, shadow_ready)
        self._emit(ready, shadow_ready, out)
        self.silences.advance(now)
        self._forget_old(now)

    def flush(self) -> Outputs:
        """End of input: decide every waiting event as if every window had closed."""
        out = Outputs()
        ready: list[_Open] = []
        shadow_ready: list[_Open] = []
        for move in self.households.close_all():
            self._collect(move, ready, shadow_ready)
        self._emit(ready, shadow_ready, out)
        return out

    # --- rulesets ---------------------------------------------------------------------------

    def use_ruleset(self, ruleset: Ruleset) -> Outputs:
        """Make ``ruleset`` the active ruleset from this point of the stream on.

        Every event decided from here is decided by it, including the events still waiting for
        a household move: they are judged again, whole, under the new ruleset (an event's
        verdicts always come from one ruleset, the one its ``ruleset`` field names), and those
        the new ruleset can already decide are returned. The ruleset is kept by version. The
        caller validates the ruleset first (:func:`triage.rules.load_ruleset`); to make a
        rebuild decide as the live run did, the switch must be journalled at this point."""
        self.rulesets.setdefault(ruleset.version, ruleset)
        self.ruleset = ruleset
        out = Outputs()
        ready = []
        for entry in self._open.values():
            if not entry.decided:
                rules = self._rules_for(ruleset, entry.event)
                for j in entry.judgements:
                    if j.rule is None or j.rule.id not in _FALLBACK_IDS:
                        j.rule = self._verdict(j, rules)
                if all(j.rule is not None for j in entry.judgements):
                    entry.decided = True
                    ready.append(entry)
        self._emit(ready, [], out)
        self._drop_settled()
        return out

    def use_shadow(self, ruleset: Ruleset | None) -> Outputs:
        """Carry ``ruleset`` as the shadow ruleset from this point on (None: no shadow).

        Events whose shadow decision is still to come — waiting for a household move, or not
        yet decided at all — get it from the new shadow; a shadow decision already emitted is
        never repeated. The active ruleset's decisions and tasks are unaffected."""
        if ruleset is not None:
            self.rulesets.setdefault(ruleset.version, ruleset)
        self.shadow = ruleset
        out = Outputs()
        ready = []
        for entry in self._open.values():
            if ruleset is None:
                entry.shadowed = True
                continue
            if entry.shadow_sent:
                continue  # a shadow decision is never repeated
            entry.shadowed = False
            rules = self._rules_for(ruleset, entry.event)
            for j in entry.judgements:
                j.shadow = j.rule if j.rule is not None and j.rule.id in _FALLBACK_IDS \
                    else self._verdict(j, rules)
                j.shadow_facts = j.facts
            if all(j.shadow is not None for j in entry.judgements):
                entry.shadowed = True
                ready.append(entry)
        self._emit([], ready, out)
        self._drop_settled()
        return out

    def _drop_settled(self) -> None:
        for event_id in [i for i, e in self._open.items() if e.decided and e.shadowed]:
            del self._open[event_id]

    @staticmethod
    def _rules_for(ruleset: Ruleset, event: Event) -> tuple[Rule, ...]:
        return ruleset.for_type(event.type) if not isinstance(event, UnknownEvent) else ()

    def run(self, lines: Iterable[bytes]) -> Iterable[Outputs]:
        """Decide a whole stream, then flush: the shape replay and tests use."""
        for line in lines:
            yield self.process(line)
        yield self.flush()

    @property
    def waiting(self) -> int:
        """Events whose decision waits for a household move (shadow decisions not counted)."""
        if self.shadow is None:
            return len(self._open)
        return sum(1 for entry in self._open.values() if not entry.decided)

    # --- judging ----------------------------------------------------------------------------

    def _judge(self, event: Event, at: float, fallback: Rule | None = None) -> list[_Judgement]:
        subject = subject_of(event, self.register)
        touched = touched_cases(event, subject, self.cases)
        if isinstance(event, AddressChanged) and subject is not None:
            awaiting = self.households.cases_awaiting(subject)
            if awaiting and not awaiting <= {c.case_id for c in touched}:
                found = {c.case_id: c for c in touched}
                found.update((i, self.cases.get(i)) for i in awaiting)
                touched = [found[i] for i in sorted(found)]
        if not touched:
            return []
        base = event_facts(event)
        if fallback is not None:  # nothing to judge with: raise for every known case
            return [_Judgement(case, case_facts(event, subject, case, self.cases, base), None,
                               None, fallback) for case in touched]
        rules = self.ruleset.for_type(event.type) if not isinstance(event, UnknownEvent) else ()
        judgements = []
        for case in touched:
            facts = case_facts(event, subject, case, self.cases, base)
            household = None
            if isinstance(event, AddressChanged) and subject is not None:
                household = self._household_move(event, at, subject, case, facts)
            group_id = household.group_id if household else self._bundle_key(event, subject)
            judgement = _Judgement(case, facts, group_id, household)
            judgement.rule = self._verdict(judgement, rules)
            judgements.append(judgement)
        return judgements

    def _household_move(self, event: AddressChanged, at: float, subject: str, case: Case,
                        facts: dict[str, Any]) -> HouseholdMove | None:
        """Join the case's open household move, or begin one when the mover lives at the
        case's home (DOMAIN.md rule 2). An administrative change is no move.

        A member of an open move is judged against the move's starting point — its home, its
        household, whether the case was together — not against the register as the move has
        already changed it (once the applicant has moved, the case's home is the new address).
        """
        if facts["move.same_address"]:
            return None
        move = self.households.open_for(case.case_id)
        if move is not None and move.accepts(subject, at):
            facts["person.in_household"] = facts["person.member_or_household"] = True
        elif not facts.get("person.in_household"):
            return None
        elif move is not None:
            return None  # moved in after the open move began: judged alone, fail-safe
        else:
            home = self.cases.home(case)
            assert home is not None  # in_household implies a home
            household = self.cases.household(case, home)
            occupants = self.register.residents(event.to.address_id) - household
            move = self.households.begin(
                case_id=case.case_id, first_event_id=event.event_id, home=home,
                household=household, together=facts["case.together"],
                destination=event.to.address_id, move_date=event.move_date,
                destination_occupied=bool(occupants), registered_at=at)
        move.add(subject, event.to.address_id, event.move_date)
        facts["case.together"] = move.together
        facts["household.destination_occupied"] = move.destination_occupied
        facts["household.size"] = len(move.household)
        return move

    def _verdict(self, judgement: _Judgement, rules: tuple[Rule, ...]) -> Rule | None:
        """The rule that decides the judgement under ``rules`` (``unclassified`` when none
        matches), or None while that depends on its undecided household move."""
        facts = judgement.facts
        pending: frozenset[str] = frozenset()
        move = judgement.household
        if move is not None:
            # A new dict, never an update in place: a verdict already emitted (the real one
            # before the shadow's, or the other way round) keeps the facts it was judged on.
            together = move.moved_together
            if together is None:
                pending = PENDING_FACTS
                if "household.moved_together" in facts:
                    facts = {k: v for k, v in facts.items() if k != "household.moved_together"}
            elif facts.get("household.moved_together", MISSING) is not together:
                facts = {**facts, "household.moved_together": together}
            judgement.facts = facts
        return first_match(rules, facts, pending)

    def _bundle_key(self, event: Event, subject: str | None) -> tuple[Any, ...] | None:
        """Events that are copies of one registry event share a key; their tasks are one."""
        resolve = self.register.resolve
        if isinstance(event, ChildAdded):
            return ("child", resolve(event.child_cpr))
        if isinstance(event, CivilStatusChanged):
            pair = sorted((resolve(event.cpr), resolve(event.spouse_cpr or "")))
            return ("civil", *pair, event.civil_status, event.date.isoformat())
        if isinstance(event, PersonGone) and subject is not None:
            return (event.type, subject)
        return None

    # --- applying ---------------------------------------------------------------------------

    def _apply(self, event: Event) -> None:
        """Update the register with a judged event."""
        register = self.register
        if isinstance(event, AddressChanged):
            register.move(event.cpr, event.to)
        elif isinstance(event, PersonGone):
            if event.derived_marker is None:
                register.leave(event.cpr, STATUS_BY_EVENT[event.type])
        elif isinstance(event, CivilStatusChanged):
            register.set_civil_status(event.cpr, event.civil_status, event.spouse_cpr)
        elif isinstance(event, ChildAdded):
            register.add_child(event.child_cpr, event.address)
        elif isinstance(event, MasterDataChanged):
            if event.type == "address_protection_changed" and event.protected is not None:
                register.set_address_protection(event.cpr, event.protected)
        elif isinstance(event, CprNumberChanged):
            old = register.resolve(event.cpr)
            register.renumber(old, event.new_cpr)
            self.cases.renumber(old, event.new_cpr)
            self.households.renumber(old, event.new_cpr)
        elif isinstance(event, DarEvent) and event.after is not None:
            register.readdress(event.address_id, event.after)
        elif isinstance(event, DeathAnnulled) and event.derived_marker is None:
            register.revive(event.cpr)
        # cpr_number_annulled, master_data_changed, registry_notice: nothing the register
        # holds changes (an annulled number's cases are raised for review by the rules).

    # --- settling and emitting --------------------------------------------------------------

    def _settle(self, event: Event, judgements: list[_Judgement], fallback: Rule | None,
                out: Outputs) -> None:
        """Emit what the event and the household moves it decided make ready; keep the event
        open while its decision (or shadow decision) waits for a household move."""
        if not judgements:  # most events: no case touched, nothing to correlate
            self._settle_caseless(event, fallback, out)
            return
        shadow = self.shadow
        if shadow is not None:
            rules = self._rules_for(shadow, event)
            for j in judgements:
                j.shadow = fallback or self._verdict(j, rules)
                j.shadow_facts = j.facts
        ready: list[_Open] = []
        shadow_ready: list[_Open] = []
        moves = {j.household.group_id: j.household for j in judgements
                 if j.household is not None}
        for move in moves.values():
            if move.moved_together is not None:
                self._collect(move, ready, shadow_ready)
            if move.complete:
                self.households.forget(move)
        entry = _Open(event, judgements, decided=all(j.rule is not None for j in judgements),
                      shadowed=shadow is None or all(j.shadow is not None for j in judgements))
        if entry.decided:
            ready.append(entry)
        if shadow is not None and entry.shadowed:
            shadow_ready.append(entry)
        if not (entry.decided and entry.shadowed):
            self._open[event.event_id] = entry
            for group in {move.group_id for move in moves.values()
                          if move.moved_together is None}:
                self._waiting.setdefault(group, []).append(event.event_id)
        self._emit(ready, shadow_ready, out)

    def _settle_caseless(self, event: Event, fallback: Rule | None, out: Outputs) -> None:
        """The fast path of most events (issue 13): one that touches no case has nothing to
        correlate or wait for. Its decision is the built-in caseless rule's, built at once; a
        raised one (unclassified, a fallback verdict) gets a task for the fallback unit."""
        now = self.clock().isoformat()
        kind = f"{event.source}/{event.type}"
        rule = _caseless_rule(event, fallback)
        ruleset = self.ruleset
        raised = ruleset.raises(rule.score)
        out.decisions.append(Decision(
            event.event_id, "raised" if raised else "suppressed", rule.score, rule.id,
            rule.reason, [], None, ruleset.version, now, event.source, event.type,
            event.registered_at.isoformat()))
        out.kinds.append(kind)
        if raised:  # no case to own it: the fallback unit does
            out.tasks.append(self._unowned_task(event, rule, now))
        if self.shadow is not None:
            out.shadow.append(ShadowDecision(
                self._decision(event, [], now, self.shadow, fallback), kind,
                event.registered_at, []))

    def _collect(self, move: HouseholdMove, ready: list[_Open],
                 shadow_ready: list[_Open]) -> None:
        """A household move is decided: judge again the events that waited for it, and add
        those now decided to ``ready`` (and ``shadow_ready``), in arrival order."""
        for event_id in self._waiting.pop(move.group_id, ()):
            entry = self._open.get(event_id)
            if entry is None:
                continue
            if not entry.decided:
                rules = self._rules_for(self.ruleset, entry.event)
                for j in entry.judgements:
                    if j.rule is None and j.household is not None \
                            and j.household.moved_together is not None:
                        j.rule = self._verdict(j, rules)
                if all(j.rule is not None for j in entry.judgements):
                    entry.decided = True
                    ready.append(entry)
            if not entry.shadowed and self.shadow is not None:
                rules = self._rules_for(self.shadow, entry.event)
                for j in entry.judgements:
                    if j.shadow is None and j.household is not None \
                            and j.household.moved_together is not None:
                        j.shadow = self._verdict(j, rules)
                        j.shadow_facts = j.facts
                if all(j.shadow is not None for j in entry.judgements):
                    entry.shadowed = True
                    shadow_ready.append(entry)
            if entry.decided and entry.shadowed:
                del self._open[event_id]

    def _emit(self, ready: list[_Open], shadow_ready: list[_Open], out: Outputs) -> None:
        """Decisions for ``ready`` events, the tasks their raised verdicts call for, and the
        shadow decisions of ``shadow_ready`` events (after the real ones: those create the
        correlation groups both refer to)."""
        if not ready and not shadow_ready:
            return
        now = self.clock().isoformat()
        ruleset, silences = self.ruleset, self.silences
        drafts: dict[str, tuple[_Judgement, Rule, list[str], str | None]] = {}
        for entry in ready:
            event = entry.event
            verdicts = []
            for j in entry.judgements:
                rule = j.rule
                assert rule is not None
                raised = ruleset.raises(rule.score)
                if raised and silences:
                    muted = silences.mutes(rule, j.facts, event.registered_at)
                    if muted is not None:
                        rule, raised = muted, False
                correlation_id, task_id = self._correlate(event, j, rule, raised, drafts)
                j.facts = {k: v for k, v in j.facts.items() if v is not MISSING}
                verdicts.append(CaseVerdict(
                    case_id=j.case.case_id, outcome="raised" if raised else "suppressed",
                    score=rule.score, rule=rule.id, reason=rule.reason,
                    unit=rule.unit or j.case.unit, title=rule.title,
                    payment_hold=rule.payment_hold and raised, correlation_id=correlation_id,
                    task_id=task_id, facts=j.facts))
            out.decisions.append(self._decision(event, verdicts, now, ruleset))
            out.kinds.append(f"{event.source}/{event.type}")
        if shadow_ready:
            self._emit_shadow(shadow_ready, now, out)
        for task_id, (j, rule, event_ids, correlation_id) in drafts.items():
            out.tasks.append(Task(
                task_id=task_id, case_id=j.case.case_id, unit=rule.unit or j.case.unit,
                benefit=j.case.benefit, title=rule.title, reason=rule.reason, rule=rule.id,
                score=rule.score, payment_hold=rule.payment_hold, event_ids=event_ids,
                facts=j.facts,
                correlation_id=correlation_id, created_at=now))

    def _emit_shadow(self, entries: list[_Open], now: str, out: Outputs) -> None:
        """Shadow decisions: the shadow ruleset's verdicts on the same judgements, through the
        same silences, with the correlation ids the real decisions created; never a task."""
        shadow, silences = self.shadow, self.silences
        assert shadow is not None
        for entry in entries:
            event = entry.event
            verdicts = []
            judged = [j.facts if j.shadow_facts is None else j.shadow_facts
                      for j in entry.judgements]
            for j, facts in zip(entry.judgements, judged, strict=True):
                rule = j.shadow
                assert rule is not None
                raised = shadow.raises(rule.score)
                if raised and silences:
                    muted = silences.mutes(rule, facts, event.registered_at)
                    if muted is not None:
                        rule, raised = muted, False
                key = j.group_id
                bundle = self._bundles.get(key) if key is not None \
                    and not isinstance(key, str) else None
                verdicts.append(CaseVerdict(
                    case_id=j.case.case_id, outcome="raised" if raised else "suppressed",
                    score=rule.score, rule=rule.id, reason=rule.reason,
                    unit=rule.unit or j.case.unit, title=rule.title,
                    payment_hold=rule.payment_hold and raised,
                    correlation_id=key if isinstance(key, str)
                    else bundle.group_id if bundle is not None else None,
                    facts={k: v for k, v in facts.items() if v is not MISSING}))
            entry.shadow_sent = True
            out.shadow.append(ShadowDecision(
                self._decision(event, verdicts, now, shadow), f"{event.source}/{event.type}",
                event.registered_at, judged))

    def _correlate(self, event: Event, j: _Judgement, rule: Rule, raised: bool,
                   drafts: dict[str, tuple[_Judgement, Rule, list[str], str | None]],
                   ) -> tuple[str | None, str | None]:
        """The verdict's correlation id and, when raised, its task id; records task drafts."""
        key = j.group_id
        correlation_id: str | None = None
        if isinstance(key, str):
            correlation_id = key  # a household move
        elif key is not None:
            bundle = self._bundles.get(key)
            if bundle is None:
                bundle = _Bundle(f"cg-{short_id(repr(key), event.event_id)}",
                                 event.registered_at.timestamp() + self._window_s)
                self._bundles[key] = bundle
                self._bundle_expiry.append((bundle.until, key))
            correlation_id = bundle.group_id
        if not raised:
            return correlation_id, None
        case_id = j.case.case_id
        task_id = self._task_ids.of(correlation_id or event.event_id, case_id)
        if task_id in drafts:
            drafts[task_id][2].append(event.event_id)
        elif not self._already_tasked(key, j, case_id):
            drafts[task_id] = (j, rule, [event.event_id], correlation_id)
        return correlation_id, task_id

    def _already_tasked(self, key: Any, j: _Judgement, case_id: str) -> bool:
        """Whether this group already has a task for the case (then the verdict joins it)."""
        if isinstance(key, str) and j.household is not None:
            tasked = j.household.tasked_cases
        elif key is not None and key in self._bundles:
            tasked = self._bundles[key].tasked
        else:
            return False
        if case_id in tasked:
            return True
        tasked.add(case_id)
        return False

    @staticmethod
    def _decision(event: Event, verdicts: list[CaseVerdict], now: str, ruleset: Ruleset,
                  fallback: Rule | None = None) -> Decision:
        if not verdicts:
            rule = _caseless_rule(event, fallback)
            return Decision(event_id=event.event_id,
                            outcome="raised" if ruleset.raises(rule.score) else "suppressed",
                            score=rule.score, rule=rule.id, reason=rule.reason, cases=[],
                            correlation_id=None, ruleset=ruleset.version, decided_at=now,
                            **_about(event))
        top = max(verdicts, key=lambda v: (v.outcome == "raised", v.score))
        return Decision(
            event_id=event.event_id, outcome=top.outcome, score=top.score, rule=top.rule,
            reason=top.reason, cases=verdicts,
            correlation_id=next((v.correlation_id for v in verdicts if v.correlation_id), None),
            ruleset=ruleset.version, decided_at=now, **_about(event))

    def _unowned_task(self, event: Event, rule: Rule, now: str) -> Task:
        """The task for a raised decision that touches no known case: for the fallback unit,
        under the pseudo case id (:mod:`triage.fallback`), so no raised event is left without
        an owner."""
        facts: dict[str, Any] = {k: v for k, v in event_facts(event).items() if v is not MISSING}
        if event.persons:
            facts["person"] = mask(event.persons[0])
        return Task(
            task_id=self._task_ids.of(event.event_id, NO_CASE), case_id=NO_CASE,
            unit=self.fallback_unit, benefit=NO_BENEFIT, title=rule.title, reason=rule.reason,
            rule=rule.id, score=rule.score,
            payment_hold=False, event_ids=[event.event_id], facts=facts, correlation_id=None,
            created_at=now)

    def _invalid(self, event: InvalidEvent) -> Decision:
        return Decision(event_id=event.event_id, outcome="invalid", score=0.0, rule=INVALID.id,
                        reason=INVALID.reason, cases=[], correlation_id=None,
                        ruleset=self.ruleset.version, decided_at=self.clock().isoformat(),
                        error=event.error)

    # --- memory -----------------------------------------------------------------------------

    def _first_time(self, event: Event, at: float) -> tuple[Event, Rule | None] | None:
        """Admit an event by id and content (:mod:`triage.dedup`). None for a redelivery;
        else the event to decide and, for a conflict — the id was used by other content — the
        event under its derived id with the rule that raises it."""
        digest = content_digest(event)
        admission = self._seen.admit(event.event_id, digest, at)
        if admission is Admission.NEW:
            return event, None
        if admission is Admission.REDELIVERY:
            return None
        derived = conflict_id(event.event_id, digest)
        if self._seen.admit(derived, digest, at) is not Admission.NEW:
            return None  # the conflicting content itself, redelivered
        self.conflicts += 1
        return event.model_copy(update={"event_id": derived}), EVENT_ID_CONFLICT

    def _first_invalid(self, event: InvalidEvent) -> bool:
        """Whether an invalid line with an id is new. Invalid lines are remembered apart, by
        their raw bytes, so they never use up the id of a valid event."""
        assert event.event_id is not None
        digest = raw_digest(event.raw)
        admission = self._seen_invalid.admit(event.event_id, digest, self.watermark)
        if admission is Admission.CONFLICT:
            key = conflict_id(event.event_id, digest)
            admission = self._seen_invalid.admit(key, digest, self.watermark)
        return admission is Admission.NEW

    def _forget_old(self, now: float) -> None:
        """Keep memory flat: drop event ids and task bundles older than their horizons."""
        self._seen.forget_old(now)
        self._seen_invalid.forget_old(now)
        expiry = self._bundle_expiry
        while expiry and expiry[0][0] < now:
            _, key = expiry.popleft()
            bundle = self._bundles.get(key)
            if bundle is not None and bundle.until < now:
                del self._bundles[key]


def _caseless_rule(event: Event, fallback: Rule | None) -> Rule:
    """The built-in rule deciding an event that touches no case."""
    return fallback or (UNCLASSIFIED if isinstance(event, UnknownEvent) else NO_AFFECTED_CASE)


def first_match(rules: tuple[Rule, ...], facts: Mapping[str, Any],
                pending: frozenset[str] = frozenset()) -> Rule | None:
    """The rule that decides an (event, case) with these facts: the first that matches, the
    built-in ``unclassified`` when none does, None while that depends on a pending fact."""
    result = evaluate(rules, facts, pending)
    if result is PENDING:
        return None
    return result if isinstance(result, Rule) else UNCLASSIFIED


def judge_facts(ruleset: Ruleset, facts: Mapping[str, Any]) -> tuple[Rule, bool]:
    """The rule that decides an (event, case) with exactly these facts under ``ruleset``, and
    whether it raises — the core's own evaluation, for rule tables (``triage rules test``)
    where no event can reach a combination of facts."""
    event_type = facts.get("event.type")
    rules = ruleset.for_type(event_type) if isinstance(event_type, str) else ruleset.rules
    rule = first_match(rules, facts)
    assert rule is not None  # nothing is pending without a household move
    return rule, ruleset.raises(rule.score)


def _about(event: Event) -> dict[str, str]:
    """The decision's additive fields naming its event (models/outputs.py)."""
    return {"event_source": event.source, "event_type": event.type,
            "registered_at": event.registered_at.isoformat()}


class DurationTooLong(ValueError):
    """A duration beyond what :class:`~datetime.timedelta` holds."""


def parse_window(text: str) -> timedelta:
    """``24h``, ``90m``, ``3600s``, ``2d`` → timedelta (for the CLI and configuration)."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].replace(".", "", 1).isdigit():
        raise ValueError(f"not a duration: {text!r} (use e.g. 24h, 90m, 3600s, 2d)")
    try:
        value = timedelta(**{units[text[-1]]: float(text[:-1])})
    except OverflowError:  # beyond timedelta's range (99999999999d): a ValueError like the rest
        raise DurationTooLong(f"{text!r} is too long a duration") from None
    if value <= timedelta(0):
        raise ValueError("a duration must be positive")
    return value

