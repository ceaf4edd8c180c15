"""The README's code runs, prints what it says, and its diagram is the real one."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from callfsm import HUSKYVOICE

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.DOTALL)
PYTHON = [(i, code) for i, (lang, code) in enumerate(BLOCKS) if lang == "python"]

pytest_plugins = ["pytester"]


PRINTS = dict(re.findall(r"```python\n(.*?)```\s*prints\s*```text\n(.*?)```", README, re.DOTALL))


def _expected_output(index: int) -> str | None:
    """What a python block says it prints (a ```text block after the word "prints")."""
    return PRINTS.get(BLOCKS[index][1])


@pytest.mark.parametrize(("index", "code"), [p for p in PYTHON if "def test_" not in p[1]])
def test_python_blocks_run(index: int, code: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README block {index}", "exec"), {})
    expected = _expected_output(index)
    if expected is not None:
        assert expected == out.getvalue()


@pytest.mark.parametrize(("index", "code"), [p for p in PYTHON if "def test_" in p[1]])
def test_test_blocks_pass_under_pytest(index: int, code: str, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_block=code)
    result = pytester.runpytest_subprocess("-q")
    tests = code.count("def test_")
    assert 0 == result.ret, result.stdout.str()
    assert tests <= result.parseoutcomes()["passed"]


def test_readme_diagram_is_the_lifecycle() -> None:
    (diagram,) = [code for lang, code in BLOCKS if lang == "mermaid"]
    assert HUSKYVOICE.mermaid() == diagram


def test_quickstart_commands_are_the_ones_ci_runs() -> None:
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    shell = [code.strip() for lang, code in BLOCKS if lang == "sh"]
    assert any("callfsm demo" in c for c in shell)
    (test_command,) = [c for c in shell if "pytest" in c]
    assert test_command in ci


def test_the_walkthrough_output_is_checked() -> None:
    walkthrough = [i for i, code in PYTHON if "call_1" in code]
    assert walkthrough
    assert _expected_output(walkthrough[0]) is not None


def test_the_redis_worker_setup_runs_against_a_real_redis(redis_url: str) -> None:
    (code,) = [c for _, c in PYTHON if "def make_tracker" in c]
    namespace: dict[str, object] = {}
    exec(compile(code, "README redis block", "exec"), namespace)
    tracker = namespace["make_tracker"](redis_url)  # type: ignore[operator]
    try:
        tracker.update("readme_call", "completed")
        assert "completed" == tracker.state("readme_call")
        assert 0 == tracker.recover(older_than=0)  # delivered: nothing left marked
    finally:
        tracker.store.clear()
        tracker.store.close()
