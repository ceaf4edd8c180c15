"""Receive HuskyVoice's signed webhooks: ``WebhookReceiver`` and its ASGI and WSGI apps."""

from __future__ import annotations

from .._webhooks import SIGNATURE_HEADER, WebhookReceiver, WebhookResponse, sign

__all__ = ["SIGNATURE_HEADER", "WebhookReceiver", "WebhookResponse", "sign"]
