"""The installation across hosts: a data host and two worker hosts, one machine.

Host ``data`` runs its own PostgreSQL (initdb into a temp dir), Redis and an SMTP sink;
hosts ``w1`` and ``w2`` each run a worker and a beat with the commands and the
environment of docker-compose.yml's ``worker`` and ``beat`` services (read from the
file: the test and the compose file cannot drift apart), pointed at ``data``'s address
instead of the service names, with the default clocks but the deadline sweep's (5 s
instead of 15 minutes, so that a sweep follows a takeover soon). Then:

1. 2,000 prompts; midway ``w1`` is taken off the network and every process in it
   killed: nothing lost, nothing doubled beyond the mails that were on the wire, healed
   within the documented bound (docs/operations.md);
2. the host of the beat that leads is killed: the other beat takes over, and the next
   sweep fires each overdue reminder once;
3. ``w2`` is cut off from ``data`` for 30 s while 500 prompts go out, then plugged in
   again: nothing lost.

A second test shows why that heals at all: a host that dies holding a row lock has its
session ended by the server within DEAD_PEER_SECONDS (council's keepalives).

The figures they print are the ones docs/operations.md gives.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa
import yaml

from tests.integration.hosts import DataHost, Network
from tests.integration.servers import wait_for
from tests.integration.test_reliability import (
    expected_message_ids,
    write_assignment,
    write_load_definitions,
)
from tests.support import ROOT
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.ops import leader
from workflow.store import connect, tables
from workflow.store.connection import DEAD_PEER_SECONDS
from workflow.store.effects import EffectState

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.hosts]

#: The heal bound docs/operations.md promises with the default settings.
HEAL_BOUND = 90.0
STOCKHOLM = ZoneInfo("Europe/Stockholm")
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
#: The image's entrypoint (the Dockerfile's ENTRYPOINT ["council"]), run from this checkout.
COUNCIL = [sys.executable, "-c", "import cli; cli.main()"]


def test_the_compose_file_is_what_the_hosts_run() -> None:
    """The test reads these; if the compose file changes shape, it says so here."""
    assert 'ENTRYPOINT ["council"]' in (ROOT / "Dockerfile").read_text()
    services = COMPOSE["services"]
    for name in ("worker", "beat", "migrate"):
        assert services[name]["command"], name
    environment = COMPOSE["x-council"]["environment"]
    assert {"COUNCIL_DATABASE_URL", "COUNCIL_BROKER_URL", "COUNCIL_SMTP_HOST"} <= set(environment)
    assert services["redis"]["command"][0] == "redis-server"


def service_env(data_address: str, definitions: Path, var: Path) -> dict[str, str]:
    """The compose services' environment, on a host whose ``data`` is at ``data_address``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_") and k != "CI"}
    for key, value in COMPOSE["x-council"]["environment"].items():
        if not str(value).startswith("${"):  # an operator's secret, empty unless given
            env[key] = str(value)
    env["COUNCIL_DATABASE_URL"] = (
        sa.engine.make_url(env["COUNCIL_DATABASE_URL"]).set(host=data_address)
        .render_as_string(hide_password=False)
    )  # fmt: skip
    broker = urlsplit(env["COUNCIL_BROKER_URL"])
    env["COUNCIL_BROKER_URL"] = urlunsplit(broker._replace(netloc=f"{data_address}:{broker.port}"))
    env["COUNCIL_SMTP_HOST"] = data_address
    env["COUNCIL_DEFINITIONS"] = str(definitions)  # compose mounts ./definitions there
    env.pop("COUNCIL_SITE_DIR", None)  # the site has its own tests; here it is only load
    env["COUNCIL_VAR_DIR"] = str(var)
    env["COUNCIL_SWEEP_INTERVAL"] = "5"
    env["COUNCIL_ACTOR"] = "p0"
    return env


