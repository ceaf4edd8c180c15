from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from callfsm import (
    CallTracker,
    IllegalTransition,
    Outcome,
    OutcomeKind,
    Transition,
    UnknownCall,
    UnknownStatus,
    WaitTimeout,
)
from callfsm.testing import record

T0 = datetime(2026, 6, 1, 10, 0, 0, tzinfo=timezone.utc)


def _history(tracker: CallTracker, call_id: str) -> list[tuple[str | None, str, bool]]:
    return [(t.source, t.dest, t.inferred) for t in tracker.get(call_id).history]


def test_the_issue_walkthrough(tracker: CallTracker) -> None:
    billed: list[tuple[str, str | None, str, Any]] = []
    answered: list[Transition] = []

    @tracker.on_completed
    def bill(event: Transition) -> None:
        billed.append((event.call_id, event.source, event.dest, event.data.get("duration_seconds")))

    @tracker.on_transition("ringing", "in_progress")
    def on_answer(event: Transition) -> None:
        answered.append(event)

    assert OutcomeKind.APPLIED == tracker.update("call_1", "initiated").kind
    out = tracker.update("call_1", "in_progress")
    assert [("initiated", "ringing", True), ("ringing", "in_progress", False)] == [
        (t.source, t.dest, t.inferred) for t in out.transitions
    ]
    assert 1 == len(answered)
    assert OutcomeKind.STALE == tracker.update("call_1", "ringing").kind
    tracker.update("call_1", "completed", data={"duration_seconds": 124})
    assert OutcomeKind.DUPLICATE == tracker.update("call_1", "completed").kind
    assert [("call_1", "in_progress", "completed", 124)] == billed
    assert "completed" == tracker.state("call_1")
    tracker.update("call_2", "in_progress")
    with pytest.raises(IllegalTransition) as info:
        tracker.update("call_2", "cancelled")
    err = info.value
    assert ("call_2", "in_progress", "cancelled") == (err.call_id, err.current, err.requested)
    assert ("completed", "failed") == err.allowed
    assert "'in_progress' to 'cancelled'" in str(err)
    assert "allows 'completed', 'failed'" in str(err)
    assert "in_progress" == tracker.state("call_2")


# (current, requested, expected kind): the decision table the README documents
DECISIONS = [
    ("ringing", "ringing", OutcomeKind.DUPLICATE),
    ("in_progress", "ringing", OutcomeKind.STALE),
    ("in_progress", "queued", OutcomeKind.STALE),
    ("completed", "in_progress", OutcomeKind.STALE),
    ("failed", "ringing", OutcomeKind.STALE),
    ("initiated", "ringing", OutcomeKind.APPLIED),
    ("queued", "completed", OutcomeKind.APPLIED),
    ("ringing", "cancelled", OutcomeKind.APPLIED),
    ("in_progress", "cancelled", OutcomeKind.REJECTED),
    ("completed", "failed", OutcomeKind.REJECTED),
    ("cancelled", "completed", OutcomeKind.REJECTED),
    ("failed", "cancelled", OutcomeKind.REJECTED),
]


@pytest.mark.parametrize(("current", "requested", "kind"), DECISIONS)
def test_decision_table(current: str, requested: str, kind: OutcomeKind) -> None:
    tracker = CallTracker(strict=False)
    tracker.update("c", current)
    before = tracker.get("c")
    out = tracker.update("c", requested)
    assert kind == out.kind
    if kind is OutcomeKind.APPLIED:
        assert requested == tracker.state("c")
        assert requested == out.transitions[-1].dest
    else:
        assert before == tracker.get("c")
        assert () == out.transitions
        assert current == out.state


def test_first_sighting_starts_there_without_a_source(tracker: CallTracker) -> None:
    with record(tracker) as rec:
        out = tracker.update("c", "ringing")
    assert OutcomeKind.APPLIED == out.kind
    assert out.previous is None
    (t,) = rec.transitions
    assert (None, "ringing", False) == (t.source, t.dest, t.inferred)
    assert 1 == rec.count("ringing")


def test_skipped_states_are_entered_in_order_and_marked(tracker: CallTracker) -> None:
    with record(tracker) as rec:
        tracker.update("c", "queued")
        tracker.update("c", "completed", data={"duration_seconds": 5})
    rec.assert_path("c", ["queued", "initiated", "ringing", "in_progress", "completed"])
    assert [False, True, True, True, False] == [t.inferred for t in rec.transitions]
    # the data belongs to the observed update, not to the states inferred on the way
    assert [{}, {}, {}, {}, {"duration_seconds": 5}] == [dict(t.data) for t in rec.transitions]
    assert ("initiated", "ringing", "in_progress") == tracker.get("c").inferred


