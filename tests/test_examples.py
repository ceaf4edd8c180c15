"""Every example runs, and does what it says."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def _load(name: str) -> ModuleType:
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    yield _load
    for name in [p.stem for p in EXAMPLES.glob("*.py")]:
        sys.modules.pop(name, None)


def test_every_example_has_a_main() -> None:
    for path in EXAMPLES.glob("*.py"):
        assert "def main(" in path.read_text(), f"{path.name} has no main()"


def test_business_handlers(load: object, capsys: pytest.CaptureFixture[str]) -> None:
    crm = load("business_handlers").main()  # type: ignore[operator]
    assert [("answered", 124), ("webhook_only", 61), ("polled", 33)] == crm.invoices
    assert ["no_answer", "busy"] == crm.retries  # the DND block is not retried
    assert "cancelled" == crm.outcomes["cancelled"]
    assert "invoices:" in capsys.readouterr().out


def test_testing_business_rules(load: object, capsys: pytest.CaptureFixture[str]) -> None:
    checked = load("testing_business_rules").main()  # type: ignore[operator]
    assert 8 * 26 == checked
    assert "held on 208 deliveries of 8 paths" in capsys.readouterr().out
