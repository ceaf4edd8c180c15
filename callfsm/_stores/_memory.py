"""The in-memory :class:`Store`, the default."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from .._events import Transition
from ._protocol import CallRecord, Head, make_record

__all__ = ["MemoryStore"]


class MemoryStore:
    """A :class:`Store` in this process's memory; the default.

    Safe for any number of threads and trackers in one process; gone when the
    process ends, so it is not ``durable`` and keeps no delivery marks.

    Args:
        event_ttl: Seconds an event id is remembered for duplicate detection.
        clock: The time source for event expiry (``time.time`` by default).
    """

    def __init__(self, *, event_ttl: float = 24 * 3600.0, clock: Callable[[], float] = time.time):
        self._heads: dict[str, Head] = {}
        self._history: dict[str, list[Transition]] = {}
        self._events: dict[str, float] = {}
        self._ended: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()
        self._event_ttl = event_ttl
        self._clock = clock
        self._purge_at = 1024
        self.head = self._heads.get  # type: ignore[method-assign,assignment]  # hot: C call

    def head(self, call_id: str) -> Head | None:  # replaced per instance in __init__
        """Return ``(state, version, last_at, ended_at)``, or None for an unknown call."""
        return self._heads.get(call_id)

    def commit(
        self,
        call_id: str,
        expected_version: int,
        state: str,
        transitions: tuple[Transition, ...],
        last_at: float | None,
        ended_at: float | None,
        event_id: str | None,
    ) -> bool:
        """Move the call to ``state`` if its version is still ``expected_version``."""
        heads = self._heads
        with self._lock:
            current = heads.get(call_id)
            if (0 if current is None else current[1]) != expected_version:
                return False
            if event_id is not None and self.seen_event(event_id):
                return False  # recorded by a concurrent writer: the tracker reads again
            heads[call_id] = (state, expected_version + 1, last_at, ended_at)
            history = self._history.get(call_id)
            if history is None:
                self._history[call_id] = list(transitions)
            else:
                history.extend(transitions)
            if event_id is not None:
                self._remember(event_id)
            if ended_at is not None and (current is None or current[3] is None):
                self._ended.append((ended_at, call_id))
        return True

    def _remember(self, event_id: str) -> None:
        now = self._clock()
        events = self._events
        events[event_id] = now + self._event_ttl
        if len(events) >= self._purge_at:
            for key in [k for k, expiry in events.items() if expiry <= now]:
                del events[key]
            self._purge_at = max(1024, 2 * len(events))

    def load(self, call_id: str) -> CallRecord | None:
        """Return a consistent snapshot of the call with its history, or None."""
        with self._lock:
            head = self._heads.get(call_id)
            if head is None:
                return None
            history = tuple(self._history.get(call_id, ()))
        state, version, last_at, ended_at = head
        return make_record(call_id, state, version, history, last_at, ended_at, not history)

    def seen_event(self, event_id: str) -> bool:
        """True if a commit recorded this event id and it has not expired."""
        expiry = self._events.get(event_id)
        return expiry is not None and expiry > self._clock()

    def evict(self, ended_before: float) -> int:
        """Drop the history of calls that ended before ``ended_before``, keeping their heads."""
        evicted = 0
        with self._lock:
            ended = self._ended
            while ended and ended[0][0] < ended_before:
                _, call_id = ended.popleft()
                if self._history.pop(call_id, None) is not None:
                    evicted += 1
        return evicted

    def call_ids(self) -> Iterator[str]:
        """Every call the store holds, tombstones included."""
        return iter(list(self._heads))

    durable = False

    def delivered(self, call_id: str, version: int) -> None:
        """Nothing to clear: a memory store keeps no delivery marks."""

    def undelivered(
        self, committed_before: float
    ) -> Iterator[tuple[str, int, tuple[Transition, ...]]]:
        """Nothing: what a memory store held died with its process."""
        return iter(())

    def __len__(self) -> int:
        return len(self._heads)
