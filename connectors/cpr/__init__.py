"""CPR change extract (P12170 "ændringsudtræk") connector.

* :mod:`connectors.cpr.layout` — record layouts (positions from the public P12170 definition).
* :mod:`connectors.cpr.extract` — :func:`parse_extract` / :func:`read_extract`: lines → records
  or :class:`ExtractError`.
* :mod:`connectors.cpr.events` — :func:`to_canonical`: records → canonical CPR events.
* :mod:`connectors.cpr.ingest` — :func:`ingest_cpr_extract`: file → JSON Lines or Kafka.
"""

from connectors.cpr.events import to_canonical
from connectors.cpr.extract import (
    ExtractError,
    ExtractRecord,
    parse_extract,
    read_extract,
)
from connectors.cpr.ingest import IngestSummary, aingest_cpr_extract, ingest_cpr_extract

__all__ = [
    "ExtractError",
    "ExtractRecord",
    "IngestSummary",
    "aingest_cpr_extract",
    "ingest_cpr_extract",
    "parse_extract",
    "read_extract",
    "to_canonical",
]
