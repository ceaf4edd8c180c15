from __future__ import annotations

import itertools

import pytest

from callfsm import HUSKYVOICE, CallTracker, OutcomeKind, StatusUpdate
from callfsm.testing import SCENARIOS, Scenario, paths, record, simulate


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_ends_as_described(name: str) -> None:
    tracker = CallTracker(raise_handler_errors=True)
    scenario = SCENARIOS[name]
    outcomes = simulate(tracker, "c", scenario)
    assert scenario.final == tracker.state("c")
    assert len(scenario.flow) == len(outcomes)
    assert all(t.origin == "simulated" for t in tracker.get("c").history)


def test_scenarios_cover_the_real_outcomes() -> None:
    tracker = CallTracker()
    with record(tracker) as rec:
        for name in SCENARIOS:
            simulate(tracker, name, name)
    rec.assert_not_entered("ringing", "busy")  # failed right after initiated
    rec.assert_path("no_answer", ["queued", "initiated", "ringing", "failed"])
    rec.assert_path("cancelled", ["queued", "cancelled"])
    # webhook-only: ringing is never reported, so it is inferred
    rec.assert_entered("ringing", "webhook_only", inferred=True)
    assert "initiated" == rec.states("webhook_only")[0]
    rec.assert_entered("initiated", "polled", inferred=True)
    assert "call.disallowed" == tracker.get("disallowed").history[-1].data["event_type"]


def test_simulate_takes_names_flows_and_update_objects() -> None:
    tracker = CallTracker()
    simulate(tracker, "a", "busy")
    assert "failed" == tracker.state("a")
    out = simulate(
        tracker,
        "b",
        ["queued", StatusUpdate("ringing", event_id="e1"), StatusUpdate("ringing", event_id="e1")],
        origin="poll",
    )
    assert [OutcomeKind.APPLIED, OutcomeKind.APPLIED, OutcomeKind.DUPLICATE] == [
        o.kind for o in out
    ]
    assert {"poll"} == {t.origin for t in tracker.get("b").history}
    with pytest.raises(KeyError, match="no scenario 'nope'"):
        simulate(tracker, "x", "nope")


def test_paths_lists_every_legal_path() -> None:
    found = paths()
    assert 8 == len(found)
    assert len(set(found)) == len(found)
    assert ("queued", "initiated", "ringing", "in_progress", "completed") in found
    assert ("queued", "cancelled") in found
    for path in found:
        assert HUSKYVOICE.initial == path[0]
        assert HUSKYVOICE.is_terminal(path[-1])
        for a, b in itertools.pairwise(path):
            assert b in HUSKYVOICE.allowed(a)
    assert not any(p[-1] == "cancelled" and "in_progress" in p for p in found)


@pytest.mark.parametrize("path", paths(), ids="->".join)
def test_every_path_simulates_cleanly(path: tuple[str, ...]) -> None:
    tracker = CallTracker(raise_handler_errors=True)
    with record(tracker) as rec:
        simulate(tracker, "c", path)
    rec.assert_path("c", list(path))


def test_scenario_is_a_frozen_value() -> None:
    s = SCENARIOS["answered"]
    assert isinstance(s, Scenario)
    assert "completed" == s.final
