"""The ``callfsm`` command: ``diagram``, ``simulate`` and the intake commands."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from typing import TextIO

from ._cli_intake import add_commands
from ._events import Outcome
from ._lifecycle import HUSKYVOICE
from ._tracker import CallTracker
from .testing import SCENARIOS, simulate

__all__ = ["main"]


def _diagram(args: argparse.Namespace, out: TextIO) -> int:
    out.write(HUSKYVOICE.mermaid())
    return 0


def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    names = [args.scenario] if args.scenario else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(
            f"callfsm: no scenario {unknown[0]!r}; scenarios: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    tracker = CallTracker(strict=False)
    fired: list[str] = []
    for signal in [*tracker.lifecycle.states, "transition", "terminal", "ignored", "rejected"]:
        tracker.connect(signal, functools.partial(_note, fired, signal))
    for name in names:
        scenario = SCENARIOS[name]
        out.write(f"{name}: {scenario.description}\n")
        for item in scenario.flow:
            fired.clear()
            (outcome,) = simulate(tracker, name, [item])
            _show(item, outcome, fired, out)
        out.write(f"  => {tracker.state(name)}\n\n")
    return 0


def _note(fired: list[str], signal: str, payload: object) -> None:
    fired.append(signal)


def _show(item: object, outcome: Outcome, fired: list[str], out: TextIO) -> None:
    word = str(getattr(item, "status", item))
    out.write(f"  {word:<16} {outcome.kind!s:<9}")
    if not outcome.transitions:
        out.write(f" {outcome.reason}\n")
    for i, t in enumerate(outcome.transitions):
        lead = "" if i == 0 else " " * 28
        mark = " (inferred)" if t.inferred else ""
        extra = f" {dict(t.data)}" if t.data else ""
        out.write(f"{lead} {t.source or '-'} -> {t.dest}{mark}{extra}\n")
    out.write(f"{'':29}signals: {', '.join(fired) or 'none'}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``callfsm`` command."""
    parser = argparse.ArgumentParser(
        prog="callfsm", description="Call lifecycle state machine for voice-AI APIs."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("diagram", help="print the HuskyVoice lifecycle as a Mermaid diagram")
    p.set_defaults(run=_diagram)
    p = sub.add_parser("simulate", help="run a scenario and print transitions and signals")
    p.add_argument("scenario", nargs="?", help=f"one of: {', '.join(SCENARIOS)} (default: all)")
    p.set_defaults(run=_simulate)
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``callfsm`` command; returns its exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.run(args, out or sys.stdout)
    return status
