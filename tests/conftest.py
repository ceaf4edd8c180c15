from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from callfsm import CallTracker


@pytest.fixture
def tracker() -> CallTracker:
    """A strict HuskyVoice tracker whose handler errors raise."""
    return CallTracker(raise_handler_errors=True)


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
