"""Stores under test: memory, SQLite and Redis (a throwaway redis-server on loopback)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callfsm import MemoryStore, RedisStore, SQLiteStore, Store

StoreFactory = Callable[..., Store]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Makes stores of one kind; stores made twice share their data (durable kinds)."""
    kind = request.param
    made: list[Store] = []
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    shared_memory: list[MemoryStore] = []

    def make(**kw: object) -> Store:
        store: Store
        if kind == "memory":
            if not shared_memory:
                shared_memory.append(MemoryStore(**kw))  # type: ignore[arg-type]
            store = shared_memory[0]
        elif kind == "sqlite":
            store = SQLiteStore(tmp_path / "calls.db", **kw)  # type: ignore[arg-type]
        else:
            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, prefix=prefix, **kw)  # type: ignore[arg-type]
        made.append(store)
        return store

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for store in made:
        if isinstance(store, RedisStore):
            store.clear()
        close = getattr(store, "close", None)
        if close is not None:
            close()
