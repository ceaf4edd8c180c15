"""Updates per second and p99 update latency through each store, 1 and 4 processes.

Run: ``python bench/bench_stores.py`` (``--calls`` per process). Each process
drives full lifecycles (5 updates a call, one handler on every transition) for
calls of its own, as workers behind a load balancer mostly do; the SQLite
processes share one file, the Redis ones one server (a throwaway
``redis-server`` on loopback, or ``--redis-url``). The memory store cannot be
shared, so its 4-process row is 4 independent stores: the ceiling.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

from callfsm import CallTracker, MemoryStore, RedisStore, SQLiteStore, Store

FLOW = ("queued", "initiated", "ringing", "in_progress", "completed")


def _store(kind: str, where: str) -> Store:
    if kind == "sqlite":
        return SQLiteStore(where)
    if kind == "redis":
        return RedisStore(where, prefix="bench:")
    return MemoryStore()


def _worker(kind: str, where: str, worker: int, calls: int, out: Any) -> None:
    tracker = CallTracker(store=_store(kind, where))
    tracker.on_transition(lambda t: None)
    ids = [f"w{worker}-call{i}" for i in range(calls)]
    latencies = []
    clock = time.perf_counter
    for status in FLOW:
        for call_id in ids:
            t0 = clock()
            tracker.update(call_id, status)
            latencies.append(clock() - t0)
    out.put(latencies)


def _run(kind: str, where: str, processes: int, calls: int) -> tuple[float, float, float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(kind, where, w, calls, queue)) for w in range(processes)
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies += queue.get()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start  # includes process start-up: a lower bound
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e6
    p99 = latencies[int(len(latencies) * 0.99)] * 1e6
    busy = sum(latencies)
    return len(latencies) / busy * processes, p50, p99, len(latencies) / elapsed


def _redis(url: str | None) -> tuple[str, subprocess.Popen[bytes] | None]:
    if url:
        return url, None
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("no redis-server: install it or pass --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2_000, help="calls per process")
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args(argv)
    url, server = _redis(args.redis_url)
    tmp = tempfile.mkdtemp()
    try:
        print(f"{args.calls:,} calls x 5 updates per process; one handler per transition\n")
        print(
            f"{'store':<8} {'procs':>5} {'updates/s':>11} {'wall updates/s':>15} "
            f"{'p50 µs':>8} {'p99 µs':>8}"
        )
        for kind in ("memory", "sqlite", "redis"):
            for processes in (1, 4):
                where = {
                    "sqlite": os.path.join(tmp, f"bench{processes}.db"),
                    "redis": url,
                    "memory": "",
                }[kind]
                if kind == "redis":
                    RedisStore(url, prefix="bench:").clear()
                rate, p50, p99, wall = _run(kind, where, processes, args.calls)
                print(
                    f"{kind:<8} {processes:>5} {rate:>11,.0f} {wall:>15,.0f} "
                    f"{p50:>8.0f} {p99:>8.0f}"
                )
        print(
            "\nupdates/s: updates over the time spent inside update(), summed over the "
            "processes;\nwall updates/s: over the whole run, process start-up included."
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if server is not None:
            server.terminate()
            server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
