from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from callfsm import (
    APIError,
    AsyncHuskyVoiceClient,
    AuthenticationError,
    CallTracker,
    HuskyVoiceClient,
    MissingAPIKey,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
    UnexpectedResponse,
)
from callfsm._client import parse_retry_after
from callfsm.testing import FakeHuskyVoice

KEY = "sk_test_fake"
BASE = "http://127.0.0.1:9/v1"  # never reached: every test answers through a transport


@pytest.fixture
def fake() -> FakeHuskyVoice:
    return FakeHuskyVoice(api_key=KEY, step=10.0)


@pytest.fixture
def client(fake: FakeHuskyVoice) -> Iterator[HuskyVoiceClient]:
    http = httpx.Client(transport=fake.transport)
    with HuskyVoiceClient(KEY, base_url=BASE, http_client=http) as c:
        yield c
    http.close()


def _answering(
    status: int, body: bytes | str, headers: dict[str, str] | None = None
) -> HuskyVoiceClient:
    content = body.encode() if isinstance(body, str) else body

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers or {})

    return HuskyVoiceClient(
        KEY, base_url=BASE, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )


def test_create_get_cancel_delete(client: HuskyVoiceClient, fake: FakeHuskyVoice) -> None:
    call_id = client.create_call(
        "agent_alpha",
        "+919876543210",
        contact_name="Asha",
        additional_info={"scenario": "cancelled"},
    )
    assert call_id in fake.calls()
    data = client.get_call(call_id)
    assert "queued" == data["status"]
    assert "agent_alpha" == data["agent_id"]  # fields beyond status pass through
    answer = client.cancel_call(call_id)
    assert {"success": True, "status": "cancelled"}.items() <= answer.items()
    assert answer == client.cancel_call(call_id)  # repeating is safe
    assert "cancelled" == client.get_call(call_id)["status"]
    assert {"call_id": call_id, "deleted": True} == client.delete_call(call_id)
    with pytest.raises(NotFoundError):
        client.get_call(call_id)


def test_the_request_carries_the_key_the_body_and_an_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"data": {"call_id": "call_1", "status": "queued"}})

    client = HuskyVoiceClient(
        KEY, base_url=BASE, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    client.create_call("a", "+91", contact_email="x@example.com", additional_info={"k": 1})
    client.create_call("a", "+91", idempotency_key="mine")
    first, second = seen
    assert f"Bearer {KEY}" == first.headers["Authorization"]
    assert "http://127.0.0.1:9/v1/calls" == str(first.url)
    assert {
        "agent_id": "a",
        "contact_number": "+91",
        "contact_email": "x@example.com",
        "additional_info": {"k": 1},
    } == json.loads(first.content)
    assert len(first.headers["Idempotency-Key"]) == 36
    assert "mine" == second.headers["Idempotency-Key"]


def test_a_retried_create_places_one_call(client: HuskyVoiceClient, fake: FakeHuskyVoice) -> None:
    a = client.create_call("agent", "+91", idempotency_key="k1")
    b = client.create_call("agent", "+91", idempotency_key="k1")
    assert a == b
    assert 1 == len(fake.calls())


def test_call_ids_are_quoted_into_the_path() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"data": {"status": "queued"}})

    client = HuskyVoiceClient(
        KEY, base_url=BASE, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    client.get_call("../admin?x=1")
    assert ["/v1/calls/..%2Fadmin%3Fx%3D1"] == seen


def test_a_tracker_aware_client_starts_tracking_at_queued(fake: FakeHuskyVoice) -> None:
    tracker = CallTracker()
    client = HuskyVoiceClient(
        KEY, base_url=BASE, tracker=tracker, http_client=httpx.Client(transport=fake.transport)
    )
    call_id = client.create_call("agent", "+91")
    assert "queued" == tracker.state(call_id)
    assert "api" == tracker.get(call_id).history[0].origin


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (400, APIError),
    ],
)
def test_statuses_map_to_the_error_tree(status: int, error: type[APIError]) -> None:
    client = _answering(status, '{"error": {"code": "X"}}')
    with pytest.raises(error) as info:
        client.get_call("c")
    assert status == info.value.status_code
    assert '{"error": {"code": "X"}}' == info.value.body
    assert f"GET {BASE}/calls/c" in str(info.value)


