"""The service's data at its boundaries, as pydantic models: what CONTRACT.md promises.

* :mod:`.address` — the DAR address every registry speaks of;
* :mod:`.events` — the CPR, DAR and ATP input events, and :func:`parse_event` for raw bytes;
* :mod:`.reference` — the persons snapshot and the active cases;
* :mod:`.outputs` — decisions, per-case verdicts and tasks as the core builds them;
* :mod:`.wire` — the same, as pydantic models of the wire format, for validating what was written.
"""

from triage.models.address import Address, MunicipalityCode
from triage.models.events import (
    AddressChanged,
    AtpEvent,
    BenefitEvent,
    ChildAdded,
    CivilStatusChanged,
    CprEvent,
    CprNumberAnnulled,
    CprNumberChanged,
    DarEvent,
    DataChanged,
    DeathAnnulled,
    Event,
    IncomeReported,
    InvalidEvent,
    PersonGone,
    SingleStatusChanged,
    UnknownEvent,
    parse_event,
)
from triage.models.outputs import CaseVerdict, Decision, Task
from triage.models.reference import CaseMember, CaseRecord, PersonRecord
from triage.models.wire import CaseVerdictRecord, DecisionRecord, TaskRecord

__all__ = [
    "Address",
    "AddressChanged",
    "AtpEvent",
    "BenefitEvent",
    "CaseMember",
    "CaseRecord",
    "CaseVerdict",
    "CaseVerdictRecord",
    "ChildAdded",
    "CivilStatusChanged",
    "CprEvent",
    "CprNumberAnnulled",
    "CprNumberChanged",
    "DarEvent",
    "DataChanged",
    "DeathAnnulled",
    "Decision",
    "DecisionRecord",
    "Event",
    "IncomeReported",
    "InvalidEvent",
    "MunicipalityCode",
    "PersonGone",
    "PersonRecord",
    "SingleStatusChanged",
    "Task",
    "TaskRecord",
    "UnknownEvent",
    "parse_event",
]