def test_inference_can_be_switched_off() -> None:
    tracker = CallTracker(infer=False)
    tracker.update("c", "initiated")
    with pytest.raises(IllegalTransition) as info:
        tracker.update("c", "in_progress")
    assert ("ringing", "failed", "cancelled") == info.value.allowed
    assert "initiated" == tracker.state("c")
    assert OutcomeKind.APPLIED == tracker.update("c", "ringing").kind


def test_event_id_seen_before_is_a_duplicate_for_any_call(tracker: CallTracker) -> None:
    tracker.update("a", "initiated", event_id="evt_1")
    out = tracker.update("b", "initiated", event_id="evt_1")
    assert OutcomeKind.DUPLICATE == out.kind
    assert "evt_1" in out.reason
    assert "b" not in tracker
    # even a state that would move the call forward
    assert OutcomeKind.DUPLICATE == tracker.update("a", "completed", event_id="evt_1").kind
    assert "initiated" == tracker.state("a")


def test_event_id_takes_precedence_over_the_lifecycle(tracker: CallTracker) -> None:
    tracker.update("a", "in_progress", event_id="evt_1")
    # would be rejected (in_progress -> cancelled) if the id were not checked first
    assert OutcomeKind.DUPLICATE == tracker.update("a", "cancelled", event_id="evt_1").kind


def test_older_at_is_stale_even_when_it_would_move_forward(tracker: CallTracker) -> None:
    tracker.update("c", "ringing", at=T0)
    out = tracker.update("c", "failed", at=T0 - timedelta(seconds=1))
    assert OutcomeKind.STALE == out.kind
    assert "older" in out.reason
    assert "ringing" == tracker.state("c")
    assert OutcomeKind.APPLIED == tracker.update("c", "in_progress", at=T0).kind  # equal is fine
    assert T0.timestamp() == tracker.get("c").history[-1].at
    assert T0 == tracker.get("c").history[-1].time


def test_at_accepts_unix_seconds_and_refuses_naive_datetimes(tracker: CallTracker) -> None:
    tracker.update("c", "queued", at=1_000.5)
    assert 1_000.5 == tracker.get("c").last_at
    with pytest.raises(ValueError, match="naive"):
        tracker.update("c", "initiated", at=datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="datetime or Unix seconds"):
        tracker.update("c", "initiated", at="yesterday")  # type: ignore[arg-type]
    assert "queued" == tracker.state("c")


def test_unknown_status_changes_nothing(tracker: CallTracker) -> None:
    tracker.update("c", "queued")
    with pytest.raises(UnknownStatus) as info:
        tracker.update("c", "on_hold")
    assert "c" == info.value.call_id
    assert "for call 'c'" in str(info.value)
    assert 1 == tracker.get("c").version


@pytest.mark.parametrize("bad", ["", None, 42])
def test_call_id_must_be_a_non_empty_string(tracker: CallTracker, bad: Any) -> None:
    with pytest.raises(ValueError, match="call_id"):
        tracker.update(bad, "queued")


def test_lenient_mode_reports_instead_of_raising() -> None:
    tracker = CallTracker(strict=False)
    tracker.update("c", "in_progress")
    seen: list[Outcome] = []
    tracker.on_rejected(seen.append)
    out = tracker.update("c", "cancelled", data={"why": "user hung up"})
    assert OutcomeKind.REJECTED == out.kind
    assert out.rejected
    assert isinstance(out.error, IllegalTransition)
    assert [out] == seen
    assert {"why": "user hung up"} == dict(seen[0].data)
    assert "in_progress" == tracker.state("c")


def test_strict_can_be_chosen_per_update() -> None:
    lenient = CallTracker(strict=False)
    lenient.update("c", "completed")
    with pytest.raises(IllegalTransition):
        lenient.update("c", "failed", strict=True)
    strict = CallTracker()
    strict.update("c", "completed")
    assert strict.update("c", "failed", strict=False).rejected


def test_event_types_keep_their_name_in_the_data(tracker: CallTracker) -> None:
    failed: list[Transition] = []
    tracker.on_failed(failed.append)
    tracker.update("a", "call.disallowed")
    tracker.update("b", "call.failed", data={"reason": "busy"})
    tracker.update("c", "failed", data={"event_type": "custom"})
    assert ["call.disallowed", "call.failed", "custom"] == [t.data["event_type"] for t in failed]
    assert "busy" == failed[1].data["reason"]


def test_data_is_copied_and_read_only(tracker: CallTracker) -> None:
    data = {"duration_seconds": 1}
    out = tracker.update("c", "completed", data=data)
    data["duration_seconds"] = 2
    t = out.transitions[0]
    assert 1 == t.data["duration_seconds"]
    with pytest.raises(TypeError):
        t.data["duration_seconds"] = 3  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.dest = "failed"  # type: ignore[misc]


