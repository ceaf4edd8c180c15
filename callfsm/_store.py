"""Where call state lives: the :class:`Store` protocol and :class:`MemoryStore`.

A store keeps one :class:`CallRecord` per call under a version number. The
tracker reads a record, decides, and writes the next version with
:meth:`Store.save`, which succeeds only if nobody wrote in between
(compare-and-set). Only the writer that won emits signals; the loser re-reads
and decides again. Nothing in the tracker assumes more than this protocol.
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


@runtime_checkable
class Store(Protocol):
    """What a tracker needs from the place it keeps call state.

    Implementations must make :meth:`save` atomic: the version check, the
    write and the event id all happen or none do.
    """

    def load(self, call_id: str) -> CallRecord | None:
        """Return the call's record, or None if it was never saved."""

    def save(self, record: CallRecord, *, expected_version: int, event_id: str | None) -> bool:
        """Write ``record`` if the stored version is still ``expected_version``.

        Args:
            record: The new record; its ``version`` is ``expected_version + 1``.
            expected_version: The version that was read; 0 for a call not yet stored.
            event_id: Remember this provider event id with the write, if given.

        Returns:
            True if written; False if another writer got there first (nothing written).
        """

    def seen_event(self, event_id: str) -> bool:
        """True if a write recorded this event id and it has not expired."""

    def evict(self, ended_before: float) -> int:
        """Replace terminal calls that ended before ``ended_before`` with tombstones.

        Returns:
            How many calls were evicted.
        """

    def call_ids(self) -> Iterator[str]:
        """Every call the store holds, tombstones included."""


class MemoryStore:
    """A :class:`Store` in this process's memory; the default.

    Args:
        event_ttl: Seconds an event id is remembered for duplicate detection.
        clock: The time source for event expiry (``time.time`` by default).
    """

    def __init__(self, *, event_ttl: float = 24 * 3600.0, clock: Callable[[], float] = time.time):
        self._records: dict[str, CallRecord] = {}
        self._events: dict[str, float] = {}
        self._ended: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()
        self._event_ttl = event_ttl
        self._clock = clock
        self._purge_at = 1024

    def load(self, call_id: str) -> CallRecord | None:
        """Return the call's record, or None if it was never saved."""
        return self._records.get(call_id)

    def save(self, record: CallRecord, *, expected_version: int, event_id: str | None) -> bool:
        """Write ``record`` if the stored version is still ``expected_version``."""
        records = self._records
        with self._lock:
            current = records.get(record.call_id)
            if (0 if current is None else current.version) != expected_version:
                return False
            records[record.call_id] = record
            if event_id is not None:
                self._remember(event_id)
            if record.ended_at is not None and (current is None or current.ended_at is None):
                self._ended.append((record.ended_at, record.call_id))
        return True

    def _remember(self, event_id: str) -> None:
        now = self._clock()
        events = self._events
        events[event_id] = now + self._event_ttl
        if len(events) >= self._purge_at:
            for key in [k for k, expiry in events.items() if expiry <= now]:
                del events[key]
            self._purge_at = max(1024, 2 * len(events))

    def seen_event(self, event_id: str) -> bool:
        """True if a write recorded this event id and it has not expired."""
        expiry = self._events.get(event_id)
        return expiry is not None and expiry > self._clock()

    def evict(self, ended_before: float) -> int:
        """Replace terminal calls that ended before ``ended_before`` with tombstones."""
        evicted = 0
        with self._lock:
            ended = self._ended
            while ended and ended[0][0] < ended_before:
                _, call_id = ended.popleft()
                r = self._records[call_id]
                self._records[call_id] = dataclasses.replace(
                    r, version=r.version + 1, history=(), evicted=True
                )
                evicted += 1
        return evicted

    def call_ids(self) -> Iterator[str]:
        """Every call the store holds, tombstones included."""
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)
