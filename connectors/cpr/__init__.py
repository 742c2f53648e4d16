"""CPR change extract (P12170 "ændringsudtræk") connector.

* :mod:`connectors.cpr.layout` — record layouts (positions from the public P12170 definition).
* :mod:`connectors.cpr.extract` — :func:`read_extract`: a file in any delivered form (LF, CRLF
  with 0x1A, trimmed, fixed-length without terminators) → records or :class:`ExtractError`,
  with the 999 count checked.
* :mod:`connectors.cpr.person` — a person's records joined wherever they sit in the file.
* :mod:`connectors.cpr.events` — :func:`to_canonical`: records → canonical CPR events, by the
  code table ``event_codes.csv`` (DOMAIN.md "Real CPR event codes").
* :mod:`connectors.cpr.ingest` — :func:`ingest_cpr_extract`: file → JSON Lines or Kafka.
* :mod:`connectors.cpr.snapshot` — :func:`persons_from_extract`: a full extract → the persons
  snapshot the service starts from.
"""

from connectors.cpr.events import CODES, Skipped, to_canonical
from connectors.cpr.extract import (
    ExtractError,
    ExtractRecord,
    parse_extract,
    read_extract,
)
from connectors.cpr.ingest import IngestSummary, ingest_cpr_extract

__all__ = [
    "CODES",
    "ExtractError",
    "ExtractRecord",
    "IngestSummary",
    "Skipped",
    "ingest_cpr_extract",
    "parse_extract",
    "read_extract",
    "to_canonical",
]
