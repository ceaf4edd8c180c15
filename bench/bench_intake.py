"""Intake throughput and polling efficiency.

Run: ``python bench/bench_intake.py`` (``--quick`` for a smaller run). Three parts:

1. Verified webhooks per second through ``WebhookReceiver.handle()`` (HMAC,
   JSON, update) on one core, beside the cost of the HMAC and the JSON alone.
2. The same over HTTP: the ASGI app under uvicorn on 127.0.0.1, driven at a
   fixed concurrency by httpx from this process; requests/s and p50/p99.
3. Polling 1,000 simulated calls with realistic durations, in virtual time:
   the adaptive schedule (``PollPolicy`` defaults) against fixed-interval
   loops; requests per call and the delay from a state change to the poll
   that saw it. Virtual time runs the real ``_Schedule`` without waiting, so
   minutes of calls take a second and the figures do not depend on load.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right

import httpx

from callfsm import CallTracker, PollPolicy
from callfsm._poller import _Schedule
from callfsm.webhooks import SIGNATURE_HEADER, WebhookReceiver, sign

SECRET = "whsec_bench"
EVENTS = ("call.initiated", "call.answered", "call.completed")


def _bodies(n_calls: int) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    for step, event in enumerate(EVENTS):
        for i in range(n_calls):
            body = json.dumps(
                {
                    "event_id": f"evt_{step}_{i}",
                    "event_type": event,
                    "created_at": f"2026-06-01T10:00:0{step}Z",
                    "org_id": "org_bench",
                    "data": {
                        "call_id": f"call_{i:06d}",
                        "agent_id": "agent",
                        "status": "x",
                        "duration_seconds": 60,
                    },
                }
            ).encode()
            out.append((body, {SIGNATURE_HEADER: sign(body, SECRET)}))
    return out


def bench_handle(n_calls: int, rounds: int) -> None:
    bodies = _bodies(n_calls)
    rates, hmac_only, json_only = [], [], []
    for _ in range(rounds):
        receiver = WebhookReceiver(CallTracker(), secret=SECRET)
        receiver.tracker.on_transition(lambda t: None)
        start = time.perf_counter()
        for body, headers in bodies:
            receiver.handle(body, headers)
        rates.append(len(bodies) / (time.perf_counter() - start))
        key = SECRET.encode()
        start = time.perf_counter()
        for body, _ in bodies:
            hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), "0" * 64)
        hmac_only.append(len(bodies) / (time.perf_counter() - start))
        start = time.perf_counter()
        for body, _ in bodies:
            json.loads(body)
        json_only.append(len(bodies) / (time.perf_counter() - start))
    print(f"1. webhooks through handle(), {len(bodies):,} per round, {rounds} rounds (medians)")
    print(f"   handle(): {statistics.median(rates):>10,.0f}/s   (target 20,000/s)")
    print(
        f"   HMAC only: {statistics.median(hmac_only):>9,.0f}/s   "
        f"JSON only: {statistics.median(json_only):,.0f}/s\n"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_http(n_requests: int, concurrency: int) -> None:
    port = _free_port()
    code = (
        "import uvicorn\n"
        "from callfsm import CallTracker\n"
        "from callfsm.webhooks import WebhookReceiver\n"
        f"r = WebhookReceiver(CallTracker(), secret={SECRET!r})\n"
        f"uvicorn.run(r.asgi, host='127.0.0.1', port={port}, log_level='error')\n"
    )
    server = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(url, content=b"{}", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        bodies = _bodies(n_requests // len(EVENTS) + 1)[:n_requests]
        latencies: list[float] = []

        async def run() -> float:
            limits = httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            )
            # small writes without TCP_NODELAY meet delayed ACKs: 40 ms a request
            transport = httpx.AsyncHTTPTransport(
                limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            )
            async with httpx.AsyncClient(transport=transport, timeout=30) as http:
                queue = iter(bodies)

                async def worker() -> None:
                    for body, headers in queue:
                        t0 = time.perf_counter()
                        r = await http.post(url, content=body, headers=headers)
                        latencies.append(time.perf_counter() - t0)
                        assert r.status_code == 200, r.text

                start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                return time.perf_counter() - start

        elapsed = asyncio.run(run())
        wrk = _wrk(url, concurrency, bodies) if shutil.which("wrk") else None
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e3
    p99 = latencies[int(len(latencies) * 0.99)] * 1e3
    print(
        f"2. the ASGI app under uvicorn on 127.0.0.1, signed webhooks, concurrency "
        f"{concurrency} (load generator and server share the 2 cores)"
    )
    print(
        f"   httpx.AsyncClient, {n_requests:,} requests: {n_requests / elapsed:,.0f} requests/s"
        f"   p50 {p50:.1f} ms   p99 {p99:.1f} ms"
    )
    if wrk is None:
        print("   wrk: not installed (apt-get install wrk), skipped\n")
    else:
        print(f"   wrk, 1 thread, 5 s: {wrk}\n")


def _wrk(url: str, concurrency: int, bodies: list[tuple[bytes, dict[str, str]]]) -> str:
    """Drive the server with wrk, cycling through distinct signed bodies."""
    lines = ["local bodies, sigs = {}, {}"]
    for i, (body, headers) in enumerate(bodies, 1):
        lines.append(
            f"bodies[{i}] = {json.dumps(body.decode())}; "
            f"sigs[{i}] = {json.dumps(headers[SIGNATURE_HEADER])}"
        )
    lines.append(f"local n, i = {len(bodies)}, 0")
    lines.append(
        "request = function()\n  i = i % n + 1\n"
        f"  return wrk.format('POST', nil, {{['{SIGNATURE_HEADER}'] = sigs[i], "
        "['Content-Type'] = 'application/json'}, bodies[i])\nend"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines))
    try:
        done = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", "-d5s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        os.unlink(script.name)
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return (
        f"{float(rps.group(1)) if rps else 0:,.0f} requests/s   "
        f"p50 {p50.group(1) if p50 else '?'}   p99 {p99.group(1) if p99 else '?'}"
    )


# -- 3. polling, in virtual time ----------------------------------------------------


def _calls(n: int, seed: int) -> list[list[tuple[float, str]]]:
    """Each call's (time, state) steps: realistic durations, mixed outcomes."""
    rng = random.Random(seed)
    calls = []
    for _ in range(n):
        t = 0.0
        steps = [(t, "queued")]
        t += rng.uniform(0.5, 3.0)
        steps.append((t, "initiated"))
        outcome = rng.random()
        if outcome < 0.1:  # busy
            t += rng.uniform(1.0, 3.0)
            steps.append((t, "failed"))
        else:
            t += rng.uniform(1.0, 3.0)
            steps.append((t, "ringing"))
            if outcome < 0.3:  # no answer
                t += rng.uniform(20.0, 40.0)
                steps.append((t, "failed"))
            else:
                t += rng.uniform(3.0, 15.0)
                steps.append((t, "in_progress"))
                t += rng.uniform(30.0, 240.0)
                steps.append((t, "completed"))
        calls.append(steps)
    return calls


