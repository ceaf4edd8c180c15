from __future__ import annotations

import asyncio
import functools
import gc
import logging
from typing import Any

import blinker
import pytest

from callfsm import (
    AsyncHandlerError,
    CallTracker,
    HandlerError,
    HandlerFailure,
    Outcome,
    OutcomeKind,
    Transition,
)
from callfsm.testing import record


def test_on_state_decorators_and_connect(tracker: CallTracker) -> None:
    seen: list[str] = []

    @tracker.on_ringing
    def ringing(event: Transition) -> None:
        seen.append(f"ringing:{event.call_id}")

    @tracker.on("in-progress")  # aliases name the same signal
    def talking(event: Transition) -> None:
        seen.append(f"talking:{event.call_id}")

    tracker.connect("completed", lambda e: seen.append("done"))
    tracker.update("c", "ringing")
    tracker.update("c", "completed")
    assert ["ringing:c", "talking:c", "done"] == seen
    assert tracker.disconnect("ringing", ringing)
    assert not tracker.disconnect("ringing", ringing)
    tracker.update("d", "ringing")
    assert 3 == len(seen)


def test_handlers_run_in_the_order_they_were_connected(tracker: CallTracker) -> None:
    order: list[int] = []
    for i in range(40):  # plain blinker would call these in set order
        tracker.connect("ringing", functools.partial(lambda i, e: order.append(i), i))
    tracker.update("c", "ringing")
    assert list(range(40)) == order


def test_signals_of_one_transition_fire_state_then_transition_then_terminal(
    tracker: CallTracker,
) -> None:
    order: list[str] = []
    tracker.on_terminal(lambda e: order.append("terminal"))
    tracker.on_transition(lambda e: order.append("transition"))
    tracker.on_failed(lambda e: order.append("failed"))
    tracker.update("c", "failed")
    assert ["failed", "transition", "terminal"] == order


def test_local_handlers_are_held_strongly(tracker: CallTracker) -> None:
    seen: list[str] = []

    def subscribe() -> None:
        @tracker.on_completed
        def local(event: Transition) -> None:  # only the tracker refers to it
            seen.append(event.call_id)

        tracker.on_failed(lambda e: seen.append("lambda"))

    subscribe()
    gc.collect()
    tracker.update("a", "completed")
    tracker.update("b", "failed")
    assert ["a", "lambda"] == seen


def test_trackers_do_not_cross_talk() -> None:
    one, two = CallTracker(), CallTracker()
    seen: list[str] = []
    one.on_completed(lambda e: seen.append("one"))
    two.signal("completed").connect(lambda sender, **kw: seen.append("two"), weak=False)
    global_sig = blinker.signal("completed")
    global_sig.connect(lambda sender, **kw: seen.append("global"), weak=False)
    try:
        one.update("c", "completed")
        assert ["one"] == seen
        two.update("c", "completed")
        assert ["one", "two"] == seen
        assert one.signal("completed") is not two.signal("completed")
    finally:
        global_sig.receivers.clear()


def test_blinker_receivers_get_the_flask_convention(tracker: CallTracker) -> None:
    got: list[tuple[Any, dict[str, Any]]] = []

    def receiver(sender: Any, **kw: Any) -> None:
        got.append((sender, kw))

    sig = tracker.signal("completed")
    assert isinstance(sig, blinker.Signal)
    with sig.connected_to(receiver, sender=tracker):
        tracker.update("c", "completed")
    tracker.update("d", "completed")
    assert 1 == len(got)
    sender, kw = got[0]
    assert sender is tracker
    assert ["transition"] == list(kw)
    assert "c" == kw["transition"].call_id


def test_connect_via_and_payload_keywords(tracker: CallTracker) -> None:
    tracker.strict = False
    got: list[tuple[str, Any]] = []

    @tracker.signal("ignored").connect_via(tracker)
    def ignored(sender: Any, **kw: Any) -> None:
        got.append(("ignored", kw["outcome"]))

    @tracker.signal("rejected").connect_via(tracker)
    def rejected(sender: Any, **kw: Any) -> None:
        got.append(("rejected", kw["outcome"]))

    tracker.update("c", "in_progress")
    tracker.update("c", "in_progress")
    tracker.update("c", "cancelled")
    assert ["ignored", "rejected"] == [name for name, _ in got]
    assert OutcomeKind.DUPLICATE == got[0][1].kind
    assert OutcomeKind.REJECTED == got[1][1].kind


