"""Beat's heartbeat: a key in the broker's Redis that `council doctor` reads.

The beat process (``council beat``, or the one ``council worker --with-beat``
embeds) writes :data:`KEY` when it starts and each time it publishes a
periodic task (signal handlers at the end of ``worker.py``). The key expires
after :data:`TTL` seconds; its age is read from the key's remaining time to
live, so only the Redis server's clock counts, never the clocks of the beat
and doctor machines. The value says who wrote it and how often beat fires.

Only a Redis broker can carry the heartbeat; with another broker the doctor
skips the beat check.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import redis

#: The key beat writes in the broker's Redis.
KEY = "council:beat:heartbeat"
#: Seconds the key lives: long enough for the doctor to say how long ago beat stopped.
TTL = 7 * 24 * 3600


def client_url(broker_url: str) -> str | None:
    """The redis-py URL of a Celery (kombu) Redis broker URL; None for another broker.

    kombu writes a unix socket as ``redis+socket:///path`` (or ``socket://``),
    redis-py as ``unix:///path``.
    """
    parts = urlsplit(broker_url)
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss"):
        return broker_url
    if scheme in ("redis+socket", "socket"):
        query = f"?{parts.query}" if parts.query else ""
        return f"unix://{parts.netloc}{parts.path}{query}"
    return None


def connect(broker_url: str, timeout: float) -> redis.Redis | None:
    """A redis-py client for the broker (not yet connected); None when it is not Redis."""
    url = client_url(broker_url)
    if url is None:
        return None
    import redis

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry_on_timeout=False,
        decode_responses=True,
    )


def write(client: redis.Redis, *, interval: float | None) -> None:
    """Leave a heartbeat: who beats, when (beat's clock, for people) and how often."""
    value = {
        "at": time.time(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "interval": interval,
        "ttl": TTL,
    }
    client.set(KEY, json.dumps(value), ex=TTL)


@dataclass(frozen=True)
class Beat:
    """The last heartbeat: its age in seconds (by the Redis server's clock) and its writer."""

    age: float
    host: str
    pid: int | None
    interval: float | None


def read_key(client: redis.Redis, key: str) -> tuple[dict[str, Any], float] | None:
    """A JSON value and its remaining time to live in seconds (by the Redis server's
    clock); None when the key is gone. A value that is no JSON object reads as empty."""
    pipe = client.pipeline(transaction=True)
    pipe.get(key)
    pipe.pttl(key)
    raw, remaining = pipe.execute()
    if raw is None or remaining is None or remaining < 0:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = {}
    return (value if isinstance(value, dict) else {}), remaining / 1000


def read(client: redis.Redis) -> Beat | None:
    """The last heartbeat, or None when beat never left one (or it expired)."""
    found = read_key(client, KEY)
    if found is None:
        return None
    value, remaining = found
    ttl = float(value.get("ttl") or TTL)
    interval = value.get("interval")
    pid = value.get("pid")
    return Beat(
        age=max(0.0, ttl - remaining),
        host=str(value.get("host") or "?"),
        pid=pid if isinstance(pid, int) else None,
        interval=float(interval) if isinstance(interval, int | float) else None,
    )
