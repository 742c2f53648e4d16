"""DAWA-style address replication events → canonical DAR events.

See :mod:`connectors.dar.replication` for the format, its sources and the rules.
"""

from connectors.dar.replication import DAR_NAMESPACE, AddressBook, convert_replication, event_id

__all__ = ["DAR_NAMESPACE", "AddressBook", "convert_replication", "event_id"]
