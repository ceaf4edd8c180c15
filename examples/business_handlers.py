"""Business logic as decorated handlers: bill completed calls, retry unanswered ones.

Run: ``python examples/business_handlers.py``
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callfsm import CallTracker, Transition
from callfsm.testing import SCENARIOS, simulate


@dataclass
class Crm:
    """Stands in for the systems a call's end must reach."""

    invoices: list[tuple[str, int]] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    answered: list[str] = field(default_factory=list)


def wire(tracker: CallTracker, crm: Crm) -> None:
    """Connect the business handlers to ``tracker``."""

    @tracker.on_completed
    def bill(event: Transition) -> None:
        crm.invoices.append((event.call_id, int(event.data.get("duration_seconds", 0))))

    @tracker.on_failed
    def retry_later(event: Transition) -> None:
        # busy, no answer, dropped: try again; a DND block (call.disallowed) must not be
        if event.data.get("event_type") != "call.disallowed":
            crm.retries.append(event.call_id)

    @tracker.on_transition("ringing", "in_progress")
    def answered(event: Transition) -> None:
        crm.answered.append(event.call_id)

    @tracker.on_terminal
    def record_outcome(event: Transition) -> None:
        crm.outcomes[event.call_id] = event.dest


def main() -> Crm:
    """Run every scenario through the handlers and print what the business saw."""
    tracker = CallTracker()
    crm = Crm()
    wire(tracker, crm)
    for name in SCENARIOS:
        simulate(tracker, name, name)
    print(f"invoices: {crm.invoices}")
    print(f"retries:  {crm.retries}")
    print(f"answered: {crm.answered}")
    for call_id, state in crm.outcomes.items():
        print(f"  {call_id:<13} ended {state}")
    return crm


if __name__ == "__main__":
    main()
