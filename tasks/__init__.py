"""The Celery surface, kept thin: each task loads what it needs by id and calls workflow/.

- :mod:`~tasks.dispatch`: ``dispatch(event_id)`` runs the event's handlers, then delivers;
  ``deliver(effect_ids)``;
- :mod:`~tasks.periodic`: what beat fires (the relay, the reconciler, the sweep);
- :mod:`~tasks.publish`: an event id as a Celery message;
- :mod:`~tasks.control`: the doctor's probes (worker pings, a broker that is not Redis);
- :mod:`~tasks.context`: per-process settings, database, definitions and engine;
- :mod:`~tasks.reports`: the task of releases before 0.2, kept for queued messages.
"""

__all__ = ["context", "control", "dispatch", "periodic", "publish", "reports"]
