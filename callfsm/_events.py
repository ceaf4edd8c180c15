"""What callfsm hands to handlers and returns from updates.

All of these are frozen, slotted dataclasses. The tracker builds the ones on
its hot path through :func:`builder`, a third of the cost of the frozen
``__init__`` on CPython 3.11.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = [
    "EMPTY_DATA",
    "HandlerFailure",
    "Outcome",
    "OutcomeKind",
    "StatusUpdate",
    "Transition",
    "builder",
]

EMPTY_DATA: Mapping[str, Any] = MappingProxyType({})
"""The read-only, empty mapping shared by every update that carried no data."""

_T = TypeVar("_T")


def builder(cls: type[_T]) -> Callable[..., _T]:
    """Return a fast positional constructor for a frozen, slotted dataclass.

    The frozen ``__init__`` sets each field through ``object.__setattr__``,
    which costs about 2 µs for seven fields on CPython 3.11. This builds a
    plain twin class with the very same ``__slots__``, fills the slots through
    its ordinary ``__init__`` and then re-labels the object as ``cls``: about
    0.7 µs, and the result is an ordinary frozen instance of ``cls``.

    Args:
        cls: The dataclass; its fields are taken positionally in declaration order.

    Returns:
        A callable taking every field positionally and returning a ``cls``.
    """
    slots = tuple(cls.__slots__)  # type: ignore[attr-defined]
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if list(slots) != names:
        raise TypeError(f"{cls.__name__} must be a slotted dataclass without extra slots")
    body = "".join(f"    self.{n} = {n}\n" for n in names)
    source = f"def __init__(self, {', '.join(names)}):\n{body}    self.__class__ = cls\n"
    namespace: dict[str, Any] = {"cls": cls}
    exec(source, namespace)  # the same technique dataclasses itself uses
    twin = type(
        f"_Build{cls.__name__}", (), {"__slots__": slots, "__init__": namespace["__init__"]}
    )
    build: Callable[..., _T] = twin
    return build


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """One change of a call's state, as handlers receive it.

    Attributes:
        call_id: The call that changed.
        source: The state it left, or None when this is the call's first sighting.
        dest: The state it entered.
        at: When, as Unix time in seconds: the update's ``at`` if it gave one,
            else the moment the tracker applied it.
        origin: Where the update came from: ``"manual"``, ``"webhook"``,
            ``"poll"``, ``"simulated"`` or any word the caller used.
        inferred: True when no update named ``dest``: the state was skipped by
            the updates and entered on the way to a later one.
        data: The update's data, read-only; empty for inferred transitions.
    """

    call_id: str
    source: str | None
    dest: str
    at: float
    origin: str
    inferred: bool
    data: Mapping[str, Any]

    @property
    def time(self) -> datetime:
        """``at`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.at, timezone.utc)

    def __str__(self) -> str:
        mark = " (inferred)" if self.inferred else ""
        return f"{self.call_id}: {self.source} -> {self.dest} [{self.origin}]{mark}"


class OutcomeKind(str, enum.Enum):
    """What an update did."""

    APPLIED = "applied"
    """The call moved; ``Outcome.transitions`` lists every step."""
    DUPLICATE = "duplicate"
    """Seen before (same state, or an ``event_id`` already recorded); nothing changed."""
    STALE = "stale"
    """Behind the call's state, or older than its last update; nothing changed."""
    REJECTED = "rejected"
    """Contradicts the lifecycle; nothing changed."""

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one update.

    Attributes:
        call_id: The call the update was for.
        kind: Applied, duplicate, stale or rejected.
        requested: The state the update named (aliases resolved).
        previous: The call's state before the update; None on a first sighting.
        state: The call's state after the update.
        transitions: The transitions the update caused, in order; empty unless applied.
        reason: A sentence saying why, for logs.
        origin: Where the update came from.
        data: The update's data, read-only.
        error: For a rejected update, the :class:`IllegalTransition` describing it.
    """

    call_id: str
    kind: OutcomeKind
    requested: str
    previous: str | None
    state: str
    transitions: tuple[Transition, ...]
    reason: str
    origin: str
    data: Mapping[str, Any]
    error: Exception | None

    @property
    def applied(self) -> bool:
        """True when the call moved."""
        return self.kind is OutcomeKind.APPLIED

    @property
    def ignored(self) -> bool:
        """True for a duplicate or stale update."""
        return self.kind is OutcomeKind.DUPLICATE or self.kind is OutcomeKind.STALE

    @property
    def rejected(self) -> bool:
        """True when the lifecycle refused the update."""
        return self.kind is OutcomeKind.REJECTED


@dataclasses.dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One observation of a call's status, for flows and replays.

    Attributes:
        status: A state name or an alias of the lifecycle.
        at: When the provider observed it (datetime or Unix seconds), if known.
        data: Provider data to carry with the transition.
        event_id: A provider-unique id, for dropping redeliveries.
    """

    status: str
    at: datetime | float | None = None
    data: Mapping[str, Any] | None = None
    event_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerFailure:
    """A handler raised; what ``handler_failed`` receivers get.

    Attributes:
        signal: The name of the signal the handler was connected to.
        handler: The handler that raised.
        error: What it raised.
        payload: What it was called with: a :class:`Transition` or an :class:`Outcome`.
    """

    signal: str
    handler: Callable[..., Any]
    error: Exception
    payload: Transition | Outcome

    @property
    def handler_name(self) -> str:
        """The handler's qualified name, for messages."""
        return getattr(self.handler, "__qualname__", repr(self.handler))

    def describe(self) -> str:
        """Say which event the handler was handling."""
        p = self.payload
        if isinstance(p, Transition):
            return f"{self.signal!r} for call {p.call_id!r} ({p.source} -> {p.dest})"
        return f"{self.signal!r} for call {p.call_id!r} ({p.kind} {p.requested})"