def test_rate_limit_carries_retry_after() -> None:
    with pytest.raises(RateLimitError) as info:
        _answering(429, "{}", {"Retry-After": "7"}).get_call("c")
    assert 7.0 == info.value.retry_after
    with pytest.raises(RateLimitError) as info:
        _answering(429, "{}").get_call("c")
    assert info.value.retry_after is None


def test_retry_after_as_an_http_date() -> None:
    assert 30.0 == parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0)
    assert parse_retry_after("soon") is None
    assert 0.0 == parse_retry_after("-3")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"x": 1}', "no 'data'"),
        ('{"data": {"state": "queued"}}', "'data.status' is missing"),
        ('{"data": {"status": 3}}', "'data.status' is missing or not a string"),
    ],
)
def test_garbled_bodies_are_unexpected_responses(body: str, why: str) -> None:
    with pytest.raises(UnexpectedResponse, match=why) as info:
        _answering(200, body).get_call("c")
    assert 200 == info.value.status_code


def test_create_without_a_call_id_is_unexpected() -> None:
    with pytest.raises(UnexpectedResponse, match="call_id"):
        _answering(201, '{"data": {}}').create_call("a", "+91")


def test_transport_failures_are_transport_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = HuskyVoiceClient(
        KEY, base_url=BASE, http_client=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(TransportError, match="ConnectError") as info:
        client.get_call("c")
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_a_real_refused_connection_on_loopback() -> None:
    with (
        HuskyVoiceClient(KEY, base_url="http://127.0.0.1:9/v1", timeout=2) as client,
        pytest.raises(TransportError),
    ):
        client.get_call("c")


def test_the_key_comes_from_the_environment_or_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUSKYVOICE_API_KEY", raising=False)
    with pytest.raises(MissingAPIKey, match="HUSKYVOICE_API_KEY"):
        HuskyVoiceClient()
    with pytest.raises(MissingAPIKey):
        AsyncHuskyVoiceClient()
    monkeypatch.setenv("HUSKYVOICE_API_KEY", "sk_live_secret123")
    client = HuskyVoiceClient(base_url=BASE)
    assert "sk_live_secret123" not in repr(client)
    client.close()


def test_the_key_never_appears_in_errors() -> None:
    secret = "sk_live_dont_print_me"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text="unauthorized")

    client = HuskyVoiceClient(
        secret, base_url=BASE, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(AuthenticationError) as info:
        client.get_call("c")
    assert secret not in str(info.value)
    assert secret not in repr(info.value.__dict__)


def test_a_callers_client_is_not_closed(fake: FakeHuskyVoice) -> None:
    http = httpx.Client(transport=fake.transport)
    with HuskyVoiceClient(KEY, base_url=BASE, http_client=http):
        pass
    assert not http.is_closed
    http.close()


def test_the_async_client(fake: FakeHuskyVoice) -> None:
    async def main() -> tuple[str, str, dict[str, object]]:
        transport = httpx.MockTransport(fake.respond_httpx)
        async with (
            httpx.AsyncClient(transport=transport) as http,
            AsyncHuskyVoiceClient(KEY, base_url=BASE, http_client=http) as c,
        ):
            call_id = await c.create_call("a", "+91", additional_info={"scenario": "cancelled"})
            status = (await c.get_call(call_id))["status"]
            await c.cancel_call(call_id)
            deleted = await c.delete_call(call_id)
            with pytest.raises(NotFoundError):
                await c.get_call("nope")
            return call_id, status, deleted

    call_id, status, deleted = asyncio.run(main())
    assert "queued" == status
    assert {"call_id": call_id, "deleted": True} == deleted


def test_a_timeout_is_a_transport_error() -> None:
    fake = FakeHuskyVoice(api_key=KEY)
    call_id = fake.add_call()
    fake.inject(200, delay=1.0)
    with (
        fake.serve() as base_url,
        HuskyVoiceClient(KEY, base_url=base_url, timeout=0.1) as client,
        pytest.raises(TransportError, match="ReadTimeout"),
    ):
        client.get_call(call_id)
