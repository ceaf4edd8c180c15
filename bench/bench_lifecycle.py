"""Throughput and memory of the update path, side by side with its peers.

Run: ``python bench/bench_lifecycle.py`` (``--calls`` and ``--rounds`` to change
the size). Every contender drives the full HuskyVoice lifecycle (queued,
initiated, ringing, in_progress, completed) for every call, the calls
interleaved step by step as real traffic is, with one handler on every state
signal. Rounds alternate between the contenders; the table quotes medians.

Contenders:

- ``callfsm``: ``CallTracker.update`` with a handler on each ``on_<state>``.
- ``transitions, models``: one shared ``Machine``, each call added as a model,
  triggers, one ``after_state_change`` callback. ``add_model`` is quadratic, so
  this one runs on ``--model-calls`` calls; its time excludes ``add_model``.
- ``transitions, events``: the same machine, triggered through
  ``machine.events[name].trigger(call)`` on unregistered call objects.
- ``dict + blinker``: a hand-written floor: a dict of states, a table of legal
  moves and one blinker signal per state.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import blinker
from transitions import Machine

from callfsm import HUSKYVOICE, CallTracker

FLOW = ("queued", "initiated", "ringing", "in_progress", "completed")
TRIGGERS = ("initiate", "ring", "answer", "complete")


def _ids(n: int) -> list[str]:
    return [f"call_{i:07d}" for i in range(n)]


def run_callfsm(n: int) -> float:
    tracker = CallTracker()
    seen = [0]

    def handler(event: Any) -> None:
        seen[0] += 1

    for state in HUSKYVOICE.states:
        tracker.connect(state, handler)
    ids = _ids(n)
    update = tracker.update
    start = time.perf_counter()
    for status in FLOW:
        for call_id in ids:
            update(call_id, status)
    elapsed = time.perf_counter() - start
    assert seen[0] == n * len(FLOW), seen
    return elapsed


def _machine(callback: Callable[..., None]) -> Machine:
    return Machine(
        model=None,
        states=list(HUSKYVOICE.states),
        transitions=[
            ["initiate", "queued", "initiated"],
            ["ring", "initiated", "ringing"],
            ["answer", "ringing", "in_progress"],
            ["complete", "in_progress", "completed"],
        ],
        initial="queued",
        auto_transitions=False,
        after_state_change=callback,
        send_event=True,
    )


class _Call:
    # no __slots__: transitions attaches a trigger method per event to each model
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.state = "queued"


def run_transitions_models(n: int) -> float:
    seen = [0]

    def callback(event: Any) -> None:
        seen[0] += 1

    machine = _machine(callback)
    calls = [_Call(i) for i in _ids(n)]
    machine.add_model(calls)  # not timed: quadratic in the number of models
    start = time.perf_counter()
    for trigger in TRIGGERS:
        for call in calls:
            getattr(call, trigger)()
    elapsed = time.perf_counter() - start
    assert seen[0] == n * len(TRIGGERS), seen
    machine.remove_model(calls)
    return elapsed


def run_transitions_events(n: int) -> float:
    seen = [0]

    def callback(event: Any) -> None:
        seen[0] += 1

    machine = _machine(callback)
    calls = [_Call(i) for i in _ids(n)]
    start = time.perf_counter()
    for trigger in TRIGGERS:
        event = machine.events[trigger]
        for call in calls:
            event.trigger(call)
    elapsed = time.perf_counter() - start
    assert seen[0] == n * len(TRIGGERS), seen
    return elapsed


def run_floor(n: int) -> float:
    ns = blinker.Namespace()
    signals = {s: ns.signal(s) for s in HUSKYVOICE.states}
    allowed = {s: frozenset(HUSKYVOICE.allowed(s)) for s in HUSKYVOICE.states}
    states: dict[str, str] = {}
    seen = [0]

    def receiver(sender: Any, **kw: Any) -> None:
        seen[0] += 1

    for sig in signals.values():
        sig.connect(receiver)
    sender = object()

    def update(call_id: str, status: str) -> None:
        current = states.get(call_id)
        if current is None or status in allowed[current]:
            states[call_id] = status
            signals[status].send(sender, transition=(call_id, current, status))

    ids = _ids(n)
    start = time.perf_counter()
    for status in FLOW:
        for call_id in ids:
            update(call_id, status)
    elapsed = time.perf_counter() - start
    assert seen[0] == n * len(FLOW), seen
    return elapsed


def memory_per_call(n: int) -> tuple[float, float]:
    """Bytes per live call three transitions in: callfsm, then transitions models."""
    ids = _ids(n)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracker = CallTracker()
    for status in FLOW[:4]:
        for call_id in ids:
            tracker.update(call_id, status)
    ours = (tracemalloc.get_traced_memory()[0] - base) / n
    assert len(tracker.get(ids[0]).history) == 4
    del tracker
    gc.collect()
    m = min(n, 10_000)
    base = tracemalloc.get_traced_memory()[0]
    machine = _machine(lambda event: None)
    calls = [_Call(i) for i in ids[:m]]
    machine.add_model(calls)
    for trigger in TRIGGERS[:3]:
        for call in calls:
            getattr(call, trigger)()
    theirs = (tracemalloc.get_traced_memory()[0] - base) / m
    tracemalloc.stop()
    return ours, theirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--model-calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    contenders: list[tuple[str, Callable[[int], float], int]] = [
        ("callfsm", run_callfsm, args.calls),
        ("transitions, models", run_transitions_models, args.model_calls),
        ("transitions, events", run_transitions_events, args.calls),
        ("dict + blinker floor", run_floor, args.calls),
    ]
    per_call: dict[str, list[float]] = {name: [] for name, _, _ in contenders}
    for _ in range(args.rounds):
        for name, fn, n in contenders:
            gc.collect()
            per_call[name].append(fn(n) / n * 1e6)
    med = {name: statistics.median(v) for name, v in per_call.items()}
    ours = med["callfsm"]
    print(
        f"Python {sys.version.split()[0]}, {args.rounds} rounds, medians; "
        f"one lifecycle = {len(FLOW)} updates per call\n"
    )
    print(f"{'contender':<22} {'calls':>8} {'µs/call':>9} {'calls/s':>10} {'callfsm speed-up':>17}")
    for name, _, n in contenders:
        print(
            f"{name:<22} {n:>8} {med[name]:>9.1f} {1e6 / med[name]:>10,.0f} "
            f"{med[name] / ours:>16.2f}x"
        )
    ours_mem, theirs_mem = memory_per_call(args.calls)
    print(
        f"\nmemory per live call, 3 transitions in (history included): "
        f"callfsm {ours_mem:,.0f} B at {args.calls:,} calls; "
        f"transitions model {theirs_mem:,.0f} B at {min(args.calls, 10_000):,} models"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
