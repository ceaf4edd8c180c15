"""A worker process for the multi-process tests: feeds updates, logs deliveries."""

from __future__ import annotations

import os
import time
from typing import Any

from callfsm import CallTracker, RedisStore, SQLiteStore, Store, Transition


def open_store(spec: tuple[str, str, str]) -> Store:
    kind, where, prefix = spec
    if kind == "sqlite":
        return SQLiteStore(where)
    return RedisStore(where, prefix=prefix)


def run(
    spec: tuple[str, str, str],
    updates: list[tuple[str, str, Any]],
    log: str,
    stall_on: tuple[str, str] | None = None,
    marker: str | None = None,
) -> None:
    """Feed ``updates``; append one line per delivered transition to ``log``.

    With ``stall_on=(call_id, dest)``, the handler of that transition writes
    ``marker`` and then hangs, so that the test can kill the process mid-delivery.
    """
    tracker = CallTracker(store=open_store(spec), strict=False)
    with open(log, "a", buffering=1) as out:  # line-buffered: a killed process loses no line

        @tracker.on_transition
        def note(t: Transition) -> None:
            if stall_on is not None and (t.call_id, t.dest) == stall_on:
                assert marker is not None
                with open(marker, "w") as m:
                    m.write(str(os.getpid()))
                time.sleep(600)
            out.write(f"{t.call_id} {t.source} {t.dest}\n")

        for call_id, status, event_id in updates:
            tracker.update(call_id, status, origin="worker", event_id=event_id)
