"""Household correlation (DOMAIN.md rule 2): is this move one part of a family moving together?

For each case, a :class:`HouseholdMove` starts when the first person of the case's household
moves. It fixes, at that moment, the household (everyone registered at the case's home), the
destination T and move date d of that first move, whether someone outside the household already
lives at T, and a deadline ``first registered_at + window``. Every later move of a household
member registered before the deadline joins it:

* to T on d — counted as moved;
* anywhere else, or on another date — the household split: decided at once.

The move is decided — ``moved_together`` true or false — as soon as that is certain: true when
every household member has moved to T; false at the first move elsewhere, or when the event-time
clock passes the deadline with members still missing. Until then the answer is pending, and the
rules that depend on it wait (:mod:`triage.rules.engine`). Time is event time only
(``registered_at``): the clock is the latest ``registered_at`` seen, so a replay of the same
input always closes the same groups at the same point. Event times here are POSIX seconds
(floats): comparing offset-aware datetimes costs a ``utcoffset()`` call per comparison, and the
clock is compared on every event.

The :class:`HouseholdCorrelator` keeps one open move per case, and forgets a move when it closes:
memory holds only open groups.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from datetime import date, timedelta


def short_id(*parts: str) -> str:
    """A stable 16-hex-digit id from its parts: the same input always yields the same id."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


@dataclass(slots=True)
class HouseholdMove:
    """One case's household move while it collects its members."""

    group_id: str
    case_id: str
    home: str
    household: frozenset[str]
    together: bool
    destination: str
    move_date: date
    destination_occupied: bool
    deadline: float
    """POSIX seconds: first registered_at + window."""
    moved: set[str] = field(default_factory=set)
    reported: set[str] = field(default_factory=set)
    split: bool = False
    expired: bool = False
    tasked_cases: set[str] = field(default_factory=set)

    @property
    def moved_together(self) -> bool | None:
        """True / False once certain, None while pending."""
        if self.split:
            return False
        if self.household <= self.moved:
            return True
        return False if self.expired else None

    @property
    def complete(self) -> bool:
        """Every household member has reported a move, or the window has closed: nothing more
        can join."""
        return self.expired or self.household <= self.reported

    def accepts(self, person: str, registered_at: float) -> bool:
        return not self.complete and person in self.household and registered_at <= self.deadline

    def add(self, person: str, destination: str, move_date: date) -> None:
        """Count a member's move. A second move by the same member counts by its latest
        destination: moving on elsewhere splits the household."""
        self.reported.add(person)
        if destination == self.destination and move_date == self.move_date:
            self.moved.add(person)
        else:
            self.moved.discard(person)
            self.split = True


class HouseholdCorrelator:
    """The open household moves, one per case, and the event-time clock that closes them."""

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self._open: dict[str, HouseholdMove] = {}
        self._deadlines: list[tuple[float, str, HouseholdMove]] = []  # heap, lazy deletion
        self._by_person: dict[str, set[str]] = {}  # household member -> cases with open moves

    def __len__(self) -> int:
        return len(self._open)

    def open_for(self, case_id: str) -> HouseholdMove | None:
        """The case's household move still collecting members, if any."""
        return self._open.get(case_id)

    def cases_awaiting(self, person: str) -> set[str]:
        """Cases whose open household move counts this person: their move concerns those cases
        even when the case's home, through an earlier member's move, is no longer theirs."""
        return self._by_person.get(person, set())

    def begin(self, *, case_id: str, first_event_id: str, home: str, household: frozenset[str],
              together: bool, destination: str, move_date: date, destination_occupied: bool,
              registered_at: float) -> HouseholdMove:
        move = HouseholdMove(
            group_id=f"hh-{short_id(case_id, first_event_id)}", case_id=case_id, home=home,
            household=household, together=together, destination=destination,
            move_date=move_date, destination_occupied=destination_occupied,
            deadline=registered_at + self.window.total_seconds())
        previous = self._open.get(case_id)
        if previous is not None:
            self._remove(previous)
        self._open[case_id] = move
        for person in household:
            self._by_person.setdefault(person, set()).add(case_id)
        heapq.heappush(self._deadlines, (move.deadline, move.group_id, move))
        return move

    def forget(self, move: HouseholdMove) -> None:
        """Stop tracking a move that can take no more members (everyone has reported)."""
        if self._open.get(move.case_id) is move:
            self._remove(move)

    def renumber(self, old: str, new: str) -> None:
        """A household member's CPR number changed while their household is moving."""
        for case_id in self._by_person.pop(old, set()):
            move = self._open[case_id]
            move.household = (move.household - {old}) | {new}
            for members in (move.moved, move.reported):
                if old in members:
                    members.discard(old)
                    members.add(new)
            self._by_person.setdefault(new, set()).add(case_id)

    def _remove(self, move: HouseholdMove) -> None:
        del self._open[move.case_id]
        for person in move.household:
            cases = self._by_person.get(person)
            if cases is not None:
                cases.discard(move.case_id)
                if not cases:
                    del self._by_person[person]

    def expire(self, now: float) -> list[HouseholdMove]:
        """Close every move whose deadline lies before ``now`` (event time); they are decided
        (an incomplete household did not move together) and forgotten."""
        closed = []
        heap = self._deadlines
        while heap and heap[0][0] < now:
            _, _, move = heapq.heappop(heap)
            if self._open.get(move.case_id) is move:
                self._remove(move)
                move.expired = True
                closed.append(move)
        return closed

    def close_all(self) -> list[HouseholdMove]:
        """End of input: every open move is decided as if its window had closed."""
        closed = sorted(self._open.values(), key=lambda m: (m.deadline, m.group_id))
        for move in closed:
            move.expired = True
        self._open.clear()
        self._deadlines.clear()
        self._by_person.clear()
        return closed

