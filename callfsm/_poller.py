"""Polling ``GET /v1/calls/{id}`` for many calls at once: :class:`Poller` on threads,
:class:`AsyncPoller` on asyncio.

Both drive one :class:`_Schedule`, which decides without doing I/O: when each
call is due (an interval per state, with jitter), how long to back off after
errors (exponential, at least ``Retry-After``), the account-wide request rate
(a token bucket), and, for webhook-fed calls, which states need regular polling
(those with a way out that sends no webhook) and when a quiet one needs a
safety-net poll. A fixed set of workers (``concurrency``) does the requests, so a
thousand watched calls never become a thousand requests at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ._client import DEFAULT_BASE_URL, AsyncHuskyVoiceClient, HuskyVoiceClient
from ._events import Outcome, Transition
from ._exceptions import (
    AuthenticationError,
    CallFSMError,
    NotFoundError,
    RateLimitError,
    WaitTimeout,
)
from ._stores import CallRecord
from ._tracker import CallTracker

__all__ = ["AsyncPoller", "PollFailure", "PollPolicy", "Poller"]

log = logging.getLogger("callfsm")

DEFAULT_INTERVALS: Mapping[str, float] = {
    "queued": 2.0,
    "initiated": 1.0,
    "ringing": 0.5,
    "in_progress": 3.0,
}


@dataclasses.dataclass(frozen=True)
class PollPolicy:
    """How often and how hard to poll.

    Attributes:
        intervals: Seconds between polls per state: fast while ringing, slower
            while queued or talking.
        default_interval: For states not in ``intervals``.
        jitter: Each interval is stretched or shrunk by up to this fraction.
        backoff: Seconds before the first retry after an error; doubles each time.
        max_backoff: The longest wait between retries.
        max_failures: Consecutive failures of one call before it is given up
            (reported on ``poll_failed``).
        rate: Requests per second at most, across all calls (one API quota).
        concurrency: Requests in flight at most; also the connection pool size.
        quiet_after: For calls fed by webhooks (:meth:`Poller.follow`) in one of
            ``quiet_states``: seconds without any update before a safety-net
            poll, and between such polls.
        quiet_states: The states whose every way out sends a webhook, so that a
            followed call in one needs polling only when the webhook is lost.
            For HuskyVoice that is ``in_progress`` (answered calls end with
            ``call.completed`` or ``call.failed``); from the other states some
            moves send nothing (``ringing``, ``cancelled``), so followed calls
            there are polled at their interval.
        timeout: Seconds per request; ``pool_timeout`` waits for a connection.
        pool_timeout: Seconds to wait for a free connection.
    """

    intervals: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_INTERVALS)
    )
    default_interval: float = 1.0
    jitter: float = 0.1
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_failures: int = 5
    rate: float = 20.0
    concurrency: int = 8
    quiet_after: float = 30.0
    quiet_states: frozenset[str] = frozenset({"in_progress"})
    timeout: float = 10.0
    pool_timeout: float = 5.0

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy with every duration multiplied by ``factor`` (for tests)."""
        return dataclasses.replace(
            self,
            intervals={k: v * factor for k, v in self.intervals.items()},
            default_interval=self.default_interval * factor,
            backoff=self.backoff * factor,
            max_backoff=self.max_backoff * factor,
            quiet_after=self.quiet_after * factor,
        )

    def limits(self) -> httpx.Limits:
        """Connection limits matching ``concurrency``: keep-alive as large as the pool."""
        return httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )

    def http_timeout(self) -> httpx.Timeout:
        """The per-request timeout with an explicit pool timeout."""
        return httpx.Timeout(self.timeout, pool=self.pool_timeout)


@dataclasses.dataclass(frozen=True, slots=True)
class PollFailure:
    """What ``poll_failed`` and ``not_found`` handlers get.

    Attributes:
        call_id: The call that is no longer polled.
        error: The last error.
        attempts: Consecutive failed attempts.
    """

    call_id: str
    error: Exception
    attempts: int


