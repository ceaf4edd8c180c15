"""A :class:`Store` in an SQLite file: the standard library's, safe across processes.

WAL journal, a busy timeout, every commit in one ``BEGIN IMMEDIATE``
transaction (the version check, the head, the transitions with their delivery
mark, the event id). One connection per thread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

from .._events import Transition
from ._codec import load_transition, transition_row
from ._protocol import CallRecord, Head, make_record

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS callfsm_calls (
    call_id   TEXT PRIMARY KEY,
    state     TEXT NOT NULL,
    version   INTEGER NOT NULL,
    last_at   REAL,
    ended_at  REAL,
    evicted   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS callfsm_commits (
    call_id      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    transitions  TEXT NOT NULL,
    committed_at REAL NOT NULL,
    delivered    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (call_id, version)
);
CREATE INDEX IF NOT EXISTS callfsm_undelivered
    ON callfsm_commits (committed_at) WHERE delivered = 0;
CREATE INDEX IF NOT EXISTS callfsm_ended ON callfsm_calls (ended_at) WHERE evicted = 0;
CREATE TABLE IF NOT EXISTS callfsm_events (
    event_id   TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""


class SQLiteStore:
    """A durable :class:`Store` in one SQLite file, shareable by processes on one host.

    Args:
        path: The database file (created with its tables if missing).
        event_ttl: Seconds an event id is remembered.
        busy_timeout: Seconds a writer waits for another's lock before failing.
        clock: Wall-clock time source (``time.time``).
    """

    durable = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        event_ttl: float = 24 * 3600.0,
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = os.fspath(path)
        self._event_ttl = event_ttl
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._connection() as db:
            db.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a process crash loses no commit; a power loss may lose the last few
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def head(self, call_id: str) -> Head | None:
        """Return ``(state, version, last_at, ended_at)``, or None for an unknown call."""
        row = (
            self._connection()
            .execute(
                "SELECT state, version, last_at, ended_at FROM callfsm_calls WHERE call_id = ?",
                (call_id,),
            )
            .fetchone()
        )
        return None if row is None else (row[0], row[1], row[2], row[3])

    def commit(
        self,
        call_id: str,
        expected_version: int,
        state: str,
        transitions: tuple[Transition, ...],
        last_at: float | None,
        ended_at: float | None,
        event_id: str | None,
    ) -> bool:
        """Move the call to ``state`` if its version is still ``expected_version``."""
        payload = json.dumps([transition_row(t) for t in transitions], separators=(",", ":"))
        now = self._clock()
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT version FROM callfsm_calls WHERE call_id = ?", (call_id,)
            ).fetchone()
            if (0 if row is None else row[0]) != expected_version or (
                event_id is not None
                and db.execute(
                    "SELECT 1 FROM callfsm_events WHERE event_id = ? AND expires_at > ?",
                    (event_id, now),
                ).fetchone()
            ):
                db.execute("ROLLBACK")  # another writer got there first: the tracker reads again
                return False
            version = expected_version + 1
            db.execute(
                "INSERT INTO callfsm_calls (call_id, state, version, last_at, ended_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET state = "
                "excluded.state, version = excluded.version, last_at = excluded.last_at, "
                "ended_at = excluded.ended_at",
                (call_id, state, version, last_at, ended_at),
            )
            db.execute(
                "INSERT INTO callfsm_commits (call_id, version, transitions, committed_at) "
                "VALUES (?, ?, ?, ?)",
                (call_id, version, payload, now),
            )
            if event_id is not None:
                db.execute(
                    "INSERT OR REPLACE INTO callfsm_events (event_id, expires_at) VALUES (?, ?)",
                    (event_id, now + self._event_ttl),
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return True

    def seen_event(self, event_id: str) -> bool:
        """True if a commit recorded this event id and it has not expired."""
        row = (
            self._connection()
            .execute("SELECT expires_at FROM callfsm_events WHERE event_id = ?", (event_id,))
            .fetchone()
        )
        return row is not None and row[0] > self._clock()

    def load(self, call_id: str) -> CallRecord | None:
        """A consistent snapshot: head and history read in one transaction."""
        db = self._connection()
        db.execute("BEGIN")
        try:
            head = db.execute(
                "SELECT state, version, last_at, ended_at, evicted FROM callfsm_calls "
                "WHERE call_id = ?",
                (call_id,),
            ).fetchone()
            rows = db.execute(
                "SELECT transitions FROM callfsm_commits WHERE call_id = ? ORDER BY version",
                (call_id,),
            ).fetchall()
        finally:
            db.execute("COMMIT")
        if head is None:
            return None
        history = tuple(load_transition(call_id, t) for (batch,) in rows for t in json.loads(batch))
        state, version, last_at, ended_at, evicted = head
        return make_record(call_id, state, version, history, last_at, ended_at, bool(evicted))

    def evict(self, ended_before: float) -> int:
        """Drop the history of calls that ended before ``ended_before``, keeping their heads."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT call_id FROM callfsm_calls WHERE evicted = 0 AND ended_at < ?",
                    (ended_before,),
                )
            ]
            for call_id in ids:
                # undelivered commits stay until recover() has delivered them
                db.execute(
                    "DELETE FROM callfsm_commits WHERE call_id = ? AND delivered = 1", (call_id,)
                )
                db.execute("UPDATE callfsm_calls SET evicted = 1 WHERE call_id = ?", (call_id,))
            db.execute("DELETE FROM callfsm_events WHERE expires_at <= ?", (self._clock(),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return len(ids)

    def call_ids(self) -> Iterator[str]:
        """Every call the store holds, tombstones included."""
        rows = self._connection().execute("SELECT call_id FROM callfsm_calls").fetchall()
        return iter([r[0] for r in rows])

    def delivered(self, call_id: str, version: int) -> None:
        """Clear the "not yet delivered" mark of the commit that wrote ``version``."""
        self._connection().execute(
            "UPDATE callfsm_commits SET delivered = 1 WHERE call_id = ? AND version = ?",
            (call_id, version),
        )

    def undelivered(
        self, committed_before: float
    ) -> Iterator[tuple[str, int, tuple[Transition, ...]]]:
        """Commits still marked undelivered, made before ``committed_before``."""
        rows = (
            self._connection()
            .execute(
                "SELECT call_id, version, transitions FROM callfsm_commits "
                "WHERE delivered = 0 AND committed_at < ? ORDER BY call_id, version",
                (committed_before,),
            )
            .fetchall()
        )
        for call_id, version, batch in rows:
            yield call_id, version, tuple(load_transition(call_id, t) for t in json.loads(batch))

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"
