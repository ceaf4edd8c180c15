from __future__ import annotations

import pytest

from callfsm import CallTracker


@pytest.fixture
def tracker() -> CallTracker:
    """A strict HuskyVoice tracker whose handler errors raise."""
    return CallTracker(raise_handler_errors=True)
