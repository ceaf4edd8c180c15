"""Simulated call flows: scenarios, every legal path, scrambled deliveries."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from .._events import Outcome, StatusUpdate
from .._lifecycle import HUSKYVOICE, Lifecycle
from .._tracker import CallTracker

__all__ = ["SCENARIOS", "Flow", "Scenario", "paths", "scramble", "simulate"]

Flow = Sequence["str | StatusUpdate"]
"""A call's updates in order: state names, aliases or :class:`StatusUpdate` objects."""


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    """A named, realistic call flow.

    Attributes:
        name: The key in :data:`SCENARIOS`.
        description: What happens to the call, in a sentence.
        flow: The updates as the provider would report them.
        final: The state the call ends in.
    """

    name: str
    description: str
    flow: tuple[str | StatusUpdate, ...]
    final: str


def _u(status: str, **data: object) -> StatusUpdate:
    return StatusUpdate(status, data=data or None)


SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        s.name: s
        for s in [
            Scenario(
                "answered",
                "rings, is answered and completes",
                (
                    "queued",
                    "initiated",
                    "ringing",
                    "in_progress",
                    _u("completed", duration_seconds=124, summary="Booked a demo"),
                ),
                "completed",
            ),
            Scenario(
                "no_answer",
                "rings out without an answer and fails",
                ("queued", "initiated", "ringing", _u("failed", reason="no-answer")),
                "failed",
            ),
            Scenario(
                "busy",
                "the line is busy: fails right after dialling",
                ("queued", "initiated", _u("failed", reason="busy")),
                "failed",
            ),
            Scenario(
                "cancelled",
                "the caller's system cancels it while still queued",
                ("queued", "cancelled"),
                "cancelled",
            ),
            Scenario(
                "webhook_only",
                "seen through webhooks alone: no queued, no ringing",
                ("call.initiated", "call.answered", _u("call.completed", duration_seconds=61)),
                "completed",
            ),
            Scenario(
                "polled",
                "seen by a slow poller that misses short states and sees others twice",
                ("queued", "in_progress", "in_progress", _u("completed", duration_seconds=33)),
                "completed",
            ),
            Scenario(
                "disallowed",
                "blocked by do-not-disturb rules before dialling",
                ("queued", "call.disallowed"),
                "failed",
            ),
        ]
    }
)
"""The named scenarios :func:`simulate` and ``callfsm simulate`` know."""


def simulate(
    tracker: CallTracker,
    call_id: str,
    flow: Flow | Scenario | str,
    *,
    origin: str = "simulated",
    strict: bool | None = None,
) -> list[Outcome]:
    """Feed a flow to ``tracker`` as updates for ``call_id``.

    Args:
        tracker: The tracker under test.
        call_id: The call to simulate.
        flow: A :class:`Scenario`, the name of one, or a sequence of updates.
        origin: The origin the transitions carry.
        strict: Passed on to :meth:`CallTracker.update`.

    Returns:
        One outcome per update, in order.

    Raises:
        KeyError: For an unknown scenario name.
    """
    if isinstance(flow, str):
        try:
            flow = SCENARIOS[flow]
        except KeyError:
            raise KeyError(f"no scenario {flow!r}; scenarios: {', '.join(SCENARIOS)}") from None
    updates = flow.flow if isinstance(flow, Scenario) else flow
    outcomes = []
    for item in updates:
        u = item if isinstance(item, StatusUpdate) else StatusUpdate(item)
        outcomes.append(
            tracker.update(
                call_id,
                u.status,
                at=u.at,
                data=u.data,
                origin=origin,
                event_id=u.event_id,
                strict=strict,
            )
        )
    return outcomes


def paths(lifecycle: Lifecycle = HUSKYVOICE) -> list[tuple[str, ...]]:
    """Every legal path from the initial state to a terminal one.

    Model-based testing in the manner of XState's path generation: parametrize
    a test over these to cover every way a call can go.

    Returns:
        Paths as tuples of states, initial state first, in a stable order.
    """
    found: list[tuple[str, ...]] = []

    def walk(path: tuple[str, ...]) -> None:
        here = path[-1]
        if lifecycle.is_terminal(here):
            found.append(path)
            return
        for nxt in lifecycle.allowed(here):
            if nxt not in path:
                walk((*path, nxt))

    walk((lifecycle.initial,))
    return found


def scramble(
    flow: Iterable[str | StatusUpdate],
    seed: int | None = None,
    *,
    duplicate: float = 0.3,
    drop: float = 0.3,
) -> list[str | StatusUpdate]:
    """Deliver a flow the way the real world does: late, twice, out of order or not at all.

    The last update (the terminal one) is always kept; every other update
    is dropped with probability ``drop`` and repeated with probability
    ``duplicate``, and then all are shuffled.

    Args:
        flow: The clean flow, terminal update last.
        seed: Seeds the shuffle, so a failing case can be replayed.
        duplicate: Chance of each kept update being delivered twice.
        drop: Chance of each update but the last being lost.

    Returns:
        The scrambled deliveries.
    """
    items = list(flow)
    if not items:
        return []
    rng = random.Random(seed)
    out = []
    for item in items[:-1]:
        if rng.random() < drop:
            continue
        out.append(item)
        if rng.random() < duplicate:
            out.append(item)
    out.append(items[-1])
    if rng.random() < duplicate:
        out.append(items[-1])
    rng.shuffle(out)
    return out
