"""SF1320_A / Datafordeler CPR business-event envelopes → canonical CPR events.

See :mod:`connectors.envelope.convert` for the format, its sources and the rules.
"""

from connectors.envelope.convert import (
    CODE_BY_NAME,
    TYPE_BY_CODE,
    Envelope,
    EnvelopeError,
    PersonLookup,
    convert_envelope,
    parse_envelope,
    parse_timestamp,
    unclassified,
)

__all__ = [
    "CODE_BY_NAME",
    "TYPE_BY_CODE",
    "Envelope",
    "EnvelopeError",
    "PersonLookup",
    "convert_envelope",
    "parse_envelope",
    "parse_timestamp",
    "unclassified",
]
