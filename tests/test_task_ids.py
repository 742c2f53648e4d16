"""Task ids are keyed hashes (issue 9 point 5): without the key nobody can compute the id a
real task will get, so a task cannot be planted under it in advance."""

from __future__ import annotations

import logging

import pytest

from tests.world import World, address
from triage.correlation import short_id
from triage.task_ids import DEV_TASK_KEY, TaskIds, TaskKeyError, task_key_from_env


def raised_task_ids(key: bytes) -> list[str]:
    w = World()
    w.person("modtager", address("home"))
    w.case("C1", "kontanthjaelp", "modtager")
    w.atp("modtager", "income_reported", at=0, amount=10.0, income_type="wage",
          period="2025-01")
    triage = w.triage()
    triage._task_ids = TaskIds(key)
    return [t.task_id for out in triage.run(w.lines()) for t in out.tasks]


def test_the_id_depends_on_the_key_and_is_stable_for_one_key():
    a, b = b"k" * 32, b"another secret key"
    assert raised_task_ids(a) == raised_task_ids(a)
    assert raised_task_ids(a) != raised_task_ids(b)
    (task_id,) = raised_task_ids(a)
    assert task_id.startswith("task-") and len(task_id) == 21
    assert task_id != f"task-{short_id('e1', 'C1')}"  # not the old public hash


def test_the_key_comes_from_the_environment_or_a_file(tmp_path):
    assert task_key_from_env({"TRIAGE_TASK_KEY": "s" * 20}) == b"s" * 20
    (tmp_path / "key").write_text("from-a-file-0123456789\n")
    assert task_key_from_env({"TRIAGE_TASK_KEY_FILE": str(tmp_path / "key")}) == \
        b"from-a-file-0123456789"
    with pytest.raises(TaskKeyError, match="at least 16"):
        task_key_from_env({"TRIAGE_TASK_KEY": "short"})
    with pytest.raises(TaskKeyError, match="cannot read"):
        task_key_from_env({"TRIAGE_TASK_KEY_FILE": str(tmp_path / "missing")})


def test_without_a_key_the_development_key_is_used_with_a_warning(caplog, monkeypatch):
    import triage.task_ids as module

    monkeypatch.setattr(module, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="triage.task_ids"):
        assert task_key_from_env({}) == DEV_TASK_KEY
        assert task_key_from_env({}) == DEV_TASK_KEY
    assert caplog.text.count("can be forged") == 1  # once per process


def test_the_key_never_shows_in_a_repr():
    assert "secret-value" not in repr(TaskIds(b"secret-value-0123456789"))


def test_a_pickled_core_state_carries_no_key(monkeypatch):
    """The worker checkpoints its decider with pickle: the task key must not be in the file."""
    import pickle

    key = "checkpoint-secret-0123456789"
    monkeypatch.setenv("TRIAGE_TASK_KEY", key)
    ids = TaskIds(key.encode())
    blob = pickle.dumps(ids)
    assert key.encode() not in blob
    restored = pickle.loads(blob)
    assert restored.of("e1", "C1") == ids.of("e1", "C1")
