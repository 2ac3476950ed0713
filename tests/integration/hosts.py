"""Several hosts on one machine: network namespaces joined by veth pairs.

Host ``data`` has a link to each other host (``w1``, ``w2``…), a /24 of its own in
10.88.0.0/16 inside the namespaces; nothing is added to the machine's own network. A
host can be taken off the network (its link set down at ``data``'s end: the other end
sees no carrier) and every process in it killed, as when a machine dies; a process runs
in a host with its own host name (a UTS namespace), as in a container.

The test itself stays outside the namespaces: it reaches ``data``'s PostgreSQL and Redis
through unix sockets in a directory (sockets are files, not addresses) and reads the
SMTP sink's messages from files.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.servers import wait_for
from tests.support import ROOT, missing_server

POSTGRES_BIN = Path("/usr/lib/postgresql")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Host:
    name: str
    netns: str
    #: This host's address, and the address it reaches ``data`` at (its link's other end).
    address: str
    data_address: str
    #: The link's interface name at ``data``'s end.
    link: str


@dataclass
class Network:
    """The namespaces of one test run, named uniquely so that runs never collide."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @staticmethod
    def require() -> None:
        """Skip (locally) or fail (in CI) when this machine cannot make namespaces."""
        if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("unshare") is None:
            missing_server("root with iproute2's `ip netns` and util-linux's `unshare`")
        probe = f"council-probe-{uuid.uuid4().hex[:6]}"
        try:
            _ip("netns", "add", probe)
        except subprocess.CalledProcessError as error:
            missing_server(f"network namespaces ({error.stderr.decode().strip()})")
        _ip("netns", "del", probe)

    def netns(self, name: str) -> str:
        return f"council-{self.tag}-{name}"

    def build(self, names: Sequence[str]) -> None:
        """``data`` and a link from it to each named host."""
        _ip("netns", "add", self.netns("data"))
        _ip("-n", self.netns("data"), "link", "set", "lo", "up")
        for number, name in enumerate(names, start=1):
            ns = self.netns(name)
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            link = f"to-{name}"
            host = Host(name, ns, f"10.88.{number}.2", f"10.88.{number}.1", link)
            _ip("link", "add", "name", link, "netns", self.netns("data"),
                "type", "veth", "peer", "name", "eth0", "netns", ns)  # fmt: skip
            _ip("-n", self.netns("data"), "addr", "add", f"{host.data_address}/24", "dev", link)
            _ip("-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", self.netns("data"), "link", "set", link, "up")
            _ip("-n", ns, "link", "set", "eth0", "up")
            self.hosts[name] = host

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run in ``host``, under the host's own name."""
        ns = self.netns(host)
        return ["ip", "netns", "exec", ns, "unshare", "--uts", "--",
                "sh", "-c", 'hostname "$0" && exec "$@"', host, *argv]  # fmt: skip

    def start(
        self, host: str, argv: Sequence[str], log: Path, **kwargs: object
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                self.command(host, argv), stdout=out, stderr=subprocess.STDOUT,
                cwd=ROOT, start_new_session=True, **kwargs,  # type: ignore[call-overload]
            )  # fmt: skip
        self.processes.append(process)
        return process

    def link(self, host: str, *, up: bool) -> None:
        """Plug ``host``'s link in at ``data``'s end, or pull it out."""
        _ip("-n", self.netns("data"), "link", "set", self.hosts[host].link, "up" if up else "down")

    def pids(self, host: str) -> list[int]:
        listed = subprocess.run(["ip", "netns", "pids", self.netns(host)], capture_output=True,
                                text=True, timeout=30)  # fmt: skip
        return [int(pid) for pid in listed.stdout.split()]

    def kill_all(self, host: str) -> int:
        """SIGKILL every process in ``host``, as a machine that loses power; how many."""
        killed = 0
        for _ in range(20):  # a dying parent may have forked just now: until none is left
            pids = self.pids(host)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            time.sleep(0.2)
        for process in self.processes:  # reap the ones this test started (no zombies)
            process.poll()
        return killed

    def close(self) -> None:
        for name in [*self.hosts, "data"]:
            with contextlib.suppress(Exception):
                for pid in self.pids(name):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for name in [*self.hosts, "data"]:
            with contextlib.suppress(Exception):
                self.kill_all(name)
            with contextlib.suppress(Exception):
                _ip("netns", "del", self.netns(name))
        for process in self.processes:
            with contextlib.suppress(Exception):
                process.wait(timeout=5)


@dataclass
class DataHost:
    """``data``'s servers: PostgreSQL (initdb into a temp dir), Redis and an SMTP sink,
    each listening on every address of the host; their sockets and files in ``root``."""

    network: Network
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="council-data-")))

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    @property
    def redis_socket(self) -> Path:
        return self.root / "redis.sock"

    @property
    def database_url(self) -> str:
        """The test's own way in: PostgreSQL's unix socket."""
        return f"postgresql+psycopg://council@/council?host={self.root}"

    def start(self, redis_command: Sequence[str], smtp_port: int) -> None:
        self.root.chmod(0o700)
        self._postgres()
        redis_dir = self.root / "redis"
        redis_dir.mkdir(mode=0o700)
        self.network.start("data", [
            shutil.which(redis_command[0]) or redis_command[0], *redis_command[1:],
            "--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no", "--save", "",
            "--dir", str(redis_dir), "--unixsocket", str(self.redis_socket),
            "--unixsocketperm", "700",
        ], self.root / "redis.log")  # fmt: skip
        sink = [sys.executable, "-m", "tests.integration.smtp_sink", str(self.mail), str(smtp_port)]
        self.network.start("data", sink, self.root / "smtp.log")
        wait_for(lambda: self.redis_socket.exists(), timeout=30, what="data's Redis")
        wait_for(lambda: (self.mail / ".ready").exists(), timeout=30, what="data's SMTP sink")

    def _postgres(self) -> None:
        versions = sorted(POSTGRES_BIN.glob("*/bin/initdb"))
        if not versions:
            missing_server("PostgreSQL's server binaries (initdb) in /usr/lib/postgresql")
        bin_dir = versions[-1].parent
        account = pwd.getpwnam("postgres")
        os.chown(self.root, account.pw_uid, account.pw_gid)
        data = self.root / "pgdata"
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "council",
                        "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.88.0.0/16 trust\n")
        self.network.start("data", [
            *as_postgres, str(bin_dir / "postgres"), "-D", str(data), "-k", str(self.root),
            "-c", "listen_addresses=*", "-c", "port=5432", "-c", "fsync=off",
            "-c", "max_connections=200",
        ], self.root / "postgres.log")  # fmt: skip
        ready = [str(bin_dir / "pg_isready"), "-q", "-h", str(self.root), "-p", "5432"]
        wait_for(lambda: subprocess.run(ready, timeout=10).returncode == 0, timeout=60,
                 what="data's PostgreSQL")  # fmt: skip
        createdb = [str(bin_dir / "createdb"), "-h", str(self.root), "-U", "council", "council"]
        subprocess.run(createdb, check=True, capture_output=True, timeout=60)

    def messages(self) -> list[Path]:
        return list(self.mail.glob("*.eml"))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
