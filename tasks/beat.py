"""Beat's scheduler: Celery's, firing only while this beat leads (workflow/ops/leader.py).

``worker.py`` names it as ``beat_scheduler``, so ``council beat``, ``celery -A worker
beat`` and the beat ``council worker --with-beat`` embeds all use it. A standby checks
every third of ``beat_lease`` whether the leader is gone; the leader renews its lease as
often, between firings. With a broker that is not Redis there is no lease to hold: the
beat fires as Celery's does, and exactly one must run (it says so in its log).
"""

from __future__ import annotations

from typing import Any

from celery.beat import PersistentScheduler

from workflow.ops import heartbeat, leader
from workflow.ops.logs import get_logger

log = get_logger(__name__)


class LeaderScheduler(PersistentScheduler):
    """Celery's persistent scheduler, ticking only while this beat holds the lease."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lease = float(self.app.conf.get("council_beat_lease") or 15.0)
        self.me = leader.identity()
        self._client: Any = heartbeat.connect(str(self.app.conf.broker_url), timeout=2.0)
        self._leading: bool | None = None
        self._reachable = True
        if self._client is None:
            log.warning("beat.no_leader_election",
                        reason="the broker is not Redis: run exactly one beat")  # fmt: skip

    @property
    def every(self) -> float:
        """How often a standby tries, and a leader renews."""
        return self.lease / 3

    def _leads(self) -> bool:
        if self._client is None:
            return True
        try:
            leads = leader.lead(self._client, self.me, lease=self.lease)
        except Exception as exc:  # Redis is down: nobody can publish; wait, say it once
            if self._reachable:
                log.warning("beat.broker_unreachable", error=repr(exc)[:200],
                            action="not firing until the broker answers")  # fmt: skip
            self._reachable, self._leading = False, None
            return False
        if not self._reachable:
            log.info("beat.broker_back")
        self._reachable = True
        if leads != self._leading:
            log.info("beat.leading" if leads else "beat.standing_by", lease=self.lease)
        self._leading = leads
        return leads

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._leads():
            return self.every
        return float(min(super().tick(*args, **kwargs), self.every))

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        """Celery logs a failed publish as an error with a traceback per task; one line."""
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:
            log.warning("beat.not_fired", task=entry.task, error=repr(exc)[:200],
                        action="fired again at its next time")  # fmt: skip
        else:
            log.info("beat.fired", entry=entry.name, task=entry.task)

    def close(self) -> None:
        if self._client is not None and self._leading:
            try:
                leader.resign(self._client, self.me)  # a clean stop hands over at once
            except Exception as exc:  # the lease runs out by itself
                log.info("beat.resign_failed", error=repr(exc)[:200])
        super().close()
