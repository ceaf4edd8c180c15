"""Receiving HuskyVoice's signed webhooks, framework-neutral, plus ASGI and WSGI apps.

Order of checks, each refusing before anything changes: method, size,
signature (HMAC-SHA256 of the raw body, constant time, every configured
secret), JSON, envelope fields, age. Only then is the update handed to the
tracker, in lenient mode: an illegal update is acknowledged with 200 and
reported on the tracker's ``rejected`` signal, so the sender does not retry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import datetime
from typing import Any, Protocol

import blinker

from ._events import Outcome
from ._exceptions import HandlerError, UnknownStatus
from ._tracker import CallTracker

__all__ = ["SIGNATURE_HEADER", "WebhookReceiver", "WebhookResponse", "sign"]

log = logging.getLogger("callfsm.webhooks")

SIGNATURE_HEADER = "X-Husky-Signature"
_REQUIRED = ("event_id", "event_type", "created_at", "data")

ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Headers(Protocol):
    """Request headers: a dict, or any framework's headers object (get and items)."""

    def get(self, key: str, /) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


def sign(body: bytes, secret: str) -> str:
    """The ``X-Husky-Signature`` of ``body``: the lowercase hex HMAC-SHA256 under ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What to answer the sender: a status and a small JSON body.

    Attributes:
        status: 200, or 400, 401, 405, 413 (500 if a handler raised in raise mode).
        body: ``{"result": ...}`` on 200, ``{"error": ...}`` otherwise.
        outcome: The tracker's outcome, when the update reached it.
    """

    status: int
    body: dict[str, Any]
    outcome: Outcome | None = None

    def content(self) -> bytes:
        """The body as JSON bytes."""
        return json.dumps(self.body, separators=(",", ":")).encode()


def _refuse(status: int, message: str) -> WebhookResponse:
    return WebhookResponse(status, {"error": message})


