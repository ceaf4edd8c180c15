from __future__ import annotations

import json
import time
from collections.abc import Mapping

import httpx
import pytest

from callfsm import (
    APIError,
    CallTracker,
    HuskyVoiceClient,
    Poller,
    PollPolicy,
    RateLimitError,
    UnexpectedResponse,
)
from callfsm.testing import FakeHuskyVoice
from callfsm.webhooks import SIGNATURE_HEADER, WebhookReceiver, sign

KEY = "sk_test_fake"
BASE = "http://127.0.0.1:9/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _client(fake: FakeHuskyVoice) -> HuskyVoiceClient:
    return HuskyVoiceClient(KEY, base_url=BASE, http_client=httpx.Client(transport=fake.transport))


def test_calls_follow_their_scenario_over_time() -> None:
    clock = Clock()
    fake = FakeHuskyVoice(clock=clock, step=1.0)
    call_id = fake.add_call("no_answer")
    seen = []
    for _ in range(5):
        seen.append(fake.status(call_id))
        clock.now += 1.0
    assert ["queued", "initiated", "ringing", "failed", "failed"] == seen
    assert fake.finished() is False  # its webhooks have not been pumped yet


def test_webhook_only_scenarios_still_start_queued_at_the_api() -> None:
    clock = Clock()
    fake = FakeHuskyVoice(clock=clock, step=1.0)
    call_id = fake.add_call("webhook_only")
    assert "queued" == fake.status(call_id)


def test_scenario_by_additional_info_or_by_callable() -> None:
    fake = FakeHuskyVoice(scenario=lambda i: ["busy", "answered"][i % 2])
    client = _client(fake)
    a = client.create_call("agent", "+91")
    b = client.create_call("agent", "+91")
    c = client.create_call("agent", "+91", additional_info={"scenario": "disallowed"})
    assert ["busy", "answered", "disallowed"] == [fake._calls[x].scenario for x in (a, b, c)]
    with pytest.raises(KeyError, match="no scenario"):
        fake.add_call("nope")


def test_cancel_works_only_while_queued_and_delete_only_when_ended() -> None:
    clock = Clock()
    fake = FakeHuskyVoice(clock=clock, step=1.0)
    client = _client(fake)
    queued = client.create_call("a", "+91")
    assert "cancelled" == client.cancel_call(queued)["status"]
    ringing = client.create_call("a", "+91", additional_info={"scenario": "answered"})
    clock.now += 2.0
    with pytest.raises(APIError, match="409"):
        client.cancel_call(ringing)
    with pytest.raises(APIError, match="409"):
        client.delete_call(ringing)
    assert client.delete_call(queued)["deleted"]


def test_injected_faults() -> None:
    fake = FakeHuskyVoice(clock=Clock())
    client = _client(fake)
    call_id = fake.add_call()
    fake.inject(429, retry_after=2, times=2, method="GET")
    for _ in range(2):
        with pytest.raises(RateLimitError) as info:
            client.get_call(call_id)
        assert 2.0 == info.value.retry_after
    assert "queued" == client.get_call(call_id)["status"]
    fake.inject(200, body=b"<html>", path=call_id)
    with pytest.raises(UnexpectedResponse, match="not JSON"):
        client.get_call(call_id)
    fake.inject(200, delay=0.05)  # slow, then a normal answer
    start = time.monotonic()
    assert "queued" == client.get_call(call_id)["status"]
    assert time.monotonic() - start >= 0.05
    assert 5 == fake.requests["GET /v1/calls/{id}"]


def test_requests_need_the_key() -> None:
    fake = FakeHuskyVoice(api_key=KEY)
    status, _, body = fake.respond("GET", "/v1/calls/x", {"Authorization": "Bearer nope"}, b"")
    assert 401 == status
    assert b"UNAUTHORIZED" in body


class Sink:
    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []

    def __call__(self, body: bytes, headers: Mapping[str, str]) -> int:
        assert sign(body, "whsec_test_fake") == headers[SIGNATURE_HEADER]
        self.bodies.append(json.loads(body))
        return 200


