"""The register: the service's own view of who lives where, civil status, spouse, CPR number.

It starts from the persons snapshot and is updated by every valid event, in arrival order, after
the event has been judged (DOMAIN.md: an event is judged against the state after every earlier
event). People the snapshot does not know — someone arriving from another municipality, a
newborn — are added the first time an event places them somewhere; they are first-class from
then on.

A CPR number change makes the new number the person's key and keeps the old one as an alias,
so an event that still carries the old number finds the same person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from triage.models.address import Address
from triage.models.reference import PersonRecord

GONE_STATUSES = frozenset({"70", "80", "90"})
"""CPR status codes of people who no longer live in Denmark: disappeared, emigrated, dead."""

STATUS_BY_EVENT = {"disappeared": "70", "emigrated": "80", "died": "90"}


@dataclass(slots=True)
class Person:
    """One person as the service currently knows them."""

    cpr: str
    address: Address | None = None
    civil_status: str = "U"
    spouse_cpr: str | None = None
    status: str = "01"
    address_protected: bool = False
    in_snapshot: bool = True

    @property
    def lives_in_denmark(self) -> bool:
        return self.status not in GONE_STATUSES

    @property
    def address_id(self) -> str | None:
        """The DAR address the person is registered at, if they live in Denmark."""
        address = self.address
        if address is None or self.status in GONE_STATUSES:  # not lives_in_denmark, inlined
            return None
        return address.address_id


class Register:
    """Persons by CPR number, residents by address, and CPR number aliases."""

    def __init__(self, persons: Iterable[PersonRecord] = ()) -> None:
        self._persons: dict[str, Person] = {}
        self._aliases: dict[str, str] = {}
        self._residents: dict[str, set[str]] = {}
        for record in persons:
            self._add(Person(record.cpr, record.address, record.civil_status, record.spouse_cpr,
                             record.status))

    @classmethod
    def of_people(cls, people: Iterable[Person]) -> Register:
        """A register of people already read (:func:`triage.snapshot.read_persons`), without a
        second object per person."""
        register = cls()
        for person in people:
            register._add(person)
        return register

    def __len__(self) -> int:
        return len(self._persons)

    # --- reading ----------------------------------------------------------------------------

    def resolve(self, cpr: str) -> str:
        """The person's current number: follows CPR number changes (old → new)."""
        if cpr not in self._aliases:
            return cpr
        seen = 0
        while cpr in self._aliases and seen < 32:
            cpr = self._aliases[cpr]
            seen += 1
        return cpr

    def get(self, cpr: str) -> Person | None:
        person = self._persons.get(cpr)
        return person if person is not None else self._persons.get(self.resolve(cpr))

    def spouse_of(self, cpr: str) -> str | None:
        """The person's spouse or partner by current number (follows number changes)."""
        person = self.get(cpr)
        return self.resolve(person.spouse_cpr) if person and person.spouse_cpr else None

    def address_id_of(self, cpr: str) -> str | None:
        person = self.get(cpr)
        return person.address_id if person else None

    def residents(self, address_id: str | None) -> frozenset[str]:
        """Everyone registered at the address (living in Denmark), by current number."""
        if address_id is None:
            return frozenset()
        return frozenset(self._residents.get(address_id, ()))

    def iter_residents(self, address_id: str | None) -> Iterable[str]:
        """Like :meth:`residents`, without a copy: for reading on the hot path only."""
        return self._residents.get(address_id, ()) if address_id is not None else ()

    # --- changing ---------------------------------------------------------------------------

    def ensure(self, cpr: str) -> Person:
        """The person, created (unknown to the snapshot) if this is the first we hear of them."""
        person = self.get(cpr)
        if person is None:
            person = Person(self.resolve(cpr), in_snapshot=False)
            self._persons[person.cpr] = person
        return person

    def move(self, cpr: str, to: Address) -> None:
        person = self.ensure(cpr)
        self._unindex(person)
        person.address = to
        self._index(person)

    def leave(self, cpr: str, status: str) -> None:
        """Death, emigration, disappearance: the person stops being registered anywhere."""
        person = self.ensure(cpr)
        self._unindex(person)
        person.status = status

    def revive(self, cpr: str) -> None:
        """A death annulled: the person lives again at the address they were registered at
        (status 01, registered in Denmark)."""
        person = self.ensure(cpr)
        if person.lives_in_denmark:
            return
        person.status = "01"
        self._index(person)

    def set_civil_status(self, cpr: str, civil_status: str, spouse_cpr: str | None) -> None:
        person = self.ensure(cpr)
        person.civil_status = civil_status
        person.spouse_cpr = self.resolve(spouse_cpr) if spouse_cpr else None

    def set_address_protection(self, cpr: str, protected: bool) -> None:
        self.ensure(cpr).address_protected = protected

    def add_child(self, child_cpr: str, address: Address) -> None:
        """A newborn or adopted child: registered at ``address`` unless already known."""
        if self.get(child_cpr) is None:
            self.move(child_cpr, address)

    def renumber(self, old: str, new: str) -> None:
        """The person's CPR number changed: ``new`` becomes the key, ``old`` an alias."""
        old = self.resolve(old)
        if old == new:
            return
        person = self._persons.pop(old, None) or Person(old, in_snapshot=False)
        self._unindex(person)
        person.cpr = new
        self._persons[new] = person
        self._aliases[old] = new
        self._index(person)

    def readdress(self, address_id: str, after: Address) -> None:
        """A DAR change to an address (rename, renumbering, postcode, municipality): every
        resident's registered address takes the new values; the address id is unchanged."""
        for cpr in self._residents.get(address_id, ()):
            self._persons[cpr].address = after

    # --- internals --------------------------------------------------------------------------

    def _add(self, person: Person) -> None:
        self._persons[person.cpr] = person
        self._index(person)

    def _index(self, person: Person) -> None:
        address_id = person.address_id
        if address_id is not None:
            residents = self._residents.get(address_id)
            if residents is None:
                self._residents[address_id] = {person.cpr}
            else:
                residents.add(person.cpr)

    def _unindex(self, person: Person) -> None:
        address_id = person.address_id
        if address_id is not None:
            residents = self._residents.get(address_id)
            if residents is not None:
                residents.discard(person.cpr)
                if not residents:
                    del self._residents[address_id]
