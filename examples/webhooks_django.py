"""HuskyVoice webhooks in a Django view (a one-file Django project, for the example).

Run: ``python examples/webhooks_django.py``. In your project, the view and the
URL pattern are the two parts to copy; keep the tracker and receiver at module
level (or in your AppConfig.ready()).
"""

from __future__ import annotations

import json
import os

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
    )
    django.setup()

from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from callfsm import CallTracker, Transition
from callfsm.webhooks import SIGNATURE_HEADER, WebhookReceiver, sign

SECRET = os.environ.get("HUSKYVOICE_WEBHOOK_SECRET", "whsec_example")

tracker = CallTracker()
receiver = WebhookReceiver(tracker, secret=SECRET)
answered: list[str] = []


@tracker.on_in_progress
def note_answer(event: Transition) -> None:
    answered.append(event.call_id)


@csrf_exempt  # HuskyVoice signs its requests; there is no CSRF token to check
@require_POST
def huskyvoice_webhook(request: HttpRequest) -> HttpResponse:
    result = receiver.handle(request.body, request.headers)
    return HttpResponse(result.content(), status=result.status, content_type="application/json")


urlpatterns = [path("hooks/huskyvoice", huskyvoice_webhook)]


def main() -> dict[str, object]:
    """Post one signed webhook through Django's test client; return the answer."""
    body = json.dumps(
        {
            "event_id": "evt_3",
            "event_type": "call.answered",
            "created_at": "2026-06-01T10:00:00Z",
            "org_id": "org_abc",
            "data": {"call_id": "call_321", "status": "in_progress"},
        }
    ).encode()
    answer = Client().post(
        "/hooks/huskyvoice",
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: sign(body, SECRET)},
    )
    print(answer.status_code, json.loads(answer.content), "answered:", answered)
    return {"status": answer.status_code, "body": json.loads(answer.content)}


if __name__ == "__main__":
    main()
