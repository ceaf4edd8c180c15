"""HuskyVoice webhooks in a Flask app.

Run: ``python examples/webhooks_flask.py`` (sends one signed webhook through the
app and prints what the tracker made of it). In production, run ``app`` under
your WSGI server and point HuskyVoice at ``/hooks/huskyvoice``.
"""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request

from callfsm import CallTracker, Transition
from callfsm.webhooks import SIGNATURE_HEADER, WebhookReceiver, sign

SECRET = os.environ.get("HUSKYVOICE_WEBHOOK_SECRET", "whsec_example")

tracker = CallTracker()
receiver = WebhookReceiver(tracker, secret=SECRET)
app = Flask(__name__)
completed: list[str] = []


@tracker.on_completed
def thank_the_customer(event: Transition) -> None:
    completed.append(event.call_id)


@app.post("/hooks/huskyvoice")
def huskyvoice_webhook() -> Response:
    # the raw bytes, not request.json: the signature covers the body as sent
    result = receiver.handle(request.get_data(), request.headers)
    return Response(result.content(), status=result.status, mimetype="application/json")


def main() -> dict[str, object]:
    """Post one signed webhook through Flask's test client; return the answer."""
    body = json.dumps(
        {
            "event_id": "evt_1",
            "event_type": "call.completed",
            "created_at": "2026-06-01T10:00:00Z",
            "org_id": "org_abc",
            "data": {"call_id": "call_987", "status": "completed", "duration_seconds": 124},
        }
    ).encode()
    answer = app.test_client().post(
        "/hooks/huskyvoice", data=body, headers={SIGNATURE_HEADER: sign(body, SECRET)}
    )
    print(answer.status_code, answer.get_json(), "state:", tracker.state("call_987"))
    return {"status": answer.status_code, "body": answer.get_json()}


if __name__ == "__main__":
    main()