class Installation:
    """The network, ``data``'s servers, and each worker host's worker and beat."""

    def __init__(self, tmp_path: Path) -> None:
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.definitions = write_load_definitions(tmp_path / "defs", points=400)
        write_assignment(self.definitions, "late", points=4)
        write_assignment(self.definitions, "more", points=100)
        self.network = Network()
        self.network.build(["w1", "w2"])
        self.data = DataHost(self.network)
        self.data.start(COMPOSE["services"]["redis"]["command"],
                        int(COMPOSE["x-council"]["environment"]["COUNCIL_SMTP_PORT"]))  # fmt: skip
        self.env = {
            name: service_env(host.data_address, self.definitions, tmp_path / f"var-{name}")
            for name, host in self.network.hosts.items()
        }
        self.db = connect(self.data.database_url)
        self.redis = redis.Redis(unix_socket_path=str(self.data.redis_socket))
        self.run("w1", *COMPOSE["services"]["migrate"]["command"])

    def run(self, host: str, *args: str) -> None:
        """A one-off command, as ``docker compose run --rm council ARGS`` on ``host``."""
        command = self.network.command(host, [*COUNCIL, *args])
        result = subprocess.run(command, cwd=ROOT, env=self.env[host], capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        assert result.returncode == 0, result.stderr

    def up(self, host: str) -> None:
        """Plug ``host`` in and start its worker and beat, as the compose services."""
        self.network.link(host, up=True)
        log = self.logs / f"{host}-worker.log"
        offset = log.stat().st_size if log.exists() else 0
        for service in ("worker", "beat"):
            self.network.start(host, [*COUNCIL, *COMPOSE["services"][service]["command"]],
                               self.logs / f"{host}-{service}.log", env=self.env[host])  # fmt: skip
        wait_for(lambda: b" ready." in log.read_bytes()[offset:], timeout=90,
                 what=f"{host}'s worker to be ready")  # fmt: skip

    def down(self, host: str) -> None:
        """The host dies: off the network first, then every process in it killed."""
        self.network.link(host, up=False)
        assert self.network.kill_all(host) > 0

    def close(self) -> None:
        self.db.dispose()
        self.redis.close()
        self.network.close()
        self.data.close()

    # --- what the test reads ---

    def received(self) -> list[str]:
        parser = email.parser.BytesHeaderParser()
        ids = []
        for path in self.data.messages():
            with path.open("rb") as message:
                ids.append(str(parser.parse(message)["Message-ID"]))
        return ids

    def sent(self) -> int:
        return len(self.data.messages())

    def open_work(self) -> tuple[int, int]:
        """Events not yet handled, e-mails not yet sent."""
        with self.db.connect() as conn:
            unhandled = conn.execute(sa.select(sa.func.count()).where(
                tables.outbox.c.handled_at.is_(None))).scalar_one()  # fmt: skip
            unsent = conn.execute(sa.select(sa.func.count()).where(
                tables.effects.c.state != EffectState.DONE.value)).scalar_one()  # fmt: skip
        return int(unhandled), int(unsent)

    def on_the_wire(self) -> int:
        """E-mails claimed for sending now: at most these may arrive twice after a fault."""
        with self.db.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(
                tables.effects.c.state == EffectState.SENDING.value)).scalar_one())  # fmt: skip

    def effects(self) -> int:
        query = sa.select(sa.func.count()).select_from(tables.effects)
        with self.db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def heal(self, what: str) -> None:
        """Wait until every event is handled and every e-mail sent, while work goes on."""
        try:
            wait_for(lambda: self.open_work() == (0, 0), timeout=120, what=what,
                     progress=lambda: (self.sent(), self.open_work()))  # fmt: skip
        except AssertionError as stuck:
            raise AssertionError(f"{stuck}; sessions: {self.sessions()}") from None

    def sessions(self) -> list[tuple[Any, ...]]:
        """The database's sessions from other hosts: what a stuck heal waits on."""
        query = sa.text("SELECT client_addr::text, state, wait_event_type, left(query, 80) "
                        "FROM pg_stat_activity WHERE client_addr IS NOT NULL")  # fmt: skip
        with self.db.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def assert_once(self, *, slack: int) -> Counter[str]:
        """Every e-mail arrived; a repeat only of one that was on the wire at a fault."""
        expected = expected_message_ids(self.db)
        received = Counter(self.received())
        assert set(received) == expected, (
            f"{len(expected - set(received))} missing, {len(set(received) - expected)} unknown"
        )
        repeats = Counter({mid: n - 1 for mid, n in received.items() if n > 1})
        assert sum(repeats.values()) <= slack, f"{sum(repeats.values())} sent twice"
        return repeats


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    Network.require()
    built = Installation(tmp_path)
    try:
        yield built
    finally:
        built.close()


