"""``parse_window``: the durations of ``--window``, ``--lateness`` and their settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from triage.core import parse_window


@pytest.mark.parametrize(("text", "value"), [
    ("24h", timedelta(hours=24)), ("90m", timedelta(minutes=90)), ("3600s", timedelta(hours=1)),
    ("2d", timedelta(days=2)), ("1.5h", timedelta(minutes=90)), (" 12H ", timedelta(hours=12)),
    ("1s", timedelta(seconds=1)),
])
def test_durations_in_seconds_minutes_hours_and_days(text: str, value: timedelta) -> None:
    assert parse_window(text) == value


@pytest.mark.parametrize("text", ["", "h", "24", "24x", "-1h", "1.2.3h", "0h", "0s", "a1h",
                                  "1e3s"])
def test_anything_else_is_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_window(text)