@dataclasses.dataclass
class _Watch:
    failures: int = 0
    follow: bool = False  # fed by webhooks; polled only once quiet
    last_activity: float = 0.0
    state: str | None = None  # the last state seen, by poll or webhook
    token: int = 0  # invalidates stale heap entries


class _Schedule:
    """When to poll what (internal, no I/O; callers hold ``lock``)."""

    def __init__(self, policy: PollPolicy, clock: Callable[[], float], seed: int | None) -> None:
        self.policy = policy
        self.clock = clock
        self.rng = random.Random(seed)
        self.lock = threading.Condition()
        self.heap: list[tuple[float, int, str, int]] = []
        self.watched: dict[str, _Watch] = {}
        self.seq = itertools.count()
        self.tokens = float(max(1.0, policy.rate))
        self.refilled = clock()
        self.paused_until = 0.0
        self.requests = 0

    def push(self, call_id: str, due: float) -> None:
        w = self.watched[call_id]
        w.token += 1
        heapq.heappush(self.heap, (due, next(self.seq), call_id, w.token))

    def add(self, call_id: str, *, follow: bool = False) -> None:
        now = self.clock()
        w = self.watched.get(call_id)
        if w is None:
            self.watched[call_id] = w = _Watch(follow=follow, last_activity=now)
        else:
            w.follow = follow
        self.push(call_id, self._next_due(w, now) if follow else now)

    def _next_due(self, w: _Watch, now: float) -> float:
        """When to poll next: a safety-net poll per quiet period in a quiet state, else
        at the state's interval."""
        if w.follow and w.state in self.policy.quiet_states:
            return max(w.last_activity, now) + self.policy.quiet_after
        return now + self.interval(w.state)

    def remove(self, call_id: str) -> None:
        self.watched.pop(call_id, None)

    def due(self, call_id: str) -> float | None:
        """When the call is next polled, or None if it is not scheduled."""
        w = self.watched.get(call_id)
        live = [d for d, _, c, token in self.heap if c == call_id and w and token == w.token]
        return live[0] if live else None

    def interval(self, state: str | None) -> float:
        base = self.policy.intervals.get(state or "", self.policy.default_interval)
        j = self.policy.jitter
        return base * (1.0 + self.rng.uniform(-j, j)) if j else base

    def activity(self, call_id: str, origin: str, state: str) -> None:
        """A webhook (or any non-poll update) came: a followed call is not quiet."""
        w = self.watched.get(call_id)
        if w is not None and w.follow and origin != "poll":
            w.last_activity = now = self.clock()
            w.state = state
            self.push(call_id, self._next_due(w, now))

    def next(self) -> tuple[str | None, float]:
        """The call to poll now, or None and how long to wait before asking again."""
        now = self.clock()
        while self.heap:
            due, _, call_id, token = self.heap[0]
            w = self.watched.get(call_id)
            if w is None or w.token != token:
                heapq.heappop(self.heap)  # superseded
                continue
            start = max(due, self.paused_until)
            if start > now:
                return None, start - now
            self._refill(now)
            if self.tokens < 1.0:
                return None, (1.0 - self.tokens) / self.policy.rate
            self.tokens -= 1.0
            heapq.heappop(self.heap)
            w.token += 1  # in flight: no other worker takes it
            self.requests += 1
            return call_id, 0.0
        return None, 3600.0

    def _refill(self, now: float) -> None:
        self.tokens = min(
            float(max(1.0, self.policy.rate)),
            self.tokens + (now - self.refilled) * self.policy.rate,
        )
        self.refilled = now

    def succeeded(self, call_id: str, state: str, terminal: bool) -> None:
        w = self.watched.get(call_id)
        if w is None:
            return
        if terminal:
            self.remove(call_id)
            return
        w.failures = 0
        w.state = state
        self.push(call_id, self._next_due(w, self.clock()))

    def failed(self, call_id: str, error: Exception) -> int | None:
        """Reschedule after an error; returns the attempt count when the call is given up."""
        w = self.watched.get(call_id)
        if w is None:
            return None
        w.failures += 1
        if w.failures >= self.policy.max_failures:
            self.remove(call_id)
            return w.failures
        delay = min(self.policy.max_backoff, self.policy.backoff * 2 ** (w.failures - 1))
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
            self.paused_until = max(self.paused_until, self.clock() + error.retry_after)
        self.push(call_id, self.clock() + delay)
        return None


