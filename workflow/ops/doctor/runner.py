"""Checking an installation: each check returns result lines, and nothing here changes anything.

``council doctor`` runs :func:`run` and prints one line per
:class:`~workflow.ops.doctor.results.Result`. A check reads, connects and logs in,
never writes: it creates no database file, starts no embedded broker and sends no
e-mail. Each check runs in a thread of its own with a deadline, so a server that
accepts a connection and then says nothing cannot hang the doctor; every socket
also gets the same timeout.

What needs Celery (pinging workers, reaching a broker that is not Redis) comes in
as :class:`Probes` from the caller (``tasks/control.py``): ``workflow/`` imports no
Celery.

Exit codes (:func:`~workflow.ops.doctor.results.exit_code`): 0 when nothing failed
(warnings are printed but pass, unless ``strict``), 5 when a server cannot be used
(the database, broker or SMTP server unreachable, a login or TLS refused, the
database not at this release's schema), and 6 when any other check failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from workflow.ops.doctor.broker import BrokerAnswer, BrokerProbe, broker_address, check_broker
from workflow.ops.doctor.database import check_database
from workflow.ops.doctor.definitions import check_definitions
from workflow.ops.doctor.results import Result, Status, fail, skip
from workflow.ops.doctor.smtp import check_smtp
from workflow.ops.doctor.workers import WorkerPing, check_beat, check_worker
from workflow.ops.redaction import Redactor

if TYPE_CHECKING:
    from workflow.settings import Settings

#: Seconds each check may take by default.
DEFAULT_TIMEOUT = 5.0
#: The checks, in the order they run and print.
GROUPS = ("definitions", "database", "broker", "smtp", "worker", "beat")


def _no_ping(url: str, timeout: float) -> list[str]:
    return []


def _no_broker_probe(url: str, timeout: float) -> BrokerAnswer:
    return BrokerAnswer(reachable=False, error="no probe for a broker that is not Redis")


@dataclass(frozen=True)
class Probes:
    """What the doctor asks through Celery, given by the caller (``tasks/control.py``)."""

    ping_workers: WorkerPing = _no_ping
    reach_broker: BrokerProbe = _no_broker_probe
    #: Imports what the probes need before the checks' clocks start.
    preload: Callable[[], None] = lambda: None


def run(
    settings: Settings,
    *,
    only: Collection[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    probes: Probes | None = None,
) -> list[Result]:
    """Run the checks named in ``only`` (default: all); worker and beat imply broker.

    Definitions, database, broker and SMTP run at once; worker and beat, which
    need the broker, run after it. No check takes much longer than ``timeout``.
    """
    probes = probes or Probes()
    groups = set(only or GROUPS)
    if groups & {"worker", "beat"}:
        groups.add("broker")
    _preload(groups, probes)
    first: dict[str, Callable[[], list[Result]]] = {
        "definitions": lambda: check_definitions(settings),
        "database": lambda: check_database(settings, timeout),
        "broker": lambda: check_broker(settings, timeout, probes.reach_broker),
        "smtp": lambda: check_smtp(settings, timeout),
    }
    done = _bounded({name: fn for name, fn in first.items() if name in groups}, timeout)
    broker_url = _usable_broker(settings, done.get("broker", []))
    then: dict[str, Callable[[], list[Result]]] = {}
    if broker_url is not None:
        url = broker_url
        then["worker"] = lambda: check_worker(url, settings, timeout, probes.ping_workers)
        then["beat"] = lambda: check_beat(url, settings, timeout)
    for name in ("worker", "beat"):
        if name in groups and broker_url is None:
            done[name] = [skip(name, "the broker is unreachable")]
    done.update(_bounded({n: fn for n, fn in then.items() if n in groups}, timeout))
    redact = Redactor.for_settings(settings)
    return [
        replace(r, detail=redact(r.detail), fix=redact(r.fix))
        for name in GROUPS
        for r in done.get(name, [])
    ]


def _usable_broker(settings: Settings, results: list[Result]) -> str | None:
    if results and results[0].check == "broker" and results[0].status is Status.OK:
        return broker_address(settings)[0]
    return None


def _preload(groups: set[str], probes: Probes) -> None:
    """Import what the checks need before their clocks start (imports can take a second)."""
    if "database" in groups:
        import sqlalchemy  # noqa: F401

        from workflow.store import migrate  # noqa: F401
    if "broker" in groups:
        import redis  # noqa: F401
    if groups & {"broker", "worker"}:
        probes.preload()
    if "smtp" in groups:
        from workflow.mail import transport  # noqa: F401
    if "definitions" in groups:
        from workflow.definitions import loader  # noqa: F401


def _bounded(
    checks: dict[str, Callable[[], list[Result]]], timeout: float
) -> dict[str, list[Result]]:
    """Run each check in a daemon thread; one not done by the deadline fails as timed out."""
    results: dict[str, list[Result]] = {}

    def target(name: str, fn: Callable[[], list[Result]]) -> None:
        try:
            results[name] = fn()
        except Exception as exc:  # a check must never take the doctor down
            line = (str(exc).strip().splitlines() or [""])[0]
            results[name] = [
                fail(name, f"unexpected {type(exc).__name__}: {line}", "report this as a bug")
            ]

    threads = {
        name: threading.Thread(target=target, args=(name, fn), daemon=True, name=f"doctor-{name}")
        for name, fn in checks.items()
    }
    for thread in threads.values():
        thread.start()
    deadline = time.monotonic() + timeout + 1.0
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive() or name not in results:
            results[name] = [
                fail(
                    name,
                    f"no answer within {timeout:g} s",
                    "check that the server runs and that nothing between blocks it",
                    unreachable=name in ("database", "broker", "smtp"),
                )
            ]
    return {name: results[name] for name in checks}
