"""A :class:`Store` in Redis: for workers on many hosts (the ``redis`` extra).

Every commit is one Lua script, so the version check, the event-id check, the
new head, the history, the delivery mark and the expiries happen in one
server-side step. Keys live under a prefix; a call's keys are
``{prefix}call:{id}`` (a hash: the head) and ``{prefix}hist:{id}`` (a list of
commits), plus store-wide ``{prefix}undelivered`` (sorted by commit time),
``{prefix}batches`` and ``{prefix}ended``. Event ids are ``{prefix}evt:{id}``
with a time to live. Not for Redis Cluster (the keys of one commit would span
slots).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._events import Transition
from ._codec import load_transition, transition_row
from ._protocol import CallRecord, Head, make_record

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]

_COMMIT = """
-- KEYS: call, hist, undelivered, batches, ended, event (or the empty string)
-- ARGV: expected, state, last_at, ended_at, batch, now, member, event_ttl,
--       history_ttl, tombstone_ttl, call_id
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
if KEYS[6] ~= '' and redis.call('EXISTS', KEYS[6]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'version', current + 1,
           'last_at', ARGV[3], 'ended_at', ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7])
redis.call('HSET', KEYS[4], ARGV[7], ARGV[5])
if KEYS[6] ~= '' then redis.call('SET', KEYS[6], '1', 'EX', ARGV[8]) end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[11])
  if tonumber(ARGV[9]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[9]) end
  if tonumber(ARGV[10]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[10]) end