def test_on_transition_filters(tracker: CallTracker) -> None:
    hits: dict[str, list[str]] = {"answer": [], "ends": [], "from_early": [], "all": []}
    tracker.on_transition("ringing", "in_progress")(lambda e: hits["answer"].append(e.call_id))
    tracker.on_transition("*", ["completed", "failed"])(lambda e: hits["ends"].append(e.dest))
    tracker.on_transition(["queued", "initiated"])(lambda e: hits["from_early"].append(e.dest))
    tracker.on_transition()(lambda e: hits["all"].append(e.dest))
    tracker.update("c", "queued")  # first sighting: no source, only "*" matches
    tracker.update("c", "in_progress")
    tracker.update("c", "completed")
    assert ["c"] == hits["answer"]
    assert ["completed"] == hits["ends"]
    assert ["initiated", "ringing"] == hits["from_early"]
    assert ["queued", "initiated", "ringing", "in_progress", "completed"] == hits["all"]


def test_unknown_signal_and_decorator_names(tracker: CallTracker) -> None:
    with pytest.raises(KeyError, match="no signal 'voicemail'"):
        tracker.signal("voicemail")
    with pytest.raises(AttributeError, match="on_voicemail"):
        tracker.on_voicemail  # noqa: B018
    with pytest.raises(TypeError, match="not callable"):
        tracker.connect("ringing", "nope")  # type: ignore[arg-type]


def test_ignored_signal_for_duplicates_and_stale(tracker: CallTracker) -> None:
    got: list[Outcome] = []
    tracker.on_ignored(got.append)
    tracker.update("c", "in_progress")
    tracker.update("c", "in_progress")
    tracker.update("c", "ringing")
    assert [OutcomeKind.DUPLICATE, OutcomeKind.STALE] == [o.kind for o in got]
    assert all(o.ignored for o in got)


def test_muted_signals_fire_nothing(tracker: CallTracker) -> None:
    seen: list[str] = []
    tracker.on_completed(lambda e: seen.append("handler"))
    tracker.signal("completed").connect(lambda s, **kw: seen.append("raw"), weak=False)
    with tracker.signal("completed").muted():
        tracker.update("a", "completed")
    with tracker.muted():
        tracker.update("b", "completed")
    assert [] == seen
    assert "completed" == tracker.state("a")
    tracker.update("c", "completed")
    assert ["handler", "raw"] == seen


def test_a_failing_handler_is_reported_and_the_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = CallTracker()
    seen: list[str] = []
    failures: list[HandlerFailure] = []

    @tracker.on_completed
    def broken(event: Transition) -> None:
        raise RuntimeError("billing is down")

    tracker.on_completed(lambda e: seen.append("after"))
    tracker.signal("completed").connect(lambda s, **kw: 1 / 0, weak=False)
    tracker.on_handler_failed(failures.append)
    with caplog.at_level(logging.ERROR, logger="callfsm"):
        out = tracker.update("c", "completed")
    assert out.applied
    assert "completed" == tracker.state("c")
    assert ["after"] == seen
    assert [RuntimeError, ZeroDivisionError] == [type(f.error) for f in failures]
    assert broken is failures[0].handler
    assert "completed" == failures[0].signal
    assert out.transitions[0] is failures[0].payload
    assert "broken" in caplog.text
    assert "billing is down" in caplog.text


def test_a_failing_failure_handler_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    tracker = CallTracker()
    tracker.on_completed(lambda e: 1 / 0)
    tracker.on_handler_failed(lambda f: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="callfsm"):
        assert tracker.update("c", "completed").applied
    assert "while reporting a failure" in caplog.text


def test_raise_mode_raises_after_every_handler_ran(tracker: CallTracker) -> None:
    seen: list[str] = []
    tracker.on_ringing(lambda e: 1 / 0)
    tracker.on_ringing(lambda e: seen.append("second"))
    tracker.on_in_progress(lambda e: seen.append("in_progress"))
    tracker.update("c", "initiated")
    with pytest.raises(HandlerError) as info:
        tracker.update("c", "in_progress")
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert 1 == len(info.value.failures)
    assert "the update was stored" in str(info.value)
    assert ["second", "in_progress"] == seen
    assert "in_progress" == tracker.state("c")


