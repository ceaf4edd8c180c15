from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from callfsm._cli import main
from callfsm.testing import FakeHuskyVoice
from callfsm.webhooks import SIGNATURE_HEADER, sign


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_demo_tracks_every_call_to_its_end() -> None:
    status, text = _run("demo", "--calls", "6", "--step", "0.05", "--timeout", "20")
    assert 0 == status, text
    assert "calls by final state: cancelled 1, completed 2, failed 3" in text
    assert " webhook " in text
    assert " poll " in text
    assert "(inferred)" in text
    assert "webhooks received:" in text
    assert "duplicates" in text


def test_watch_prints_transitions_until_the_end() -> None:
    fake = FakeHuskyVoice(api_key="sk_test_w", step=0.05)
    call_id = fake.add_call("no_answer")
    with fake.serve() as base_url:
        status, text = _run(
            "watch", call_id, "--api-key", "sk_test_w", "--base-url", base_url, "--timeout", "20"
        )
    assert 0 == status
    assert f"{call_id} ended failed" in text
    assert "-> failed" in text


def test_watch_without_a_key_is_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HUSKYVOICE_API_KEY", raising=False)
    status, _ = _run("watch", "call_1", "--base-url", "http://127.0.0.1:9/v1")
    assert 2 == status
    err = capsys.readouterr().err
    assert "HUSKYVOICE_API_KEY" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("key", "call", "message"),
    [
        ("sk_wrong", "call_000001", "refused the key"),
        ("sk_test_w", "call_nope", "no call 'call_nope' (404)"),
    ],
)
def test_watch_errors_are_messages(
    key: str, call: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeHuskyVoice(api_key="sk_test_w")
    fake.add_call("answered")
    with fake.serve() as base_url:
        status, _ = _run("watch", call, "--api-key", key, "--base-url", base_url, "--timeout", "20")
    assert 1 == status
    assert message in capsys.readouterr().err


def test_replay_says_what_each_line_did(tmp_path: Path) -> None:
    hook = {
        "event_id": "e1",
        "event_type": "call.answered",
        "created_at": "2026-06-01T10:00:00Z",
        "data": {"call_id": "c1", "status": "in_progress"},
    }
    lines = [
        json.dumps({"data": {"call_id": "c1", "status": "initiated"}}),
        json.dumps(hook),
        json.dumps(hook),
        json.dumps({"call_id": "c1", "status": "ringing"}),
        "this is not json",
        json.dumps({"data": {"call_id": "c1", "status": "completed", "duration_seconds": 9}}),
        json.dumps({"data": {"call_id": "c1", "status": "cancelled"}}),
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n")
    status, text = _run("replay", str(path))
    assert 1 == status  # one line was unreadable
    rows = text.splitlines()
    assert "applied" in rows[0]
    assert "- -> initiated" in rows[0]
    assert "webhook" in rows[1]
    assert "initiated -> ringing, ringing -> in_progress" in rows[1]
    assert "duplicate" in rows[2]
    assert "stale" in rows[3]
    assert "unreadable" in rows[4]
    assert "in_progress -> completed" in rows[5]
    assert "rejected" in rows[6]
    assert "c1: ends completed" == rows[-1]


def test_serve_needs_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HUSKYVOICE_WEBHOOK_SECRET", raising=False)
    assert 2 == _run("serve")[0]
    assert "--secret" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_receives_webhooks_under_uvicorn() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfsm", "serve", "--port", str(port), "--secret", "whsec_s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        body = json.dumps(
            {
                "event_id": "e1",
                "event_type": "call.completed",
                "created_at": "2026-06-01T10:00:00Z",
                "data": {"call_id": "c9", "duration_seconds": 3},
            }
        ).encode()
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/",
                    content=body,
                    headers={SIGNATURE_HEADER: sign(body, "whsec_s")},
                    timeout=2,
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert (200, {"result": "applied"}) == (r.status_code, r.json())
        bad = httpx.post(f"http://127.0.0.1:{port}/", content=body, timeout=2)
        assert 401 == bad.status_code
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "c9" in out
    assert "-> completed" in out