class _PollerBase:
    """What both pollers share: the schedule, the hooks and the results (internal)."""

    def __init__(
        self,
        tracker: CallTracker,
        policy: PollPolicy | None,
        clock: Callable[[], float],
        seed: int | None,
    ) -> None:
        self.tracker = tracker
        self.policy = policy or PollPolicy()
        self._schedule = _Schedule(self.policy, clock, seed)
        self.error: AuthenticationError | None = None
        """Set when the API refused the key: polling of every call has stopped."""
        self._failed: dict[str, Exception] = {}
        self._on_failed: list[Callable[[PollFailure], Any]] = []
        self._on_not_found: list[Callable[[PollFailure], Any]] = []

    def _listen(self, on: bool) -> None:
        """(Dis)connect the handlers that notice webhook activity for followed calls."""
        if on:
            self.tracker.on_transition(self._seen)
            self.tracker.on_ignored(self._seen_outcome)
        else:
            self.tracker.disconnect("transition", self._seen)
            self.tracker.disconnect("ignored", self._seen_outcome)

    def _seen(self, t: Transition) -> None:
        if t.origin != "poll":
            with self._schedule.lock:
                self._schedule.activity(t.call_id, t.origin, t.dest)

    def _seen_outcome(self, o: Outcome) -> None:
        if o.origin != "poll":
            with self._schedule.lock:
                self._schedule.activity(o.call_id, o.origin, o.state)

    @property
    def requests(self) -> int:
        """How many requests the poller has made."""
        return self._schedule.requests

    def on_poll_failed(self, handler: Callable[[PollFailure], Any]) -> Callable[[PollFailure], Any]:
        """Decorate a handler for calls given up after repeated failures."""
        self._on_failed.append(handler)
        return handler

    def on_not_found(self, handler: Callable[[PollFailure], Any]) -> Callable[[PollFailure], Any]:
        """Decorate a handler for calls the API answered 404 for (polling them ended)."""
        self._on_not_found.append(handler)
        return handler

    # -- what both pollers do around one request ---------------------------------------

    def _kick(self) -> None:
        """Wake idle workers after a change to the schedule (the caller holds no lock)."""

    def add(self, call_id: str) -> None:
        """Poll this call until it ends (from now on)."""
        self._schedule_call(call_id, follow=False)

    def follow(self, call_id: str) -> None:
        """Hybrid: the call is fed by webhooks too.

        It is polled at its state's interval while some way out of that state
        sends no webhook, and in the policy's ``quiet_states`` only once per
        ``quiet_after`` seconds without an update (a safety net for lost webhooks).
        """
        self._schedule_call(call_id, follow=True)

    def remove(self, call_id: str) -> None:
        """Stop polling this call."""
        with self._schedule.lock:
            self._schedule.remove(call_id)

    def _schedule_call(self, call_id: str, follow: bool) -> None:
        with self._schedule.lock:
            self._schedule.add(call_id, follow=follow)
            self._schedule.lock.notify()
        self._kick()

    def _polled(self, call_id: str, outcome: Outcome) -> None:
        """Reschedule a call after a successful poll (or drop it at its end)."""
        with self._schedule.lock:
            state = outcome.state
            self._schedule.succeeded(call_id, state, self.tracker.lifecycle.is_terminal(state))
            self._schedule.lock.notify()
        self._kick()

    def _poll_failed(self, call_id: str, exc: Exception) -> None:
        """Back off, give up, or stop everything, as the error says; tell the handlers."""
        if not isinstance(exc, CallFSMError):
            log.exception("callfsm poller: polling %r raised", call_id)
        handlers = self._give_up(call_id, exc)
        self._kick()
        if handlers:
            self._tell(handlers, PollFailure(call_id, exc, self.policy.max_failures))

    def _give_up(self, call_id: str, exc: Exception) -> list[Callable[[PollFailure], Any]]:
        """Decide what an error means; returns the handlers to tell (caller holds no lock)."""
        with self._schedule.lock:
            if isinstance(exc, AuthenticationError):
                self.error = exc
                self._schedule.watched.clear()
                self._schedule.lock.notify_all()
                return []
            if isinstance(exc, NotFoundError):
                self._schedule.remove(call_id)
                self._failed[call_id] = exc
                self._schedule.lock.notify_all()
                return self._on_not_found
            attempts = self._schedule.failed(call_id, exc)
            self._schedule.lock.notify_all()
            if attempts is None:
                return []
            self._failed[call_id] = exc
            return self._on_failed

    def _tell(self, handlers: list[Callable[[PollFailure], Any]], failure: PollFailure) -> None:
        for handler in handlers:
            try:
                handler(failure)
            except Exception:
                log.exception("callfsm poller handler %r raised", handler)

    def _ended(self, call_id: str) -> CallRecord | None:
        """The call's final record, raising the error that ended its polling, if any."""
        if self.error is not None:
            raise self.error
        exc = self._failed.get(call_id)
        if exc is not None:
            raise exc
        if call_id in self.tracker:
            record = self.tracker.get(call_id)
            if record.terminal:
                return record
        return None


