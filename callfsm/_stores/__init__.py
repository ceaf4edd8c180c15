"""Stores: where call state lives (internal; the public names are in ``callfsm``)."""

from __future__ import annotations

from ._memory import MemoryStore
from ._protocol import CallRecord, Head, Store, make_record
from ._redis import RedisStore
from ._sqlite import SQLiteStore

__all__ = ["CallRecord", "Head", "MemoryStore", "RedisStore", "SQLiteStore", "Store", "make_record"]
