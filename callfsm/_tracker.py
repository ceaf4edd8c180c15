"""The :class:`CallTracker`: takes status observations, decides, stores, signals.

Data flows one way: an update is resolved to a state, decided against the
stored record with the lifecycle's tables, written with compare-and-set, and
only then delivered to handlers. Within one process a call's transitions are
delivered one batch at a time and in the order they were written: the thread
that wrote first delivers, and batches written meanwhile by other threads (or
by handlers) are queued behind it and delivered by that same thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar, overload

import blinker

from ._events import (
    EMPTY_DATA,
    HandlerFailure,
    Outcome,
    OutcomeKind,
    Transition,
    builder,
)
from ._exceptions import (
    AsyncHandlerError,
    HandlerError,
    IllegalTransition,
    UnknownCall,
    UnknownStatus,
    WaitTimeout,
)
from ._hooks import Hooks
from ._lifecycle import HUSKYVOICE, Lifecycle, Move
from ._stores import CallRecord, Head, MemoryStore, Store

__all__ = ["CallTracker"]

H = TypeVar("H", bound=Callable[..., Any])

_STRIPES = 64  # in-process locks, chosen by call id hash; a power of two
_make_transition = builder(Transition)
_make_outcome = builder(Outcome)
_APPLIED, _DUPLICATE, _STALE, _REJECTED = (
    OutcomeKind.APPLIED,
    OutcomeKind.DUPLICATE,
    OutcomeKind.STALE,
    OutcomeKind.REJECTED,
)
_DUP, _BEHIND = Move.DUPLICATE, Move.STALE


def _timestamp(at: datetime | float) -> float:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"at={at!r} is a naive datetime; give it a timezone")
        return at.timestamp()
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return float(at)
    raise TypeError(f"at must be a datetime or Unix seconds, not {type(at).__name__}")


def _match(spec: str | Iterable[str], resolve: Callable[[str], str]) -> frozenset[str] | None:
    if spec == "*":
        return None
    names = [spec] if isinstance(spec, str) else list(spec)
    return frozenset(resolve(n) for n in names)


class CallTracker:
    """Tracks calls through a lifecycle and signals every change.

    Args:
        lifecycle: The states and legal moves; :data:`HUSKYVOICE` by default.
        store: Where state lives; a new :class:`MemoryStore` by default.
        strict: Raise :class:`IllegalTransition` for updates the lifecycle
            forbids (the default). When False they are reported on the
            ``rejected`` signal instead; webhook and poll intake use that.
        infer: Enter states that updates skipped (initiated → in_progress
            passes through ringing), marking them inferred. When False a skip is
            rejected like any other illegal move.
        raise_handler_errors: Raise :class:`HandlerError` after the handlers
            ran if any of them raised. By default errors are logged and sent to
            ``handler_failed``; the update stands either way.
        retention: Seconds a terminal call keeps its history; after that
            :meth:`evict` (run as updates go by) leaves a tombstone. None keeps
            everything.
        clock: The time source, Unix seconds (``time.time``).
    """

    def __init__(
        self,
        lifecycle: Lifecycle = HUSKYVOICE,
        *,
        store: Store | None = None,
        strict: bool = True,
        infer: bool = True,
        raise_handler_errors: bool = False,
        retention: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifecycle = lifecycle
        self.store: Store = store if store is not None else MemoryStore(clock=clock)
        self.strict = strict
        self.infer = infer
        self.raise_handler_errors = raise_handler_errors
        self.retention = retention
        self._clock = clock
        self._next_sweep = clock() + retention if retention is not None else float("inf")
        self._hooks = Hooks(self, lifecycle.states, lifecycle.terminal)
        self._words = lifecycle._words
        self._decisions = lifecycle._decisions
        self._terminal = lifecycle.terminal
        self._head = self.store.head
        self._commit = self.store.commit
        self._seen_event = self.store.seen_event
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        # call id -> batches waiting behind the one being delivered (None: none yet)
        self._inflight: dict[str, deque[tuple[int, tuple[Transition, ...]]] | None] = {}
        self._durable = bool(getattr(self.store, "durable", False))
        self._waiters: dict[str, list[Callable[[], None]]] = {}

    # -- handlers ----------------------------------------------------------------------

    def signal(self, name: str) -> blinker.NamedSignal:
        """Return the blinker signal ``name``: a state, or ``transition``,
        ``terminal``, ``ignored``, ``rejected`` or ``handler_failed``.

        Receivers get the tracker as sender and the payload as a keyword:
        ``transition=`` (state signals, transition, terminal), ``outcome=``
        (ignored, rejected) or ``failure=`` (handler_failed).

        Raises:
            KeyError: For a name that is no signal of this tracker (also raised
                by :meth:`connect`, :meth:`on` and :meth:`disconnect`).
        """
        return self._hooks.signals[self._signal_name(name)]

    def _signal_name(self, name: str) -> str:
        if name in self._hooks.signals:
            return name
        try:
            return self.lifecycle.resolve(name)
        except UnknownStatus:
            names = ", ".join(self._hooks.signals)
            raise KeyError(f"no signal {name!r}; signals: {names}") from None

    def connect(self, name: str, handler: Callable[[Any], Any]) -> None:
        """Run ``handler(payload)`` on signal ``name``, after those connected before it.

        The handler is held strongly until :meth:`disconnect`.
        """
        self._hooks.connect(self._signal_name(name), handler)

    def disconnect(self, name: str, handler: Callable[[Any], Any]) -> bool:
        """Stop running ``handler`` on ``name``; True if it was connected."""
        return self._hooks.disconnect(self._signal_name(name), handler)

    def on(self, name: str) -> Callable[[H], H]:
        """Decorate a handler for signal ``name``; ``tracker.on_<name>`` is the same."""
        resolved = self._signal_name(name)

        def decorate(handler: H) -> H:
            self._hooks.connect(resolved, handler)
            return handler

        return decorate

    @overload
    def on_transition(self, source: H, /) -> H: ...

    @overload
    def on_transition(
        self, source: str | Iterable[str] = "*", dest: str | Iterable[str] = "*"
    ) -> Callable[[H], H]: ...

    def on_transition(
        self,
        source: str | Iterable[str] | Callable[..., Any] = "*",
        dest: str | Iterable[str] = "*",
    ) -> Any:
        """Decorate a handler for transitions, all of them or some.

        ``@tracker.on_transition`` runs on every change;
        ``@tracker.on_transition("ringing", "in_progress")`` on that one. Each
        of ``source`` and ``dest`` is a state, a list of states or ``"*"``. A
        first sighting has no source and matches only ``"*"``.
        """
        if callable(source):
            self._hooks.connect("transition", source)
            return source
        sources = _match(source, self.lifecycle.resolve)
        dests = _match(dest, self.lifecycle.resolve)

        def flt(src: str | None, dst: str) -> bool:
            return (sources is None or src in sources) and (dests is None or dst in dests)

        def decorate(handler: H) -> H:
            self._hooks.connect("transition", handler, flt)
            return handler

        return decorate

    def on_terminal(self, handler: H) -> H:
        """Decorate a handler that runs when a call reaches any terminal state."""
        self._hooks.connect("terminal", handler)
        return handler

    def on_ignored(self, handler: H) -> H:
        """Decorate a handler for duplicate and stale updates; it gets the :class:`Outcome`."""
        self._hooks.connect("ignored", handler)
        return handler

    def on_rejected(self, handler: H) -> H:
        """Decorate a handler for updates refused in lenient mode; it gets the :class:`Outcome`."""
        self._hooks.connect("rejected", handler)
        return handler

    def on_handler_failed(self, handler: H) -> H:
        """Decorate a handler for handler errors; it gets a :class:`HandlerFailure`."""
        self._hooks.connect("handler_failed", handler)
        return handler

    def __getattr__(self, name: str) -> Callable[[H], H]:
        # on_<state> decorators, one per state of the lifecycle
        if name.startswith("on_") and name[3:] in self.lifecycle.states:
            return self.on(name[3:])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- reading -----------------------------------------------------------------------

    def state(self, call_id: str) -> str:
        """The call's current state.

        Raises:
            UnknownCall: If the call was never seen.
        """
        current = self._head(call_id)
        if current is None:
            raise UnknownCall(call_id)
        return current[0]

    def get(self, call_id: str) -> CallRecord:
        """A read-only snapshot of the call: state, version and history.

        Raises:
            UnknownCall: If the call was never seen.
        """
        record = self.store.load(call_id)
        if record is None:
            raise UnknownCall(call_id)
        return record

    def __contains__(self, call_id: object) -> bool:
        return isinstance(call_id, str) and self._head(call_id) is not None

    def calls(self) -> Iterator[CallRecord]:
        """Every tracked call's record."""
        for call_id in self.store.call_ids():
            record = self.store.load(call_id)
            if record is not None:
                yield record

    # -- updating ----------------------------------------------------------------------

    def update(
        self,
        call_id: str,
        status: str,
        *,
        at: datetime | float | None = None,
        data: Mapping[str, Any] | None = None,
        origin: str = "manual",
        event_id: str | None = None,
        strict: bool | None = None,
    ) -> Outcome:
        """Take one observation of a call's status.

        Decides, in this order: an unknown status raises; a seen ``event_id``
        is a duplicate and an ``at`` older than the last applied one is stale;
        a first sighting starts the call in that state; the same state is a
        duplicate; a state behind the current one is stale; a state ahead is
        applied, entering skipped states on the way (inferred); anything else
        is rejected. Only an applied update changes anything.

        Args:
            call_id: The provider's call id.
            status: A state, alias or event type of the lifecycle.
            at: When the provider observed it (aware datetime or Unix seconds).
            data: Provider data for the transition's handlers (copied).
            origin: Where it came from, carried on the transitions.
            event_id: Provider-unique id; a repeat is a duplicate for any call.
            strict: Override the tracker's ``strict`` for this update.

        Returns:
            What happened and the transitions it caused.

        Raises:
            UnknownStatus: The lifecycle does not know ``status``.
            IllegalTransition: In strict mode, the lifecycle forbids the move.
            AsyncHandlerError: A coroutine handler is connected; use :meth:`aupdate`.
            HandlerError: Handlers raised and ``raise_handler_errors`` is on.
        """
        hooks = self._hooks
        if hooks.coroutines or hooks.maybe_raw_async:
            found = [*hooks.coroutines, *hooks.raw_coroutines()]
            if found:
                raise AsyncHandlerError(found)
        outcome, lock, version = self._write(call_id, status, at, data, origin, event_id, strict)
        failures: list[HandlerFailure] | None = None
        if lock is not None:
            failures = self._drain(call_id, version, outcome.transitions, lock)
        elif outcome.kind is not _APPLIED:
            name = "rejected" if outcome.kind is _REJECTED else "ignored"
            plan = hooks.outcome_plan(name)
            if plan:
                failures = hooks.send(plan, outcome, failures)
        if failures and self.raise_handler_errors:
            raise HandlerError(failures) from failures[0].error
        return outcome

    async def aupdate(
        self,
        call_id: str,
        status: str,
        *,
        at: datetime | float | None = None,
        data: Mapping[str, Any] | None = None,
        origin: str = "manual",
        event_id: str | None = None,
        strict: bool | None = None,
    ) -> Outcome:
        """Like :meth:`update`, awaiting coroutine handlers in connection order."""
        hooks = self._hooks
        outcome, lock, version = self._write(call_id, status, at, data, origin, event_id, strict)
        failures: list[HandlerFailure] | None = None
        if lock is not None:
            failures = await self._adrain(call_id, version, outcome.transitions, lock)
        elif outcome.kind is not _APPLIED:
            name = "rejected" if outcome.kind is _REJECTED else "ignored"
            plan = hooks.outcome_plan(name)
            if plan:
                failures = await hooks.send_async(plan, outcome, failures)
        if failures and self.raise_handler_errors:
            raise HandlerError(failures) from failures[0].error
        return outcome

    def _write(
        self,
        call_id: str,
        status: str,
        at: datetime | float | None,
        data: Mapping[str, Any] | None,
        origin: str,
        event_id: str | None,
        strict: bool | None,
    ) -> tuple[Outcome, threading.Lock | None, int]:
        """Decide and store one update.

        Returns:
            The outcome; the call's lock when this thread must deliver it (else
            None); the version written (0 when nothing was).
        """
        found = self._words.get(status)
        if found is None:
            found = self.lifecycle.lookup(status, call_id)
        requested, event_type = found
        if event_type is not None and (data is None or "event_type" not in data):
            data = {**(data or {}), "event_type": event_type}
        payload = MappingProxyType(dict(data)) if data else EMPTY_DATA
        if at is None:
            stamped = None
            ts = self._clock()
        else:
            ts = stamped = _timestamp(at)
        if self.retention is not None and self._clock() >= self._next_sweep:
            self.evict()
        head = self._head
        lock = self._stripes[hash(call_id) & (_STRIPES - 1)]
        with lock:
            while True:
                current = head(call_id)
                if event_id is not None and self._seen_event(event_id):
                    return (
                        self._ignored(
                            call_id,
                            _DUPLICATE,
                            requested,
                            current,
                            origin,
                            payload,
                            f"event {event_id!r} was seen before",
                        ),
                        None,
                        0,
                    )
                if current is None:
                    if not isinstance(call_id, str) or not call_id:
                        raise ValueError(f"call_id must be a non-empty string, not {call_id!r}")
                    previous = None
                    transitions: tuple[Transition, ...] = (
                        _make_transition(call_id, None, requested, ts, origin, False, payload),
                    )
                    version = 0
                    last_at = stamped
                else:
                    previous, version, last_at, _ = current
                    if stamped is not None:
                        if last_at is not None and stamped < last_at:
                            return (
                                self._ignored(
                                    call_id,
                                    _STALE,
                                    requested,
                                    current,
                                    origin,
                                    payload,
                                    "it is older than the last update",
                                ),
                                None,
                                0,
                            )
                        last_at = stamped
                    steps = self._decisions[previous, requested]
                    if isinstance(steps, Move):
                        return (
                            self._refuse(
                                call_id, steps, requested, previous, origin, payload, strict
                            ),
                            None,
                            0,
                        )
                    if len(steps) == 1:
                        transitions = (
                            _make_transition(
                                call_id, previous, requested, ts, origin, False, payload
                            ),
                        )
                    elif self.infer:
                        made = []
                        source = previous
                        for step in steps[:-1]:
                            made.append(
                                _make_transition(
                                    call_id, source, step, ts, origin, True, EMPTY_DATA
                                )
                            )
                            source = step
                        made.append(
                            _make_transition(call_id, source, requested, ts, origin, False, payload)
                        )
                        transitions = tuple(made)
                    else:
                        return (
                            self._refuse(
                                call_id, Move.REJECT, requested, previous, origin, payload, strict
                            ),
                            None,
                            0,
                        )
                ended_at = ts if requested in self._terminal else None
                if self._commit(
                    call_id, version, requested, transitions, last_at, ended_at, event_id
                ):
                    break
                # another process wrote first: read again and decide again
            inflight = self._inflight
            if call_id not in inflight:
                inflight[call_id] = None
                owner: threading.Lock | None = lock
            else:
                queue = inflight[call_id]
                if queue is None:
                    inflight[call_id] = queue = deque()
                queue.append((version + 1, transitions))
                owner = None
        return (
            _make_outcome(
                call_id,
                _APPLIED,
                requested,
                previous,
                requested,
                transitions,
                "applied",
                origin,
                payload,
                None,
            ),
            owner,
            version + 1,
        )

    def _refuse(
        self,
        call_id: str,
        move: Move,
        requested: str,
        current: str,
        origin: str,
        payload: Mapping[str, Any],
        strict: bool | None,
    ) -> Outcome:
        if move is _DUP:
            return self._ignored(
                call_id,
                _DUPLICATE,
                requested,
                current,
                origin,
                payload,
                f"the call is already {current!r}",
            )
        if move is _BEHIND:
            return self._ignored(
                call_id,
                _STALE,
                requested,
                current,
                origin,
                payload,
                f"{requested!r} lies behind {current!r}",
            )
        return self._reject(call_id, requested, current, origin, payload, strict)

    def _ignored(
        self,
        call_id: str,
        kind: OutcomeKind,
        requested: str,
        current: Head | str | None,
        origin: str,
        payload: Mapping[str, Any],
        why: str,
    ) -> Outcome:
        previous = current[0] if isinstance(current, tuple) else current
        state = requested if previous is None else previous
        return _make_outcome(
            call_id, kind, requested, previous, state, (), f"{kind}: {why}", origin, payload, None
        )

    def _reject(
        self,
        call_id: str,
        requested: str,
        current: str,
        origin: str,
        payload: Mapping[str, Any],
        strict: bool | None,
    ) -> Outcome:
        error = IllegalTransition(call_id, current, requested, self.lifecycle.allowed(current))
        if self.strict if strict is None else strict:
            raise error
        return _make_outcome(
            call_id,
            _REJECTED,
            requested,
            current,
            current,
            (),
            f"rejected: {error}",
            origin,
            payload,
            error,
        )

    def _drain(
        self, call_id: str, version: int, batch: tuple[Transition, ...], lock: threading.Lock
    ) -> list[HandlerFailure] | None:
        """Deliver this thread's batch, then any queued behind it meanwhile, in order."""
        hooks = self._hooks
        plans = hooks.plans
        failures: list[HandlerFailure] | None = None
        while True:
            for t in batch:
                plan = plans.get((t.source, t.dest))
                if plan is None:
                    plan = hooks.plan(t.source, t.dest)
                # Hooks.send, inlined: the call per transition costs a tenth of an update
                for sig, handler in plan:
                    if sig.is_muted:
                        continue
                    if handler is None:
                        failures = hooks.send_raw(sig, t, failures)
                        continue
                    try:
                        result = handler(t)
                        if result is not None:
                            hooks.check_result(result)
                    except Exception as exc:
                        failures = hooks.failed(sig.name, handler, exc, t, failures)
            following = self._finish_batch(call_id, version, batch, lock)
            if following is None:
                return failures
            version, batch = following

    async def _adrain(
        self, call_id: str, version: int, batch: tuple[Transition, ...], lock: threading.Lock
    ) -> list[HandlerFailure] | None:
        """:meth:`_drain`, awaiting coroutine handlers."""
        hooks = self._hooks
        failures: list[HandlerFailure] | None = None
        while True:
            for t in batch:
                failures = await hooks.send_async(hooks.plan(t.source, t.dest), t, failures)
            following = self._finish_batch(call_id, version, batch, lock)
            if following is None:
                return failures
            version, batch = following

    def recover(self, older_than: float = 60.0) -> int:
        """Deliver transitions a crashed process stored but never delivered.

        Run it at start-up. A durable store marks each commit "not yet
        delivered" in the same atomic write and clears the mark once its
        handlers ran; what is still marked after ``older_than`` seconds was left
        by a process that died in between, and is delivered here, in order.
        Delivery is therefore at-least-once for that window: a handler may see
        a transition again if its process died after running it but before
        the mark was cleared. A :class:`MemoryStore` dies with its process, so
        there is nothing to recover.

        Args:
            older_than: Only commits at least this many seconds old, so that
                deliveries still running in live processes are left alone.

        Returns:
            How many transitions were delivered.
        """
        if not self._durable:
            return 0
        failures: list[HandlerFailure] = []
        delivered = 0
        for call_id, version, batch in self.store.undelivered(self._clock() - older_than):
            lock = self._stripes[hash(call_id) & (_STRIPES - 1)]
            with lock:
                if call_id in self._inflight:  # a live delivery: queue behind it
                    queue = self._inflight[call_id]
                    if queue is None:
                        self._inflight[call_id] = queue = deque()
                    queue.append((version, batch))
                    delivered += len(batch)
                    continue
                self._inflight[call_id] = None
            failures += self._drain(call_id, version, batch, lock) or []
            delivered += len(batch)
        if failures and self.raise_handler_errors:
            raise HandlerError(failures) from failures[0].error
        return delivered

    def _finish_batch(
        self, call_id: str, version: int, batch: tuple[Transition, ...], lock: threading.Lock
    ) -> tuple[int, tuple[Transition, ...]] | None:
        """Mark a delivered batch; hand back the next queued one, or end this delivery."""
        if self._durable:
            self.store.delivered(call_id, version)
        with lock:
            queue = self._inflight[call_id]
            if queue:
                return queue.popleft()
            del self._inflight[call_id]
            if self._waiters:
                self._wake(call_id, batch)
        return None

    def _wake(self, call_id: str, last: tuple[Transition, ...]) -> None:
        """Wake the waiters of a call whose delivery just ended (under its lock)."""
        if last[-1].dest in self._terminal:
            for wake in self._waiters.pop(call_id, ()):
                wake()

    # -- waiting -----------------------------------------------------------------------

    def _ended(self, call_id: str) -> CallRecord | None:
        # under the call's stripe: ended and delivered, or None
        current = self._head(call_id)
        if current is not None and current[3] is not None and call_id not in self._inflight:
            return self.store.load(call_id)
        return None

    def _register(self, call_id: str, wake: Callable[[], None]) -> CallRecord | None:
        with self._stripes[hash(call_id) & (_STRIPES - 1)]:
            record = self._ended(call_id)
            if record is None:
                self._waiters.setdefault(call_id, []).append(wake)
            return record

    def _unregister(self, call_id: str, wake: Callable[[], None]) -> None:
        with self._stripes[hash(call_id) & (_STRIPES - 1)]:
            waiting = self._waiters.get(call_id)
            if waiting is not None and wake in waiting:
                waiting.remove(wake)
                if not waiting:
                    del self._waiters[call_id]

    def wait(self, call_id: str, timeout: float | None = None) -> CallRecord:
        """Block until the call is terminal and its handlers have run.

        Args:
            call_id: The call; it need not have been seen yet.
            timeout: Seconds to wait at most; None waits for ever.

        Returns:
            The call's final record.

        Raises:
            WaitTimeout: If the call had not ended when the time ran out.
        """
        event = threading.Event()
        record = self._register(call_id, event.set)
        if record is not None:
            return record
        try:
            if not event.wait(timeout):
                raise self._timeout(call_id, timeout)
        finally:
            self._unregister(call_id, event.set)
        return self.get(call_id)

    async def wait_async(self, call_id: str, timeout: float | None = None) -> CallRecord:
        """Await the end of the call; the asyncio twin of :meth:`wait`."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_resolve, done)

        record = self._register(call_id, wake)
        if record is not None:
            return record
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            raise self._timeout(call_id, timeout) from None
        finally:
            self._unregister(call_id, wake)
        return self.get(call_id)

    def _timeout(self, call_id: str, timeout: float | None) -> WaitTimeout:
        current = self._head(call_id)
        return WaitTimeout(call_id, current[0] if current else None, timeout or 0.0)

    # -- housekeeping ------------------------------------------------------------------

    def evict(self, now: float | None = None) -> int:
        """Drop the history of calls that ended more than ``retention`` seconds ago.

        Each leaves a tombstone, so late updates for it stay ignored. Runs by
        itself as updates arrive when ``retention`` is set.

        Returns:
            How many calls were evicted.
        """
        if self.retention is None:
            return 0
        now = self._clock() if now is None else now
        self._next_sweep = now + max(self.retention / 10, 1.0)
        return self.store.evict(now - self.retention)

    @contextlib.contextmanager
    def muted(self, *names: str) -> Iterator[None]:
        """Silence the named signals (all when none are named) inside the block."""
        chosen = [self.signal(n) for n in names] if names else list(self._hooks.signals.values())
        saved = [s.is_muted for s in chosen]
        for s in chosen:
            s.is_muted = True
        try:
            yield
        finally:
            for s, was in zip(chosen, saved, strict=True):
                s.is_muted = was

    def __repr__(self) -> str:
        return f"<CallTracker lifecycle={self.lifecycle.name!r} store={type(self.store).__name__}>"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
