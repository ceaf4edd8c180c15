"""HuskyVoice webhooks in a FastAPI app, with an async handler.

Run: ``python examples/webhooks_fastapi.py`` (sends one signed webhook through
the app). In production: ``uvicorn webhooks_fastapi:app`` and point HuskyVoice
at ``/hooks/huskyvoice``. ``app.mount("/hooks/huskyvoice", receiver.asgi)``
works too, without a route of your own.
"""

from __future__ import annotations

import asyncio
import json
import os

import httpx
from fastapi import FastAPI, Request, Response

from callfsm import CallTracker, Transition
from callfsm.webhooks import SIGNATURE_HEADER, WebhookReceiver, sign

SECRET = os.environ.get("HUSKYVOICE_WEBHOOK_SECRET", "whsec_example")

tracker = CallTracker()
receiver = WebhookReceiver(tracker, secret=SECRET)
app = FastAPI()
followed_up: list[str] = []


@tracker.on_failed
async def schedule_retry(event: Transition) -> None:
    await asyncio.sleep(0)  # your async CRM or queue client here
    followed_up.append(event.call_id)


@app.post("/hooks/huskyvoice")
async def huskyvoice_webhook(request: Request) -> Response:
    result = await receiver.ahandle(await request.body(), request.headers)
    return Response(result.content(), status_code=result.status, media_type="application/json")


async def _post_one() -> httpx.Response:
    body = json.dumps(
        {
            "event_id": "evt_2",
            "event_type": "call.failed",
            "created_at": "2026-06-01T10:00:00Z",
            "org_id": "org_abc",
            "data": {"call_id": "call_555", "status": "failed", "reason": "busy"},
        }
    ).encode()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as http:
        return await http.post(
            "/hooks/huskyvoice", content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)}
        )


def main() -> dict[str, object]:
    """Post one signed webhook through the app over ASGI; return the answer."""
    answer = asyncio.run(_post_one())
    print(answer.status_code, answer.json(), "retries:", followed_up)
    return {"status": answer.status_code, "body": answer.json()}


if __name__ == "__main__":
    main()