def _pump_all(fake: FakeHuskyVoice, clock: Clock, steps: int = 8) -> None:
    for _ in range(steps):
        clock.now += 1.0
        fake.pump()
    fake.flush()


def test_webhooks_are_signed_and_only_for_states_that_have_them() -> None:
    clock, sink = Clock(), Sink()
    fake = FakeHuskyVoice(webhooks=sink, clock=clock, step=1.0)
    fake.add_call("answered")
    _pump_all(fake, clock)
    assert ["call.initiated", "call.answered", "call.completed"] == [
        b["event_type"] for b in sink.bodies
    ]
    assert 124 == sink.bodies[-1]["data"]["duration_seconds"]  # type: ignore[index]
    assert fake.finished()


def test_webhook_faults_duplicate_drop_and_reorder() -> None:
    clock = Clock()
    twice = Sink()
    fake = FakeHuskyVoice(webhooks=twice, clock=clock, step=1.0, duplicate=1.0)
    fake.add_call("busy")
    _pump_all(fake, clock)
    assert ["call.initiated"] * 2 + ["call.failed"] * 2 == [b["event_type"] for b in twice.bodies]

    lost = Sink()
    fake = FakeHuskyVoice(webhooks=lost, clock=clock, step=1.0, drop=1.0)
    fake.add_call("busy")
    _pump_all(fake, clock)
    assert [] == lost.bodies

    swapped = Sink()
    fake = FakeHuskyVoice(webhooks=swapped, clock=clock, step=1.0, reorder=1.0)
    fake.add_call("busy")
    _pump_all(fake, clock)
    assert ["call.failed", "call.initiated"] == [b["event_type"] for b in swapped.bodies]


def test_reordered_webhooks_leave_the_tracker_where_the_call_ended() -> None:
    clock = Clock()
    tracker = CallTracker()
    receiver = WebhookReceiver(tracker, secret="whsec_test_fake")
    fake = FakeHuskyVoice(
        webhooks=receiver.handle, clock=clock, step=1.0, reorder=1.0, duplicate=0.5, seed=3
    )
    calls = [fake.add_call(s) for s in ("answered", "no_answer", "busy", "webhook_only")]
    _pump_all(fake, clock)
    assert ["completed", "failed", "failed", "completed"] == [tracker.state(c) for c in calls]


def test_lost_webhooks_are_caught_up_by_the_hybrid_poller() -> None:
    tracker = CallTracker()
    receiver = WebhookReceiver(tracker, secret="whsec_test_fake")
    fake = FakeHuskyVoice(api_key=KEY, webhooks=receiver.handle, step=0.02, drop=1.0)
    policy = PollPolicy(rate=1000, jitter=0.0, quiet_after=0.05).scaled(0.01)
    call_id = fake.add_call("answered")
    fake.start()
    try:
        with Poller(
            tracker, api_key=KEY, base_url=BASE, transport=fake.transport, policy=policy
        ) as poller:
            tracker.update(call_id, "queued", origin="api")
            poller.follow(call_id)
            assert "completed" == poller.watch(call_id, timeout=10).state
    finally:
        fake.stop()
    assert "poll" == tracker.get(call_id).history[-1].origin


def test_the_fake_stays_on_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeHuskyVoice(webhooks="https://example.com/hooks")
    fake = FakeHuskyVoice()
    with pytest.raises(ValueError, match="loopback"), fake.serve(host="0.0.0.0"):
        pass


def test_webhooks_over_real_http_to_a_loopback_url() -> None:
    from callfsm._cli_intake import serve_wsgi

    tracker = CallTracker()
    receiver = WebhookReceiver(tracker, secret="whsec_test_fake")
    clock = Clock()
    with serve_wsgi(receiver.wsgi) as url:
        fake = FakeHuskyVoice(webhooks=url + "/hook", clock=clock, step=1.0)
        call_id = fake.add_call("busy")
        _pump_all(fake, clock)
    assert "failed" == tracker.state(call_id)
    assert 2 == fake.webhooks_sent
