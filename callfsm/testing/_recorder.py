"""Recording what a tracker signals, with assertions that read well."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from .._events import Outcome, Transition
from .._tracker import CallTracker

__all__ = ["Recorder", "raise_handler_errors", "record"]


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One signal as the recorder saw it."""

    signal: str
    payload: Any


class Recorder:
    """Everything a tracker signalled while recording; made by :func:`record`."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def _on(self, signal: str) -> Any:
        def handler(payload: Any) -> None:
            self.events.append(Event(signal, payload))

        return handler

    @property
    def transitions(self) -> list[Transition]:
        """Every transition, in the order handlers saw them."""
        return [e.payload for e in self.events if e.signal == "transition"]

    @property
    def outcomes(self) -> list[Outcome]:
        """Every ignored or rejected update's outcome."""
        return [e.payload for e in self.events if e.signal in ("ignored", "rejected")]

    def states(self, call_id: str | None = None) -> list[str]:
        """The states entered, in order (for one call, or all)."""
        return [t.dest for t in self.transitions if call_id is None or t.call_id == call_id]

    def count(self, signal: str, call_id: str | None = None) -> int:
        """How many times ``signal`` fired (for one call, or all)."""
        return sum(
            1
            for e in self.events
            if e.signal == signal and (call_id is None or e.payload.call_id == call_id)
        )

    def assert_path(self, call_id: str, expected: Sequence[str]) -> None:
        """Assert the call entered exactly these states, in this order."""
        actual = self.states(call_id)
        assert list(expected) == actual, (
            f"call {call_id!r} went {' -> '.join(actual) or 'nowhere'}, "
            f"expected {' -> '.join(expected)}"
        )

    def assert_entered(
        self, state: str, call_id: str | None = None, *, inferred: bool | None = None
    ) -> Transition:
        """Assert some call (or this one) entered ``state``; return that transition.

        Args:
            state: The state.
            call_id: Only this call, if given.
            inferred: If given, the entry must (True) or must not (False) be inferred.
        """
        for t in self.transitions:
            if t.dest == state and (call_id is None or t.call_id == call_id):
                if inferred is not None:
                    assert inferred == t.inferred, f"{t} was {'' if t.inferred else 'not '}inferred"
                return t
        who = f"call {call_id!r}" if call_id else "no call"
        raise AssertionError(f"{who} never entered {state!r}; seen: {self.states(call_id)}")

    def assert_not_entered(self, state: str, call_id: str | None = None) -> None:
        """Assert no call (or not this one) entered ``state``."""
        hits = [
            t
            for t in self.transitions
            if t.dest == state and (call_id is None or t.call_id == call_id)
        ]
        assert not hits, f"unexpectedly entered {state!r}: {', '.join(map(str, hits))}"

    def assert_no_repeats(self) -> None:
        """Assert no transition was signalled twice."""
        seen: set[tuple[str, str | None, str]] = set()
        for t in self.transitions:
            key = (t.call_id, t.source, t.dest)
            assert key not in seen, f"{t} was signalled twice"
            seen.add(key)

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.events.clear()


@contextlib.contextmanager
def record(tracker: CallTracker) -> Iterator[Recorder]:
    """Record every signal ``tracker`` emits inside the block.

    Example::

        with record(tracker) as rec:
            simulate(tracker, "c1", "busy")
        rec.assert_path("c1", ["queued", "initiated", "failed"])
    """
    recorder = Recorder()
    names = [
        *tracker.lifecycle.states,
        "transition",
        "terminal",
        "ignored",
        "rejected",
        "handler_failed",
    ]
    handlers = [(n, recorder._on(n)) for n in names]
    for name, handler in handlers:
        tracker.connect(name, handler)
    try:
        yield recorder
    finally:
        for name, handler in handlers:
            tracker.disconnect(name, handler)


class _Restore(contextlib.AbstractContextManager["_Restore"]):
    def __init__(self, tracker: CallTracker, previous: bool) -> None:
        self._tracker = tracker
        self._previous = previous

    def __exit__(self, *exc: object) -> None:
        self._tracker.raise_handler_errors = self._previous


def raise_handler_errors(tracker: CallTracker, on: bool = True) -> _Restore:
    """Make handler errors raise :class:`HandlerError` (or stop raising).

    Takes effect at once; used as a context manager it restores the old
    setting on exit (the way ``stamina.set_testing`` does).
    """
    previous = tracker.raise_handler_errors
    tracker.raise_handler_errors = on
    return _Restore(tracker, previous)
