"""callfsm: the call lifecycle as a declarative state machine, fed by real-world updates.

The front door: everything public is importable from here.
"""

from __future__ import annotations

from ._client import AsyncHuskyVoiceClient, HuskyVoiceClient
from ._events import HandlerFailure, Outcome, OutcomeKind, StatusUpdate, Transition
from ._exceptions import (
    APIError,
    AsyncHandlerError,
    AuthenticationError,
    CallFSMError,
    HandlerError,
    IllegalTransition,
    LifecycleError,
    MissingAPIKey,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
    UnexpectedResponse,
    UnknownCall,
    UnknownStatus,
    WaitTimeout,
)
from ._lifecycle import HUSKYVOICE, Lifecycle
from ._poller import AsyncPoller, Poller, PollFailure, PollPolicy
from ._stores import CallRecord, MemoryStore, RedisStore, SQLiteStore, Store
from ._tracker import CallTracker

__version__ = "0.1.0"

__all__ = [
    "HUSKYVOICE",
    "APIError",
    "AsyncHandlerError",
    "AsyncHuskyVoiceClient",
    "AsyncPoller",
    "AuthenticationError",
    "CallFSMError",
    "CallRecord",
    "CallTracker",
    "HandlerError",
    "HandlerFailure",
    "HuskyVoiceClient",
    "IllegalTransition",
    "Lifecycle",
    "LifecycleError",
    "MemoryStore",
    "MissingAPIKey",
    "NotFoundError",
    "Outcome",
    "OutcomeKind",
    "PollFailure",
    "PollPolicy",
    "Poller",
    "RateLimitError",
    "RedisStore",
    "SQLiteStore",
    "ServerError",
    "StatusUpdate",
    "Store",
    "Transition",
    "TransportError",
    "UnexpectedResponse",
    "UnknownCall",
    "UnknownStatus",
    "WaitTimeout",
]
