"""One beat leader at a time: a lease in the broker's Redis, as RedBeat's lock does.

Any number of beat processes may run, on any hosts. Each tries to take, or renew, the key
:data:`KEY` with its own identity and a time to live (``beat_lease``); the one holding it
fires the periodic tasks, the others stand by and try again every third of the lease.
When the leader's host dies, its key expires and a standby takes over within a lease and
a third: what it fires is keyed in the database (a sweep's firings, a planned start), so
a firing that both the old and the new leader make is still made once.

Only the Redis server's clock counts (``SET NX PX``, ``PEXPIRE``); the renewal is a
script, so a leader whose lease ran out cannot renew a key another beat has taken.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

#: The key the leader holds in the broker's Redis.
KEY = "council:beat:leader"

#: Take the key if it is free, or renew it if it is ours; 1 when we lead, else 0.
_LEAD = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if held == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
#: Give the key up if it is still ours (a beat stopping cleanly hands over at once).
_RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def identity() -> str:
    """This beat process: its host and pid (for people), and a token no other beat has."""
    return json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex},
        sort_keys=True,
    )


def lead(client: redis.Redis, me: str, *, lease: float) -> bool:
    """Take or renew the leadership for ``lease`` seconds; whether this beat leads."""
    return bool(client.eval(_LEAD, 1, KEY, me, str(max(1, int(lease * 1000)))))


def resign(client: redis.Redis, me: str) -> None:
    client.eval(_RESIGN, 1, KEY, me)


@dataclass(frozen=True)
class Leader:
    """The beat that leads now, and how long its lease has left (by Redis's clock)."""

    host: str
    pid: int | None
    remaining: float


def read(client: redis.Redis) -> Leader | None:
    """The leader, or None when no beat leads (none runs, or the last one's lease ran out)."""
    from workflow.ops.heartbeat import read_key

    found = read_key(client, KEY)
    if found is None:
        return None
    value, remaining = found
    pid = value.get("pid")
    return Leader(
        host=str(value.get("host") or "?"),
        pid=pid if isinstance(pid, int) else None,
        remaining=remaining,
    )
