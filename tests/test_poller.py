from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from callfsm import (
    AsyncPoller,
    AuthenticationError,
    CallTracker,
    MemoryStore,
    NotFoundError,
    Poller,
    PollFailure,
    PollPolicy,
    RateLimitError,
    ServerError,
)
from callfsm._poller import _Schedule
from callfsm.testing import SCENARIOS, FakeHuskyVoice, record

KEY = "sk_test_fake"
BASE = "http://127.0.0.1:9/v1"  # answered by the fake's transport
FAST = PollPolicy(rate=1000, concurrency=4, jitter=0.0).scaled(0.005)


@pytest.fixture
def fake() -> FakeHuskyVoice:
    return FakeHuskyVoice(api_key=KEY, step=0.02)


@pytest.fixture
def tracker() -> CallTracker:
    return CallTracker(raise_handler_errors=True)


@pytest.fixture
def poller(tracker: CallTracker, fake: FakeHuskyVoice) -> Iterator[Poller]:
    with Poller(tracker, api_key=KEY, base_url=BASE, transport=fake.transport, policy=FAST) as p:
        yield p


def test_every_scenario_is_followed_to_its_end(
    poller: Poller, tracker: CallTracker, fake: FakeHuskyVoice
) -> None:
    calls = {name: fake.add_call(name) for name in SCENARIOS if name != "cancelled"}
    with record(tracker) as rec:
        finals = {name: poller.watch(call_id, timeout=10).state for name, call_id in calls.items()}
    assert {name: SCENARIOS[name].final for name in calls} == finals
    rec.assert_no_repeats()
    assert all(t.origin == "poll" for t in rec.transitions)
    # polling stops at the end: no call is polled again
    before = poller.requests
    threading.Event().wait(0.05)
    assert before == poller.requests


def test_watch_starts_polling_and_returns_the_record(
    tracker: CallTracker, fake: FakeHuskyVoice
) -> None:
    call_id = fake.add_call("busy")
    poller = Poller(tracker, api_key=KEY, base_url=BASE, transport=fake.transport, policy=FAST)
    try:
        record_ = poller.watch(call_id, timeout=10)
    finally:
        poller.stop()
    assert "failed" == record_.state
    assert "busy" == record_.history[-1].data["reason"]


def test_not_found_ends_polling_of_that_call_and_is_reported(
    poller: Poller, fake: FakeHuskyVoice
) -> None:
    missing: list[PollFailure] = []
    poller.on_not_found(missing.append)
    ok = fake.add_call("busy")
    with pytest.raises(NotFoundError):
        poller.watch("call_nope", timeout=10)
    assert ["call_nope"] == [f.call_id for f in missing]
    assert "failed" == poller.watch(ok, timeout=10).state


def test_a_refused_key_stops_everything_and_reaches_the_caller(
    tracker: CallTracker, fake: FakeHuskyVoice
) -> None:
    a, b = fake.add_call("answered"), fake.add_call("answered")
    poller = Poller(
        tracker, api_key="sk_wrong", base_url=BASE, transport=fake.transport, policy=FAST
    )
    try:
        poller.add(b)
        with pytest.raises(AuthenticationError):
            poller.watch(a, timeout=10)
        assert isinstance(poller.error, AuthenticationError)
        requests = poller.requests
        threading.Event().wait(0.05)
        assert requests == poller.requests  # nobody polls any more
    finally:
        poller.stop()


def test_repeated_server_errors_give_up_one_call_and_not_the_others(
    tracker: CallTracker, fake: FakeHuskyVoice
) -> None:
    policy = PollPolicy(rate=1000, concurrency=2, jitter=0.0, max_failures=3).scaled(0.005)
    doomed, fine = fake.add_call("answered"), fake.add_call("busy")
    fake.inject(503, times=100, path=doomed)
    failed: list[PollFailure] = []
    with Poller(
        tracker, api_key=KEY, base_url=BASE, transport=fake.transport, policy=policy
    ) as poller:
        poller.on_poll_failed(failed.append)
        with pytest.raises(ServerError):
            poller.watch(doomed, timeout=10)
        assert "failed" == poller.watch(fine, timeout=10).state
    assert [(doomed, 3)] == [(f.call_id, f.attempts) for f in failed]
    assert doomed not in tracker  # no answer ever came for it


