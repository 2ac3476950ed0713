"""The Celery app the events benchmark's worker runs: council's own, plus one no-op task.

``celery -A bench.events_worker worker`` is ``celery -A worker worker`` with the same
configuration (``worker.celery_config``), queues, pool and signals, and one more task,
``bench.noop``, the baseline: it only tells the benchmark it ran (an RPUSH on the broker's
Redis), so raw Celery and council's dispatches are measured on one broker and one worker.
"""

from __future__ import annotations

from functools import cache

import redis

from worker import app

__all__ = ["app", "noop"]


@cache
def _redis() -> redis.Redis:
    """A client for the broker's Redis (a unix socket), one per worker process."""
    url = str(app.conf.broker_url)
    return redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"))


@app.task(name="bench.noop")
def noop(done_key: str) -> None:
    """Nothing but "done": the cheapest task that can be observed finishing."""
    _redis().rpush(done_key, b"")
