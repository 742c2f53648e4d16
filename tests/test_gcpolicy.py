"""After the long-lived state is built, it is frozen out of collections and young objects are
collected in larger batches (issue 13); cycles are still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from triage.gcpolicy import YOUNG_THRESHOLD, settle_long_lived


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Node:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored_gc")
def test_settling_freezes_what_lives_and_raises_the_young_threshold() -> None:
    alive = [Node() for _ in range(100)]
    settle_long_lived()
    assert gc.get_freeze_count() >= len(alive)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    cycle = Node()
    gone = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert gone() is None  # a cycle made after settling is still collected


def test_paused_stops_collection_inside_and_restores_the_previous_state() -> None:
    from triage.gcpolicy import paused

    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
