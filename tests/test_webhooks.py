from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from callfsm import CallTracker, Outcome, OutcomeKind, Transition
from callfsm.testing import FakeHuskyVoice, record
from callfsm.webhooks import SIGNATURE_HEADER, WebhookReceiver, sign

SECRET = "whsec_test"
NOW = datetime(2026, 6, 1, 10, 0, 0, tzinfo=timezone.utc)


def envelope(
    event_type: str = "call.completed",
    call_id: str = "call_987",
    *,
    event_id: str = "evt_123",
    at: datetime = NOW,
    **data: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "org_id": "org_abc",
        "data": {"call_id": call_id, "agent_id": "agent_alpha", **data},
    }


def signed(body: dict[str, Any] | bytes, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, secret)}


@pytest.fixture
def tracker() -> CallTracker:
    return CallTracker()


@pytest.fixture
def receiver(tracker: CallTracker) -> WebhookReceiver:
    return WebhookReceiver(tracker, secret=SECRET)


def test_a_signed_webhook_updates_the_tracker(
    receiver: WebhookReceiver, tracker: CallTracker
) -> None:
    got: list[Transition] = []
    tracker.on_completed(got.append)
    response = receiver.handle(*signed(envelope(duration_seconds=124, summary="ok")))
    assert 200 == response.status
    assert {"result": "applied"} == response.body
    (t,) = got
    assert ("call_987", None, "completed", "webhook") == (t.call_id, t.source, t.dest, t.origin)
    assert 124 == t.data["duration_seconds"]
    assert "call.completed" == t.data["event_type"]
    assert NOW.timestamp() == t.at


def test_webhook_only_flow_infers_ringing(receiver: WebhookReceiver, tracker: CallTracker) -> None:
    receiver.handle(*signed(envelope("call.initiated", event_id="e1")))
    receiver.handle(
        *signed(envelope("call.answered", event_id="e2", at=NOW + timedelta(seconds=5)))
    )
    assert ("ringing",) == tracker.get("call_987").inferred
    assert "in_progress" == tracker.state("call_987")


def test_redelivered_event_ids_are_duplicates(receiver: WebhookReceiver) -> None:
    assert "applied" == receiver.handle(*signed(envelope("call.initiated"))).body["result"]
    again = receiver.handle(*signed(envelope("call.initiated")))
    assert 200 == again.status
    assert "duplicate" == again.body["result"]


def test_an_older_webhook_after_a_newer_one_is_stale(receiver: WebhookReceiver) -> None:
    receiver.handle(*signed(envelope("call.answered", event_id="e2", at=NOW)))
    late = receiver.handle(
        *signed(envelope("call.failed", event_id="e1", at=NOW - timedelta(seconds=3)))
    )
    assert "stale" == late.body["result"]


def test_illegal_updates_are_acknowledged_and_reported(
    receiver: WebhookReceiver, tracker: CallTracker
) -> None:
    rejected: list[Outcome] = []
    tracker.on_rejected(rejected.append)
    receiver.handle(*signed(envelope("call.completed", event_id="e1")))
    response = receiver.handle(
        *signed(envelope("call.initiated", event_id="e2", at=NOW + timedelta(seconds=1)))
    )
    # initiated lies behind completed: stale. A contradicting end is rejected:
    assert "stale" == response.body["result"]
    response = receiver.handle(
        *signed(envelope("call.failed", event_id="e3", at=NOW + timedelta(seconds=2)))
    )
    assert 200 == response.status
    assert "rejected" == response.body["result"]
    assert [OutcomeKind.REJECTED] == [o.kind for o in rejected]
    assert "completed" == tracker.state("call_987")


def test_unknown_event_types_are_acknowledged_and_reported(
    receiver: WebhookReceiver, tracker: CallTracker
) -> None:
    seen: list[dict[str, Any]] = []
    receiver.unknown_event.connect(lambda sender, event: seen.append(event), weak=False)
    response = receiver.handle(*signed(envelope("call.transcribed")))
    assert 200 == response.status
    assert "ignored" == response.body["result"]
    assert ["call.transcribed"] == [e["event_type"] for e in seen]
    assert "call_987" not in tracker


def _refused(
    receiver: WebhookReceiver,
    tracker: CallTracker,
    body: bytes,
    headers: dict[str, str],
    method: str = "POST",
) -> tuple[int, str]:
    with record(tracker) as rec:
        response = receiver.handle(body, headers, method)
    assert [] == rec.events  # nothing fired
    assert [] == list(tracker.calls())  # nothing changed
    return response.status, response.body["error"]


def test_forged_or_unsigned_deliveries_are_401(
    receiver: WebhookReceiver, tracker: CallTracker
) -> None:
    body, headers = signed(envelope())
    assert (401, f"missing {SIGNATURE_HEADER} header") == _refused(receiver, tracker, body, {})
    forged = {SIGNATURE_HEADER: sign(body, "wrong secret")}
    assert 401 == _refused(receiver, tracker, body, forged)[0]
    tampered = body.replace(b"call_987", b"call_666")
    assert 401 == _refused(receiver, tracker, tampered, headers)[0]
    # re-serialised JSON hashes differently: the raw bytes are what is signed
    reserialised = json.dumps(json.loads(body), indent=2).encode()
    assert 401 == _refused(receiver, tracker, reserialised, headers)[0]


