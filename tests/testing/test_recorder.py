from __future__ import annotations

import pytest

from callfsm import CallTracker, HandlerError
from callfsm.testing import raise_handler_errors, record, simulate


def test_record_captures_and_then_lets_go() -> None:
    tracker = CallTracker()
    with record(tracker) as rec:
        simulate(tracker, "c", "answered")
    assert 5 == len(rec.transitions)
    tracker.update("d", "queued")
    assert 5 == len(rec.transitions)  # disconnected on exit
    rec.clear()
    assert [] == rec.events


def test_assertions_explain_what_happened() -> None:
    tracker = CallTracker()
    with record(tracker) as rec:
        simulate(tracker, "c", "busy")
    rec.assert_path("c", ["queued", "initiated", "failed"])
    with pytest.raises(AssertionError, match="went queued -> initiated -> failed"):
        rec.assert_path("c", ["queued", "failed"])
    with pytest.raises(AssertionError, match="never entered 'completed'"):
        rec.assert_entered("completed", "c")
    with pytest.raises(AssertionError, match="was not inferred"):
        rec.assert_entered("initiated", "c", inferred=True)
    with pytest.raises(AssertionError, match="unexpectedly entered 'failed'"):
        rec.assert_not_entered("failed")
    assert "initiated" == rec.assert_entered("initiated", inferred=False).dest


def test_assert_no_repeats_catches_a_repeat() -> None:
    tracker = CallTracker()
    with record(tracker) as rec:
        tracker.update("c", "queued")
    rec.events.append(rec.events[0])
    rec.events.append(next(e for e in rec.events if e.signal == "transition"))
    with pytest.raises(AssertionError, match="signalled twice"):
        rec.assert_no_repeats()


def test_outcomes_lists_ignored_and_rejected() -> None:
    tracker = CallTracker(strict=False)
    with record(tracker) as rec:
        simulate(tracker, "c", ["in_progress", "ringing", "cancelled"])
    assert ["stale", "rejected"] == [str(o.kind) for o in rec.outcomes]


def test_raise_handler_errors_sets_at_once_and_restores_as_a_context_manager() -> None:
    tracker = CallTracker()
    tracker.on_completed(lambda e: 1 / 0)
    raise_handler_errors(tracker)
    assert tracker.raise_handler_errors
    raise_handler_errors(tracker, False)
    assert tracker.update("a", "completed").applied
    with raise_handler_errors(tracker), pytest.raises(HandlerError):
        tracker.update("b", "completed")
    assert not tracker.raise_handler_errors
