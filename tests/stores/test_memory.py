from __future__ import annotations

from callfsm import MemoryStore, Store, Transition


def _t(call_id: str, source: str | None, dest: str) -> tuple[Transition, ...]:
    return (Transition(call_id, source, dest, 1.0, "manual", False, {}),)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_is_a_store() -> None:
    assert isinstance(MemoryStore(), Store)


def test_commit_is_compare_and_set() -> None:
    store = MemoryStore()
    assert store.commit("c", 0, "queued", _t("c", None, "queued"), None, None, None)
    assert not store.commit("c", 0, "ringing", _t("c", None, "ringing"), None, None, "evt")
    # the refused write left no trace: state, history and event id all unchanged
    assert ("queued", 1, None, None) == store.head("c")
    record = store.load("c")
    assert record is not None
    assert ["queued"] == [t.dest for t in record.history]
    assert not store.seen_event("evt")
    assert store.commit("c", 1, "initiated", _t("c", "queued", "initiated"), 2.0, None, "evt")
    assert ("initiated", 2, 2.0, None) == store.head("c")
    assert store.seen_event("evt")


def test_unknown_calls_have_no_head() -> None:
    store = MemoryStore()
    assert store.head("nope") is None
    assert store.load("nope") is None
    assert [] == list(store.call_ids())


def test_event_ids_expire() -> None:
    clock = Clock()
    store = MemoryStore(event_ttl=10, clock=clock)
    store.commit("c", 0, "queued", _t("c", None, "queued"), None, None, "evt_1")
    clock.now = 9.9
    assert store.seen_event("evt_1")
    clock.now = 10.0
    assert not store.seen_event("evt_1")


def test_expired_event_ids_are_purged_as_the_table_grows() -> None:
    clock = Clock()
    store = MemoryStore(event_ttl=1, clock=clock)
    for i in range(1500):
        store.commit(f"c{i}", 0, "queued", _t(f"c{i}", None, "queued"), None, None, f"e{i}")
        clock.now += 0.01
    assert len(store._events) < 1500  # the first ones expired and were dropped


def test_evict_keeps_the_head_and_drops_the_history() -> None:
    store = MemoryStore()
    store.commit("a", 0, "completed", _t("a", None, "completed"), None, 5.0, None)
    store.commit("b", 0, "completed", _t("b", None, "completed"), None, 50.0, None)
    store.commit("live", 0, "ringing", _t("live", None, "ringing"), None, None, None)
    assert 1 == store.evict(10.0)
    a = store.load("a")
    assert a is not None
    assert a.evicted
    assert "completed" == a.state
    assert () == a.history
    b = store.load("b")
    assert b is not None
    assert not b.evicted
    assert 0 == store.evict(10.0)
    assert 1 == store.evict(100.0)
    assert ["a", "b", "live"] == sorted(store.call_ids())
    assert 3 == len(store)