def test_header_names_are_case_insensitive(receiver: WebhookReceiver) -> None:
    body, headers = signed(envelope())
    lower = {k.lower(): v for k, v in headers.items()}
    assert 200 == receiver.handle(body, lower).status


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("event_id"), "envelope lacks 'event_id'"),
        (lambda e: e.pop("event_type"), "envelope lacks 'event_type'"),
        (lambda e: e.pop("created_at"), "envelope lacks 'created_at'"),
        (lambda e: e.pop("data"), "envelope lacks 'data'"),
        (lambda e: e["data"].pop("call_id"), "envelope lacks 'data.call_id'"),
        (lambda e: e.update(data=[1]), "'data' is not an object"),
        (lambda e: e.update(created_at="yesterday"), "'created_at' is not an ISO 8601 time"),
        (lambda e: e.update(event_id=7), "'event_id' is not a non-empty string"),
    ],
)
def test_malformed_envelopes_are_400_naming_the_field(
    receiver: WebhookReceiver, tracker: CallTracker, mutate: Any, message: str
) -> None:
    e = envelope()
    mutate(e)
    assert (400, message) == _refused(receiver, tracker, *signed(e))


def test_bodies_that_are_not_json_objects_are_400(
    receiver: WebhookReceiver, tracker: CallTracker
) -> None:
    assert (400, "body is not JSON") == _refused(receiver, tracker, *signed(b"{nope"))
    assert (400, "body is not a JSON object") == _refused(receiver, tracker, *signed(b"[1]"))


def test_size_limit_and_method(tracker: CallTracker) -> None:
    receiver = WebhookReceiver(tracker, secret=SECRET, max_body=100)
    big, headers = signed(envelope(summary="x" * 200))
    assert 413 == _refused(receiver, tracker, big, headers)[0]
    assert 405 == _refused(receiver, tracker, *signed(envelope()), method="GET")[0]


def test_max_age_refuses_replays(tracker: CallTracker) -> None:
    receiver = WebhookReceiver(
        tracker, secret=SECRET, max_age=300, clock=lambda: NOW.timestamp() + 301
    )
    status, message = _refused(receiver, tracker, *signed(envelope()))
    assert (400, "'created_at' is older than 300 s") == (status, message)
    fresh = WebhookReceiver(
        tracker, secret=SECRET, max_age=300, clock=lambda: NOW.timestamp() + 299
    )
    assert 200 == fresh.handle(*signed(envelope())).status


def test_rotating_secrets(tracker: CallTracker) -> None:
    receiver = WebhookReceiver(tracker, secrets=["whsec_old", "whsec_new"])
    assert 200 == receiver.handle(*signed(envelope(event_id="a"), "whsec_old")).status
    assert 200 == receiver.handle(*signed(envelope(event_id="b", call_id="c2"), "whsec_new")).status
    assert 401 == receiver.handle(*signed(envelope(event_id="c"), "whsec_other")).status
    with pytest.raises(ValueError, match="secret"):
        WebhookReceiver(tracker)


def test_refusals_are_reported(receiver: WebhookReceiver) -> None:
    seen: list[int] = []
    receiver.refused.connect(lambda sender, response: seen.append(response.status), weak=False)
    receiver.handle(b"{}", {})
    assert [401] == seen


def test_a_raising_handler_in_raise_mode_is_a_500_that_says_it_was_stored() -> None:
    tracker = CallTracker(raise_handler_errors=True)
    tracker.on_completed(lambda e: 1 / 0)
    response = WebhookReceiver(tracker, secret=SECRET).handle(*signed(envelope()))
    assert 500 == response.status
    assert "stored" in response.body["error"]
    assert "completed" == tracker.state("call_987")


def test_the_wsgi_app(receiver: WebhookReceiver, tracker: CallTracker) -> None:
    with httpx.Client(
        transport=httpx.WSGITransport(app=receiver.wsgi), base_url="http://testserver"
    ) as http:
        body, headers = signed(envelope())
        r = http.post("/hooks/huskyvoice", content=body, headers=headers)
        assert (200, {"result": "applied"}) == (r.status_code, r.json())
        assert 401 == http.post("/hooks/huskyvoice", content=body).status_code
        assert 405 == http.get("/hooks/huskyvoice").status_code
    assert "completed" == tracker.state("call_987")


def test_the_asgi_app_with_coroutine_handlers(tracker: CallTracker) -> None:
    receiver = WebhookReceiver(tracker, secret=SECRET, max_body=2000)
    done: list[str] = []

    @tracker.on_completed
    async def notify(event: Transition) -> None:
        await asyncio.sleep(0)
        done.append(event.call_id)

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=receiver.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            body, headers = signed(envelope())
            ok = await http.post("/hook", content=body, headers=headers)
            big = await http.post("/hook", content=b"x" * 5000, headers=headers)
            get = await http.get("/hook")
            return [ok.status_code, big.status_code, get.status_code]

    assert [200, 413, 405] == asyncio.run(main())
    assert ["call_987"] == done


def test_the_fake_signs_what_the_receiver_accepts(tracker: CallTracker) -> None:
    receiver = WebhookReceiver(tracker, secret="whsec_test_fake")
    clock = [0.0]
    fake = FakeHuskyVoice(webhooks=receiver.handle, clock=lambda: clock[0], step=1.0)
    answered = fake.add_call("answered")
    busy = fake.add_call("busy")
    for _ in range(6):
        clock[0] += 1.0
        fake.pump()
    assert "completed" == tracker.state(answered)
    assert ("ringing",) == tracker.get(answered).inferred  # no webhook for ringing
    assert "failed" == tracker.state(busy)
    assert 0 == fake.webhooks_failed
