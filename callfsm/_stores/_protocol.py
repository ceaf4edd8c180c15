"""Where call state lives: the :class:`Store` protocol and the :class:`CallRecord`.

A store keeps, per call, a versioned head (state, version, timestamps) and the
history of transitions. The tracker reads the head, decides, and writes the
next version with :meth:`Store.commit`, which succeeds only if nobody wrote in
between (compare-and-set). Only the writer that won emits signals; the loser
re-reads and decides again. Nothing in the tracker assumes more than this
protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from .._events import Transition, builder

__all__ = ["CallRecord", "Head", "Store", "make_record"]


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
            True if written; False if another writer got there first: the
            version moved on, or ``event_id`` is already recorded (nothing written).
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
