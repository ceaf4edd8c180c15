"""Test your business rules against simulated calls.

``simulate`` feeds flows, ``SCENARIOS`` names real outcomes, ``paths`` lists
every legal path, ``scramble`` delivers a flow the way the real world does and
``record`` captures what the tracker signalled. The pytest plugin adds the
``call_tracker`` and ``signal_recorder`` fixtures.
"""

from __future__ import annotations

from ._fake import FakeHuskyVoice, Fault
from ._flows import SCENARIOS, Flow, Scenario, paths, scramble, simulate
from ._recorder import Recorder, raise_handler_errors, record

__all__ = [
    "SCENARIOS",
    "FakeHuskyVoice",
    "Fault",
    "Flow",
    "Recorder",
    "Scenario",
    "paths",
    "raise_handler_errors",
    "record",
    "scramble",
    "simulate",
]
