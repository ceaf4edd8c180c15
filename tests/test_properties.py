"""The guarantees users rely on, over every path and every messy delivery of it."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from callfsm import HUSKYVOICE, CallTracker, StatusUpdate
from callfsm.testing import record, scramble, simulate

from .strategies import PATHS, Delivery, deliveries


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_messy_deliveries_end_where_the_clean_flow_ends(
    case: tuple[tuple[str, ...], list[Delivery]],
) -> None:
    path, messy = case
    tracker = CallTracker(raise_handler_errors=True)  # strict: any rejection would raise
    with record(tracker) as rec:
        for d in messy:
            tracker.update("c", d.status, origin=d.origin, event_id=d.event_id)
    assert path[-1] == tracker.state("c")
    rec.assert_no_repeats()
    entered = rec.states("c")
    assert path[-1] == entered[-1]
    assert 1 == rec.count("terminal")
    # no detour: only states of the real path, each signalled after the one before it
    assert set(entered) <= set(path)
    for a, b in itertools.pairwise(entered):
        assert b in HUSKYVOICE.allowed(a)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PATHS), st.integers(0, 2**32))
def test_scramble_keeps_the_terminal_update_and_the_outcome(
    path: tuple[str, ...], seed: int
) -> None:
    flow = [StatusUpdate(s) for s in path]
    messy = scramble(flow, seed)
    assert flow[-1] in messy
    assert set(messy) <= set(flow)
    tracker = CallTracker(raise_handler_errors=True)
    with record(tracker) as rec:
        simulate(tracker, "c", messy)
    assert path[-1] == tracker.state("c")
    rec.assert_no_repeats()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(HUSKYVOICE.states), max_size=12))
def test_a_terminal_state_never_changes_whatever_follows(statuses: list[str]) -> None:
    tracker = CallTracker(strict=False)
    tracker.update("c", "completed")
    for status in statuses:
        assert not tracker.update("c", status).applied
    assert "completed" == tracker.state("c")
    assert 1 == len(tracker.get("c").history)


def test_scramble_is_reproducible_from_its_seed() -> None:
    flow = ["queued", "initiated", "ringing", "in_progress", "completed"]
    assert scramble(flow, 7) == scramble(flow, 7)
    assert [] == scramble([], 1)
    assert any(scramble(flow, s) != scramble(flow, 7) for s in range(5))
