"""The intake commands of ``callfsm``: ``demo``, ``watch``, ``serve`` and ``replay``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socketserver
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ._client import DEFAULT_BASE_URL, HuskyVoiceClient
from ._events import Outcome, Transition
from ._exceptions import (
    APIError,
    AuthenticationError,
    CallFSMError,
    MissingAPIKey,
    NotFoundError,
    WaitTimeout,
)
from ._poller import Poller, PollPolicy
from ._tracker import CallTracker
from ._webhooks import WebhookReceiver
from .testing import FakeHuskyVoice

__all__ = ["add_commands"]

DEMO_SCENARIOS = ["answered", "no_answer", "busy", "cancelled", "webhook_only", "disallowed"]


class _Printer:
    """Prints transitions as they happen, with the time since start."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()
        self.lock = threading.Lock()

    def transition(self, t: Transition) -> None:
        mark = "  (inferred)" if t.inferred else ""
        with self.lock:
            self.out.write(
                f"{time.monotonic() - self.start:7.2f}s  {t.call_id:<12} "
                f"{t.source or '-':>11} -> {t.dest:<12} {t.origin:<8}{mark}\n"
            )
            self.out.flush()


class _QuietHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to each response

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextlib.contextmanager
def serve_wsgi(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve a WSGI app with the standard library on loopback; yields its URL."""
    server = make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="callfsm-wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    tracker = CallTracker(strict=False)
    printer = _Printer(out)
    tracker.on_transition(printer.transition)
    ignored: Counter[str] = Counter()
    tracker.on_ignored(lambda o: ignored.update([f"{o.kind}"]))
    rejected: list[Outcome] = []
    tracker.on_rejected(rejected.append)
    secret = "whsec_demo"
    receiver = WebhookReceiver(tracker, secret=secret)
    received = Counter[int]()

    def counting_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        def start(status: str, headers: Any) -> Any:
            received[int(status.split()[0])] += 1
            return start_response(status, headers)

        return receiver.wsgi(environ, start)

    scenarios = [DEMO_SCENARIOS[i % len(DEMO_SCENARIOS)] for i in range(args.calls)]
    policy = PollPolicy(rate=200, concurrency=4, jitter=0.1).scaled(0.1 * args.step / 0.2)
    with serve_wsgi(counting_wsgi) as hook_url:
        fake = FakeHuskyVoice(
            api_key="sk_test_demo",
            webhook_secret=secret,
            webhooks=hook_url + "/hooks/huskyvoice",
            step=args.step,
            scenario=lambda i: scenarios[i % len(scenarios)],
            duplicate=0.2,
            reorder=0.1,
            drop=0.1,
            seed=args.seed,
        )
        with fake.serve() as base_url:
            fake.start()
            client = HuskyVoiceClient("sk_test_demo", base_url=base_url, tracker=tracker)
            out.write(
                f"fake HuskyVoice at {base_url}; webhooks to {hook_url}\n"
                f"placing {args.calls} calls, tracked by webhooks and polling at once\n\n"
            )
            with Poller(tracker, client, policy=policy, seed=args.seed) as poller:
                call_ids = [client.create_call("agent_demo", "+919800000000") for _ in scenarios]
                for call_id in call_ids:
                    poller.add(call_id)
                unfinished = []
                for call_id in call_ids:
                    try:
                        tracker.wait(call_id, timeout=args.timeout)
                    except WaitTimeout:
                        unfinished.append(call_id)
            fake.stop()
            client.close()
    finals = Counter(tracker.state(c) for c in call_ids)
    out.write("\nsummary\n")
    out.write(
        "  calls by final state: " + ", ".join(f"{s} {n}" for s, n in sorted(finals.items())) + "\n"
    )
    out.write(
        f"  API requests: {sum(fake.requests.values())} "
        f"(polls {poller.requests}, creates {len(call_ids)})\n"
    )
    out.write(
        f"  webhooks received: {sum(received.values())} "
        f"(sent by the fake with duplicates, reordering and losses)\n"
    )
    out.write(f"  ignored: {ignored['duplicate']} duplicates, {ignored['stale']} stale\n")
    out.write(f"  rejected: {len(rejected)}\n")
    if unfinished:
        out.write(f"  did not finish in time: {', '.join(unfinished)}\n")
        return 1
    return 0


def _watch(args: argparse.Namespace, out: TextIO) -> int:
    tracker = CallTracker(strict=False)
    tracker.on_transition(_Printer(out).transition)
    try:
        client = HuskyVoiceClient(args.api_key, base_url=args.base_url)
    except MissingAPIKey as exc:
        print(f"callfsm watch: {exc}", file=sys.stderr)
        return 2
    try:
        with Poller(tracker, client) as poller:
            record = poller.watch(args.call_id, timeout=args.timeout)
    except AuthenticationError:
        print(
            "callfsm watch: the API refused the key (401/403); check HUSKYVOICE_API_KEY "
            "and its calls:read scope",
            file=sys.stderr,
        )
        return 1
    except NotFoundError:
        print(f"callfsm watch: no call {args.call_id!r} (404)", file=sys.stderr)
        return 1
    except WaitTimeout as exc:
        print(f"callfsm watch: {exc}", file=sys.stderr)
        return 1
    except APIError as exc:
        print(f"callfsm watch: polling failed: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    out.write(f"{args.call_id} ended {record.state}\n")
    return 0


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import uvicorn
    except ImportError:
        print("callfsm serve needs uvicorn: pip install 'callfsm[server]'", file=sys.stderr)
        return 2
    secret = args.secret or os.environ.get("HUSKYVOICE_WEBHOOK_SECRET")
    if not secret:
        print("callfsm serve: give --secret or set HUSKYVOICE_WEBHOOK_SECRET", file=sys.stderr)
        return 2
    tracker = CallTracker(strict=False)
    tracker.on_transition(_Printer(out).transition)
    receiver = WebhookReceiver(tracker, secret=secret)
    out.write(f"receiving HuskyVoice webhooks on http://{args.host}:{args.port}/\n")
    out.flush()
    uvicorn.run(receiver.asgi, host=args.host, port=args.port, log_level="warning")
    return 0


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    tracker = CallTracker(strict=False)
    unreadable = 0
    with open(args.file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                update = _recorded(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                out.write(f"{number:>5}  unreadable: {exc}\n")
                unreadable += 1
                continue
            call_id, status, kw = update
            try:
                outcome = tracker.update(call_id, status, strict=False, **kw)
            except CallFSMError as exc:
                out.write(f"{number:>5}  {call_id:<12} {status:<16} error: {exc}\n")
                unreadable += 1
                continue
            steps = ", ".join(f"{t.source or '-'} -> {t.dest}" for t in outcome.transitions)
            detail = steps if outcome.applied else outcome.reason
            out.write(
                f"{number:>5}  {call_id:<12} {status:<16} {kw['origin']:<8} "
                f"{outcome.kind!s:<9} {detail}\n"
            )
    for record in tracker.calls():
        out.write(f"{record.call_id}: ends {record.state}\n")
    return 1 if unreadable else 0


def _recorded(obj: Any) -> tuple[str, str, dict[str, Any]]:
    """A recorded webhook body or poll response as (call_id, status, update keywords)."""
    if not isinstance(obj, dict):
        raise TypeError("a line must be a JSON object")
    if "event_type" in obj:  # a webhook envelope
        return (
            str(obj["data"]["call_id"]),
            str(obj["event_type"]),
            {
                "origin": "webhook",
                "event_id": obj.get("event_id"),
                "data": obj["data"],
                "at": _time(obj.get("created_at")),
            },
        )
    data = obj.get("data", obj)  # a poll response, or its data object
    return str(data["call_id"]), str(data["status"]), {"origin": "poll", "data": data}


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def add_commands(sub: Any) -> None:
    """Register the intake commands on the ``callfsm`` parser."""
    p = sub.add_parser("demo", help="a batch of calls on a fake HuskyVoice, webhooks and polling")
    p.add_argument("--calls", type=int, default=12, help="how many calls (default 12)")
    p.add_argument("--step", type=float, default=0.2, help="seconds between a call's steps")
    p.add_argument("--seed", type=int, default=7, help="seeds the webhook faults")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per call")
    p.set_defaults(run=_demo)
    p = sub.add_parser("watch", help="poll a real call until it ends (HUSKYVOICE_API_KEY)")
    p.add_argument("call_id")
    p.add_argument("--api-key", default=None, help="default: $HUSKYVOICE_API_KEY")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL)
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    p.set_defaults(run=_watch)
    p = sub.add_parser("serve", help="receive webhooks and print transitions (needs uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--secret", default=None, help="default: $HUSKYVOICE_WEBHOOK_SECRET")
    p.set_defaults(run=_serve)
    p = sub.add_parser("replay", help="feed recorded webhooks and poll responses (JSON lines)")
    p.add_argument("file")
    p.set_defaults(run=_replay)
