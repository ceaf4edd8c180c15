"""Unit-test a business rule against every legal path and messy deliveries of it.

The rule: a call is billed exactly once if and only if it completed, and a
retry is scheduled exactly once if and only if it failed. ``paths()``
enumerates every way a call can go; ``scramble()`` delivers each the way
real webhooks and polls do (late, twice, out of order, some lost). Run it
under pytest (``pytest examples/testing_business_rules.py``) or as a script.
"""

from __future__ import annotations

import pytest
from business_handlers import Crm, wire  # type: ignore[import-not-found,unused-ignore]

from callfsm import CallTracker
from callfsm.testing import paths, scramble, simulate

SEEDS = range(25)


def check_rule(path: tuple[str, ...], flow: list[str]) -> None:
    """Feed ``flow`` (a delivery of ``path``) and check the rule held."""
    tracker = CallTracker(raise_handler_errors=True)
    crm = Crm()
    wire(tracker, crm)
    simulate(tracker, "c1", flow)
    billed = [call for call, _ in crm.invoices]
    if path[-1] == "completed":
        assert ["c1"] == billed
    else:
        assert [] == billed
    assert (["c1"] if path[-1] == "failed" else []) == crm.retries


@pytest.mark.parametrize("path", paths(), ids="->".join)
def test_rule_on_every_path(path: tuple[str, ...]) -> None:
    check_rule(path, list(path))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("path", paths(), ids="->".join)
def test_rule_survives_messy_delivery(path: tuple[str, ...], seed: int) -> None:
    check_rule(path, [str(s) for s in scramble(list(path), seed)])


def main() -> int:
    """Check the rule on every path and 25 scrambles of each; print the count."""
    checked = 0
    for path in paths():
        check_rule(path, list(path))
        checked += 1
        for seed in SEEDS:
            check_rule(path, [str(s) for s in scramble(list(path), seed)])
            checked += 1
    print(f"the billing and retry rule held on {checked} deliveries of {len(paths())} paths")
    return checked


if __name__ == "__main__":
    main()
