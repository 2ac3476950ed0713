"""The doctor's look at the workers and beat: does a worker answer, is beat's heartbeat fresh.

Workers are pinged through the callable the caller passes (:data:`WorkerPing`,
Celery's remote control in ``tasks/control.py``); beat's heartbeat is read from
the broker's Redis (:mod:`workflow.ops.heartbeat`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from workflow.ops.doctor.results import Result, fail, ok, skip, warn

if TYPE_CHECKING:
    from workflow.settings import Settings

#: Beat is stale when its heartbeat is older than this many of its shortest intervals.
STALE_INTERVALS = 3
#: Asks the workers on a broker to answer within a timeout; returns the names that did.
WorkerPing = Callable[[str, float], list[str]]

_RUN_BEAT = "run `council beat` (one or more: one leads; or `council worker --with-beat`)"


def check_worker(
    broker_url: str, settings: Settings, timeout: float, ping: WorkerPing
) -> list[Result]:
    """Ask every worker on the broker to answer a ping (Celery remote control, via ``ping``)."""
    wait = min(timeout, 2.0)
    # Celery's beat may answer pings too (beat_enable_remote_control): it is no worker.
    names = sorted(name for name in ping(broker_url, wait) if not name.startswith("celerybeat@"))
    if not names:
        return [
            fail(
                "worker",
                f"no worker answered within {wait:g} s: nothing delivers e-mail",
                "start one: `council worker` (`council worker --with-beat` on one machine)",
            )
        ]
    return [ok("worker", f"{len(names)} answered: {', '.join(names)}")]


def check_beat(broker_url: str, settings: Settings, timeout: float) -> list[Result]:
    """Read beat's heartbeat from the broker: fresh when younger than 3 of its intervals."""
    from workflow.ops import heartbeat, leader

    client = heartbeat.connect(broker_url, timeout)
    if client is None:
        return [skip("beat", "beat's heartbeat needs a Redis broker")]
    with client:
        beat = heartbeat.read(client)
        leading = leader.read(client)
    if beat is None:
        return [
            warn(
                "beat",
                "no heartbeat: no beat has run on this broker in the last 7 days",
                _RUN_BEAT,
            )
        ]
    interval = beat.interval or min(
        settings.relay_interval, settings.reconcile_interval, settings.sweep_interval
    )
    limit = STALE_INTERVALS * interval
    who = f"{beat.host}" + (f" (pid {beat.pid})" if beat.pid is not None else "")
    if beat.age > limit:
        return [
            warn(
                "beat",
                f"stale: last heartbeat {_age(beat.age)} ago from {who}; beat fires every "
                f"{interval:g} s",
                f"beat is stopped or stuck: read its log; {_RUN_BEAT}",
            )
        ]
    leads = (
        f"; leader {leading.host} pid {leading.pid} (lease {leading.remaining:.0f} s left)"
        if leading is not None
        else "; no leader now (a standby takes over within a lease)"
    )
    return [ok("beat", f"{who} fired {_age(beat.age)} ago (every {interval:g} s){leads}")]


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
