"""What `council doctor` asks through Celery: workers' pings, and brokers that are not Redis.

``workflow/`` imports no Celery, so the doctor takes these as
:class:`~workflow.ops.doctor.Probes` from the command that runs it.
"""

from __future__ import annotations

import math

from workflow.ops.doctor import BrokerAnswer, Probes
from workflow.ops.doctor.results import first_line


def ping_workers(broker_url: str, timeout: float) -> list[str]:
    """The names of the workers (and beats) that answer a ping within ``timeout``."""
    from celery import Celery

    app = Celery("council-doctor", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_timeout=timeout,
        broker_connection_retry=False,
        broker_connection_max_retries=1,
        accept_content=["json"],
        task_serializer="json",
    )
    try:
        replies = app.control.ping(timeout=timeout) or []
    finally:
        app.close()
    return [name for reply in replies for name in reply]


def reach_broker(url: str, timeout: float) -> BrokerAnswer:
    """Connect once to a broker through kombu (RabbitMQ, say); nothing is sent."""
    from kombu import Connection

    try:
        connection = Connection(url, connect_timeout=timeout)
    except Exception as exc:  # an unknown transport (a scheme kombu does not know)
        return BrokerAnswer(reachable=False, usable_url=False, error=first_line(exc))
    try:
        connection.ensure_connection(max_retries=0, timeout=math.ceil(timeout))  # one attempt
    except Exception as exc:  # kombu raises the transport's own errors
        return BrokerAnswer(reachable=False, error=first_line(exc))
    finally:
        connection.release()
    return BrokerAnswer(reachable=True)


def _preload() -> None:
    import celery  # noqa: F401
    import kombu  # noqa: F401


#: The probes `council doctor` runs with.
PROBES = Probes(ping_workers=ping_workers, reach_broker=reach_broker, preload=_preload)