def test_handlers_that_update_the_same_call_are_delivered_in_order(
    tracker: CallTracker,
) -> None:
    order: list[str] = []

    @tracker.on_ringing
    def answer(event: Transition) -> None:
        tracker.update(event.call_id, "in_progress")  # queued behind this delivery
        order.append("ringing handler done")

    tracker.on_in_progress(lambda e: order.append("in_progress"))
    tracker.update("c", "ringing")
    assert ["ringing handler done", "in_progress"] == order
    assert "in_progress" == tracker.state("c")


def test_coroutine_handlers_run_through_aupdate_in_order() -> None:
    tracker = CallTracker(raise_handler_errors=True)
    order: list[str] = []

    @tracker.on_completed
    async def first(event: Transition) -> None:
        await asyncio.sleep(0.01)
        order.append("async first")

    tracker.on_completed(lambda e: order.append("sync second"))

    async def third(sender: Any, **kw: Any) -> None:
        order.append("raw async")

    tracker.signal("completed").connect(third, weak=False)
    asyncio.run(tracker.aupdate("c", "completed"))
    assert ["async first", "sync second", "raw async"] == order


def test_async_handler_errors_are_isolated_too() -> None:
    tracker = CallTracker()
    seen: list[str] = []

    @tracker.on_failed
    async def broken(event: Transition) -> None:
        raise RuntimeError("boom")

    tracker.on_failed(lambda e: seen.append("ran"))
    failures: list[HandlerFailure] = []
    tracker.on_handler_failed(failures.append)
    out = asyncio.run(tracker.aupdate("c", "failed"))
    assert out.applied
    assert ["ran"] == seen
    assert [broken] == [f.handler for f in failures]
    tracker.raise_handler_errors = True
    with pytest.raises(HandlerError):
        asyncio.run(tracker.aupdate("d", "failed"))
    assert "failed" == tracker.state("d")


def test_aupdate_delivers_ignored_outcomes() -> None:
    tracker = CallTracker()
    got: list[Outcome] = []

    @tracker.on_ignored
    async def note(outcome: Outcome) -> None:
        got.append(outcome)

    async def go() -> None:
        await tracker.aupdate("c", "ringing")
        await tracker.aupdate("c", "ringing")

    asyncio.run(go())
    assert [OutcomeKind.DUPLICATE] == [o.kind for o in got]


def test_sync_update_with_a_coroutine_handler_changes_nothing(tracker: CallTracker) -> None:
    @tracker.on_completed
    async def notify(event: Transition) -> None: ...

    with pytest.raises(AsyncHandlerError, match="notify") as info:
        tracker.update("c", "ringing")
    assert "aupdate" in str(info.value)
    assert "c" not in tracker
    tracker.disconnect("completed", notify)
    assert tracker.update("c", "ringing").applied


def test_sync_update_with_a_raw_coroutine_receiver_changes_nothing(tracker: CallTracker) -> None:
    async def notify(sender: Any, **kw: Any) -> None: ...

    sig = tracker.signal("completed")
    sig.connect(notify)
    with pytest.raises(AsyncHandlerError):
        tracker.update("c", "ringing")
    assert "c" not in tracker
    sig.disconnect(notify)
    assert tracker.update("c", "ringing").applied


def test_a_sync_callable_returning_an_awaitable_is_a_failure(tracker: CallTracker) -> None:
    async def later() -> None: ...

    tracker.on_completed(lambda e: later())
    with pytest.raises(HandlerError, match="awaitable"):
        tracker.update("c", "completed")


def test_recorder_sees_every_signal(tracker: CallTracker) -> None:
    with record(tracker) as rec:
        tracker.update("c", "initiated")
        tracker.update("c", "initiated")
        tracker.update("c", "completed")
    assert 1 == rec.count("ignored")
    assert 1 == rec.count("terminal")
    assert 4 == rec.count("transition", call_id="c")
