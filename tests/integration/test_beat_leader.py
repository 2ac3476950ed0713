"""Any number of beats, one leader: two `council beat` processes on the test's own Redis.

Only the leader publishes periodic tasks (their messages name the publishing process);
when it is killed the other takes over within the documented bound, and the doctor
names the leader. No worker runs: the messages stay in Redis to be read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.servers import RedisServer, council, wait_for
from tests.support import ROOT
from workflow.ops import leader

#: The lease the test's beats hold (short, to keep the test short).
LEASE = 3.0


def publishers(client: redis.Redis) -> Counter[int]:
    """The pids of the processes that published the queued periodic tasks."""
    origins: Counter[int] = Counter()
    for raw in client.lrange("council.periodic", 0, -1):
        origin = json.loads(raw)["headers"]["origin"]  # "gen<pid>@<host>"
        origins[int(origin.removeprefix("gen").split("@")[0])] += 1
    return origins


@pytest.fixture
def beats(
    redis_server: RedisServer, tmp_path: Path, worker_env: dict[str, str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    for name in ("b1", "b2"):
        env = {**worker_env, "COUNCIL_VAR_DIR": str(tmp_path / name),
               "COUNCIL_RELAY_INTERVAL": "0.5", "COUNCIL_BEAT_LEASE": str(LEASE)}  # fmt: skip
        with (tmp_path / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", "import cli; cli.main()", "beat"], cwd=ROOT, env=env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        started.append(process)
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


# Beat's lease lives in Redis: the database is beside the point (SQLite, once).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_beat_leads_and_the_other_takes_over_when_it_dies(
    beats: list[subprocess.Popen[bytes]], redis_server: RedisServer, worker_env: dict[str, str]
) -> None:
    client = redis.Redis(unix_socket_path=str(redis_server.socket_path), decode_responses=True)
    pids = {p.pid for p in beats}
    queued = lambda: client.llen("council.periodic")  # noqa: E731
    wait_for(lambda: sum(publishers(client).values()) >= 6, timeout=30,
             what="the leader's periodic tasks", progress=queued)  # fmt: skip
    first = leader.read(client)
    assert first is not None
    assert first.pid in pids
    assert set(publishers(client)) == {first.pid}  # the standby fired nothing
    doctor = council({**worker_env, "COUNCIL_BEAT_LEASE": str(LEASE)}, "doctor", "--check",
                     "beat", "--json")  # fmt: skip
    (line,) = [c for c in json.loads(doctor)["checks"] if c["check"] == "beat"]
    assert f"leader {first.host} pid {first.pid}" in line["detail"]

    (dead,) = [p for p in beats if p.pid == first.pid]
    os.killpg(dead.pid, signal.SIGKILL)  # its host is gone: no clean hand-over
    dead.wait(timeout=10)
    killed = time.monotonic()
    (other,) = pids - {first.pid}
    wait_for(lambda: other in publishers(client), timeout=30, what="the standby to take over",
             progress=queued)  # fmt: skip
    took_over = time.monotonic() - killed
    print(f"the standby took over {took_over:.1f} s after the leader's kill")
    second = leader.read(client)
    assert second is not None
    assert second.pid == other
    # The lease runs out, then the standby's next try (every third of the lease) takes it.
    assert took_over < LEASE + LEASE / 3 + 5, f"took over after {took_over:.1f} s"
