"""callfsm: the call lifecycle as a declarative state machine, fed by real-world updates.

The front door: everything public is importable from here.
"""

from __future__ import annotations

from ._events import HandlerFailure, Outcome, OutcomeKind, StatusUpdate, Transition
from ._exceptions import (
    AsyncHandlerError,
    CallFSMError,
    HandlerError,
    IllegalTransition,
    LifecycleError,
    UnknownCall,
    UnknownStatus,
    WaitTimeout,
)
from ._lifecycle import HUSKYVOICE, Lifecycle
from ._store import CallRecord, MemoryStore, Store
from ._tracker import CallTracker

__version__ = "0.1.0"

__all__ = [
    "HUSKYVOICE",
    "AsyncHandlerError",
    "CallFSMError",
    "CallRecord",
    "CallTracker",
    "HandlerError",
    "HandlerFailure",
    "IllegalTransition",
    "Lifecycle",
    "LifecycleError",
    "MemoryStore",
    "Outcome",
    "OutcomeKind",
    "StatusUpdate",
    "Store",
    "Transition",
    "UnknownCall",
    "UnknownStatus",
    "WaitTimeout",
]
