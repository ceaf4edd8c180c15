"""One behaviour suite, every store: memory, SQLite, Redis."""

from __future__ import annotations

import pytest

from callfsm import CallTracker, OutcomeKind, Store, Transition
from callfsm.testing import paths, record, scramble, simulate

from .conftest import StoreFactory


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _t(call_id: str, source: str | None, dest: str, **data: object) -> tuple[Transition, ...]:
    return (Transition(call_id, source, dest, 1.5, "manual", False, data),)


def test_it_is_a_store(make_store: StoreFactory) -> None:
    assert isinstance(make_store(), Store)


def test_commit_is_compare_and_set_and_a_refusal_leaves_no_trace(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.commit("c", 0, "queued", _t("c", None, "queued"), None, None, None)
    assert not store.commit("c", 0, "ringing", _t("c", None, "ringing"), 2.0, None, "evt")
    assert ("queued", 1, None, None) == store.head("c")
    assert not store.seen_event("evt")
    record_ = store.load("c")
    assert record_ is not None
    assert ["queued"] == [t.dest for t in record_.history]
    assert store.commit("c", 1, "completed", _t("c", "queued", "completed", n=1), 2.0, 9.0, "evt")
    assert ("completed", 2, 2.0, 9.0) == store.head("c")
    assert store.seen_event("evt")
    loaded = store.load("c")
    assert loaded is not None
    assert loaded.terminal
    assert {"n": 1} == dict(loaded.history[-1].data)
    assert ["c"] == list(store.call_ids())


def test_a_recorded_event_id_refuses_the_commit(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.commit("a", 0, "queued", _t("a", None, "queued"), None, None, "evt_1")
    assert not store.commit("b", 0, "queued", _t("b", None, "queued"), None, None, "evt_1")
    assert store.head("b") is None


def test_event_ids_expire(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(event_ttl=10, clock=clock)
    store.commit("c", 0, "queued", _t("c", None, "queued"), None, None, "evt_1")
    assert store.seen_event("evt_1")
    if getattr(make_store, "kind", "") == "redis":
        return  # Redis expires keys by its own clock; the TTL is set on the key
    clock.now += 10
    assert not store.seen_event("evt_1")


def test_unknown_calls(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.head("nope") is None
    assert store.load("nope") is None


def test_evict_keeps_a_tombstone(make_store: StoreFactory) -> None:
    tracker = CallTracker(store=make_store())
    tracker.update("old", "completed", at=5.0)
    tracker.update("new", "failed", at=50.0)
    tracker.update("live", "ringing")
    assert 1 == tracker.store.evict(10.0)
    old = tracker.get("old")
    assert old.evicted
    assert () == old.history
    assert "completed" == old.state
    assert OutcomeKind.STALE == tracker.update("old", "ringing").kind
    assert not tracker.get("new").evicted
    assert not tracker.get("live").evicted


def test_the_decision_rules_hold_on_every_store(make_store: StoreFactory) -> None:
    tracker = CallTracker(store=make_store(), raise_handler_errors=True)
    with record(tracker) as rec:
        tracker.update("c", "initiated", event_id="e1")
        tracker.update("c", "in_progress", data={"x": 1})
        assert OutcomeKind.STALE == tracker.update("c", "ringing").kind
        assert OutcomeKind.DUPLICATE == tracker.update("c", "initiated", event_id="e1").kind
        tracker.update("c", "completed", data={"duration_seconds": 3})
        assert OutcomeKind.DUPLICATE == tracker.update("c", "completed").kind
    rec.assert_path("c", ["initiated", "ringing", "in_progress", "completed"])
    assert ("ringing",) == tracker.get("c").inferred
    assert 3 == tracker.get("c").history[-1].data["duration_seconds"]


@pytest.mark.parametrize("seed", range(3))
def test_scrambled_paths_end_where_they_should(make_store: StoreFactory, seed: int) -> None:
    tracker = CallTracker(store=make_store(), raise_handler_errors=True)
    with record(tracker) as rec:
        for i, path in enumerate(paths()):
            simulate(tracker, f"c{i}", scramble(path, seed))
    rec.assert_no_repeats()
    assert [p[-1] for p in paths()] == [tracker.state(f"c{i}") for i in range(len(paths()))]


def test_state_outlives_the_tracker_on_durable_stores(make_store: StoreFactory) -> None:
    first = CallTracker(store=make_store())
    first.update("c", "ringing", event_id="e1")
    second = CallTracker(store=make_store())
    assert "ringing" == second.state("c")
    assert OutcomeKind.DUPLICATE == second.update("c", "ringing", event_id="e1").kind


def test_durable_stores_keep_data_as_json(make_store: StoreFactory) -> None:
    store = make_store()
    tracker = CallTracker(store=store)
    marker = object()
    if store.durable:  # the data must survive the process: JSON or a clear error
        with pytest.raises(TypeError, match="JSON"):
            tracker.update("c", "completed", data={"when": marker})
        assert "c" not in tracker
    else:  # in memory, the data is kept as it is
        tracker.update("c", "completed", data={"when": marker})
        assert marker is tracker.get("c").history[0].data["when"]


def test_delivery_marks_and_recover(make_store: StoreFactory) -> None:
    store = make_store()
    if not store.durable:
        assert 0 == CallTracker(store=store).recover(older_than=0)
        return
    tracker = CallTracker(store=store)
    tracker.update("c", "ringing")
    assert [] == list(store.undelivered(10**12))  # delivered: the mark was cleared
    # a commit whose process died before delivering: written, still marked
    assert store.commit("c", 1, "completed", _t("c", "ringing", "completed"), None, 5.0, None)
    (pending,) = list(store.undelivered(10**12))
    assert ("c", 2) == pending[:2]
    later = CallTracker(store=make_store())
    seen: list[Transition] = []
    later.on_completed(seen.append)
    assert 0 == later.recover(older_than=10**9)  # too recent: maybe still being delivered
    assert 1 == later.recover(older_than=0)
    assert ["c"] == [t.call_id for t in seen]
    assert [] == list(store.undelivered(10**12))
    assert 0 == later.recover(older_than=0)
