"""The embedded broker: a redis-server council starts itself on a unix socket, once.

Every server is started in this test's tmp_path and stopped at teardown; the
machine's own Redis (127.0.0.1:6379) is never touched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.servers import wait_for
from tests.support import missing_server
from workflow.errors import Unreachable
from workflow.ops.embedded import EmbeddedRedis, find_redis_server

Make = Callable[..., EmbeddedRedis]


@pytest.fixture
def binary() -> Path:
    """The redis-server the embedded broker uses; skipped locally (failed in CI) if absent."""
    try:
        return find_redis_server()
    except Unreachable:
        missing_server("a redis-server binary")
        raise


@pytest.fixture
def make(binary: Path, tmp_path: Path) -> Iterator[Make]:
    """EmbeddedRedis instances under tmp_path; each one's server is stopped at the end."""
    made: list[EmbeddedRedis] = []

    def _make(name: str = "redis") -> EmbeddedRedis:
        server = EmbeddedRedis(tmp_path / name, binary)
        made.append(server)
        return server

    yield _make
    for server in made:
        pid = _pid(server)
        server.stop()
        if pid is not None:
            with contextlib.suppress(AssertionError):
                wait_for(functools.partial(_gone, pid), timeout=10, what="redis to exit")


def _pid(server: EmbeddedRedis) -> int | None:
    try:
        return int(server.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _gone(pid: int) -> bool:
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def servers_in(directory: Path) -> list[int]:
    """Pids of live processes working in ``directory`` (redis-server chdirs to its --dir)."""
    target = directory.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == target and "redis" in (
                entry / "cmdline"
            ).read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if _alive(pid)]


def client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket_path), socket_timeout=5)


def test_ensure_running_starts_a_durable_server(make: Make) -> None:
    """The server answers on its socket with the append-only file on and noeviction."""
    server = make()
    assert not server.ping()
    url = server.ensure_running()
    assert url == f"redis+socket://{server.socket_path.resolve()}"
    assert server.ping()
    conn = client(server)
    try:
        assert conn.config_get("appendonly") == {"appendonly": "yes"}
        assert conn.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert conn.config_get("port") == {"port": "0"}  # no TCP port at all
        assert Path(str(conn.config_get("dir")["dir"])) == server.directory.resolve()
    finally:
        conn.close()
    mode = server.socket_path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o700  # only council's user may talk to it
    pid = _pid(server)
    assert pid is not None
    assert servers_in(server.directory) == [pid]


def test_second_ensure_running_reuses_the_server(make: Make) -> None:
    """Calling ensure_running again returns the same URL and starts no second process."""
    server = make()
    url = server.ensure_running()
    pid = _pid(server)
    assert pid is not None
    # a fresh object for the same directory, as another process would build it
    again = EmbeddedRedis(server.directory, server.binary)
    assert again.ensure_running() == url
    assert server.ensure_running() == url
    assert _pid(server) == pid
    assert servers_in(server.directory) == [pid]


def test_concurrent_starts_start_exactly_one_server(make: Make) -> None:
    """Two threads calling ensure_running at once: one server, both get its URL."""
    server = make()
    barrier = threading.Barrier(2)
    urls: list[str] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(timeout=10)
            urls.append(EmbeddedRedis(server.directory, server.binary).ensure_running())
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert urls == [server.url, server.url]
    time.sleep(0.2)  # a second, orphaned server would be up by now
    pid = _pid(server)
    assert pid is not None
    assert servers_in(server.directory) == [pid]
    assert server.ping()


def test_stop_stops_the_server_and_reports_whether_one_ran(make: Make) -> None:
    """stop() ends the server (ping False, process gone); with none running it returns False."""
    server = make()
    assert server.stop() is False  # never started
    server.ensure_running()
    pid = _pid(server)
    assert pid is not None
    assert server.stop() is True
    assert not server.ping()
    wait_for(lambda: not _alive(pid), timeout=10, what="redis-server to exit")
    assert server.stop() is False  # nothing left to stop
    assert servers_in(server.directory) == []


def test_a_restarted_server_keeps_its_data(make: Make) -> None:
    """With the append-only file on, a queued message survives a stop and a new start."""
    server = make()
    server.ensure_running()
    conn = client(server)
    try:
        conn.rpush("council", "dispatch 42")
    finally:
        conn.close()
    pid = _pid(server)
    assert pid is not None
    assert server.stop()
    wait_for(lambda: not _alive(pid), timeout=10, what="redis-server to exit")
    server.ensure_running()
    assert _pid(server) != pid
    conn = client(server)
    try:
        assert conn.lrange("council", 0, -1) == [b"dispatch 42"]
    finally:
        conn.close()


def test_stop_with_a_stale_pidfile_returns_false(make: Make) -> None:
    """A pidfile naming a process that no longer exists is cleaned up; stop() returns False."""
    server = make()
    server.directory.mkdir(parents=True)
    # pid_max itself is never a valid pid, so no process can be hit by mistake
    impossible = int(Path("/proc/sys/kernel/pid_max").read_text())
    server.pidfile.write_text(f"{impossible}\n")
    assert server.stop() is False
    assert not server.pidfile.exists()
    server.pidfile.write_text("not a pid\n")
    assert server.stop() is False


def test_binary_that_fails_to_start_is_unreachable(tmp_path: Path) -> None:
    """A redis-server that exits with an error raises Unreachable, not a raw subprocess error."""
    server = EmbeddedRedis(tmp_path / "broken", Path("/bin/false"))
    with pytest.raises(Unreachable, match="did not start"):
        server.ensure_running()
    assert not server.ping()


def test_missing_binary_is_unreachable(tmp_path: Path) -> None:
    """A configured redis_server path that does not exist is reported as Unreachable."""
    server = EmbeddedRedis(tmp_path / "missing", tmp_path / "no-such-redis-server")
    with pytest.raises(Unreachable):
        server.ensure_running()