end
return 1
"""

_LOAD = """
-- KEYS: call, hist
local head = redis.call('HMGET', KEYS[1], 'state', 'version', 'last_at', 'ended_at', 'evicted')
local hist = redis.call('LRANGE', KEYS[2], 0, -1)
return {head, hist}
"""


def _num(value: Any) -> float | None:
    if value is None or value in (b"", ""):
        return None
    return float(value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """A durable :class:`Store` in Redis, for any number of processes and hosts.

    Args:
        url_or_client: A ``redis://`` URL, or a ``redis.Redis`` client of your own.
        prefix: Put before every key, so that several apps share one Redis.
        event_ttl: Seconds an event id is remembered.
        history_ttl: Seconds a terminal call keeps its history (0: for ever).
        tombstone_ttl: Seconds a terminal call's head is kept, so that late
            updates stay ignored (0: for ever).
        clock: Wall-clock time source (``time.time``).

    Raises:
        ImportError: If the ``redis`` package is missing (``pip install 'callfsm[redis]'``).
    """

    durable = True

    def __init__(
        self,
        url_or_client: str | redis.Redis = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "callfsm:",
        event_ttl: float = 24 * 3600.0,
        history_ttl: float = 7 * 24 * 3600.0,
        tombstone_ttl: float = 30 * 24 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            import redis as redis_module
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "RedisStore needs the redis package: pip install 'callfsm[redis]'"
            ) from None
        if isinstance(url_or_client, str):
            self.redis: redis.Redis = redis_module.Redis.from_url(url_or_client)
        else:
            self.redis = url_or_client
        self.prefix = prefix
        self._event_ttl = max(1, int(event_ttl))
        self._history_ttl = int(history_ttl)
        self._tombstone_ttl = int(tombstone_ttl)
        self._clock = clock
        self._commit = self.redis.register_script(_COMMIT)
        self._load = self.redis.register_script(_LOAD)
        self._undelivered = prefix + "undelivered"
        self._batches = prefix + "batches"
        self._ended = prefix + "ended"

    def _call(self, call_id: str) -> str:
        return f"{self.prefix}call:{call_id}"

    def _hist(self, call_id: str) -> str:
        return f"{self.prefix}hist:{call_id}"

    @staticmethod
    def _member(call_id: str, version: int) -> str:
        return json.dumps([call_id, version])

    def head(self, call_id: str) -> Head | None:
        """Return ``(state, version, last_at, ended_at)``, or None for an unknown call."""
        state, version, last_at, ended_at = self.redis.hmget(
            self._call(call_id), ["state", "version", "last_at", "ended_at"]
        )
        if state is None:
            return None
        return _text(state), int(_text(version)), _num(last_at), _num(ended_at)

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
        version = expected_version + 1
        batch = json.dumps(
            {"v": version, "t": [transition_row(t) for t in transitions]}, separators=(",", ":")
        )
        event_key = f"{self.prefix}evt:{event_id}" if event_id is not None else ""
        written = self._commit(
            keys=[
                self._call(call_id),
                self._hist(call_id),
                self._undelivered,
                self._batches,
                self._ended,
                event_key,
            ],
            args=[
                expected_version,
                state,
                "" if last_at is None else repr(last_at),
                "" if ended_at is None else repr(ended_at),
                batch,
                repr(self._clock()),
                self._member(call_id, version),
                self._event_ttl,
                self._history_ttl,
                self._tombstone_ttl,
                call_id,
            ],
        )
        return bool(written)

    def seen_event(self, event_id: str) -> bool:
        """True if a commit recorded this event id and it has not expired."""
        return bool(self.redis.exists(f"{self.prefix}evt:{event_id}"))

    def load(self, call_id: str) -> CallRecord | None:
        """A consistent snapshot: head and history read in one server-side step."""
        head, hist = self._load(keys=[self._call(call_id), self._hist(call_id)])
        state, version, last_at, ended_at, evicted = head
        if state is None:
            return None
        history = tuple(load_transition(call_id, t) for raw in hist for t in json.loads(raw)["t"])
        return make_record(
            call_id,
            _text(state),
            int(version),
            history,
            _num(last_at),
            _num(ended_at),
            bool(evicted) or not history,
        )

    def evict(self, ended_before: float) -> int:
        """Drop the history of calls that ended before ``ended_before``, keeping their heads."""
        ids = [_text(c) for c in self.redis.zrangebyscore(self._ended, "-inf", f"({ended_before}")]
        for call_id in ids:
            pipe = self.redis.pipeline()  # MULTI/EXEC: the three go together
            pipe.delete(self._hist(call_id))
            pipe.hset(self._call(call_id), "evicted", 1)
            pipe.zrem(self._ended, call_id)
            pipe.execute()
        return len(ids)

    def call_ids(self) -> Iterator[str]:
        """Every call the store holds, tombstones included."""
        start = len(self.prefix) + len("call:")
        for key in self.redis.scan_iter(match=f"{self.prefix}call:*", count=1000):
            yield _text(key)[start:]

    def delivered(self, call_id: str, version: int) -> None:
        """Clear the "not yet delivered" mark of the commit that wrote ``version``."""
        member = self._member(call_id, version)
        pipe = self.redis.pipeline(transaction=False)  # one round trip; order does not matter
        pipe.zrem(self._undelivered, member)
        pipe.hdel(self._batches, member)
        pipe.execute()

    def undelivered(
        self, committed_before: float
    ) -> Iterator[tuple[str, int, tuple[Transition, ...]]]:
        """Commits still marked undelivered, made before ``committed_before``."""
        members = self.redis.zrangebyscore(self._undelivered, "-inf", f"({committed_before}")
        found = []
        for member in members:
            key = _text(member)
            call_id, version = json.loads(key)
            raw = self.redis.hget(self._batches, key)
            if raw is not None:
                batch = tuple(load_transition(call_id, t) for t in json.loads(raw)["t"])
                found.append((call_id, int(version), batch))
        found.sort(key=lambda item: (item[0], item[1]))
        yield from found

    def clear(self) -> None:
        """Delete every key under this store's prefix (for tests)."""
        for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            self.redis.delete(key)

    def close(self) -> None:
        """Close the connection pool."""
        self.redis.close()

    def __repr__(self) -> str:
        return f"<RedisStore prefix={self.prefix!r}>"
