"""Hypothesis strategies for call flows as the real world delivers them."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from callfsm import HUSKYVOICE
from callfsm.testing import paths

PATHS = paths(HUSKYVOICE)

# the word a webhook uses for a state, where HuskyVoice sends one
WEBHOOK_WORD = {
    "initiated": "call.initiated",
    "in_progress": "call.answered",
    "completed": "call.completed",
    "failed": "call.failed",
}


@dataclass(frozen=True)
class Delivery:
    """One update as it reaches the tracker."""

    status: str
    origin: str
    event_id: str | None


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[tuple[str, ...], list[Delivery]]:
    """A legal path and a messy delivery of it.

    Intermediate updates may be lost or repeated, everything is shuffled, and
    each update comes by poll or by webhook (webhooks carry an event id that
    their redeliveries repeat). The terminal update always arrives.
    """
    path = draw(st.sampled_from(PATHS))
    out: list[Delivery] = []
    for i, state in enumerate(path):
        last = i == len(path) - 1
        if not last and draw(st.booleans()):
            continue  # lost
        by_webhook = state in WEBHOOK_WORD and draw(st.booleans())
        if by_webhook:
            first = Delivery(WEBHOOK_WORD[state], "webhook", f"evt_{i}")
        else:
            first = Delivery(state, "poll", None)
        out.append(first)
        for _ in range(draw(st.integers(0, 2))):
            if by_webhook or draw(st.booleans()):
                out.append(first)  # redelivered or polled again
            elif state in WEBHOOK_WORD:
                out.append(Delivery(WEBHOOK_WORD[state], "webhook", f"evt_{i}"))
    return path, draw(st.permutations(out))
