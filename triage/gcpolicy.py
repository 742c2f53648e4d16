"""Garbage-collector settings for a process that holds a large, long-lived register.

While the reference data is read (:func:`paused`), the collector does not run at all: loading
builds hundreds of thousands of objects that all stay alive and form no cycles, and collections
walking the growing heap took half of the load time (issue 13).

The register, the case index and the remembered event ids are hundreds of thousands of objects
that live as long as the process and never form garbage cycles. CPython's cyclic collector does
not know that: every collection of the older generations walks them again, which costs a replay
≈ 10–15 % of its time and a worker the occasional pause of tens of milliseconds (issue 13). Two
settings, applied once the reference data is loaded:

* :func:`gc.freeze` moves everything alive now to the permanent generation, never scanned;
* a larger first-generation threshold: the per-event objects (parsed events, decisions, facts)
  are freed by reference counting, so collecting young objects every 700 allocations only
  rescans survivors. Cycles are still collected, just in larger, rarer batches.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
"""Allocations (net) between two young collections; CPython's default is 700."""


def settle_long_lived() -> None:
    """Call once the long-lived state is built (after loading reference data, after a
    rebuild): freeze it out of every collection and collect young objects less often."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block (reference counting frees as usual); the
    collector's previous state is restored after it.

    What the block built is handed to the oldest generation without a scan: otherwise the
    first allocation after the block starts a collection of everything it built — for a
    persons snapshot, a walk over hundreds of thousands of objects that are all alive (≈ 10 %
    of the load). :func:`gc.freeze` followed by :func:`gc.unfreeze` does the hand-over; when
    the process has frozen long-lived state already (:func:`settle_long_lived`), the new
    objects stay frozen with it instead, and the earlier state is not thawed."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            already_frozen = gc.get_freeze_count()
            gc.freeze()
            if not already_frozen:
                gc.unfreeze()
            gc.enable()
