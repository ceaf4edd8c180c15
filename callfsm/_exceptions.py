"""Exceptions raised by callfsm.

Every error callfsm raises derives from :class:`CallFSMError`::

    CallFSMError
    ├── LifecycleError (ValueError)    a lifecycle definition that cannot work
    ├── UnknownStatus (ValueError)     a status word the lifecycle does not know
    ├── IllegalTransition              an update the lifecycle forbids
    ├── UnknownCall (KeyError)         a call the tracker has never seen
    ├── WaitTimeout (TimeoutError)     a wait ended before the call did
    ├── AsyncHandlerError (TypeError)  a coroutine handler met the synchronous path
    ├── HandlerError                   handlers raised while errors are set to raise
    ├── MissingAPIKey (ValueError)     no API key given and none in the environment
    └── APIError                       the HuskyVoice API did not do what was asked
        ├── AuthenticationError        401 or 403: a wrong key or a missing scope
        ├── NotFoundError              404: no such call
        ├── RateLimitError             429: too many requests (see retry_after)
        ├── ServerError                5xx: the API failed
        ├── TransportError             no response at all: timeout, refused, reset
        └── UnexpectedResponse         a response that is not the documented shape
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._events import HandlerFailure

__all__ = [
    "APIError",
    "AsyncHandlerError",
    "AuthenticationError",
    "CallFSMError",
    "HandlerError",
    "IllegalTransition",
    "LifecycleError",
    "MissingAPIKey",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "UnexpectedResponse",
    "UnknownCall",
    "UnknownStatus",
    "WaitTimeout",
]


def _names(items: Iterable[str]) -> str:
    listed = ", ".join(repr(i) for i in items)
    return listed or "nothing"


class CallFSMError(Exception):
    """Base class of every error callfsm raises."""


class LifecycleError(CallFSMError, ValueError):
    """A lifecycle definition is inconsistent; the message names the culprit."""


class UnknownStatus(CallFSMError, ValueError):
    """A status word is neither a state nor an alias of the lifecycle.

    Args:
        status: The word that was given.
        states: The lifecycle's states.
        aliases: The other words the lifecycle understands.
        call_id: The call the update was for, if known.
    """

    def __init__(
        self,
        status: object,
        states: Sequence[str],
        aliases: Sequence[str],
        call_id: str | None = None,
    ) -> None:
        self.status = status
        self.states = tuple(states)
        self.aliases = tuple(aliases)
        self.call_id = call_id
        where = f" for call {call_id!r}" if call_id is not None else ""
        super().__init__(
            f"unknown status {status!r}{where}; known states: {_names(self.states)}; "
            f"aliases: {_names(self.aliases)}"
        )


class IllegalTransition(CallFSMError):
    """An update asked for a state the lifecycle does not allow from the current one.

    Args:
        call_id: The call the update was for.
        current: The state the call was in; it is still in it.
        requested: The state the update asked for.
        allowed: The states that would have been legal next.
    """

    def __init__(self, call_id: str, current: str, requested: str, allowed: Iterable[str]) -> None:
        self.call_id = call_id
        self.current = current
        self.requested = requested
        self.allowed = tuple(allowed)
        if self.allowed:
            legal = f"from {current!r} the lifecycle allows {_names(self.allowed)}"
        else:
            legal = f"{current!r} is terminal and never changes"
        super().__init__(
            f"call {call_id!r} cannot go from {current!r} to {requested!r}: {legal}; "
            f"the call stays {current!r}"
        )


class UnknownCall(CallFSMError, KeyError):
    """The tracker holds no record of this call.

    Args:
        call_id: The call that was asked for.
    """

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        super().__init__(f"no call {call_id!r} is tracked")

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would show the repr


class WaitTimeout(CallFSMError, TimeoutError):
    """A wait for a call to end ran out of time.

    Args:
        call_id: The call that was waited for.
        state: Its state when the wait gave up, or None if never seen.
        timeout: The seconds waited.
    """

    def __init__(self, call_id: str, state: str | None, timeout: float) -> None:
        self.call_id = call_id
        self.state = state
        self.timeout = timeout
        now = f"it is still {state!r}" if state is not None else "it was never seen"
        super().__init__(f"call {call_id!r} did not end within {timeout:g} s; {now}")


class AsyncHandlerError(CallFSMError, TypeError):
    """A coroutine handler is connected but the update came through the sync path.

    Args:
        handlers: The coroutine handlers that a synchronous update cannot run.
    """

    def __init__(self, handlers: Sequence[object]) -> None:
        self.handlers = tuple(handlers)
        names = ", ".join(getattr(h, "__qualname__", repr(h)) for h in self.handlers)
        super().__init__(
            f"coroutine handlers are connected ({names}); a synchronous update() cannot "
            "run them, so nothing was changed: use 'await tracker.aupdate(...)'"
        )


class HandlerError(CallFSMError):
    """Handlers raised while the tracker is set to raise handler errors.

    The update itself was stored and every other handler still ran; the first
    handler's exception is chained as ``__cause__``.

    Args:
        failures: One entry for each handler that raised, in the order they ran.
    """

    def __init__(self, failures: Sequence[HandlerFailure]) -> None:
        self.failures = tuple(failures)
        first = self.failures[0]
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        super().__init__(
            f"handler {first.handler_name} raised {first.error!r} on {first.describe()}"
            f"{more}; the update was stored and the other handlers ran"
        )


class MissingAPIKey(CallFSMError, ValueError):
    """No API key was given and ``HUSKYVOICE_API_KEY`` is not set."""

    def __init__(self) -> None:
        super().__init__(
            "no HuskyVoice API key: pass api_key=... or set the HUSKYVOICE_API_KEY "
            "environment variable"
        )


class APIError(CallFSMError):
    """The HuskyVoice API answered with an error, or not at all.

    Args:
        message: What went wrong, for the reader of the traceback.
        status_code: The HTTP status, or None when no response came.
        body: The response body as text ("" when none came).
        method: The request's method.
        url: The request's URL.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: str = "",
        method: str = "",
        url: str = "",
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.method = method
        self.url = url
        where = f"{method} {url}: " if method else ""
        shown = body if len(body) <= 500 else body[:500] + "..."
        tail = f"; body: {shown}" if shown else ""
        super().__init__(f"{where}{message}{tail}")


class AuthenticationError(APIError):
    """401 or 403: the key is wrong, revoked, or lacks the scope for this call."""


class NotFoundError(APIError):
    """404: the API knows no such call."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is the seconds the API asked for, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ServerError(APIError):
    """A 5xx status: the API failed; retrying later may work."""


class TransportError(APIError):
    """No response came: a timeout, a refused or reset connection; the cause is chained."""


class UnexpectedResponse(APIError):
    """A response whose body is not the documented shape (not JSON, a field missing)."""