def _wait_error(tracker: CallTracker, call_id: str, timeout: float) -> WaitTimeout:
    state = tracker.state(call_id) if call_id in tracker else None
    return WaitTimeout(call_id, state, timeout)


class Poller(_PollerBase):
    """Polls many calls from a fixed set of worker threads and feeds the tracker.

    Args:
        tracker: Receives every status read, origin ``"poll"``, lenient.
        client: A :class:`HuskyVoiceClient`; by default one is made with
            ``api_key``/``base_url``/``transport`` and connection limits matching
            the policy's concurrency.
        policy: Intervals, backoff, rate and concurrency.
        clock: Monotonic time source.
        seed: Seeds the jitter.

    Use it as a context manager, or :meth:`start` and :meth:`stop` it.
    """

    def __init__(
        self,
        tracker: CallTracker,
        client: HuskyVoiceClient | None = None,
        *,
        policy: PollPolicy | None = None,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        super().__init__(tracker, policy, clock, seed)
        self._owns_client = client is None
        if client is None:
            http = httpx.Client(
                limits=self.policy.limits(), timeout=self.policy.http_timeout(), transport=transport
            )
            client = HuskyVoiceClient(
                api_key, base_url=base_url, http_client=http, timeout=self.policy.timeout
            )
            self._http: httpx.Client | None = http
        else:
            self._http = None
        self.client = client
        self._threads: list[threading.Thread] = []
        self._running = False

    def start(self) -> Poller:
        """Start the worker threads."""
        with self._schedule.lock:
            if self._running:
                return self
            self._running = True
        self._listen(True)
        for i in range(self.policy.concurrency):
            t = threading.Thread(target=self._work, name=f"callfsm-poller-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop the workers (in-flight requests finish) and close an owned client."""
        with self._schedule.lock:
            self._running = False
            self._schedule.lock.notify_all()
        for t in self._threads:
            t.join()
        self._threads.clear()
        self._listen(False)
        if self._owns_client:
            self.client.close()
            if self._http is not None:
                self._http.close()

    def __enter__(self) -> Poller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _work(self) -> None:
        lock = self._schedule.lock
        while True:
            with lock:
                while True:
                    if not self._running or self.error is not None:
                        return
                    call_id, wait = self._schedule.next()
                    if call_id is not None:
                        break
                    lock.wait(min(wait, 1.0))
            self._poll_once(call_id)

    def _poll_once(self, call_id: str) -> None:
        try:
            data = self.client.get_call(call_id)
            outcome = self.tracker.update(
                call_id, str(data["status"]), data=data, origin="poll", strict=False
            )
        except Exception as exc:  # API errors, unknown statuses, handler errors, bugs
            self._poll_failed(call_id, exc)
            return
        self._polled(call_id, outcome)

    def watch(self, call_id: str, timeout: float | None = None) -> CallRecord:
        """Poll the call until it ends and return its final record.

        Raises:
            WaitTimeout: If it had not ended in time.
            AuthenticationError: If the API refused the key.
            NotFoundError: If the API does not know the call.
            APIError: If polling it was given up after repeated failures.
        """
        self.start()
        self.add(call_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self._ended(call_id)
            if record is not None:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise _wait_error(self.tracker, call_id, timeout or 0.0)
            try:  # short waits, so that an error ending the polling is seen soon
                return self.tracker.wait(call_id, timeout=0.02)
            except WaitTimeout:
                continue


class AsyncPoller(_PollerBase):
    """The asyncio twin of :class:`Poller`: worker tasks instead of threads.

    Args:
        tracker: Receives every status read (through ``aupdate``).
        client: An :class:`AsyncHuskyVoiceClient`; by default one is made like
            :class:`Poller` does.
        policy: Intervals, backoff, rate and concurrency.
    """

    def __init__(
        self,
        tracker: CallTracker,
        client: AsyncHuskyVoiceClient | None = None,
        *,
        policy: PollPolicy | None = None,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        super().__init__(tracker, policy, clock, seed)
        self._owns_client = client is None
        if client is None:
            http = httpx.AsyncClient(
                limits=self.policy.limits(), timeout=self.policy.http_timeout(), transport=transport
            )
            client = AsyncHuskyVoiceClient(
                api_key, base_url=base_url, http_client=http, timeout=self.policy.timeout
            )
            self._http: httpx.AsyncClient | None = http
        else:
            self._http = None
        self.client = client
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: asyncio.Event | None = None

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> AsyncPoller:
        """Start the worker tasks on the running loop."""
        if not self._tasks:
            self._listen(True)
            self._wake = asyncio.Event()
            self._tasks = [
                asyncio.create_task(self._work()) for _ in range(self.policy.concurrency)
            ]
        return self

    async def stop(self) -> None:
        """Cancel the workers and close an owned client."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._listen(False)
        if self._owns_client:
            await self.client.aclose()
            if self._http is not None:
                await self._http.aclose()

    async def __aenter__(self) -> AsyncPoller:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _work(self) -> None:
        assert self._wake is not None
        while self.error is None:
            with self._schedule.lock:
                call_id, wait = self._schedule.next()
            if call_id is None:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(wait, 1.0))
                continue
            await self._poll_once(call_id)

    async def _poll_once(self, call_id: str) -> None:
        try:
            data = await self.client.get_call(call_id)
            outcome = await self.tracker.aupdate(
                call_id, str(data["status"]), data=data, origin="poll", strict=False
            )
        except Exception as exc:  # API errors, unknown statuses, handler errors, bugs
            self._poll_failed(call_id, exc)
            return
        self._polled(call_id, outcome)

    async def watch(self, call_id: str, timeout: float | None = None) -> CallRecord:
        """Poll the call until it ends and return its final record (see :meth:`Poller.watch`)."""
        await self.start()
        self.add(call_id)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            record = self._ended(call_id)
            if record is not None:
                return record
            if deadline is not None and loop.time() >= deadline:
                raise _wait_error(self.tracker, call_id, timeout or 0.0)
            try:
                return await self.tracker.wait_async(call_id, timeout=0.02)
            except WaitTimeout:
                pass