def test_terminal_states_never_change() -> None:
    tracker = CallTracker(strict=False)
    tracker.update("c", "cancelled")
    for status in tracker.lifecycle.states:
        tracker.update("c", status)
    assert "cancelled" == tracker.state("c")
    assert 1 == tracker.get("c").version


def test_get_returns_a_snapshot_with_history(tracker: CallTracker) -> None:
    tracker.update("c", "queued", origin="poll")
    snap = tracker.get("c")
    tracker.update("c", "ringing", origin="webhook")
    assert 1 == len(snap.history)
    now = tracker.get("c")
    assert [
        (None, "queued", False),
        ("queued", "initiated", True),
        ("initiated", "ringing", False),
    ] == _history(tracker, "c")
    assert ["poll", "webhook", "webhook"] == [t.origin for t in now.history]
    assert 2 == now.version
    assert not now.terminal
    assert ["c"] == [r.call_id for r in tracker.calls()]


def test_unknown_calls(tracker: CallTracker) -> None:
    with pytest.raises(UnknownCall, match="'nope'"):
        tracker.state("nope")
    with pytest.raises(KeyError):
        tracker.get("nope")
    assert "nope" not in tracker


def test_wait_returns_once_the_call_ended(tracker: CallTracker) -> None:
    tracker.update("c", "ringing")

    def finish() -> None:
        tracker.update("c", "in_progress")
        tracker.update("c", "completed")

    timer = threading.Timer(0.05, finish)
    timer.start()
    try:
        final = tracker.wait("c", timeout=5)
    finally:
        timer.join()
    assert "completed" == final.state
    assert final.terminal
    assert "completed" == tracker.wait("c", timeout=0).state  # already over: no waiting


def test_wait_times_out_with_the_current_state(tracker: CallTracker) -> None:
    tracker.update("c", "ringing")
    with pytest.raises(WaitTimeout) as info:
        tracker.wait("c", timeout=0.01)
    assert ("c", "ringing") == (info.value.call_id, info.value.state)
    assert isinstance(info.value, TimeoutError)
    assert {} == tracker._waiters


def test_wait_for_a_call_not_seen_yet(tracker: CallTracker) -> None:
    timer = threading.Timer(0.05, tracker.update, args=("later", "failed"))
    timer.start()
    try:
        assert "failed" == tracker.wait("later", timeout=5).state
    finally:
        timer.join()


def test_wait_async() -> None:
    tracker = CallTracker()

    async def scenario() -> str:
        waiting = asyncio.ensure_future(tracker.wait_async("c", timeout=5))
        await asyncio.sleep(0.01)
        await tracker.aupdate("c", "queued")
        await tracker.aupdate("c", "cancelled")
        return (await waiting).state

    assert "cancelled" == asyncio.run(scenario())

    async def too_slow() -> None:
        await tracker.wait_async("other", timeout=0.01)

    with pytest.raises(WaitTimeout, match="never seen"):
        asyncio.run(too_slow())


def test_wait_waits_for_the_handlers_of_the_end(tracker: CallTracker) -> None:
    done = threading.Event()
    release = threading.Event()

    @tracker.on_completed
    def slow(event: Transition) -> None:
        release.wait(5)
        done.set()

    worker = threading.Thread(target=tracker.update, args=("c", "completed"))
    worker.start()
    try:
        with pytest.raises(WaitTimeout):
            tracker.wait("c", timeout=0.05)  # ended in the store, handler still running
        release.set()
        tracker.wait("c", timeout=5)
        assert done.is_set()
    finally:
        release.set()
        worker.join()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_eviction_leaves_a_tombstone_that_keeps_late_updates_ignored() -> None:
    clock = Clock()
    tracker = CallTracker(retention=60, clock=clock)
    tracker.update("old", "completed")
    tracker.update("live", "ringing")
    clock.now += 61
    tracker.update("fresh", "failed")  # updates run the sweep once retention/10 has passed
    old = tracker.get("old")
    assert old.evicted
    assert () == old.history
    assert "completed" == old.state
    assert OutcomeKind.STALE == tracker.update("old", "ringing").kind
    assert OutcomeKind.DUPLICATE == tracker.update("old", "completed").kind
    assert not tracker.get("live").evicted
    assert not tracker.get("fresh").evicted
    assert 0 == tracker.evict()
    clock.now += 61
    assert 1 == tracker.evict()  # "fresh"


def test_no_retention_keeps_everything() -> None:
    tracker = CallTracker()
    tracker.update("c", "completed")
    assert 0 == tracker.evict(now=10**12)
    assert not tracker.get("c").evicted
