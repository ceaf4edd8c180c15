"""A declarative call lifecycle, defined and validated through ``transitions``.

The ``transitions`` :class:`~transitions.Machine` is the single source of
truth for which moves are legal. The tracker never triggers it per call (its
``add_model`` is quadratic in the number of models and a trigger costs several
microseconds); instead :class:`Lifecycle` reads the machine's events once and
derives the lookup tables the update path needs.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Union

from transitions import Machine

from ._exceptions import LifecycleError, UnknownStatus

__all__ = ["HUSKYVOICE", "Lifecycle", "TransitionSpec"]

TransitionSpec = Union[Mapping[str, Union[str, Sequence[str]]], Sequence[Union[str, Sequence[str]]]]
"""``{"source": ..., "dest": ...}`` or ``(source, dest)``; a source may be a list or ``"*"``."""

#: Names the tracker uses for its own signals; a state may not take them.
RESERVED = frozenset({"transition", "terminal", "rejected", "ignored", "handler_failed"})


class Move(enum.Enum):
    """Why an update to state B does not move a call in state A forward (internal)."""

    DUPLICATE = 0
    STALE = 1
    REJECT = 2


class Lifecycle:
    """The states of a call and the legal moves between them.

    Args:
        name: A short name for messages and diagrams.
        states: Every state, in a stable order (identifiers, so that
            ``tracker.on_<state>`` works).
        transitions: The legal moves, each ``{"source": ..., "dest": ...}`` or
            ``(source, dest)``. A source may be a list of states or ``"*"``,
            which here means every non-terminal state.
        initial: Where a call starts.
        terminal: The states a call ends in; they have no way out.
        aliases: Other words for states (``{"canceled": "cancelled"}``).
        events: Provider event types that imply a state
            (``{"call.answered": "in_progress"}``); the type used is kept in the
            update's data under ``"event_type"``.

    Raises:
        LifecycleError: For an unknown or reserved state, a duplicate state, a
            terminal state with a way out, a state unreachable from ``initial``,
            a state with no path to any terminal state, a cycle, or an alias
            that clashes.
    """

    def __init__(
        self,
        name: str,
        states: Sequence[str],
        transitions: Iterable[TransitionSpec],
        *,
        initial: str,
        terminal: Iterable[str],
        aliases: Mapping[str, str] | None = None,
        events: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.states: tuple[str, ...] = tuple(states)
        self.initial = initial
        self.terminal: frozenset[str] = frozenset(terminal)
        self._check_states()
        pairs = self._expand(transitions)
        self.transitions: tuple[tuple[str, str], ...] = tuple(pairs)
        self._machine = Machine(
            model=None,
            states=list(self.states),
            transitions=[
                {"trigger": f"to_{dest}", "source": src, "dest": dest} for src, dest in pairs
            ],
            initial=initial,
            auto_transitions=False,
        )
        self._next = self._read_machine()
        self._check_graph()
        self.aliases: Mapping[str, str] = dict(aliases or {})
        self.events: Mapping[str, str] = dict(events or {})
        self._words = self._build_words()
        self._paths = self._shortest_paths()
        self._decisions = self._build_decisions()

    # -- definition and validation ---------------------------------------------------

    def _check_states(self) -> None:
        if not self.states:
            raise LifecycleError(f"lifecycle {self.name!r} has no states")
        seen: set[str] = set()
        for s in self.states:
            if not isinstance(s, str) or not s.isidentifier():
                raise LifecycleError(f"state {s!r} is not an identifier (use an alias for it)")
            if s in RESERVED:
                raise LifecycleError(
                    f"state {s!r} clashes with a tracker signal; reserved: {sorted(RESERVED)}"
                )
            if s in seen:
                raise LifecycleError(f"state {s!r} is listed twice")
            seen.add(s)
        if self.initial not in seen:
            raise LifecycleError(f"initial state {self.initial!r} is not one of the states")
        if not self.terminal:
            raise LifecycleError(f"lifecycle {self.name!r} has no terminal state")
        for t in sorted(self.terminal - seen):
            raise LifecycleError(f"terminal state {t!r} is not one of the states")

    def _expand(self, specs: Iterable[TransitionSpec]) -> list[tuple[str, str]]:
        known = set(self.states)
        pairs: list[tuple[str, str]] = []
        for spec in specs:
            if isinstance(spec, Mapping):
                try:
                    source, dest = spec["source"], spec["dest"]
                except KeyError as e:
                    raise LifecycleError(f"transition {dict(spec)!r} lacks {e.args[0]!r}") from None
            else:
                if len(spec) != 2:
                    raise LifecycleError(f"transition {spec!r} is not a (source, dest) pair")
                source, dest = spec
            if not isinstance(dest, str) or dest not in known:
                raise LifecycleError(f"transition to unknown state {dest!r}")
            if source == "*":
                sources: list[str] = [s for s in self.states if s not in self.terminal]
            elif isinstance(source, str):
                sources = [source]
            else:
                sources = list(source)
            for src in sources:
                if src not in known:
                    raise LifecycleError(f"transition from unknown state {src!r} to {dest!r}")
                if src in self.terminal:
                    raise LifecycleError(
                        f"terminal state {src!r} has a way out (to {dest!r}); terminal "
                        "states never change"
                    )
                if src == dest:
                    raise LifecycleError(f"transition from {src!r} to itself")
                if (src, dest) not in pairs:
                    pairs.append((src, dest))
        return pairs

    def _read_machine(self) -> dict[str, tuple[str, ...]]:
        """Adjacency read back from the transitions machine, in declaration order."""
        nxt: dict[str, list[str]] = {s: [] for s in self.states}
        for event in self._machine.events.values():
            for src, trans in event.transitions.items():
                for t in trans:
                    dest = str(t.dest)  # transitions types dest as Optional (internal moves)
                    if dest not in nxt[src]:
                        nxt[src].append(dest)
        order = {s: i for i, s in enumerate(self.states)}
        return {s: tuple(sorted(d, key=order.__getitem__)) for s, d in nxt.items()}

    def _check_graph(self) -> None:
        reached = self._bfs(self.initial)
        unreachable = [s for s in self.states if s not in reached and s != self.initial]
        if unreachable:
            raise LifecycleError(
                f"states unreachable from {self.initial!r}: {', '.join(map(repr, unreachable))}"
            )
        for s in self.states:
            ahead = self._bfs(s)
            if s in ahead:
                # updates are ordered by reachability, which a cycle makes ambiguous
                raise LifecycleError(
                    f"state {s!r} lies on a cycle; callfsm tells stale updates from new ones "
                    "by reachability, so a lifecycle must be acyclic"
                )
            if s not in self.terminal and not (ahead & self.terminal):
                raise LifecycleError(f"state {s!r} has no path to any terminal state")

    def _bfs(self, start: str) -> set[str]:
        seen: set[str] = set()
        todo = deque([start])
        while todo:
            for n in self._next[todo.popleft()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen

    def _build_words(self) -> dict[str, tuple[str, str | None]]:
        words: dict[str, tuple[str, str | None]] = {s: (s, None) for s in self.states}
        for table, is_event in ((self.aliases, False), (self.events, True)):
            for word, state in table.items():
                if state not in self._next:
                    raise LifecycleError(f"alias {word!r} points at unknown state {state!r}")
                if word in self.states:
                    raise LifecycleError(f"alias {word!r} is already a state")
                if word in words:
                    raise LifecycleError(f"alias {word!r} is defined twice")
                words[word] = (state, word if is_event else None)
        return words

    def _shortest_paths(self) -> dict[tuple[str, str], tuple[str, ...]]:
        paths: dict[tuple[str, str], tuple[str, ...]] = {}
        for start in self.states:
            todo: deque[tuple[str, tuple[str, ...]]] = deque([(start, ())])
            seen = {start}
            while todo:
                here, path = todo.popleft()
                for n in self._next[here]:
                    if n not in seen:
                        seen.add(n)
                        paths[start, n] = (*path, n)
                        todo.append((n, (*path, n)))
        return paths

    def _build_decisions(self) -> dict[tuple[str, str], tuple[str, ...] | Move]:
        """(current, requested) -> the states to enter on the way, or why there are none.

        One lookup on the update path: a tuple for a move forward, a
        :class:`Move` for a duplicate, a stale update or an illegal one.
        """
        table: dict[tuple[str, str], tuple[str, ...] | Move] = {}
        for a in self.states:
            for b in self.states:
                if a == b:
                    table[a, b] = Move.DUPLICATE
                elif (b, a) in self._paths:
                    table[a, b] = Move.STALE
                elif (a, b) in self._paths:
                    table[a, b] = self._paths[a, b]
                else:
                    table[a, b] = Move.REJECT
        return table

    # -- queries ------------------------------------------------------------------------

    def resolve(self, status: str) -> str:
        """Return the state a status word names.

        Args:
            status: A state, an alias or an event type; matched exactly, then
                trimmed and lower-cased.

        Raises:
            UnknownStatus: If the lifecycle does not know the word.
        """
        return self.lookup(status)[0]

    def lookup(self, status: str, call_id: str | None = None) -> tuple[str, str | None]:
        """Return ``(state, event_type)`` for a status word (event_type None for non-events).

        Raises:
            UnknownStatus: If the lifecycle does not know the word.
        """
        found = self._words.get(status)
        if found is None and isinstance(status, str):
            found = self._words.get(status.strip().lower())
        if found is None:
            raise UnknownStatus(status, self.states, [*self.aliases, *self.events], call_id=call_id)
        return found

    def allowed(self, state: str) -> tuple[str, ...]:
        """The states a call in ``state`` may move to directly."""
        return self._next[state]

    def is_terminal(self, state: str) -> bool:
        """True if ``state`` is one a call ends in."""
        return state in self.terminal

    def path(self, source: str, dest: str) -> tuple[str, ...] | None:
        """The shortest run of states from ``source`` to ``dest``, ``dest`` included.

        Returns:
            The states entered on the way, or None when ``dest`` is unreachable.
        """
        return self._paths.get((source, dest))

    def can_reach(self, source: str, dest: str) -> bool:
        """True if some sequence of legal moves leads from ``source`` to ``dest``."""
        return (source, dest) in self._paths

    def mermaid(self) -> str:
        """Return the lifecycle as a Mermaid ``stateDiagram-v2``."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        lines += [f"    {src} --> {dest}" for src, dest in self.transitions]
        lines += [f"    {t} --> [*]" for t in self.states if t in self.terminal]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"<Lifecycle {self.name!r}: {len(self.states)} states, initial {self.initial!r}>"


HUSKYVOICE = Lifecycle(
    "huskyvoice",
    ["queued", "initiated", "ringing", "in_progress", "completed", "failed", "cancelled"],
    [
        ("queued", "initiated"),
        ("initiated", "ringing"),
        ("ringing", "in_progress"),
        ("in_progress", "completed"),
        {"source": "*", "dest": "failed"},
        {"source": ["queued", "initiated", "ringing"], "dest": "cancelled"},
    ],
    initial="queued",
    terminal=["completed", "failed", "cancelled"],
    aliases={"in-progress": "in_progress", "canceled": "cancelled"},
    events={
        "call.initiated": "initiated",
        "call.answered": "in_progress",
        "call.completed": "completed",
        "call.failed": "failed",
        "call.disallowed": "failed",
    },
)
"""The HuskyVoice call lifecycle: queued → initiated → ringing → in_progress →
completed; failed from every non-terminal state; cancelled only before answer."""
