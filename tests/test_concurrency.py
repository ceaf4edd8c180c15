from __future__ import annotations

import itertools
import random
import threading
from collections import defaultdict

import pytest

from callfsm import CallTracker, MemoryStore, OutcomeKind, Transition
from callfsm._stores import Head

FLOW = ["queued", "initiated", "ringing", "in_progress", "completed"]


def test_many_threads_on_the_same_calls_signal_each_transition_once_in_order() -> None:
    tracker = CallTracker(raise_handler_errors=True)
    seen: dict[str, list[Transition]] = defaultdict(list)
    lock = threading.Lock()

    @tracker.on_transition
    def note(t: Transition) -> None:
        with lock:
            seen[t.call_id].append(t)

    calls = [f"c{i}" for i in range(150)]
    start = threading.Barrier(6)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        todo = [(c, s) for c in calls for s in FLOW]
        rng.shuffle(todo)
        start.wait()
        for call_id, status in todo:
            tracker.update(call_id, status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for call_id in calls:
        assert "completed" == tracker.state(call_id)
        got = seen[call_id]
        pairs = [(t.source, t.dest) for t in got]
        assert len(set(pairs)) == len(pairs), f"{call_id}: a transition was signalled twice"
        # delivered in lifecycle order: each starts where the previous one ended
        for before, after in itertools.pairwise(got):
            assert before.dest == after.source
        assert [t.dest for t in tracker.get(call_id).history] == [t.dest for t in got]


class RacingStore(MemoryStore):
    """Lets 'another process' write just before this tracker's first commit."""

    def __init__(self, rival: list[tuple[str, tuple[Transition, ...]]]) -> None:
        super().__init__()
        self.rival = rival
        self.attempts = 0

    def commit(
        self,
        call_id: str,
        expected_version: int,
        state: str,
        transitions: tuple[Transition, ...],
        last_at: float | None,
        ended_at: float | None,
        event_id: str | None,
    ) -> bool:
        self.attempts += 1
        if self.rival:
            rival_state, rival_transitions = self.rival.pop(0)
            assert super().commit(
                call_id, expected_version, rival_state, rival_transitions, None, None, None
            )
            return super().commit(
                call_id, expected_version, state, transitions, last_at, ended_at, event_id
            )  # the version moved on: refused
        return super().commit(
            call_id, expected_version, state, transitions, last_at, ended_at, event_id
        )


def _rival_move(call_id: str, source: str, dest: str) -> tuple[str, tuple[Transition, ...]]:
    t = Transition(call_id, source, dest, 0.0, "poll", False, {})
    return dest, (t,)


def test_the_loser_of_a_compare_and_set_decides_again() -> None:
    store = RacingStore([])
    tracker = CallTracker(store=store)
    tracker.update("c", "initiated")
    # another process moves the call to ringing while this one applies ringing too
    store.rival.append(_rival_move("c", "initiated", "ringing"))
    fired: list[Transition] = []
    tracker.on_ringing(fired.append)
    out = tracker.update("c", "ringing")
    assert OutcomeKind.DUPLICATE == out.kind
    assert [] == fired  # only the winner signals
    assert 2 == store.attempts  # the first update, then the one that lost; no third write


def test_the_loser_applies_what_is_still_new() -> None:
    store = RacingStore([])
    tracker = CallTracker(store=store)
    tracker.update("c", "initiated")
    store.rival.append(_rival_move("c", "initiated", "ringing"))
    out = tracker.update("c", "in_progress")
    assert OutcomeKind.APPLIED == out.kind
    # re-decided from ringing: one step, nothing inferred twice
    assert [("ringing", "in_progress")] == [(t.source, t.dest) for t in out.transitions]
    assert ["initiated", "ringing", "in_progress"] == [t.dest for t in tracker.get("c").history]


def test_heads_are_plain_tuples() -> None:
    store = MemoryStore()
    tracker = CallTracker(store=store)
    tracker.update("c", "ringing", at=5.0)
    head: Head | None = store.head("c")
    assert head is not None
    assert ("ringing", 1, 5.0, None) == head


@pytest.mark.parametrize("threads", [2, 8])
def test_concurrent_first_sightings_create_one_call(threads: int) -> None:
    tracker = CallTracker()
    fired: list[Transition] = []
    lock = threading.Lock()

    def note(t: Transition) -> None:
        with lock:
            fired.append(t)

    tracker.on_ringing(note)
    barrier = threading.Barrier(threads)

    def go() -> None:
        barrier.wait()
        tracker.update("c", "ringing")

    workers = [threading.Thread(target=go) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert 1 == len(fired)
    assert 1 == tracker.get("c").version
