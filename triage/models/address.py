"""The DAR address, and the small value types every registry shares.

CPR registers a residence on a DAR address id (a UUID that survives street renames and house
renumbering), so the address id — not the text — is what the service compares. Municipality and
road codes are 4-digit strings; feeds that drop the leading zero ("561") are normalised ("0561").
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from triage import cprnumber


def _four_digits(value: object) -> object:
    """Normalise 1–4 digit codes (str or int) to a zero-padded 4-digit string. ASCII digits
    only: ``str.isdigit`` also takes "٠٥٦١" or "²", which would never equal the code they
    look like."""
    if type(value) is str and len(value) == 4 and value.isascii() and value.isdigit():
        return value  # the common case, first
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and 1 <= len(value) <= 4:
        return value.zfill(4)
    if isinstance(value, str):
        raise ValueError("must be 1 to 4 digits")
    return value  # let the str validator report the wrong type


MunicipalityCode = Annotated[str, BeforeValidator(_four_digits)]
"""A kommunekode, always 4 digits ("0561")."""

RoadCode = Annotated[str, BeforeValidator(_four_digits)]
"""A vejkode, always 4 digits; 9900 and above are municipal pseudo-addresses."""

Cpr = Annotated[str, AfterValidator(cprnumber.validate)]
"""A CPR number with a valid date; modulus 11 is not required."""

NO_FIXED_ADDRESS_ROAD_CODE = 9900


class Model(BaseModel):
    """Base for boundary models: immutable, unknown fields ignored (CONTRACT.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Address(Model):
    """A DAR address as events and the register carry it."""

    address_id: str
    municipality_code: MunicipalityCode
    road_code: RoadCode
    house_number: str
    floor: str | None = None
    door: str | None = None
    postcode: str
    label: str | None = None

    @property
    def no_fixed_address(self) -> bool:
        """A "høj vejkode" (≥ 9900): a municipal pseudo-address, e.g. for "uden fast bopæl"."""
        return int(self.road_code) >= NO_FIXED_ADDRESS_ROAD_CODE
