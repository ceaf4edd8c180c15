"""Transitions to and from JSON, for stores that keep them outside the process."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .._events import EMPTY_DATA, Transition

__all__ = ["dump_data", "load_transition", "transition_row"]


def dump_data(data: Mapping[str, Any]) -> str:
    """The transition's data as JSON.

    Raises:
        TypeError: If the data holds something JSON cannot carry.
    """
    if not data:
        return "{}"
    try:
        return json.dumps(dict(data), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a durable store keeps update data as JSON: {exc}") from None


def transition_row(t: Transition) -> dict[str, Any]:
    """A JSON-ready dict of one transition."""
    return {
        "s": t.source,
        "d": t.dest,
        "at": t.at,
        "o": t.origin,
        "i": t.inferred,
        "data": json.loads(dump_data(t.data)),
    }


def load_transition(call_id: str, row: Mapping[str, Any]) -> Transition:
    """The transition a :func:`transition_row` dict describes."""
    data = row.get("data") or {}
    return Transition(
        call_id,
        row["s"],
        row["d"],
        float(row["at"]),
        row["o"],
        bool(row["i"]),
        MappingProxyType(data) if data else EMPTY_DATA,
    )