class WebhookReceiver:
    """Verifies HuskyVoice webhooks and feeds them to a tracker.

    Args:
        tracker: The tracker to update (origin ``"webhook"``, lenient).
        secret: The endpoint's webhook secret.
        secrets: Several secrets, any of which may sign: rotate keys without
            downtime by adding the new one before the sender switches.
        max_age: Refuse deliveries whose ``created_at`` is older than this many
            seconds (replays); None accepts any age.
        max_body: Bytes; larger bodies get 413 (1 MiB by default).
        clock: Time source for ``max_age`` (``time.time``).

    Raises:
        ValueError: If no secret is given.
    """

    def __init__(
        self,
        tracker: CallTracker,
        secret: str | None = None,
        *,
        secrets: Iterable[str] = (),
        max_age: float | None = None,
        max_body: int = 1 << 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys = [k for k in ([secret] if secret else []) + list(secrets) if k]
        if not keys:
            raise ValueError("a WebhookReceiver needs secret=... or secrets=[...]")
        self.tracker = tracker
        self._keys = [k.encode() for k in keys]
        self.max_age = max_age
        self.max_body = max_body
        self._clock = clock
        self.unknown_event = blinker.Signal(
            "A verified webhook had an event type the lifecycle does not know; it was "
            "acknowledged. Receivers get (receiver, event=<the parsed envelope>)."
        )
        self.refused = blinker.Signal(
            "A delivery was refused (401, 400, 405, 413). Receivers get "
            "(receiver, response=<WebhookResponse>)."
        )

    # -- framework-neutral core -------------------------------------------------------

    def handle(self, body: bytes, headers: Headers, method: str = "POST") -> WebhookResponse:
        """Verify and apply one delivery.

        Args:
            body: The raw request body, exactly as received.
            headers: The request headers (any case).
            method: The HTTP method.

        Returns:
            The response to send.
        """
        checked = self._check(body, headers, method)
        if isinstance(checked, WebhookResponse):
            return checked
        envelope, update = checked
        try:
            outcome = self.tracker.update(**update)
        except (UnknownStatus, HandlerError) as exc:
            return self._not_applied(exc, envelope)
        return WebhookResponse(200, {"result": str(outcome.kind)}, outcome)

    async def ahandle(self, body: bytes, headers: Headers, method: str = "POST") -> WebhookResponse:
        """Like :meth:`handle`, through :meth:`CallTracker.aupdate` (coroutine handlers)."""
        checked = self._check(body, headers, method)
        if isinstance(checked, WebhookResponse):
            return checked
        envelope, update = checked
        try:
            outcome = await self.tracker.aupdate(**update)
        except (UnknownStatus, HandlerError) as exc:
            return self._not_applied(exc, envelope)
        return WebhookResponse(200, {"result": str(outcome.kind)}, outcome)

    def verify(self, body: bytes, signature: str | None) -> bool:
        """True if ``signature`` is the HMAC of ``body`` under any configured secret."""
        if not signature:
            return False
        given = signature.strip().lower().encode()
        ok = False
        for key in self._keys:  # every key, always: no timing hint of which matched
            expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
            ok |= hmac.compare_digest(expected, given)
        return ok

    def _check(
        self, body: bytes, headers: Headers, method: str
    ) -> WebhookResponse | tuple[dict[str, Any], dict[str, Any]]:
        """A refusal, or the envelope and the tracker update it asks for."""
        if method.upper() != "POST":
            return self._refused(_refuse(405, f"method {method} not allowed; use POST"))
        if len(body) > self.max_body:
            return self._refused(_refuse(413, f"body over {self.max_body} bytes"))
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            return self._refused(_refuse(401, f"missing {SIGNATURE_HEADER} header"))
        if not self.verify(body, signature):
            return self._refused(_refuse(401, f"{SIGNATURE_HEADER} does not match the body"))
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._refused(_refuse(400, "body is not JSON"))
        if not isinstance(envelope, dict):
            return self._refused(_refuse(400, "body is not a JSON object"))
        for name in _REQUIRED:
            if name not in envelope:
                return self._refused(_refuse(400, f"envelope lacks {name!r}"))
        data = envelope["data"]
        if not isinstance(data, dict):
            return self._refused(_refuse(400, "'data' is not an object"))
        call_id = data.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            return self._refused(_refuse(400, "envelope lacks 'data.call_id'"))
        for name in ("event_id", "event_type", "created_at"):
            if not isinstance(envelope[name], str) or not envelope[name]:
                return self._refused(_refuse(400, f"{name!r} is not a non-empty string"))
        at = _parse_time(envelope["created_at"])
        if at is None:
            return self._refused(_refuse(400, "'created_at' is not an ISO 8601 time"))
        if self.max_age is not None and self._clock() - at.timestamp() > self.max_age:
            return self._refused(_refuse(400, f"'created_at' is older than {self.max_age:g} s"))
        update = {
            "call_id": call_id,
            "status": envelope["event_type"],
            "at": at,
            "data": data,
            "origin": "webhook",
            "event_id": envelope["event_id"],
            "strict": False,
        }
        return envelope, update

    def _refused(self, response: WebhookResponse) -> WebhookResponse:
        log.warning("callfsm webhook refused: %s %s", response.status, response.body["error"])
        if self.refused.receivers:
            self.refused.send(self, response=response)
        return response

    def _not_applied(self, exc: Exception, envelope: dict[str, Any]) -> WebhookResponse:
        if isinstance(exc, HandlerError):
            return self._handler_failed(exc)
        return self._unknown(envelope)

    def _unknown(self, envelope: dict[str, Any]) -> WebhookResponse:
        log.info("callfsm webhook with unknown event type %r acknowledged", envelope["event_type"])
        if self.unknown_event.receivers:
            self.unknown_event.send(self, event=envelope)
        return WebhookResponse(200, {"result": "ignored", "reason": "unknown event type"})

    @staticmethod
    def _handler_failed(exc: HandlerError) -> WebhookResponse:
        # the update was stored; a retry will be a duplicate, so say what happened
        return WebhookResponse(500, {"error": "stored, but a handler raised", "detail": str(exc)})

    # -- apps ------------------------------------------------------------------------

    @property
    def asgi(self) -> ASGIApp:
        """An ASGI application: mount it at your webhook path in any ASGI framework."""
        return ASGIApp(self)

    async def _asgi(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                break  # stop reading; handle() answers 413
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks) if size <= self.max_body else b"\0" * (self.max_body + 1)
        response = await self.ahandle(body, headers, scope["method"])
        payload = response.content()
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """A WSGI application: mount it at your webhook path in any WSGI framework."""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = environ["wsgi.input"]
        body = stream.read(min(length, self.max_body + 1)) if length else b""
        response = self.handle(body, headers, environ.get("REQUEST_METHOD", "GET"))
        payload = response.content()
        reason = _REASONS.get(response.status, "")
        start_response(
            f"{response.status} {reason}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]


class ASGIApp:
    """A :class:`WebhookReceiver` as an ASGI 3 application (``receiver.asgi``)."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        """Serve one ASGI connection (HTTP or lifespan)."""
        await self.receiver._asgi(scope, receive, send)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


def _header(headers: Headers, name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
