"""Where call state lives: the :class:`Store` protocol and :class:`MemoryStore`.

A store keeps, per call, a versioned head (state, version, timestamps) and the
history of transitions. The tracker reads the head, decides, and writes the
next version with :meth:`Store.commit`, which succeeds only if nobody wrote in
between (compare-and-set). Only the writer that won emits signals; the loser
re-reads and decides again. Nothing in the tracker assumes more than this
protocol.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from ._events import Transition, builder

__all__ = ["CallRecord", "MemoryStore", "Store"]


@dataclasses.dataclass(frozen=True, slots=True)
class CallRecord:
    """A call's stored state: what :meth:`CallTracker.get` returns.

    Attributes:
        call_id: The call.
        state: Its current state.
        version: Bumped by one on every write; 1 for the first.
        history: Every transition so far, oldest first; empty once evicted.
        last_at: The newest provider timestamp (``at``) applied, if any.
        ended_at: When it reached a terminal state (Unix seconds), else None.
        evicted: True for a tombstone: a terminal call whose history was dropped
            after the retention period, kept so that late updates stay ignored.
    """

    call_id: str
    state: str
    version: int
    history: tuple[Transition, ...]
    last_at: float | None
    ended_at: float | None
    evicted: bool

    @property
    def terminal(self) -> bool:
        """True once the call has ended; it never changes again."""
        return self.ended_at is not None

    @property
    def inferred(self) -> tuple[str, ...]:
        """The states that were entered on the way without an update naming them."""
        return tuple(t.dest for t in self.history if t.inferred)


make_record: Callable[..., CallRecord] = builder(CallRecord)


Head = tuple[str, int, "float | None", "float | None"]
"""What :meth:`Store.head` returns: ``(state, version, last_at, ended_at)``."""


@runtime_checkable
class Store(Protocol):
    """What a tracker needs from the place it keeps call state.

    A call is a head, ``(state, version, last_at, ended_at)``, and an
    append-only history of transitions. :meth:`commit` must be atomic: the
    version check, the new head, the appended transitions and the event id are
    all written or none are. See ``docs/stores.md`` for writing your own.

    A store that outlives its process is ``durable``: each commit also marks
    its transitions "not yet delivered", :meth:`delivered` clears the mark once
    the handlers ran, and :meth:`undelivered` lists what a crash left behind.
    """

    durable: bool
    """True if state outlives the process (and delivery marks are kept)."""

    def head(self, call_id: str) -> Head | None:
        """Return ``(state, version, last_at, ended_at)``, or None for an unknown call."""

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
        """Move the call to ``state`` if its version is still ``expected_version``.

        Args:
            call_id: The call.
            expected_version: The version that was read; 0 for a call not yet stored.
            state: The new state; the version becomes ``expected_version + 1``.
            transitions: Appended to the call's history, in order.
            last_at: The newest provider timestamp applied, if any.
            ended_at: When the call ended, if ``state`` is terminal.
            event_id: Remember this provider event id with the write, if given.

        Returns:
            True if written; False if another writer got there first (nothing written).
        """

    def load(self, call_id: str) -> CallRecord | None:
        """Return a consistent snapshot of the call with its history, or None."""

    def seen_event(self, event_id: str) -> bool:
        """True if a commit recorded this event id and it has not expired."""

    def evict(self, ended_before: float) -> int:
        """Drop the history of calls that ended before ``ended_before``, keeping their heads.

        Returns:
            How many calls were evicted.
        """

    def call_ids(self) -> Iterator[str]:
        """Every call the store holds, tombstones included."""

    def delivered(self, call_id: str, version: int) -> None:
        """Clear the "not yet delivered" mark of the commit that wrote ``version``."""

    def undelivered(
        self, committed_before: float
    ) -> Iterator[tuple[str, int, tuple[Transition, ...]]]:
        """Commits still marked undelivered, made before ``committed_before`` (Unix time).

        Yields:
            ``(call_id, version, transitions)``, oldest version first within a call.
        """


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
