"""A worker survives a Redis that is gone and back before Celery has cleaned up.

Seen in CI under load: Redis restarted in a few milliseconds, Celery's cleanup of
the lost connection gave up half-way (its collection detached the transport while
the channel's close had failed on the dead socket), the close that followed found
Redis back and kombu raised ``AttributeError`` while putting the unacknowledged
message back. Celery called that an unrecoverable error and the worker exited.

This test builds that state with a real Redis and a real kombu connection, shows
that kombu's close does fail in it, and that the worker's consumer goes on.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from kombu import Connection, Queue

from tasks import consumer as consumer_module
from tasks.consumer import Consumer
from tests.integration.servers import RedisServer
from tests.support import captured_logs
from worker import app


@pytest.fixture
def half_cleaned(redis_server: RedisServer) -> Connection:
    """A connection lost with a message in hand, whose cleanup stopped half-way."""
    connection = Connection(redis_server.url)
    channel = connection.default_channel
    Queue("council", channel=channel).declare()
    connection.Producer(channel=channel).publish({"event": 1}, routing_key="council")
    assert channel.basic_get("council", no_ack=False) is not None  # in hand, not acked
    channel.basic_consume("council", False, lambda message: None, "worker")
    connection.transport.cycle._register_BRPOP(channel)  # waiting for the next one
    redis_server.stop()
    with pytest.raises(redis.exceptions.ConnectionError):
        channel.close()  # the dead socket: the channel stays open
    # What kombu's collect() ends with when it gave up before closing the channel.
    connection._do_close_transport()
    # Celery's own collect() would now hit the detached transport; it is the part
    # that gave up, so it does nothing more here.
    connection.collect = lambda **_: None
    redis_server.start()
    return connection


def test_kombu_close_fails_in_that_state(half_cleaned: Connection) -> None:
    """The hazard is real in the installed kombu. A kombu that fixes it fails here:
    then tasks/consumer.py is no longer needed and can go."""
    with pytest.raises(AttributeError, match="hostname"):
        half_cleaned.close()


def _consumer(cls: type[Any], connection: Connection) -> Any:
    consumer = cls.__new__(cls)  # the handler needs only these two
    consumer.app = app
    consumer.connection = connection
    return consumer


def test_the_workers_consumer_reconnects(
    half_cleaned: Connection, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = _consumer(Consumer, half_cleaned)
    lost = redis.exceptions.ConnectionError("Connection closed by server.")
    with captured_logs(monkeypatch, consumer_module) as logs:
        consumer.on_connection_error_after_connected(lost)
    assert consumer.connection is None  # Celery's restart connects afresh
    [line] = [entry for entry in logs if entry["event"] == "broker.cleanup_failed"]
    assert "hostname" in line["error"]
    assert "Connection closed" in line["lost"]
    # The message in hand is not lost: Redis keeps it until visibility_timeout.
    client = redis.Redis(unix_socket_path=str(redis_server.socket_path))
    assert client.hlen("unacked") == 1


def test_the_worker_is_configured_with_it() -> None:
    assert app.conf.worker_consumer == "tasks.consumer:Consumer"
