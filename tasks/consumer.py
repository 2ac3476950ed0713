"""The worker's consumer: Celery's, made to survive a broker that comes back quickly.

When the connection to Redis is lost, Celery (5.7) first *collects* the broken
connection and then *closes* it. If the collection gave up half-way (a socket
timed out on a loaded machine), the transport is already detached from its
connection while a channel is still open; if Redis is back by the time of the
close, the channel tries to put its unacknowledged messages back through that
detached transport and kombu raises ``AttributeError: 'NoneType' object has no
attribute 'hostname'``. Celery does not expect it there, calls it an
"Unrecoverable error" and the whole worker exits: a Redis restart of a few
milliseconds stopped every worker that was busy at the time.

Here that one failure is logged as one line and the consumer reconnects as
after any connection loss. Nothing is lost: the messages the channel could not
put back stay in Redis's unacknowledged set, which Redis hands out again after
``visibility_timeout``, and the reconciler re-publishes any event still not
handled after ``reconcile_after`` (see docs/operations.md).
"""

from __future__ import annotations

from typing import Any

import structlog
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.state import active_requests

log = structlog.get_logger("worker.consumer")


class Consumer(CeleryConsumer):
    """Celery's consumer; a broken cleanup after a lost connection is not fatal."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as error:
            if not _detached(connection):
                raise
            log.warning(
                "broker.cleanup_failed",
                error=f"{type(error).__name__}: {error}",
                lost=f"{type(exc).__name__}: {exc}",
                consequence="reconnecting; unacknowledged messages come back after "
                "visibility_timeout, unhandled events after reconcile_after",
            )
            self.connection = None
            self._cancel_unacknowledged_tasks()

    def _cancel_unacknowledged_tasks(self) -> None:
        """What Celery does after a connection loss, which the failed cleanup skipped:
        a task whose message will be redelivered is stopped, not finished twice."""
        if not self.app.conf.worker_cancel_long_running_tasks_on_connection_loss:
            return
        for request in tuple(active_requests):
            if request.task.acks_late and not request.acknowledged:
                request.cancel(self.pool)


def _detached(connection: Any) -> bool:
    """Whether the connection's channel is left on a transport kombu has detached."""
    channel = getattr(connection, "_default_channel", None)
    transport = getattr(channel, "connection", None)
    return transport is not None and getattr(transport, "client", None) is None
