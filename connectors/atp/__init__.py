"""ATP / UDK: canonical ATP events derived by polling the § 8 benefit register.

See :mod:`connectors.atp.poller` for the record shape, the diff rules and the poller.
"""

from connectors.atp.poller import ATP_NAMESPACE, BENEFITS, AtpPoller, PollStats, diff_udk

__all__ = ["ATP_NAMESPACE", "BENEFITS", "AtpPoller", "PollStats", "diff_udk"]
