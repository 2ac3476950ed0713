"""Running council: logs, the embedded broker, beat's heartbeat, config show and the doctor.

- :mod:`~workflow.ops.logs`: structlog, configured once per process, secrets redacted;
- :mod:`~workflow.ops.redaction`: masking secrets in whatever is printed;
- :mod:`~workflow.ops.config_view`: ``council config show``;
- :mod:`~workflow.ops.embedded`: the Redis council starts itself on one machine;
- :mod:`~workflow.ops.heartbeat`: beat's heartbeat in the broker's Redis;
- :mod:`~workflow.ops.doctor`: ``council doctor``, its Celery probes given by the caller.

May import: :mod:`workflow.settings`, :mod:`workflow.errors`, :mod:`workflow.store`
(the schema's revision), :mod:`workflow.mail.transport` (the SMTP handshake) and
:mod:`workflow.definitions` (do they load). Imported by: everything that logs, the
commands and worker.py.
"""

__all__ = [
    "logs",
    "redaction",
    "config_view",
    "embedded",
    "heartbeat",
    "doctor",
]