def test_hosts_die_and_partition_and_nothing_is_lost_or_doubled(
    installation: Installation,
) -> None:
    site = installation
    site.up("w1")
    site.up("w2")
    figures: dict[str, Any] = {}

    # 1. 2,000 prompts; w1 dies midway.
    site.run("w1", "start", "load")
    wait_for(lambda: site.sent() >= 1000, timeout=120, what="1,000 of 2,000 prompts",
             progress=site.sent)  # fmt: skip
    site.down("w1")
    killed = time.monotonic()
    wire = site.on_the_wire()
    site.heal("2,000 prompts after w1's death")
    figures["heal_after_host_death_s"] = round(time.monotonic() - killed, 1)
    repeats = site.assert_once(slack=wire)
    assert site.effects() == 2000
    figures["prompts"] = 2000
    figures["repeats_after_death"] = sum(repeats.values())
    assert figures["heal_after_host_death_s"] < HEAL_BOUND, figures

    # 2. The beat leader's host dies; the other beat takes over; the next sweep fires once.
    site.up("w1")
    first = leader.read(site.redis)
    assert first is not None
    assert first.host in ("w1", "w2"), first
    other = "w2" if first.host == "w1" else "w1"
    site.down(first.host)
    killed = time.monotonic()
    wait_for(lambda: (now := leader.read(site.redis)) is not None and now.host == other,
             timeout=60, what=f"{other}'s beat to lead")  # fmt: skip
    figures["beat_takeover_s"] = round(time.monotonic() - killed, 1)
    before = site.effects()
    engine = Engine(db=site.db, definitions=load([site.definitions]), calendar=Calendar(),
                    timezone=STOCKHOLM)  # fmt: skip
    # Started two years ago: every step is long overdue, for the next sweep to see.
    engine.start("late", actor="p0", now=dt.datetime(2024, 2, 1, 9, tzinfo=STOCKHOLM))
    fired = lambda: _firings(site.db)  # noqa: E731
    wait_for(lambda: fired() > 0 and site.open_work() == (0, 0), timeout=120,
             what="the next sweep's reminders, sent",
             progress=lambda: (fired(), site.sent(), site.open_work()))  # fmt: skip
    figures["fired_by_the_new_leader"] = fired()
    assert site.effects() > before + 20  # 20 prompts and a mail per firing
    assert sum(site.assert_once(slack=wire).values()) == figures["repeats_after_death"]
    assert leader.read(site.redis).host == other  # type: ignore[union-attr]
    site.up(first.host)

    # 3. w2 is cut off from data for 30 s while 500 prompts go out.
    before = site.sent()
    site.run("w1", "start", "more")
    wait_for(lambda: site.sent() >= before + 100, timeout=120, what="100 of 500 prompts",
             progress=site.sent)  # fmt: skip
    wire += site.on_the_wire()
    site.network.link("w2", up=False)
    time.sleep(30)  # the partition itself: a fault that lasts, not a wait for a result
    site.network.link("w2", up=True)
    healed = time.monotonic()
    site.heal("500 prompts after w2's partition")
    figures["heal_after_partition_s"] = round(time.monotonic() - healed, 1)
    repeats = site.assert_once(slack=wire)
    figures["mails"] = site.sent()
    figures["distinct_message_ids"] = len(set(site.received()))
    figures["repeats"] = sum(repeats.values())
    print("hosts:", json.dumps(figures))  # for docs/operations.md


def _firings(db: sa.Engine) -> int:
    with db.connect() as conn:
        query = sa.select(sa.func.count()).select_from(tables.firings)
        return int(conn.execute(query).scalar_one())


#: What w1 runs: council's own connection to data's PostgreSQL, a row locked in a
#: transaction that never ends (a host that dies between its UPDATE and its COMMIT).
_LOCKER = """
import sys, time
import sqlalchemy as sa
from workflow.store import connect
conn = connect(sys.argv[1]).connect()
conn.execute(sa.text("SELECT id FROM held WHERE id = 1 FOR UPDATE"))
print("locked", flush=True)
time.sleep(3600)
"""


def test_a_dead_hosts_row_locks_are_freed_within_the_bound(tmp_path: Path) -> None:
    """A host dies holding a row lock: the server ends its session (council's keepalives)
    within DEAD_PEER_SECONDS, where the kernel alone would wait two hours."""
    Network.require()
    network = Network()
    data = DataHost(network)
    try:
        network.build(["w1"])
        data.start(COMPOSE["services"]["redis"]["command"], 1025)
        db = connect(data.database_url)
        with db.begin() as conn:
            conn.execute(sa.text("CREATE TABLE held (id int PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO held VALUES (1)"))
        url = service_env(network.hosts["w1"].data_address, tmp_path, tmp_path)
        log = tmp_path / "locker.log"
        network.start("w1", [sys.executable, "-c", _LOCKER, url["COUNCIL_DATABASE_URL"]], log)
        wait_for(lambda: b"locked" in log.read_bytes(), timeout=60, what="w1 to hold the lock")
        network.link("w1", up=False)
        network.kill_all("w1")
        died = time.monotonic()

        def from_w1() -> int:
            query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE client_addr = :a")
            with db.connect() as conn:
                return int(conn.execute(query, {"a": network.hosts["w1"].address}).scalar_one())

        assert from_w1() == 1  # the server still thinks w1 is there
        bound = DEAD_PEER_SECONDS + 20  # the kernel's timers, and a slow machine's margin
        wait_for(lambda: from_w1() == 0, timeout=bound, what="the server to end w1's session")
        freed = time.monotonic() - died
        with db.begin() as conn:  # the row is free: a lock taken at once, or an error
            conn.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            conn.execute(sa.text("SELECT id FROM held WHERE id = 1 FOR UPDATE"))
        print(f"a dead host's session ended {freed:.1f} s after its death")
        db.dispose()
    finally:
        network.close()
        data.close()