def test_a_garbled_response_is_retried(poller: Poller, fake: FakeHuskyVoice) -> None:
    call_id = fake.add_call("busy")
    fake.inject(200, body=b"<html>gateway</html>", times=2)
    assert "failed" == poller.watch(call_id, timeout=10).state


def test_concurrency_is_bounded(tracker: CallTracker, fake: FakeHuskyVoice) -> None:
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        threading.Event().wait(0.01)
        try:
            return fake.respond_httpx(request)
        finally:
            with lock:
                in_flight -= 1

    policy = PollPolicy(rate=1000, concurrency=3, jitter=0.0).scaled(0.001)
    calls = [fake.add_call("no_answer") for _ in range(20)]
    with Poller(
        tracker, api_key=KEY, base_url=BASE, transport=httpx.MockTransport(slow), policy=policy
    ) as poller:
        for c in calls:
            poller.add(c)
        for c in calls:
            assert "failed" == poller.watch(c, timeout=20).state
    assert 1 < most <= 3


def test_hybrid_polls_a_quiet_answered_call_only_when_its_webhooks_stop(
    tracker: CallTracker,
) -> None:
    clock = [0.0]
    fake = FakeHuskyVoice(api_key=KEY, step=1.0, clock=lambda: clock[0])
    policy = PollPolicy(
        rate=1000,
        concurrency=2,
        jitter=0.0,
        intervals=dict.fromkeys(("queued", "initiated", "ringing", "in_progress"), 0.01),
        quiet_after=0.2,
    )
    call_id = fake.add_call("answered")
    clock[0] = 3.5  # the fake's call is in_progress now; it completes at 4.0
    with Poller(
        tracker, api_key=KEY, base_url=BASE, transport=fake.transport, policy=policy
    ) as poller:
        poller.follow(call_id)
        tracker.update(call_id, "call.answered", origin="webhook")
        # answered calls always end with a webhook: no polling while it may come
        threading.Event().wait(0.1)
        assert 0 == poller.requests  # (the first poll is due 0.5 s after the webhook)
        clock[0] = 5.0  # it ended, and the call.completed webhook was lost
        final = poller.watch(call_id, timeout=10)  # the safety-net poll finds it
    assert "completed" == final.state
    assert "poll" == final.history[-1].origin
    assert 1 <= poller.requests <= 3


def test_hybrid_keeps_polling_states_whose_way_out_sends_no_webhook() -> None:
    now = [0.0]
    s = _Schedule(PollPolicy(jitter=0.0, quiet_after=30.0), lambda: now[0], seed=1)
    s.add("c", follow=True)
    s.activity("c", "webhook", "initiated")  # initiated -> ringing sends nothing
    assert 1.0 == s.due("c")
    s.activity("c", "webhook", "in_progress")  # every way out sends a webhook
    assert 30.0 == s.due("c")
    now[0] = 30.0
    s.succeeded("c", "in_progress", terminal=False)  # a safety-net poll found nothing new
    assert 60.0 == s.due("c")


def _rounded(step: tuple[str | None, float]) -> tuple[str | None, float]:
    return step[0], round(step[1], 6)


def test_schedule_intervals_backoff_rate_and_retry_after() -> None:
    now = [100.0]
    policy = PollPolicy(rate=2.0, jitter=0.0, backoff=1.0, max_backoff=4.0, max_failures=10)
    s = _Schedule(policy, lambda: now[0], seed=1)
    s.add("c")
    assert ("c", 0.0) == s.next()
    s.succeeded("c", "ringing", terminal=False)
    assert (None, 0.5) == _rounded(s.next())  # ringing is polled fast
    now[0] += 0.5
    assert "c" == s.next()[0]
    s.succeeded("c", "queued", terminal=False)
    assert (None, 2.0) == _rounded(s.next())
    # backoff doubles up to the cap
    delays = []
    for _ in range(4):
        s.failed("c", ServerError("boom"))
        delays.append(round((s.due("c") or 0.0) - now[0], 3))
    assert [1.0, 2.0, 4.0, 4.0] == delays
    # Retry-After pauses every call, and is never undercut by a shorter backoff
    s.add("d")
    s.failed("d", RateLimitError("429", retry_after=9.0))
    # c's own backoff would end at +4, but the account-wide pause holds it to +9
    assert (None, 9.0) == _rounded(s.next())
    now[0] += 9.0
    assert "c" == s.next()[0]