def _state_at(steps: list[tuple[float, str]], t: float) -> tuple[str, int]:
    i = bisect_right([s for s, _ in steps], t) - 1
    return steps[i][1], i


def _simulate(
    calls: list[list[tuple[float, str]]], policy: PollPolicy | None, fixed: float | None
) -> tuple[float, float, float]:
    """(requests per call, p50 delay, p95 delay) for one polling strategy."""
    now = [0.0]
    seen = [0] * len(calls)  # index of the last step observed
    delays: list[float] = []
    requests = 0
    terminal = {"completed", "failed", "cancelled"}
    if fixed is not None:
        live = set(range(len(calls)))
        while live:
            for i in list(live):
                requests += 1
                state, idx = _state_at(calls[i], now[0])
                for k in range(seen[i] + 1, idx + 1):
                    delays.append(now[0] - calls[i][k][0])
                seen[i] = max(seen[i], idx)
                if state in terminal:
                    live.discard(i)
            now[0] += fixed
    else:
        assert policy is not None
        schedule = _Schedule(policy, lambda: now[0], seed=1)
        for i in range(len(calls)):
            schedule.add(str(i))
        while schedule.watched:
            call, wait = schedule.next()
            if call is None:
                now[0] += wait
                continue
            i = int(call)
            requests += 1
            state, idx = _state_at(calls[i], now[0])
            for k in range(seen[i] + 1, idx + 1):
                delays.append(now[0] - calls[i][k][0])
            seen[i] = max(seen[i], idx)
            schedule.succeeded(call, state, state in terminal)
    delays.sort()
    return (requests / len(calls), delays[len(delays) // 2], delays[int(len(delays) * 0.95)])


WEBHOOK_STATES = {"initiated", "in_progress", "completed", "failed"}  # none for the others


def _simulate_hybrid(
    calls: list[list[tuple[float, str]]], policy: PollPolicy, loss: float, seed: int
) -> tuple[float, float, float]:
    """Webhooks (some lost, 50 ms late) plus ``Poller.follow``: polls only when quiet.

    A state is known when a webhook for it, or for a later state, arrives (the
    tracker infers the states in between), or when a poll sees it or a later one.
    """
    rng = random.Random(seed)
    now = [0.0]
    schedule = _Schedule(policy, lambda: now[0], seed=1)
    arrivals: list[tuple[float, int, int]] = []  # (time, call, step index)
    for i, steps in enumerate(calls):
        for k, (t, state) in enumerate(steps):
            if state in WEBHOOK_STATES and rng.random() >= loss:
                arrivals.append((t + 0.05, i, k))
    arrivals.sort(reverse=True)
    known = [0] * len(calls)
    delays: list[float] = []
    requests = 0
    terminal = {"completed", "failed", "cancelled"}

    def learn(i: int, idx: int) -> None:
        for k in range(known[i] + 1, idx + 1):
            delays.append(now[0] - calls[i][k][0])
        known[i] = max(known[i], idx)

    for i in range(len(calls)):
        schedule.add(str(i), follow=True)
    while schedule.watched:
        call, wait = schedule.next()
        next_hook = arrivals[-1][0] if arrivals else float("inf")
        if call is None:
            if next_hook <= now[0] + wait:
                now[0] = max(now[0], next_hook)
                _, i, k = arrivals.pop()
                learn(i, k)
                if calls[i][known[i]][1] in terminal:
                    schedule.remove(str(i))
                else:
                    schedule.activity(str(i), "webhook", calls[i][known[i]][1])
            else:
                now[0] += wait
            continue
        i = int(call)
        requests += 1
        state, idx = _state_at(calls[i], now[0])
        learn(i, idx)
        schedule.succeeded(call, state, state in terminal)
    delays.sort()
    return requests / len(calls), delays[len(delays) // 2], delays[int(len(delays) * 0.95)]


def bench_polling(n_calls: int) -> None:
    calls = _calls(n_calls, seed=11)
    print(
        f"3. polling {n_calls:,} simulated calls (durations: dialling 1.5-6 s, ringing "
        "3-40 s, talking 30-240 s; 70% answered), virtual time, no rate cap"
    )
    print(f"   {'strategy':<44} {'requests/call':>13} {'p50 delay':>10} {'p95 delay':>10}")
    adaptive = PollPolicy(rate=1e9)
    rows: list[tuple[str, PollPolicy | None, float | None]] = [
        (f"adaptive {dict(adaptive.intervals)}", adaptive, None)
    ]
    rows += [(f"fixed every {f:g} s", None, f) for f in (1.0, 2.0, 3.0, 5.0)]
    for name, policy, fixed in rows:
        per_call, p50, p95 = _simulate(calls, policy, fixed)
        print(f"   {name:<44} {per_call:>13.1f} {p50:>9.2f}s {p95:>9.2f}s")
    for loss in (0.01, 0.05):
        hybrid = PollPolicy(rate=1e9)
        per_call, p50, p95 = _simulate_hybrid(calls, hybrid, loss, seed=5)
        name = f"hybrid (follow), {loss:.0%} of webhooks lost"
        print(f"   {name:<44} {per_call:>13.1f} {p50:>9.2f}s {p95:>9.2f}s")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)
    bench_handle(2_000 if args.quick else 7_000, 3 if args.quick else 5)
    bench_http(600 if args.quick else 5_000, 16)
    bench_polling(200 if args.quick else 1_000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
