"""The Celery app: configuration, routes and the beat schedule.

Start workers with ``council worker`` (or ``celery -A worker worker``) and one
beat with ``council beat`` (or ``celery -A worker beat``). Settings are read
when the app is first configured, not at import.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery, signals
from kombu import Queue

from workflow.errors import CouncilError
from workflow.ops.embedded import EmbeddedRedis
from workflow.settings import Settings

#: Where events and deliveries are queued.
QUEUE = "council"
#: Where beat's periodic tasks are queued.
PERIODIC_QUEUE = "council.periodic"
#: Where the public site's rebuilds are queued: consumed only by workers with a site_dir.
SITE_QUEUE = "council.site"

app = Celery("council", include=["tasks.dispatch", "tasks.periodic", "tasks.reports", "tasks.site"])


def broker_url(settings: Settings) -> str:
    """The configured broker, or the embedded Redis (started if need be)."""
    if settings.broker_url:
        return settings.broker_url
    return EmbeddedRedis(settings.var_dir / "redis", settings.redis_server).ensure_running()


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for at-least-once delivery with nothing lost."""
    if settings.visibility_timeout < 3 * settings.task_time_limit:
        raise CouncilError(
            "visibility_timeout must be well above task_time_limit (at least 3x): a task "
            "still running when the broker redelivers it would run twice at once"
        )
    if settings.task_soft_time_limit >= settings.task_time_limit:
        raise CouncilError("task_soft_time_limit must be below task_time_limit")
    return {
        "broker_url": broker_url(settings),
        # Acknowledge after the task ran: a worker that dies mid-task loses nothing.
        "task_acks_late": True,
        # A child process killed mid-task (OOM, SIGKILL) puts its message back.
        "task_reject_on_worker_lost": True,
        # Reserve one message at a time: no hoarding while other workers idle.
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        # Lost the broker mid-task? Its message will be redelivered, so stop the
        # task rather than finish it while another worker starts it again.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Celery's consumer, except that a cleanup that fails after a lost
        # connection does not stop the worker (see tasks/consumer.py).
        "worker_consumer": "tasks.consumer:Consumer",
        # Keep trying to reach the broker at start-up instead of exiting.
        "broker_connection_retry_on_startup": True,
        # Redis redelivers an unacknowledged message after this; kept well above
        # the task time limit so a slow task is never running twice at once.
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout},
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout},
        # State lives in SQL; results would only fill Redis.
        "task_ignore_result": True,
        # JSON only: a task takes ids and primitives, never pickled objects.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # A stuck SMTP or database call cannot hold a worker forever.
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        # Periodic tasks have a queue of their own, so a relay or reconciler run is
        # never stuck behind thousands of dispatches; workers consume both.
        "task_default_queue": QUEUE,
        # The site's rebuilds go to workers that have the site (site_dir set): a worker
        # without one never takes them, so they are built on the host that serves it.
        "task_queues": [Queue(QUEUE), Queue(PERIODIC_QUEUE)]
        + ([Queue(SITE_QUEUE)] if settings.site_dir is not None else []),
        "task_routes": {
            "council.relay_outbox": {"queue": PERIODIC_QUEUE},
            "council.reconcile": {"queue": PERIODIC_QUEUE},
            "council.sweep_deadlines": {"queue": PERIODIC_QUEUE},
            "council.publish_site": {"queue": SITE_QUEUE},
        },
        "worker_hijack_root_logger": False,
        "enable_utc": True,
        "timezone": "UTC",
        "beat_schedule": _schedule(settings),
        # Any number of beats; the one holding the lease in Redis fires (tasks/beat.py).
        "beat_scheduler": "tasks.beat:LeaderScheduler",
        "council_beat_lease": settings.beat_lease,
        "beat_schedule_filename": str(settings.var_dir / "celerybeat-schedule"),
    }


