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
Plan = tuple[tuple["TrackerSignal", tuple[Handler, ...]], ...]

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

    def plan(self, source: str | None, dest: str) -> Plan:
        """The signals and ordered handlers a transition goes to (cached)."""
        key = (source, dest)
        plan = self.plans.get(key)
        if plan is None:
            names = [dest, "transition"] + (["terminal"] if dest in self.terminal else [])
            entries = []
            for n in names:
                handlers = tuple(h for h, f in self._handlers[n] if f is None or f(source, dest))
                if handlers or self.signals[n].receivers:
                    entries.append((self.signals[n], handlers))
            plan = tuple(entries)
            self.plans[key] = plan
        return plan

    def outcome_plan(self, name: str) -> Plan:
        """The one signal an ignored or rejected outcome goes to."""
        plan = self.plans.get(name)
        if plan is None:
            plan = ((self.signals[name], tuple(h for h, _ in self._handlers[name])),)
            self.plans[name] = plan
        return plan

    def wanted(self, name: str) -> bool:
        """True if anything would receive signal ``name``."""
        return bool(self._handlers[name] or self.signals[name].receivers)

    # -- sending -----------------------------------------------------------------------

    def send(
        self, plan: Plan, payload: Transition | Outcome, failures: list[HandlerFailure]
    ) -> None:
        """Run a plan synchronously; handler errors are reported, never raised."""
        for sig, handlers in plan:
            if sig.is_muted:
                continue
            for handler in handlers:
                try:
                    result = handler(payload)
                    if result is not None and inspect.isawaitable(result):
                        _close(result)
                        raise TypeError("handler returned an awaitable on the synchronous path")
                except Exception as exc:
                    self.failed(sig.name, handler, exc, payload, failures)
            if sig.receivers:
                for receiver, call in self._raw(sig, payload):
                    try:
                        result = call()
                        if result is not None and inspect.isawaitable(result):
                            _close(result)
                            raise TypeError(
                                "receiver returned an awaitable on the synchronous path"
                            )
                    except Exception as exc:
                        self.failed(sig.name, receiver, exc, payload, failures)

    async def send_async(
        self, plan: Plan, payload: Transition | Outcome, failures: list[HandlerFailure]
    ) -> None:
        """Run a plan, awaiting coroutine handlers one after the other, in order."""
        for sig, handlers in plan:
            if sig.is_muted:
                continue
            calls = [(h, _bind(h, payload)) for h in handlers]
            if sig.receivers:
                calls += self._raw(sig, payload)
            for target, call in calls:
                try:
                    result = call()
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self.failed(sig.name, target, exc, payload, failures)

    def _raw(self, sig: TrackerSignal, payload: object) -> list[tuple[Any, Callable[[], Any]]]:
        keyword = _KEYWORD.get(sig.name, "transition")
        owner = self.owner
        return [(r, _bind_raw(r, owner, keyword, payload)) for r in sig.receivers_for(owner)]

    def failed(
        self,
        name: str,
        handler: Handler,
        exc: Exception,
        payload: Transition | Outcome,
        failures: list[HandlerFailure],
    ) -> None:
        """Log a handler's error, report it on ``handler_failed`` and collect it."""
        failure = HandlerFailure(name, handler, exc, payload)
        log.error(
            "callfsm handler %s raised on %s",
            failure.handler_name,
            failure.describe(),
            exc_info=exc,
        )
        failures.append(failure)
        if name == "handler_failed":
            return
        sig = self.signals["handler_failed"]
        if sig.is_muted:
            return
        for h in self._handlers["handler_failed"]:
            _report_safely(h[0], failure)
        if sig.receivers:
            for r in sig.receivers_for(self.owner):
                _report_safely(functools.partial(r, self.owner), failure, keyword=True)


def _bind(handler: Handler, payload: object) -> Callable[[], Any]:
    return lambda: handler(payload)


def _bind_raw(receiver: Any, sender: object, keyword: str, payload: object) -> Callable[[], Any]:
    return lambda: receiver(sender, **{keyword: payload})


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
