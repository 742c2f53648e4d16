"""CPR business-event envelopes → canonical CPR events: SF1320_A / Datafordeler JSON and KOMBIT
Beskedfordeler XML.

* :mod:`connectors.envelope.convert` — the JSON format, its sources, :class:`Envelope` and the
  conversion rules (the person lookup decides);
* :mod:`connectors.envelope.kombit` — KOMBIT's XML ``Haendelsesbesked``, validated against
  ``Beskedkuvert.xsd``, with the ObjektHandling action table;
* :mod:`connectors.envelope.ingest` — ``triage ingest envelope FILE_OR_DIR``.
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