def test_schedule_rate_cap_and_terminal_calls() -> None:
    now = [0.0]
    s = _Schedule(PollPolicy(rate=2.0, jitter=0.0), lambda: now[0], seed=1)
    for c in "abc":
        s.add(c)
    assert "a" == s.next()[0]
    assert "b" == s.next()[0]
    call, wait = s.next()  # the bucket holds 2 tokens: the third waits
    assert call is None
    assert wait == pytest.approx(0.5)
    s.succeeded("a", "completed", terminal=True)
    assert "a" not in s.watched


def test_jitter_stays_within_bounds() -> None:
    s = _Schedule(PollPolicy(jitter=0.2), lambda: 0.0, seed=3)
    samples = [s.interval("ringing") for _ in range(200)]
    assert all(0.4 <= x <= 0.6 for x in samples)
    assert len(set(samples)) > 100


def test_over_real_http_on_loopback(tracker: CallTracker, fake: FakeHuskyVoice) -> None:
    call_id = fake.add_call("no_answer")
    with (
        fake.serve() as base_url,
        Poller(tracker, api_key=KEY, base_url=base_url, policy=FAST) as poller,
    ):
        assert "failed" == poller.watch(call_id, timeout=10).state


def test_the_async_poller(fake: FakeHuskyVoice) -> None:
    tracker = CallTracker()
    done: list[str] = []

    @tracker.on_terminal
    async def note(t: object) -> None:
        done.append(getattr(t, "dest", ""))

    calls = [fake.add_call(s) for s in ("answered", "busy", "disallowed")]

    async def main() -> list[str]:
        async with AsyncPoller(
            tracker, api_key=KEY, base_url=BASE, transport=fake.transport, policy=FAST
        ) as poller:
            finals = [(await poller.watch(c, timeout=10)).state for c in calls]
            with pytest.raises(NotFoundError):
                await poller.watch("call_nope", timeout=10)
            return finals

    assert ["completed", "failed", "failed"] == asyncio.run(main())
    assert sorted(["completed", "failed", "failed"]) == sorted(done)


def test_a_stopped_poller_leaves_no_handlers_behind(
    tracker: CallTracker, fake: FakeHuskyVoice
) -> None:
    before = dict(tracker._hooks._handlers)
    for _ in range(3):
        with Poller(tracker, api_key=KEY, base_url=BASE, transport=fake.transport, policy=FAST):
            assert before != tracker._hooks._handlers
    assert before == tracker._hooks._handlers


def test_a_failing_store_is_a_poll_failure_not_a_dead_worker(
    fake: FakeHuskyVoice, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(MemoryStore):
        def commit(self, *args: object) -> bool:
            raise OSError("disk full")

    tracker = CallTracker(store=Broken())
    policy = PollPolicy(rate=1000, jitter=0.0, max_failures=2).scaled(0.001)
    failed: list[PollFailure] = []
    with Poller(
        tracker, api_key=KEY, base_url=BASE, transport=fake.transport, policy=policy
    ) as poller:
        poller.on_poll_failed(failed.append)
        with pytest.raises(OSError, match="disk full"):
            poller.watch(fake.add_call("busy"), timeout=10)
        second = fake.add_call("busy")
        poller.add(second)  # the workers are still alive and polling
        with pytest.raises(OSError, match="disk full"):
            poller.watch(second, timeout=10)
    assert 2 == len(failed)
    assert "polling" in caplog.text


def test_a_followed_call_polled_just_as_it_goes_quiet_is_rescheduled_ahead() -> None:
    # 13.117170893019287 + 3.0 rounds to a time not after 16.117170893019285
    # although their difference is below 3.0: the next poll must still lie ahead
    now = [13.117170893019287]
    s = _Schedule(PollPolicy(jitter=0.0, quiet_after=3.0), lambda: now[0], seed=1)
    s.add("c", follow=True)
    now[0] = 16.117170893019285
    s.succeeded("c", "in_progress", terminal=False)
    due = s.due("c")
    assert due is not None
    assert due > now[0]
