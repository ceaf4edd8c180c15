from __future__ import annotations

from typing import Any

import pytest
from transitions import Machine, MachineError

from callfsm import HUSKYVOICE, CallTracker, Lifecycle, LifecycleError, UnknownStatus
from callfsm.testing import paths, simulate

STATES = HUSKYVOICE.states


def test_huskyvoice_shape() -> None:
    assert (
        "queued",
        "initiated",
        "ringing",
        "in_progress",
        "completed",
        "failed",
        "cancelled",
    ) == STATES
    assert "queued" == HUSKYVOICE.initial
    assert {"completed", "failed", "cancelled"} == HUSKYVOICE.terminal
    assert ("initiated", "failed", "cancelled") == HUSKYVOICE.allowed("queued")
    assert ("in_progress", "failed", "cancelled") == HUSKYVOICE.allowed("ringing")
    assert ("completed", "failed") == HUSKYVOICE.allowed("in_progress")
    for end in HUSKYVOICE.terminal:
        assert () == HUSKYVOICE.allowed(end)


@pytest.mark.parametrize("state", [s for s in STATES if s not in HUSKYVOICE.terminal])
def test_failed_is_reachable_directly_from_every_live_state(state: str) -> None:
    assert "failed" in HUSKYVOICE.allowed(state)


def test_answered_calls_can_never_be_cancelled() -> None:
    assert not HUSKYVOICE.can_reach("in_progress", "cancelled")


def _model_moves(source: str, dest: str) -> bool:
    """Ask the transitions machine itself whether source -> dest is one legal step."""

    class Call:
        state = source

    machine: Machine = HUSKYVOICE._machine
    event = machine.events.get(f"to_{dest}")
    if event is None:
        return False
    try:
        return bool(event.trigger(Call()))
    except MachineError:
        return False


@pytest.mark.parametrize("source", STATES)
@pytest.mark.parametrize("dest", STATES)
def test_tables_agree_with_the_transitions_machine(source: str, dest: str) -> None:
    # the machine is the source of truth; the tracker's tables must never drift from it
    assert _model_moves(source, dest) == (dest in HUSKYVOICE.allowed(source))


def test_shortest_path_enters_skipped_states_in_order() -> None:
    assert ("initiated", "ringing", "in_progress", "completed") == HUSKYVOICE.path(
        "queued", "completed"
    )
    assert ("failed",) == HUSKYVOICE.path("queued", "failed")
    assert HUSKYVOICE.path("in_progress", "cancelled") is None


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("in-progress", "in_progress"),
        ("canceled", "cancelled"),
        ("call.initiated", "initiated"),
        ("call.answered", "in_progress"),
        ("call.completed", "completed"),
        ("call.failed", "failed"),
        ("call.disallowed", "failed"),
        ("  Completed ", "completed"),
    ],
)
def test_aliases_and_event_types(word: str, state: str) -> None:
    assert state == HUSKYVOICE.resolve(word)


def test_unknown_status_lists_what_is_known() -> None:
    with pytest.raises(UnknownStatus) as info:
        HUSKYVOICE.resolve("on_hold")
    message = str(info.value)
    assert "'on_hold'" in message
    assert "'in_progress'" in message
    assert "'call.answered'" in message
    assert isinstance(info.value, ValueError)


def test_mermaid_lists_every_transition_and_the_ends() -> None:
    text = HUSKYVOICE.mermaid()
    assert text.startswith("stateDiagram-v2\n")
    assert "    [*] --> queued\n" in text
    for src, dest in HUSKYVOICE.transitions:
        assert f"    {src} --> {dest}\n" in text
    for end in ("completed", "failed", "cancelled"):
        assert f"    {end} --> [*]\n" in text
    assert "in_progress --> cancelled" not in text


