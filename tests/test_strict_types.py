"""Strict types at the boundary (issue 9 point 8): nothing is coerced. An integer
``registered_at`` is not read as a Unix time; numbers in strings, ``1`` for true and the like
make the event invalid, with a message that names the field and never the value."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from triage.models.address import Address
from triage.models.events import InvalidEvent, parse_event

CPR = "0101901234"
INCOME = {"event_id": "i", "source": "atp", "type": "income_reported",
          "registered_at": "2025-03-01T10:00:00+01:00", "cpr": CPR, "amount": 10.0,
          "income_type": "wage", "period": "2025-02"}
MOVE = {"event_id": "m", "source": "cpr", "type": "address_changed", "cpr": CPR,
        "registered_at": "2025-03-01T10:00:00+01:00", "from": None, "move_date": "2025-03-01",
        "to": {"address_id": "a", "municipality_code": "0561", "road_code": "0100",
               "house_number": "1", "postcode": "6700"}}
SINGLE = {"event_id": "s", "source": "atp", "type": "single_status_changed",
          "registered_at": "2025-03-01T10:00:00+01:00", "cpr": CPR, "single": True}


@pytest.mark.parametrize(("event", "error"), [
    ({**INCOME, "registered_at": 1740819600}, "registered_at: must be an RFC 3339 timestamp"),
    ({**INCOME, "registered_at": 1740819600.5}, "registered_at: must be an RFC 3339 timestamp"),
    ({**MOVE, "move_date": 20250301}, "move_date: must be a date string"),
    ({**INCOME, "amount": "10"}, "amount:"),
    ({**SINGLE, "single": 1}, "single:"),
    ({**SINGLE, "single": "yes"}, "single:"),
    ({**INCOME, "cpr": 101901234}, "cpr:"),
])
def test_coercible_values_of_the_wrong_type_are_invalid(event, error):
    parsed = parse_event(orjson.dumps(event))
    assert isinstance(parsed, InvalidEvent)
    assert error in parsed.error
    assert "1740819600" not in parsed.error and CPR not in parsed.error


@pytest.mark.parametrize("event", [INCOME, MOVE, SINGLE, {**INCOME, "amount": 10},
                                   {**INCOME, "registered_at": "2025-03-01T09:00:00Z"},
                                   {**MOVE, "to": {**MOVE["to"], "municipality_code": "561"}}])
def test_well_typed_events_are_still_valid(event):
    assert not isinstance(parse_event(orjson.dumps(event)), InvalidEvent)


@pytest.mark.parametrize("code", ["٠٥٦١", "05٦1", "056²", "²"])
def test_a_municipality_or_road_code_of_other_than_ascii_digits_is_invalid(code):
    """str.isdigit() takes Arabic-Indic digits and superscripts: such a code was accepted, and
    never equalled the code it looks like (a move inside the municipality read as leaving)."""
    for field in ("municipality_code", "road_code"):
        with pytest.raises(ValidationError, match="must be 1 to 4 digits"):
            Address.model_validate({"address_id": "a1", "municipality_code": "0561",
                                    "road_code": "0100", "house_number": "1",
                                    "postcode": "6700", field: code})
