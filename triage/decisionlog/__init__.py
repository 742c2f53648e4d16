"""The decision log: every decision the service wrote, searchable, in a real database.

Fed from ``triage.decisions`` and ``triage.tasks`` by the worker (:mod:`.service`), kept in
SQLite by default or PostgreSQL (:mod:`.store`), one row per event id (:mod:`.records`), read by
the page's explorer and by ``triage decisions show|case`` (:mod:`.cli`).
"""

from triage.decisionlog.records import decision_key, decision_row, mask_strings, task_row
from triage.decisionlog.store import DecisionLog, LogUrlError, default_url, open_log

__all__ = ["DecisionLog", "LogUrlError", "decision_key", "decision_row", "default_url",
           "mask_strings", "open_log", "task_row"]
