from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_fixtures_come_with_the_package(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from callfsm import HandlerError
        from callfsm.testing import simulate

        def test_rule(call_tracker, signal_recorder):
            simulate(call_tracker, "c1", "no_answer")
            signal_recorder.assert_path("c1", ["queued", "initiated", "ringing", "failed"])

        def test_handler_errors_raise(call_tracker):
            call_tracker.on_failed(lambda e: 1 / 0)
            with pytest.raises(HandlerError):
                simulate(call_tracker, "c1", "busy")
        """
    )
    # no conftest and no -p: the pytest11 entry point alone brings the fixtures
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
