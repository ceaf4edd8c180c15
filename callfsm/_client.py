"""Clients for the HuskyVoice Calls API over httpx, sync and async.

Both share :class:`_Protocol`, which builds requests and reads responses
without doing any I/O, so the two clients differ only in how they send.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ._exceptions import (
    APIError,
    AuthenticationError,
    MissingAPIKey,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
    UnexpectedResponse,
)

if TYPE_CHECKING:
    from ._tracker import CallTracker

__all__ = ["DEFAULT_BASE_URL", "AsyncHuskyVoiceClient", "HuskyVoiceClient", "parse_retry_after"]

DEFAULT_BASE_URL = "https://api.huskyvoice.ai/v1"
"""The public API; tests and the demo always pass a loopback ``base_url`` instead."""

API_KEY_ENV = "HUSKYVOICE_API_KEY"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Protocol:
    """Requests and responses of the Calls API, without I/O (internal)."""

    def __init__(self, api_key: str | None, base_url: str) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key:
            raise MissingAPIKey()
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        self.base_url = base_url.rstrip("/")

    def request(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        url: str,
        timeout: httpx.Timeout,
        headers: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Request:
        merged = {**self.headers, **(headers or {})}
        return http.build_request(method, url, headers=merged, timeout=timeout, **kw)

    def url(self, *parts: str) -> str:
        return "/".join([self.base_url, *(quote(p, safe="") for p in parts)])

    @staticmethod
    def create_body(
        agent_id: str,
        contact_number: str,
        contact_name: str | None,
        contact_email: str | None,
        additional_info: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"agent_id": agent_id, "contact_number": contact_number}
        if contact_name is not None:
            body["contact_name"] = contact_name
        if contact_email is not None:
            body["contact_email"] = contact_email
        if additional_info is not None:
            body["additional_info"] = dict(additional_info)
        return body

    def read(self, response: httpx.Response) -> dict[str, Any]:
        """Raise the matching error for a failed response; else the JSON object."""
        status = response.status_code
        if status >= 400:
            raise self.error(response)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._unexpected(response, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise self._unexpected(response, "the body is not a JSON object")
        return body

    def data(self, response: httpx.Response, *required: str) -> dict[str, Any]:
        """The ``data`` object of a response, with the fields it must have."""
        body = self.read(response)
        data = body.get("data")
        if not isinstance(data, dict):
            raise self._unexpected(response, "the body has no 'data' object")
        for name in required:
            if not isinstance(data.get(name), str) or not data[name]:
                raise self._unexpected(response, f"'data.{name}' is missing or not a string")
        return data

    @staticmethod
    def _context(response: httpx.Response) -> dict[str, Any]:
        request = response.request
        return {
            "status_code": response.status_code,
            "body": response.text,
            "method": request.method,
            "url": str(request.url),
        }

    def _unexpected(self, response: httpx.Response, why: str) -> UnexpectedResponse:
        return UnexpectedResponse(
            f"unexpected response ({response.status_code}): {why}", **self._context(response)
        )

    def error(self, response: httpx.Response) -> APIError:
        status = response.status_code
        context = self._context(response)
        if status in (401, 403):
            return AuthenticationError(
                f"{status}: the API key was refused or lacks the scope", **context
            )
        if status == 404:
            return NotFoundError("404: no such call", **context)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return RateLimitError("429: rate limited", retry_after=retry_after, **context)
        if status >= 500:
            return ServerError(f"{status}: the API failed", **context)
        return APIError(f"{status}: the API refused the request", **context)

    @staticmethod
    def transport_error(exc: httpx.TransportError, request: httpx.Request) -> TransportError:
        kind = type(exc).__name__
        return TransportError(
            f"no response ({kind}: {exc})", method=request.method, url=str(request.url)
        )


class HuskyVoiceClient:
    """The HuskyVoice Calls API, synchronously.

    Args:
        api_key: The key; by default the ``HUSKYVOICE_API_KEY`` environment variable.
        base_url: The API root (``.../v1``).
        timeout: Seconds per request (httpx's timeout for connect, read, write, pool).
        http_client: Your own :class:`httpx.Client` (proxies, retries, a
            ``MockTransport``); callfsm never closes it.
        tracker: When given, calls created here start being tracked at ``queued``.

    Raises:
        MissingAPIKey: If there is no key at all.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        http_client: httpx.Client | None = None,
        tracker: CallTracker | None = None,
    ) -> None:
        self._api = _Protocol(api_key, base_url)
        self._owns = http_client is None
        self._http = http_client if http_client is not None else httpx.Client()
        self._timeout = httpx.Timeout(timeout)
        self.tracker = tracker

    def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        request = self._api.request(self._http, method, url, self._timeout, **kw)
        try:
            return self._http.send(request)
        except httpx.TransportError as exc:
            raise self._api.transport_error(exc, request) from exc

    def create_call(
        self,
        agent_id: str,
        contact_number: str,
        *,
        contact_name: str | None = None,
        contact_email: str | None = None,
        additional_info: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Place a call; returns its id.

        Args:
            agent_id: The HuskyVoice agent that talks.
            contact_number: E.164, such as ``+919876543210``.
            contact_name: Shown to the agent.
            contact_email: Passed through.
            additional_info: Extra context for the agent.
            idempotency_key: Sent as ``Idempotency-Key``; one is generated when
                None, so a retried create never places two calls.

        Raises:
            APIError: Or one of its subclasses.
        """
        body = self._api.create_body(
            agent_id, contact_number, contact_name, contact_email, additional_info
        )
        key = idempotency_key or str(uuid.uuid4())
        response = self._send(
            "POST", self._api.url("calls"), json=body, headers={"Idempotency-Key": key}
        )
        call_id = str(self._api.data(response, "call_id")["call_id"])
        if self.tracker is not None:
            self.tracker.update(call_id, "queued", origin="api", strict=False)
        return call_id

    def get_call(self, call_id: str) -> dict[str, Any]:
        """The call's ``data`` object; ``status`` is always there, other fields pass through.

        Raises:
            APIError: Or one of its subclasses.
        """
        return self._api.data(self._send("GET", self._api.url("calls", call_id)), "status")

    def cancel_call(self, call_id: str) -> dict[str, Any]:
        """Cancel a call that is still queued; safe to repeat. Returns the API's answer.

        Raises:
            APIError: Or one of its subclasses.
        """
        return self._api.read(self._send("POST", self._api.url("calls", call_id, "cancel")))

    def delete_call(self, call_id: str) -> dict[str, Any]:
        """Erase the personal data of a finished call. Returns the ``data`` object.

        Raises:
            APIError: Or one of its subclasses.
        """
        return self._api.data(self._send("DELETE", self._api.url("calls", call_id)))

    def close(self) -> None:
        """Close the connection pool, unless it was the caller's own client."""
        if self._owns:
            self._http.close()

    def __enter__(self) -> HuskyVoiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the key
        return f"<HuskyVoiceClient base_url={self._api.base_url!r}>"


class AsyncHuskyVoiceClient:
    """The HuskyVoice Calls API on asyncio; the same methods as
    :class:`HuskyVoiceClient`, awaited, over an :class:`httpx.AsyncClient`."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
        tracker: CallTracker | None = None,
    ) -> None:
        self._api = _Protocol(api_key, base_url)
        self._owns = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout)
        self.tracker = tracker

    async def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        request = self._api.request(self._http, method, url, self._timeout, **kw)
        try:
            return await self._http.send(request)
        except httpx.TransportError as exc:
            raise self._api.transport_error(exc, request) from exc

    async def create_call(
        self,
        agent_id: str,
        contact_number: str,
        *,
        contact_name: str | None = None,
        contact_email: str | None = None,
        additional_info: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Place a call; returns its id. See :meth:`HuskyVoiceClient.create_call`."""
        body = self._api.create_body(
            agent_id, contact_number, contact_name, contact_email, additional_info
        )
        key = idempotency_key or str(uuid.uuid4())
        response = await self._send(
            "POST", self._api.url("calls"), json=body, headers={"Idempotency-Key": key}
        )
        call_id = str(self._api.data(response, "call_id")["call_id"])
        if self.tracker is not None:
            await self.tracker.aupdate(call_id, "queued", origin="api", strict=False)
        return call_id

    async def get_call(self, call_id: str) -> dict[str, Any]:
        """The call's ``data`` object. See :meth:`HuskyVoiceClient.get_call`."""
        response = await self._send("GET", self._api.url("calls", call_id))
        return self._api.data(response, "status")

    async def cancel_call(self, call_id: str) -> dict[str, Any]:
        """Cancel a queued call. See :meth:`HuskyVoiceClient.cancel_call`."""
        return self._api.read(await self._send("POST", self._api.url("calls", call_id, "cancel")))

    async def delete_call(self, call_id: str) -> dict[str, Any]:
        """Erase a finished call's personal data. See :meth:`HuskyVoiceClient.delete_call`."""
        return self._api.data(await self._send("DELETE", self._api.url("calls", call_id)))

    async def aclose(self) -> None:
        """Close the connection pool, unless it was the caller's own client."""
        if self._owns:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncHuskyVoiceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:  # never shows the key
        return f"<AsyncHuskyVoiceClient base_url={self._api.base_url!r}>"
