"""Stores under test: memory, SQLite and Redis (a throwaway redis-server on loopback)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callfsm import MemoryStore, RedisStore, SQLiteStore, Store

REDIS_HOWTO = (
    "no Redis: install redis-server (apt-get install redis-server) or set "
    "CALLFSM_TEST_REDIS_URL=redis://127.0.0.1:6379/0"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for the tests: CALLFSM_TEST_REDIS_URL, or a server of our own."""
    given = os.environ.get("CALLFSM_TEST_REDIS_URL")
    if given:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CALLFSM_REQUIRE_REDIS"):  # CI: never skip them silently
            pytest.fail(REDIS_HOWTO)
        pytest.skip(REDIS_HOWTO)
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    client.close()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


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
