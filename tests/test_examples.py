"""Every example runs, and does what it says."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from callfsm.webhooks import SIGNATURE_HEADER, sign

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def _load(name: str) -> ModuleType:
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    yield _load
    for name in [p.stem for p in EXAMPLES.glob("*.py")]:
        sys.modules.pop(name, None)


def test_every_example_has_a_main() -> None:
    for path in EXAMPLES.glob("*.py"):
        assert "def main(" in path.read_text(), f"{path.name} has no main()"


def test_business_handlers(load: object, capsys: pytest.CaptureFixture[str]) -> None:
    crm = load("business_handlers").main()  # type: ignore[operator]
    assert [("answered", 124), ("webhook_only", 61), ("polled", 33)] == crm.invoices
    assert ["no_answer", "busy"] == crm.retries  # the DND block is not retried
    assert "cancelled" == crm.outcomes["cancelled"]
    assert "invoices:" in capsys.readouterr().out


def test_testing_business_rules(load: object, capsys: pytest.CaptureFixture[str]) -> None:
    checked = load("testing_business_rules").main()  # type: ignore[operator]
    assert 8 * 26 == checked
    assert "held on 208 deliveries of 8 paths" in capsys.readouterr().out


def _hook(event_type: str, call_id: str, event_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "event_type": event_type,
            "created_at": "2026-06-01T10:00:00Z",
            "org_id": "org_abc",
            "data": {"call_id": call_id},
        }
    ).encode()


def _headers(body: bytes, secret: str = "whsec_example") -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(body, secret), "Content-Type": "application/json"}


@pytest.mark.parametrize("name", ["webhooks_flask", "webhooks_fastapi", "webhooks_django"])
def test_framework_examples_main(load: Any, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    answer = load(name).main()
    assert {"status": 200, "body": {"result": "applied"}} == answer
    assert capsys.readouterr().out.startswith("200 ")


def _wsgi_app(name: str, module: Any) -> Any:
    if name == "webhooks_django":
        from django.core.handlers.wsgi import WSGIHandler
        from django.urls import clear_url_caches

        clear_url_caches()  # Django settings outlive the reloaded module: re-read its URLs
        return WSGIHandler()
    return module.app


@pytest.mark.parametrize("name", ["webhooks_flask", "webhooks_django"])
def test_wsgi_framework_examples_over_a_wsgi_transport(load: Any, name: str) -> None:
    module = load(name)
    with httpx.Client(
        transport=httpx.WSGITransport(app=_wsgi_app(name, module)), base_url="http://testserver"
    ) as http:
        body = _hook("call.initiated", "c-wsgi", "evt_w1")
        forged = http.post("/hooks/huskyvoice", content=body, headers=_headers(body, "nope"))
        assert 401 == forged.status_code
        assert "c-wsgi" not in module.tracker
        ok = http.post("/hooks/huskyvoice", content=body, headers=_headers(body))
        assert (200, {"result": "applied"}) == (ok.status_code, ok.json())
        again = http.post("/hooks/huskyvoice", content=body, headers=_headers(body))
        assert {"result": "duplicate"} == again.json()
    assert "initiated" == module.tracker.state("c-wsgi")


def test_fastapi_example_over_an_asgi_transport(load: Any) -> None:
    module = load("webhooks_fastapi")

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=module.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            body = _hook("call.failed", "c-asgi", "evt_a1")
            return [
                await http.post("/hooks/huskyvoice", content=body, headers=_headers(body, "x")),
                await http.post("/hooks/huskyvoice", content=body, headers=_headers(body)),
            ]

    forged, ok = asyncio.run(go())
    assert 401 == forged.status_code
    assert {"result": "applied"} == ok.json()
    assert ["c-asgi"] == [c for c in module.followed_up if c == "c-asgi"]