def _schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "relay-outbox": {"task": "council.relay_outbox", "schedule": settings.relay_interval},
        "reconcile": {"task": "council.reconcile", "schedule": settings.reconcile_interval},
        "sweep-deadlines": {"task": "council.sweep_deadlines", "schedule": settings.sweep_interval},
    }
    if settings.site_dir is not None:
        # A rebuild nobody took before the next is due is dropped, not queued up: the
        # next one does its work, so a stopped site worker leaves one message, not a pile.
        schedule["publish-site"] = {
            "task": "council.publish_site",
            "schedule": settings.site_interval,
            "options": {"expires": settings.site_interval},
        }
    return schedule


@app.on_configure.connect
def _configure(sender: Celery, **_: Any) -> None:
    sender.conf.update(celery_config(Settings()))


@signals.celeryd_init.connect
def _logging_early(options: dict[str, Any] | None = None, **_: Any) -> None:
    """Before the worker checks its privileges: its warnings are log lines too; and the
    files it writes are its own (also when started as `celery -A worker worker`)."""
    from workflow.ops.logs import configure
    from workflow.ops.private import keep_files_private

    keep_files_private()
    configure(level=(options or {}).get("loglevel"))


@signals.setup_logging.connect
def _logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Celery's logging goes through structlog (beat alone, and workers; once per process)."""
    from workflow.ops.logs import configure

    configure(level=loglevel)


@signals.celeryd_after_setup.connect
def _banner(instance: Any = None, **_: Any) -> None:
    """Not on a terminal, Celery's banner (loose lines on stdout) becomes one log line."""
    import sys

    if instance is None or sys.stdout.isatty():
        return
    instance.quiet = True
    structlog.get_logger("worker").info(
        "worker.starting",
        hostname=instance.hostname,
        concurrency=instance.concurrency,
        pool=getattr(instance.pool_cls, "__name__", str(instance.pool_cls)),
        queues=sorted(instance.app.amqp.queues.consume_from or instance.app.amqp.queues),
    )


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    from tasks.context import reset

    reset()


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _goodbye(**_: Any) -> None:
    """Close the SMTP connection kept for the next batch with a QUIT, not a dropped socket."""
    from workflow.mail.transport import close_idle_connections

    close_idle_connections()


@signals.task_prerun.connect
def _bind(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=getattr(task, "name", None))


@signals.task_postrun.connect
def _unbind(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


# --- beat's heartbeat, read by `council doctor` (see workflow/heartbeat.py) ---------

#: The thread that runs beat in this process, once beat has started in it.
_beat_thread: int | None = None
_beat_client: Any = None


@signals.beat_init.connect
def _beat_started(sender: Any = None, **_: Any) -> None:
    """Beat starts in this process (standalone or embedded): leave a first heartbeat."""
    import threading

    from workflow.ops.private import keep_files_private

    global _beat_thread
    keep_files_private()
    _beat_thread = threading.get_ident()
    _heartbeat()


@signals.after_task_publish.connect
def _beat_published(**_: Any) -> None:
    """Beat published a periodic task: it is alive. Publishes by others are ignored."""
    import threading

    if _beat_thread is not None and threading.get_ident() == _beat_thread:
        _heartbeat()


def _heartbeat() -> None:
    """Write the heartbeat to the broker's Redis; never let it disturb beat."""
    from workflow.ops import heartbeat

    global _beat_client
    try:
        if _beat_client is None:
            _beat_client = heartbeat.connect(str(app.conf.broker_url), timeout=2.0) or False
        if _beat_client:
            intervals = [
                float(entry["schedule"])
                for entry in (app.conf.beat_schedule or {}).values()
                if isinstance(entry.get("schedule"), int | float)
            ]
            heartbeat.write(_beat_client, interval=min(intervals, default=None))
    except Exception as exc:  # a heartbeat lost is only a stale doctor line
        structlog.get_logger(__name__).warning("beat.heartbeat_failed", error=str(exc))
