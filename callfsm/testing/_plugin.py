"""The pytest plugin callfsm registers (entry point ``pytest11``): two fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .._tracker import CallTracker
from ._recorder import Recorder, record


@pytest.fixture
def call_tracker() -> CallTracker:
    """A fresh :class:`CallTracker` on HuskyVoice whose handler errors raise."""
    return CallTracker(raise_handler_errors=True)


@pytest.fixture
def signal_recorder(call_tracker: CallTracker) -> Iterator[Recorder]:
    """A :class:`Recorder` of everything ``call_tracker`` signals during the test."""
    with record(call_tracker) as recorder:
        yield recorder
