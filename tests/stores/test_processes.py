"""Exactly-once across real processes, and nothing lost when one is killed."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from callfsm import CallTracker, RedisStore, Transition
from callfsm.testing import paths

from . import _worker

CALLS = 500
WORKERS = 4


def _flows(seed: int) -> dict[str, tuple[str, ...]]:
    rng = random.Random(seed)
    return {f"call_{i:04d}": rng.choice(paths()) for i in range(CALLS)}


def _updates(flows: dict[str, tuple[str, ...]], seed: int) -> list[tuple[str, str, Any]]:
    """Every call's flow, each update once or twice, shuffled; some carry event ids."""
    rng = random.Random(seed)
    out = []
    for call_id, path in flows.items():
        for i, state in enumerate(path):
            event_id = f"{call_id}:{i}" if rng.random() < 0.5 else None
            out += [(call_id, state, event_id)] * rng.choice((1, 2))
    rng.shuffle(out)
    return out


@pytest.fixture(params=["sqlite", "redis"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield ("sqlite", str(tmp_path / "shared.db"), "")
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"proc-{uuid.uuid4().hex[:8]}:"
    yield ("redis", url, prefix)
    RedisStore(url, prefix=prefix).clear()


def _start(target: Any, *args: Any) -> multiprocessing.process.BaseProcess:
    proc = multiprocessing.get_context("spawn").Process(target=target, args=args)
    proc.start()
    return proc


def _delivered(logs: list[Path]) -> Counter[tuple[str, str, str]]:
    seen: Counter[tuple[str, str, str]] = Counter()
    for log in logs:
        if log.exists():
            for line in log.read_text().splitlines():
                call_id, source, dest = line.split()
                seen[call_id, source, dest] += 1
    return seen


def test_four_processes_deliver_every_transition_exactly_once(spec: Any, tmp_path: Path) -> None:
    flows = _flows(1)
    logs = [tmp_path / f"worker{i}.log" for i in range(WORKERS)]
    procs = [
        _start(_worker.run, spec, _updates(flows, 100 + i), str(logs[i])) for i in range(WORKERS)
    ]
    for p in procs:
        p.join(timeout=300)
        assert 0 == p.exitcode
    store = _worker.open_store(spec)
    delivered = _delivered(logs)
    assert [] == [key for key, n in delivered.items() if n != 1], "delivered more than once"
    history: set[tuple[str, str, str]] = set()
    for call_id, path in flows.items():
        record = store.load(call_id)
        assert record is not None
        assert path[-1] == record.state, call_id
        history |= {(call_id, str(t.source), t.dest) for t in record.history}
    assert history == set(delivered)  # every stored transition reached a handler
    assert [] == list(store.undelivered(time.time() + 1))
    assert len({p.pid for p in procs}) == WORKERS


def test_a_killed_worker_loses_nothing(spec: Any, tmp_path: Path) -> None:
    flows = {
        "victim": ("queued", "initiated", "ringing", "in_progress", "completed"),
        **{f"other_{i}": ("queued", "initiated", "failed") for i in range(20)},
    }
    updates = [(c, s, None) for c, path in flows.items() for s in path]
    log, marker = tmp_path / "killed.log", tmp_path / "stalled"
    proc = _start(_worker.run, spec, updates, str(log), ("victim", "in_progress"), str(marker))
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline, "the worker never reached the stall"
        assert proc.exitcode is None
        time.sleep(0.02)
    os.kill(proc.pid or 0, signal.SIGKILL)  # between the commit and its handlers
    proc.join(timeout=30)
    assert -signal.SIGKILL == proc.exitcode
    before = _delivered([log])
    assert ("victim", "ringing", "in_progress") not in before

    store = _worker.open_store(spec)
    assert "in_progress" == store.head("victim")[0]  # type: ignore[index]
    survivor = CallTracker(store=store)
    recovered: list[Transition] = []
    survivor.on_transition(recovered.append)
    assert survivor.recover(older_than=0) >= 1
    assert ("victim", "ringing", "in_progress") in {
        (t.call_id, t.source, t.dest) for t in recovered
    }
    # nothing lost: every stored transition was delivered by the worker or by recover()
    delivered = set(before) | {(t.call_id, str(t.source), t.dest) for t in recovered}
    for call_id in ("victim",):
        record = store.load(call_id)
        assert record is not None
        assert {(call_id, str(t.source), t.dest) for t in record.history} <= delivered
    # and the call goes on from where it was
    survivor.update("victim", "completed")
    assert "completed" == survivor.state("victim")