def _lifecycle(**overrides: Any) -> Lifecycle:
    spec: dict[str, Any] = {
        "states": ["new", "busy", "done"],
        "transitions": [("new", "busy"), ("busy", "done")],
        "initial": "new",
        "terminal": ["done"],
    }
    spec.update(overrides)
    return Lifecycle("test", **spec)


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        ({"transitions": [("new", "busy"), ("busy", "gone")]}, "'gone'"),
        ({"transitions": [("nowhere", "busy"), ("busy", "done")]}, "'nowhere'"),
        ({"initial": "start"}, "'start'"),
        ({"terminal": ["finished"]}, "'finished'"),
        ({"terminal": []}, "no terminal state"),
        (
            {"transitions": [("new", "busy"), ("busy", "done"), ("done", "new")]},
            "'done' has a way out",
        ),
        ({"states": ["new", "busy", "done", "lost"]}, "'lost'"),
        (
            {
                "states": ["new", "busy", "done", "loop"],
                "transitions": [
                    ("new", "busy"),
                    ("busy", "done"),
                    ("new", "loop"),
                    ("loop", "new"),
                ],
            },
            "'new' lies on a cycle",
        ),
        ({"states": ["new", "busy", "busy", "done"]}, "listed twice"),
        ({"states": ["new", "no-answer", "done"]}, "'no-answer' is not an identifier"),
        (
            {
                "states": ["new", "transition", "done"],
                "transitions": [("new", "transition"), ("transition", "done")],
            },
            "clashes",
        ),
        ({"transitions": [("new", "new"), ("new", "busy"), ("busy", "done")]}, "itself"),
        ({"transitions": [{"source": "new"}, ("busy", "done")]}, "lacks 'dest'"),
        ({"transitions": [("new", "busy", "done")]}, "not a (source, dest) pair"),
        ({"aliases": {"working": "missing"}}, "'missing'"),
        ({"aliases": {"busy": "done"}}, "already a state"),
    ],
)
def test_invalid_lifecycles_name_the_culprit(overrides: dict[str, Any], culprit: str) -> None:
    with pytest.raises(LifecycleError, match=culprit.replace("(", r"\(").replace(")", r"\)")):
        _lifecycle(**overrides)


def test_a_state_with_no_way_to_end_is_refused() -> None:
    with pytest.raises(LifecycleError, match="'loop' has no path to any terminal state"):
        _lifecycle(
            states=["new", "loop", "busy", "done"],
            transitions=[("new", "busy"), ("busy", "done"), ("new", "loop")],
        )


def test_star_source_means_every_live_state() -> None:
    lc = _lifecycle(
        states=["new", "busy", "done", "dead"],
        transitions=[("new", "busy"), ("busy", "done"), {"source": "*", "dest": "dead"}],
        terminal=["done", "dead"],
    )
    assert ("busy", "dead") == lc.allowed("new")
    assert ("done", "dead") == lc.allowed("busy")
    assert () == lc.allowed("done")


def test_custom_lifecycle_gets_the_same_machinery() -> None:
    carrier = Lifecycle(
        "carrier",
        ["queued", "ringing", "voicemail", "busy", "no_answer", "answered", "completed"],
        [
            ("queued", "ringing"),
            ("ringing", "answered"),
            ("ringing", "voicemail"),
            ("ringing", "no_answer"),
            ("queued", "busy"),
            ("answered", "completed"),
            ("voicemail", "completed"),
        ],
        initial="queued",
        terminal=["completed", "busy", "no_answer"],
        aliases={"no-answer": "no_answer"},
    )
    tracker = CallTracker(carrier, raise_handler_errors=True)
    left: list[str] = []

    @tracker.on_voicemail
    def leave_message(event: Any) -> None:
        left.append(event.call_id)

    simulate(tracker, "c1", ["queued", "voicemail", "completed"])
    assert ["c1"] == left
    assert "completed" == tracker.state("c1")
    assert ("ringing",) == tracker.get("c1").inferred
    simulate(tracker, "c2", ["queued", "no-answer"])
    assert "no_answer" == tracker.state("c2")
    assert 4 == len(paths(carrier))
