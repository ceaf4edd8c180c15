"""A tracker's signals, and the ordered handlers callfsm runs on them.

Every tracker owns one blinker signal per lifecycle state plus ``transition``,
``terminal``, ``ignored``, ``rejected`` and ``handler_failed``; they are not in
blinker's global namespace, so two trackers never cross-talk. Handlers
connected through callfsm (decorators, :meth:`CallTracker.connect`) are held
strongly and run in the order they were connected; receivers connected to the
blinker signal directly run after them, in blinker's (undefined) order. Either
kind may raise without stopping the others.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

import blinker

from ._events import HandlerFailure, Outcome, Transition

__all__ = ["Handler", "Hooks", "TrackerSignal"]

log = logging.getLogger("callfsm")

Handler = Callable[[Any], Any]
Filter = Callable[[str | None, str], bool]
Plan = tuple[tuple["TrackerSignal", "Handler | None"], ...]

#: The payload keyword each signal's blinker receivers get.
_KEYWORD = {"rejected": "outcome", "ignored": "outcome", "handler_failed": "failure"}


class TrackerSignal(blinker.NamedSignal):
    """A blinker signal that tells its tracker when coroutine receivers connect."""

    def __init__(self, name: str, doc: str, on_connect: Callable[[Any], None]) -> None:
        super().__init__(name, doc)
        self._on_connect = on_connect

    def connect(self, receiver: Any, sender: Any = blinker.ANY, weak: bool = True) -> Any:
        """Connect like :meth:`blinker.Signal.connect`."""
        connected = super().connect(receiver, sender, weak)
        self._on_connect(receiver)
        return connected


class Hooks:
    """The signals and handlers of one tracker (internal).

    Args:
        owner: The tracker; blinker receivers get it as the sender.
        states: The lifecycle's states, one signal each.
        terminal: The terminal states, whose transitions also go to ``terminal``.
    """

    def __init__(self, owner: object, states: tuple[str, ...], terminal: frozenset[str]) -> None:
        self.owner = owner
        self.terminal = terminal
        docs = {s: f"The call entered {s!r}." for s in states}
        docs.update(
            transition="The call changed state.",
            terminal="The call reached a terminal state.",
            ignored="A duplicate or stale update changed nothing.",
            rejected="An update contradicted the lifecycle (lenient mode).",
            handler_failed="A handler raised.",
        )
        self.signals = {
            name: TrackerSignal(name, doc, self._raw_connected) for name, doc in docs.items()
        }
        self._handlers: dict[str, tuple[tuple[Handler, Filter | None], ...]] = dict.fromkeys(
            self.signals, ()
        )
        self._lock = threading.Lock()
        #: (source, dest) or signal name -> plan; replaced whole, never edited in place
        self.plans: dict[object, Plan] = {}
        #: Coroutine handlers connected through callfsm.
        self.coroutines: tuple[Handler, ...] = ()
        #: Set when a coroutine receiver may be connected to a blinker signal directly.
        self.maybe_raw_async = False

    def _raw_connected(self, receiver: Any) -> None:
        if inspect.iscoroutinefunction(receiver):
            self.maybe_raw_async = True
        self.plans = {}  # plans leave out signals nobody listens to

    # -- connecting --------------------------------------------------------------------

    def connect(self, name: str, handler: Handler, flt: Filter | None = None) -> None:
        """Append ``handler`` to signal ``name``, with an optional (source, dest) filter."""
        if not callable(handler):
            raise TypeError(f"handler for {name!r} is not callable: {handler!r}")
        with self._lock:
            self._handlers[name] = (*self._handlers[name], (handler, flt))
            self._changed()

    def disconnect(self, name: str, handler: Handler) -> bool:
        """Remove every connection of ``handler`` to ``name``; True if there was one."""
        with self._lock:
            before = self._handlers[name]
            self._handlers[name] = tuple(e for e in before if e[0] != handler)
            self._changed()
            return len(before) != len(self._handlers[name])

    def _changed(self) -> None:
        self.plans = {}  # replaced, never mutated in place: senders may be iterating
        self.coroutines = tuple(
            h
            for entries in self._handlers.values()
            for h, _ in entries
            if inspect.iscoroutinefunction(h)
        )

    def raw_coroutines(self) -> list[Any]:
        """Coroutine receivers connected to the blinker signals directly, right now."""
        found = [
            r
            for sig in self.signals.values()
            for r in sig.receivers_for(self.owner)
            if inspect.iscoroutinefunction(r)
        ]
        if not found:
            self.maybe_raw_async = False
        return found

    # -- planning ----------------------------------------------------------------------
    #
    # A plan is a flat tuple of (signal, handler) in delivery order; the handler is
    # None where the signal's own blinker receivers are to be sent to.

    def plan(self, source: str | None, dest: str) -> Plan:
        """The (signal, handler) pairs a transition goes to, in order (cached)."""
        key = (source, dest)
        plan = self.plans.get(key)
        if plan is None:
            names = [dest, "transition"] + (["terminal"] if dest in self.terminal else [])
            plan = self._flatten(names, lambda f: f(source, dest))
            self.plans[key] = plan
        return plan

    def outcome_plan(self, name: str) -> Plan:
        """The (signal, handler) pairs an ignored or rejected outcome goes to."""
        plan = self.plans.get(name)
        if plan is None:
            plan = self._flatten([name], lambda f: True)
            self.plans[name] = plan
        return plan

    def _flatten(self, names: list[str], keep: Callable[[Filter], bool]) -> Plan:
        entries: list[tuple[TrackerSignal, Handler | None]] = []
        for n in names:
            sig = self.signals[n]
            entries += [(sig, h) for h, f in self._handlers[n] if f is None or keep(f)]
            if sig.receivers:
                entries.append((sig, None))
        return tuple(entries)

    # -- sending -----------------------------------------------------------------------

    def send(
        self, plan: Plan, payload: Transition | Outcome, failures: list[HandlerFailure] | None
    ) -> list[HandlerFailure] | None:
        """Run a plan synchronously; handler errors are collected, never raised.

        Returns:
            ``failures``, or a new list if there were failures and it was None.
        """
        for sig, handler in plan:
            if sig.is_muted:
                continue
            if handler is None:
                failures = self.send_raw(sig, payload, failures)
                continue
            try:
                result = handler(payload)
                if result is not None:
                    self.check_result(result)
            except Exception as exc:
                failures = self.failed(sig.name, handler, exc, payload, failures)
        return failures

    @staticmethod
    def check_result(result: object) -> None:
        """Refuse an awaitable returned on the synchronous path (closing it unawaited)."""
        if inspect.isawaitable(result):
            _close(result)
            raise TypeError("handler returned an awaitable on the synchronous path")

    def send_raw(
        self, sig: TrackerSignal, payload: object, failures: list[HandlerFailure] | None
    ) -> list[HandlerFailure] | None:
        """Send to the blinker receivers of ``sig``, each isolated from the others."""
        keyword = _KEYWORD.get(sig.name, "transition")
        for receiver in sig.receivers_for(self.owner):
            try:
                result = receiver(self.owner, **{keyword: payload})
                if result is not None and inspect.isawaitable(result):
                    _close(result)
                    raise TypeError("receiver returned an awaitable on the synchronous path")
            except Exception as exc:
                failures = self.failed(sig.name, receiver, exc, payload, failures)  # type: ignore[arg-type]
        return failures

    async def send_async(
        self, plan: Plan, payload: Transition | Outcome, failures: list[HandlerFailure] | None
    ) -> list[HandlerFailure] | None:
        """Run a plan, awaiting coroutine handlers one after the other, in order."""
        for sig, handler in plan:
            if sig.is_muted:
                continue
            if handler is None:
                keyword = _KEYWORD.get(sig.name, "transition")
                calls = [
                    (r, functools.partial(r, self.owner, **{keyword: payload}))
                    for r in sig.receivers_for(self.owner)
                ]
            else:
                calls = [(handler, functools.partial(handler, payload))]
            for target, call in calls:
                try:
                    result = call()
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    failures = self.failed(sig.name, target, exc, payload, failures)
        return failures

    def failed(
        self,
        name: str,
        handler: Handler,
        exc: Exception,
        payload: Transition | Outcome,
        failures: list[HandlerFailure] | None,
    ) -> list[HandlerFailure]:
        """Log a handler's error, report it on ``handler_failed`` and collect it."""
        failure = HandlerFailure(name, handler, exc, payload)
        log.error(
            "callfsm handler %s raised on %s",
            failure.handler_name,
            failure.describe(),
            exc_info=exc,
        )
        failures = [] if failures is None else failures
        failures.append(failure)
        sig = self.signals["handler_failed"]
        if sig.is_muted:
            return failures
        for h in self._handlers["handler_failed"]:
            _report_safely(h[0], failure)
        if sig.receivers:
            for r in sig.receivers_for(self.owner):
                _report_safely(functools.partial(r, self.owner), failure, keyword=True)
        return failures


def _close(awaitable: object) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def _report_safely(
    handler: Callable[..., Any], failure: HandlerFailure, keyword: bool = False
) -> None:
    try:
        result = handler(failure=failure) if keyword else handler(failure)
        if result is not None and inspect.isawaitable(result):
            _close(result)
    except Exception:
        log.exception("callfsm handler_failed handler raised while reporting a failure")
