"""A scripted stand-in for the HuskyVoice Calls API and its webhooks.

Calls follow the testing toolkit's scenarios over time. The fake answers in
process as an httpx transport (:attr:`FakeHuskyVoice.transport`) and over a
real HTTP server on 127.0.0.1 (:meth:`FakeHuskyVoice.serve`); it signs the
webhooks it sends and injects faults on request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from .._events import StatusUpdate
from .._lifecycle import HUSKYVOICE
from .._webhooks import sign
from ._flows import SCENARIOS

__all__ = ["FakeHuskyVoice", "Fault", "WebhookSink"]

WebhookSink = Callable[[bytes, Mapping[str, str]], Any]
"""Where the fake delivers webhooks: called with the raw body and the headers."""

#: the webhook event type HuskyVoice sends on entering a state (none for queued,
#: ringing and cancelled: it sends none for those)
EVENT_FOR_STATE = {
    "initiated": "call.initiated",
    "in_progress": "call.answered",
    "completed": "call.completed",
    "failed": "call.failed",
}


@dataclasses.dataclass
class Fault:
    """One injected API fault; see :meth:`FakeHuskyVoice.inject`."""

    status: int = 500
    times: int = 1
    retry_after: str | None = None
    delay: float = 0.0
    body: bytes | None = None
    path: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path in path
        )


@dataclasses.dataclass
class _Step:
    state: str
    at: float
    data: dict[str, Any]
    event_type: str | None


@dataclasses.dataclass
class _Call:
    call_id: str
    agent_id: str
    scenario: str
    steps: list[_Step]
    created: float
    cancelled_at: float | None = None
    deleted: bool = False
    sent: int = 0  # how many steps' webhooks have gone out

    def step_now(self, now: float) -> _Step:
        current = self.steps[0]
        for step in self.steps:
            if step.at <= now:
                current = step
        return current


class FakeHuskyVoice:
    """A fake HuskyVoice: the Calls API and its outbound webhooks.

    Args:
        api_key: The key requests must carry (``Authorization: Bearer ...``).
        webhook_secret: The key the webhooks are signed with.
        webhooks: Where webhooks go: a :data:`WebhookSink` (such as
            ``WebhookReceiver.handle``), a loopback URL, or None for none.
        scenario: The scenario of calls created through the API, unless their
            ``additional_info`` names one (``{"scenario": "busy"}``); a callable
            gets the call's number in order and returns a name.
        step: Seconds between a call's steps (scaled by ``speed``).
        duplicate: Chance that a webhook is delivered twice.
        drop: Chance that a webhook is lost.
        reorder: Chance that a webhook is held back and sent after the next.
        seed: Seeds the webhook faults.
        clock: Time source in seconds (``time.monotonic``); a manual clock with
            :meth:`pump` makes tests deterministic.
    """

    def __init__(
        self,
        *,
        api_key: str = "sk_test_fake",
        webhook_secret: str = "whsec_test_fake",
        webhooks: WebhookSink | str | None = None,
        scenario: str | Callable[[int], str] = "answered",
        step: float = 0.05,
        duplicate: float = 0.0,
        drop: float = 0.0,
        reorder: float = 0.0,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.scenario = scenario
        self.step = step
        self.duplicate, self.drop, self.reorder = duplicate, drop, reorder
        self._rng = random.Random(seed)
        self._clock = clock
        self._calls: dict[str, _Call] = {}
        self._faults: list[Fault] = []
        self._held: list[tuple[bytes, dict[str, str]]] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._events = itertools.count(1)
        self._idempotency: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        """Requests answered, by ``"METHOD /path-pattern"``."""
        self.webhooks_sent = 0
        self.webhooks_failed = 0
        self._sink = self._make_sink(webhooks)
        self._pumping: threading.Thread | None = None
        self._stop = threading.Event()
        self.transport = httpx.MockTransport(self.respond_httpx)
        """An httpx transport answering as the API, in process (sync and async clients)."""

    # -- calls ---------------------------------------------------------------------

    def add_call(self, scenario: str = "answered", *, agent_id: str = "agent_fake") -> str:
        """Start a call following ``scenario`` without going through HTTP; returns its id."""
        if scenario not in SCENARIOS:
            raise KeyError(f"no scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}")
        with self._lock:
            call_id = f"call_{next(self._ids):06d}"
            now = self._clock()
            self._calls[call_id] = _Call(
                call_id, agent_id, scenario, self._steps(scenario, now), now
            )
        return call_id

    def _steps(self, scenario: str, now: float) -> list[_Step]:
        steps = []
        for i, item in enumerate(SCENARIOS[scenario].flow):
            u = item if isinstance(item, StatusUpdate) else StatusUpdate(item)
            state, event_type = HUSKYVOICE.lookup(u.status)
            steps.append(
                _Step(
                    state,
                    now + i * self.step,
                    dict(u.data or {}),
                    event_type or EVENT_FOR_STATE.get(state),
                )
            )
        if steps[0].state != "queued":  # a webhook-only scenario still starts queued at the API
            steps.insert(0, _Step("queued", now, {}, None))
            for later in steps[1:]:
                later.at += self.step
        return steps

    def status(self, call_id: str) -> str:
        """The call's status as the API would answer now."""
        with self._lock:
            call = self._calls[call_id]
            if call.cancelled_at is not None:
                return "cancelled"
            return call.step_now(self._clock()).state

    def calls(self) -> list[str]:
        """Every call id the fake has placed."""
        with self._lock:
            return list(self._calls)

    def finished(self) -> bool:
        """True when every call has reached its last step and its webhooks went out."""
        with self._lock:
            now = self._clock()
            return (
                all(
                    c.cancelled_at is not None or (c.steps[-1].at <= now and c.sent == len(c.steps))
                    for c in self._calls.values()
                )
                and not self._held
            )

    # -- faults --------------------------------------------------------------------

    def inject(
        self,
        status: int = 500,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        body: bytes | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with a fault.

        Args:
            status: The status to answer (429, 500, 401, 404, or 200 with a
                garbled ``body``).
            times: How many requests it applies to.
            retry_after: Sent as ``Retry-After``.
            delay: Seconds to wait before answering (slow responses).
            body: The body to send instead of the usual JSON error.
            path: Only requests whose path contains this.
            method: Only requests with this method.
        """
        fault = Fault(
            status,
            times,
            None if retry_after is None else str(retry_after),
            delay,
            body,
            path,
            method,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- the API -------------------------------------------------------------------

    def respond(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one API request; the core of both the transport and the server."""
        path = urlsplit(path).path
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] == ["v1"]:
            parts = parts[1:]
        pattern = "/".join("{id}" if i == 1 else p for i, p in enumerate(parts))
        self.requests[f"{method} /v1/{pattern}"] += 1
        fault = self._take_fault(method, path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status != 200 or fault.body is not None:
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                payload = fault.body if fault.body is not None else _error(fault.status)
                return fault.status, {"Content-Type": "application/json", **extra}, payload
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            return 401, _JSON, _error(401, "UNAUTHORIZED")
        if parts == ["calls"] and method == "POST":
            return self._create(headers, body)
        if len(parts) >= 2 and parts[0] == "calls":
            call = self._calls.get(parts[1])
            if call is None or call.deleted:
                return 404, _JSON, _error(404, "NOT_FOUND")
            if len(parts) == 2 and method == "GET":
                return 200, _JSON, _dump({"data": self._view(call)})
            if len(parts) == 3 and parts[2] == "cancel" and method == "POST":
                return self._cancel(call)
            if len(parts) == 2 and method == "DELETE":
                return self._delete(call)
        return 404, _JSON, _error(404, "NOT_FOUND")

    def _create(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            request = json.loads(body)
            agent_id = request["agent_id"]
            if not isinstance(request["contact_number"], str):
                raise TypeError("contact_number")
        except (ValueError, KeyError, TypeError):
            return 400, _JSON, _error(400, "BAD_REQUEST")
        key = {k.lower(): v for k, v in headers.items()}.get("idempotency-key")
        with self._lock:
            if key and key in self._idempotency:
                call_id = self._idempotency[key]
            else:
                info = request.get("additional_info") or {}
                scenario = info.get("scenario") if isinstance(info, dict) else None
                if scenario is None:
                    scenario = (
                        self.scenario
                        if isinstance(self.scenario, str)
                        else self.scenario(len(self._calls))
                    )
                if scenario not in SCENARIOS:
                    return 400, _JSON, _error(400, "UNKNOWN_SCENARIO")
                call_id = self.add_call(scenario, agent_id=str(agent_id))
                if key:
                    self._idempotency[key] = call_id
        return 201, _JSON, _dump({"data": {"call_id": call_id, "status": "queued"}})

    def _view(self, call: _Call) -> dict[str, Any]:
        now = self._clock()
        if call.cancelled_at is not None:
            return {"call_id": call.call_id, "agent_id": call.agent_id, "status": "cancelled"}
        step = call.step_now(now)
        return {
            "call_id": call.call_id,
            "agent_id": call.agent_id,
            "status": step.state,
            **step.data,
        }

    def _cancel(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            state = self.status(call.call_id)
            if state == "queued":
                call.cancelled_at = self._clock()
                call.sent = len(call.steps)  # no webhook is sent for cancelled
                state = "cancelled"
            if state != "cancelled":
                return 409, _JSON, _error(409, "NOT_CANCELLABLE")
        return (
            200,
            _JSON,
            _dump(
                {
                    "success": True,
                    "call_id": call.call_id,
                    "status": "cancelled",
                    "message": "Call cancelled",
                }
            ),
        )

    def _delete(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        if self.status(call.call_id) not in HUSKYVOICE.terminal:
            return 409, _JSON, _error(409, "CALL_NOT_FINISHED")
        call.deleted = True
        return 200, _JSON, _dump({"data": {"call_id": call.call_id, "deleted": True}})

    def respond_httpx(self, request: httpx.Request) -> httpx.Response:
        """Answer one httpx request; what :attr:`transport` calls."""
        status, headers, body = self.respond(
            request.method, request.url.path, request.headers, request.read()
        )
        return httpx.Response(status, headers=headers, content=body)

    # -- webhooks ------------------------------------------------------------------

    def _make_sink(self, webhooks: WebhookSink | str | None) -> WebhookSink | None:
        if webhooks is None or callable(webhooks):
            return webhooks
        host = urlsplit(webhooks).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the fake only sends webhooks to loopback, not {host!r}")
        client = httpx.Client(timeout=5.0)

        def post(body: bytes, headers: Mapping[str, str]) -> int:
            return client.post(webhooks, content=body, headers=dict(headers)).status_code

        return post

    def pump(self) -> int:
        """Send every webhook that is due now; returns how many went out."""
        due: list[tuple[bytes, dict[str, str]]] = []
        with self._lock:
            now = self._clock()
            for call in self._calls.values():
                while call.sent < len(call.steps) and call.steps[call.sent].at <= now:
                    step = call.steps[call.sent]
                    call.sent += 1
                    if step.event_type is not None:
                        due.append(self._webhook(call, step, now))
        sent = 0
        for body, headers in due:
            sent += self._deliver(body, headers)
        return sent

    def _webhook(self, call: _Call, step: _Step, now: float) -> tuple[bytes, dict[str, str]]:
        # stamped when the step happened, in wall-clock time, as HuskyVoice does
        wall = datetime.fromtimestamp(time.time() - (now - step.at), timezone.utc)
        created = wall.isoformat().replace("+00:00", "Z")
        body = _dump(
            {
                "event_id": f"evt_{next(self._events):08d}",
                "event_type": step.event_type,
                "created_at": created,
                "org_id": "org_fake",
                "data": {
                    "call_id": call.call_id,
                    "agent_id": call.agent_id,
                    "status": step.state,
                    **step.data,
                },
            }
        )
        headers = {
            "Content-Type": "application/json",
            "X-Husky-Signature": sign(body, self.webhook_secret),
        }
        return body, headers

    def _deliver(self, body: bytes, headers: dict[str, str]) -> int:
        if self._sink is None:
            return 0
        rng = self._rng
        if rng.random() < self.drop:
            return 0
        if rng.random() < self.reorder and not self._held:
            self._held.append((body, headers))
            return 0
        batch = [(body, headers)]
        if rng.random() < self.duplicate:
            batch.append((body, headers))
        batch += self._held
        self._held = []
        for b, h in batch:
            try:
                self._sink(b, h)
                self.webhooks_sent += 1
            except Exception:
                self.webhooks_failed += 1
        return len(batch)

    def flush(self) -> int:
        """Deliver webhooks held back for reordering; returns how many."""
        held, self._held = self._held, []
        for b, h in held:
            if self._sink is not None:
                self._sink(b, h)
                self.webhooks_sent += 1
        return len(held)

    # -- running -------------------------------------------------------------------

    def start(self, interval: float = 0.005) -> FakeHuskyVoice:
        """Pump webhooks from a background thread until :meth:`stop`."""
        if self._pumping is None:
            self._stop.clear()

            def run() -> None:
                while not self._stop.wait(interval):
                    self.pump()
                self.pump()
                self.flush()

            self._pumping = threading.Thread(target=run, name="fake-huskyvoice", daemon=True)
            self._pumping.start()
        return self

    def stop(self) -> None:
        """Stop the webhook thread (after one last pump and flush)."""
        if self._pumping is not None:
            self._stop.set()
            self._pumping.join()
            self._pumping = None

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the API over real HTTP on loopback; yields the base URL (``.../v1``)."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the fake serves on loopback only, not {host!r}")
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # one write per response, sent at once: small unbuffered writes meet
            # delayed ACKs and cost 40 ms a request
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = fake.respond(
                    self.command, self.path, dict(self.headers.items()), body
                )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests and the demo print what matters

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, name="fake-huskyvoice-http", daemon=True
        )
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}/v1"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


_JSON = {"Content-Type": "application/json"}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error(status: int, code: str | None = None) -> bytes:
    codes = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 404: "NOT_FOUND", 429: "RATE_LIMITED"}
    code = code or codes.get(status, "INTERNAL_ERROR")
    return _dump({"success": False, "error": {"code": code, "message": code.lower()}})
