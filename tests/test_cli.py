from __future__ import annotations

import io
import subprocess
import sys

import pytest

from callfsm import HUSKYVOICE
from callfsm._cli import main


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_diagram_prints_mermaid() -> None:
    status, text = _run("diagram")
    assert 0 == status
    assert HUSKYVOICE.mermaid() == text


def test_simulate_one_scenario_prints_transitions_and_signals() -> None:
    status, text = _run("simulate", "webhook_only")
    assert 0 == status
    assert "initiated -> ringing (inferred)" in text
    assert "signals: ringing, transition, in_progress, transition" in text
    assert "=> completed" in text


def test_simulate_all_shows_ignored_updates() -> None:
    status, text = _run("simulate")
    assert 0 == status
    assert "duplicate" in text  # the poller saw in_progress twice
    assert text.count("=> ") == 7


def test_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = _run("simulate", "nope")
    assert 2 == status
    assert "no scenario 'nope'" in capsys.readouterr().err


def test_python_dash_m_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "callfsm", "diagram"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.startswith("stateDiagram-v2")
