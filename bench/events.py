"""Events benchmark: council end to end against raw Celery, on one broker and one worker.

End to end: a command commits in the engine (as the CLI does, the committed events are
then published by ``tasks.publish.publish_committed``), a real Celery worker subprocess
dispatches each event, its handlers record the prompts, and delivery hands each prompt
to an aiosmtpd server running in this process (offering PIPELINING, as real servers do;
``COUNCIL_BENCH_SMTP=smtp-sink``: Postfix's smtp-sink in a process of its own instead).
Raw Celery: no-op tasks published on the same private Redis and run by the same worker
(``bench/events_worker.py``: council's app, configuration, pool and concurrency, plus
the no-op task).

* **Throughput.** Starting an assignment of 100 points, each a workflow of 5 parallel
  steps, commits 600 events at once (100 ``point.started`` and 500 ``step.activated``)
  that e-mail 500 prompts: from the commit to the last mail received. The baseline
  publishes as many no-op tasks (600) and runs from the first publish to the last one
  done. Both count Celery messages per second, so the ratio compares the same number of
  messages with and without council's work behind them (target: 1.0 or better). Three
  rounds of each, alternating; the median round counts.
* **Latency**, one at a time on an idle worker: starting a one-step point (2 events, 1
  prompt) from its commit to its mail received, against a no-op task from its publish
  to its completion seen here (p50, p99). Target: council's p99 within 3x raw Celery's.

The private Redis is council's embedded broker started in a temporary directory (a unix
socket; the machine's Redis is never used). SQLite by default; PostgreSQL too when
``COUNCIL_BENCH_POSTGRES_URL``'s server answers (a database of its own, dropped after).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import os
import re
import select
import shutil
import signal
import smtplib
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bench.progress import progress
from bench.sweep import drop, postgres_database
from workflow.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Europe/Stockholm")
NOW = dt.datetime(2024, 2, 1, 9, 0, tzinfo=TZ)
POINTS = 100
FAN = 5
PROMPTS = POINTS * FAN
EVENTS = POINTS * (FAN + 1)
#: Throughput rounds (raw and end to end alternate); the median round is reported.
ROUNDS = 3
#: One-at-a-time measurements, after WARM_UP unmeasured ones.
PROBES = 100
WARM_UP = 10
CONCURRENCY = os.cpu_count() or 2
#: Events a dispatch message names: council's default (``dispatch_batch``).
DISPATCH_BATCH: int = Settings.model_fields["dispatch_batch"].default
#: Targets (issue 17): events/s at least this times raw Celery's tasks/s, and the p99 of
#: commit to mail within this times raw Celery's publish-to-done p99.
TARGET_RATIO = 1.0
TARGET_P99 = 3.0
TIMEOUT = 300.0


# --- definitions -------------------------------------------------------------------


def write_definitions(root: Path) -> Path:
    """``load-1``..: POINTS points x FAN parallel steps, one per round; ``probe``: one-step
    points."""
    (root / "workflows").mkdir(parents=True)
    (root / "assignments").mkdir()
    people = "\n".join(
        f"  - {{id: p{i}, name: Person {i}, email: p{i}@kommun.example, "
        f"language: {'sv' if i % 2 else 'en'}}}"
        for i in range(10)
    )
    (root / "people.yaml").write_text(f"people:\n{people}\n")
    steps = "\n".join(f"  - {{id: s{j}, title: Moment {j}, due: 10bd}}" for j in range(FAN))
    (root / "workflows" / "fan.yaml").write_text(f"id: fan\ntitle: Solfjäder\nsteps:\n{steps}\n")
    (root / "workflows" / "one.yaml").write_text(
        "id: one\ntitle: Ett moment\nsteps:\n  - {id: work, title: Arbeta, due: 10bd}\n"
    )
    assignments = [(f"load-{r}", "fan", POINTS) for r in range(1, ROUNDS + 1)]
    for name, workflow, count in [*assignments, ("probe", "one", WARM_UP + PROBES)]:
        body = "\n".join(
            f"  - {{number: {n}, title: Punkt {n}, workflow: {workflow}, owner: p{n % 10}}}"
            for n in range(1, count + 1)
        )
        (root / "assignments" / f"{name}.yaml").write_text(
            f"id: {name}\ntitle: Uppdrag {name}\nreference: KS 2024/1\ndecided_by: KF\n"
            "decided_on: 2024-01-15\nassigned_to: {lead: KS}\ncoordinator: p0\n"
            f"report_back: 2024-12-16\npoints:\n{body}\n"
        )
    return root


# --- the SMTP server ---------------------------------------------------------------

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class MailCatcher:
    """aiosmtpd on a free loopback port; notes when each message arrived, and its id."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self._changed = threading.Condition()
        self._controller: Any = None
        self.port = 0

    async def handle_EHLO(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Offer PIPELINING, as Postfix, Exim and Exchange do (aiosmtpd reads pipelined
        commands in order, it only does not say so by itself)."""
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", *responses[1:]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        at = time.perf_counter()
        found = _MESSAGE_ID.search(envelope.content)
        with self._changed:
            self.arrivals.append((at, found.group(1) if found else b""))
            self._changed.notify_all()
        return "250 Message accepted"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, *, on_change: Callable[[int], None] | None = None) -> None:
        deadline = time.monotonic() + TIMEOUT
        with self._changed:
            while len(self.arrivals) < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(self.arrivals)} of {count} mails arrived")
                self._changed.wait(0.5)
                if on_change:
                    on_change(len(self.arrivals))


#: Postfix's smtp-sink, the SMTP server made for benchmarking clients (C, PIPELINING),
#: taken from Debian's postfix package into var/ (no MTA installed, nothing started but it).
POSTFIX = ROOT / "var" / "postfix-sink"


def smtp_sink() -> Path:
    """The smtp-sink binary, fetched once with ``apt-get download postfix`` and unpacked."""
    binary = POSTFIX / "usr" / "sbin" / "smtp-sink"
    if binary.exists():
        return binary
    fetching = progress("events: fetching Postfix's smtp-sink (apt-get download postfix)")
    with fetching, tempfile.TemporaryDirectory() as name:
        subprocess.run(["apt-get", "download", "postfix"], cwd=name, check=True,
                       capture_output=True)  # fmt: skip
        (deb,) = Path(name).glob("postfix_*.deb")
        POSTFIX.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(POSTFIX)], check=True)
    return binary


class SinkCatcher:
    """Postfix's smtp-sink on a free loopback port, each message dumped to a file of its
    own in a private directory; a thread here notes when each file is closed (inotify) and
    the Message-ID in it. Same interface as :class:`MailCatcher`
    (``COUNCIL_BENCH_SMTP=smtp-sink``)."""

    def __init__(self, tmp: Path) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self._changed = threading.Condition()
        self._tmp = tmp
        self._dir = tmp / "sink"
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> None:
        binary = smtp_sink()
        if os.geteuid() == 0:  # smtp-sink runs as nobody: a directory of its own in /tmp
            self._dir = Path(tempfile.mkdtemp(prefix="council-bench-sink-"))
            self._dir.chmod(0o777)
        else:
            self._dir.mkdir()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        env = {**os.environ, "LD_LIBRARY_PATH": str(POSTFIX / "usr" / "lib" / "postfix")}
        self._process = subprocess.Popen(
            [str(binary), *user, "-d", f"{self._dir}/%H%M%S.", f"127.0.0.1:{self.port}", "256"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                smtplib.SMTP("127.0.0.1", self.port, timeout=1).quit()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        """Read inotify's IN_CLOSE_WRITE for the dump directory: a message's file is closed
        once the whole message is in it."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK)
        if fd < 0 or libc.inotify_add_watch(fd, str(self._dir).encode(), 0x8) < 0:
            raise OSError(ctypes.get_errno(), "inotify")
        try:
            pending = b""
            while not self._stop.is_set():
                if not select.select([fd], [], [], 0.2)[0]:
                    continue
                at = time.perf_counter()
                pending += os.read(fd, 1 << 16)
                found = []
                while len(pending) >= 16:
                    _wd, _mask, _cookie, size = struct.unpack_from("iIII", pending)
                    if len(pending) < 16 + size:
                        break
                    name = pending[16 : 16 + size].rstrip(b"\0").decode()
                    pending = pending[16 + size :]
                    mid = _MESSAGE_ID.search((self._dir / name).read_bytes())
                    found.append((at, mid.group(1) if mid else b""))
                with self._changed:
                    self.arrivals.extend(found)
                    self._changed.notify_all()
        finally:
            os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._process is not None:
            self._process.terminate()
            self._process.wait()
            self._process = None
        if not self._dir.is_relative_to(self._tmp):
            shutil.rmtree(self._dir, ignore_errors=True)

    wait_for = MailCatcher.wait_for


# --- the worker --------------------------------------------------------------------


def council_env(database_url: str, broker_url: str, smtp_port: int, definitions: Path,
                var: Path) -> dict[str, str]:  # fmt: skip
    """What both the worker and this process (as the CLI) run with: production defaults
    (time limits, prefetch, retries) and this run's servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update(
        COUNCIL_DATABASE_URL=database_url,
        COUNCIL_BROKER_URL=broker_url,
        COUNCIL_DEFINITIONS=str(definitions),
        COUNCIL_VAR_DIR=str(var),
        COUNCIL_SMTP_HOST="127.0.0.1",
        COUNCIL_SMTP_PORT=str(smtp_port),
        COUNCIL_SMTP_SECURITY="none",
        COUNCIL_MAIL_FROM="council@kommun.example",
        # The batch size under test (the default unless COUNCIL_DISPATCH_BATCH says).
        COUNCIL_DISPATCH_BATCH=os.environ.get("COUNCIL_DISPATCH_BATCH", str(DISPATCH_BATCH)),
    )
    return env


@contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``celery -A bench.events_worker worker``, as ``council worker`` runs it (prefork,
    one process per CPU, INFO logs), in its own process group; stopped at the end."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "bench.events_worker", "worker",
                "--pool=prefork", f"--concurrency={CONCURRENCY}", "--loglevel=INFO",
                "--without-mingle", "--without-gossip",
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """This process acts as the CLI: settings (and the Celery app) come from COUNCIL_*."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- measurements ------------------------------------------------------------------


def median_round(rounds: list[tuple[float, list[float]]]) -> tuple[float, list[float]]:
    return sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 2), "p99_ms": round(cuts[98] * 1000, 2)}


class Raw:
    """Publishes no-op tasks; a thread here sees each one done (BLPOP) as it happens."""

    def __init__(self, broker_url: str) -> None:
        import redis

        from bench.events_worker import noop

        self.noop = noop
        self.redis = redis.Redis(unix_socket_path=broker_url.removeprefix("redis+socket://"))
        self.key = "bench:done"

    def publish(self) -> None:
        # The options council's own publish_event uses.
        self.noop.apply_async(
            (self.key,),
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )

    def probe(self) -> float:
        started = time.perf_counter()
        self.publish()
        if self.redis.blpop([self.key], timeout=TIMEOUT) is None:
            raise TimeoutError("a no-op task did not run")
        return time.perf_counter() - started

    def burst(self, count: int, on_done: Callable[[int], None]) -> tuple[float, list[float]]:
        """Publish ``count`` tasks, then wait for all: (seconds, each one's latency)."""
        done: list[float] = []

        def watch() -> None:
            while len(done) < count:
                if self.redis.blpop([self.key], timeout=TIMEOUT) is None:
                    return
                done.append(time.perf_counter())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        sent: list[float] = []
        started = time.perf_counter()
        for _ in range(count):
            sent.append(time.perf_counter())
            self.publish()
        while watcher.is_alive():
            watcher.join(0.5)
            on_done(len(done))
        if len(done) < count:
            raise TimeoutError(f"{len(done)} of {count} no-op tasks ran")
        # Tasks may finish out of order; pair the k-th published with the k-th done.
        return done[-1] - started, [d - s for s, d in zip(sent, done, strict=True)]


class EndToEnd:
    """Commands through the engine, published as the CLI does, mails caught here."""

    def __init__(self, db: sa.Engine, definitions: Path, mail: MailCatcher) -> None:
        from tasks.publish import publish_committed
        from workflow.core.calendar import Calendar
        from workflow.definitions.loader import load
        from workflow.engine import Engine

        self.mail = mail
        self.committed: list[float] = []

        def on_commit(event_ids: Sequence[int]) -> None:
            self.committed.append(time.perf_counter())
            publish_committed(db, event_ids, batch=int(os.environ["COUNCIL_DISPATCH_BATCH"]))

        self.engine = Engine(
            db=db, definitions=load([definitions]), calendar=Calendar(), timezone=TZ,
            on_commit=on_commit,
        )  # fmt: skip

    def probe(self, number: int) -> float:
        expected = len(self.mail.arrivals) + 1
        self.engine.start("probe", actor="p0", now=NOW, only=number)
        self.mail.wait_for(expected)
        return self.mail.arrivals[expected - 1][0] - self.committed[-1]

    def burst(self, name: str, on_done: Callable[[int], None]) -> tuple[float, list[float]]:
        """Start a 100 x 5 assignment: (commit to last mail, each mail's latency)."""
        before = len(self.mail.arrivals)
        report = self.engine.start(name, actor="p0", now=NOW)
        if len(report.event_ids) != EVENTS:
            raise RuntimeError(f"{len(report.event_ids)} events committed, not {EVENTS}")
        committed = self.committed[-1]
        self.mail.wait_for(before + PROMPTS, on_change=lambda n: on_done(n - before))
        arrivals = [at for at, _ in self.mail.arrivals[before:]]
        return arrivals[-1] - committed, [at - committed for at in arrivals]


def check_delivered(db: sa.Engine, mail: MailCatcher, since: int) -> dict[str, int]:
    """Every effect done, every event handled; mails sent twice (same Message-ID)."""
    from workflow.store import tables

    deadline = time.monotonic() + 60
    while True:
        with db.connect() as conn:
            effects = conn.execute(sa.select(sa.func.count()).select_from(tables.effects)).scalar()
            open_effects = conn.execute(
                sa.select(sa.func.count()).where(tables.effects.c.state != "done")
            ).scalar()
            unhandled = conn.execute(
                sa.select(sa.func.count()).where(tables.outbox.c.handled_at.is_(None))
            ).scalar()
        if (open_effects == 0 and unhandled == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ids = [mid for _, mid in mail.arrivals[since:]]
    if open_effects or unhandled or effects != len(set(ids)):
        raise RuntimeError(
            f"not all delivered: {open_effects} effects open, {unhandled} events unhandled, "
            f"{len(set(ids))} distinct mails for {effects} effects"
        )
    return {"effects": int(effects or 0), "duplicates": len(ids) - len(set(ids))}


# --- one backend -------------------------------------------------------------------


def measure(database_url: str, broker_url: str, mail: MailCatcher, tmp: Path,
            label: str) -> dict[str, Any]:  # fmt: skip
    from workflow.store import connect, migrate

    definitions = write_definitions(tmp / f"defs-{label}")
    db = connect(database_url)
    env = council_env(database_url, broker_url, mail.port, definitions, tmp / f"var-{label}")
    try:
        migrate.upgrade(db)
        since = len(mail.arrivals)
        with environment(env), worker_process(env, tmp / f"worker-{label}.log"):
            raw = Raw(broker_url)
            e2e = EndToEnd(db, definitions, mail)
            with progress(f"events ({label}): warm-up and latency", 2 * PROBES) as bar:
                for n in range(1, WARM_UP + 1):  # both pool processes load their context
                    raw.probe()
                    e2e.probe(n)
                raw_latency = []
                for _ in range(PROBES):
                    raw_latency.append(raw.probe())
                    bar.advance()
                e2e_latency = []
                for n in range(WARM_UP + 1, WARM_UP + PROBES + 1):
                    e2e_latency.append(e2e.probe(n))
                    bar.advance()
            raw_rounds, e2e_rounds = [], []
            for r in range(1, ROUNDS + 1):
                what = f"events ({label}) round {r}/{ROUNDS}"
                with progress(f"{what}: raw Celery, {EVENTS} no-op tasks", EVENTS) as bar:
                    raw_rounds.append(raw.burst(EVENTS, bar.update))
                with progress(f"{what}: end to end, {PROMPTS} prompts", PROMPTS) as bar:
                    e2e_rounds.append(e2e.burst(f"load-{r}", bar.update))
            checked = check_delivered(db, mail, since)
    finally:
        db.dispose()
    (raw_s, raw_burst), (e2e_s, e2e_burst) = median_round(raw_rounds), median_round(e2e_rounds)
    raw_rate, e2e_rate = EVENTS / raw_s, EVENTS / e2e_s
    return {
        "events": EVENTS,
        "prompts": PROMPTS,
        "rounds_raw_s": [round(s, 3) for s, _ in raw_rounds],
        "rounds_e2e_s": [round(s, 3) for s, _ in e2e_rounds],
        "raw_s": round(raw_s, 3),
        "raw_tasks_per_s": round(raw_rate, 1),
        "e2e_s": round(e2e_s, 3),
        "e2e_events_per_s": round(e2e_rate, 1),
        "e2e_prompts_per_s": round(PROMPTS / e2e_s, 1),
        "ratio": round(e2e_rate / raw_rate, 3),
        "raw_latency": percentiles(raw_latency),
        "e2e_latency": percentiles(e2e_latency),
        "p99_ratio": round(
            percentiles(e2e_latency)["p99_ms"] / percentiles(raw_latency)["p99_ms"], 2
        ),
        "raw_latency_in_burst": percentiles(raw_burst),
        "e2e_latency_in_burst": percentiles(e2e_burst),
        **checked,
    }


def run() -> dict[str, Any]:
    from workflow.ops.embedded import EmbeddedRedis

    results: dict[str, Any] = {"concurrency": CONCURRENCY, "pool": "prefork", "probes": PROBES}
    with tempfile.TemporaryDirectory(prefix="council-bench-") as name:
        tmp = Path(name)
        broker = EmbeddedRedis(tmp / "redis")
        broker_url = broker.ensure_running()
        sink = os.environ.get("COUNCIL_BENCH_SMTP", "aiosmtpd")
        if sink not in ("aiosmtpd", "smtp-sink"):
            raise SystemExit(f"COUNCIL_BENCH_SMTP: aiosmtpd or smtp-sink, not {sink!r}")
        mail = SinkCatcher(tmp) if sink == "smtp-sink" else MailCatcher()
        results["smtp_server"] = sink
        mail.start()
        try:
            results["sqlite"] = measure(f"sqlite:///{tmp}/events.db", broker_url, mail, tmp,
                                        "sqlite")  # fmt: skip
            found = postgres_database()
            if found is None:
                results["postgres"] = None
            else:
                url, admin = found
                try:
                    results["postgres"] = measure(url, broker_url, mail, tmp, "postgres")
                finally:
                    drop(admin, url)
                    admin.dispose()
        finally:
            mail.stop()
            broker.stop()
    return results


def main() -> dict[str, Any]:
    results = run()
    print(
        f"events: {EVENTS} events -> {PROMPTS} prompts by SMTP vs {EVENTS} no-op Celery tasks; "
        f"one worker, prefork x {CONCURRENCY}, one private Redis (targets: ratio >= "
        f"{TARGET_RATIO}, p99 within {TARGET_P99}x raw Celery's)"
    )
    header = (
        f"  {'backend':<9} {'raw tasks/s':>11} {'events/s':>9} {'prompts/s':>9} {'ratio':>6}"
        f"  {'raw p50/p99 ms':>15}  {'commit->mail p50/p99 ms':>23} {'p99 x':>6}"
    )
    print(header)
    for backend in ("sqlite", "postgres"):
        r = results[backend]
        if r is None:
            print(f"  {backend:<9} (server not reachable)")
            continue
        raw_lat = f"{r['raw_latency']['p50_ms']}/{r['raw_latency']['p99_ms']}"
        e2e_lat = f"{r['e2e_latency']['p50_ms']}/{r['e2e_latency']['p99_ms']}"
        print(
            f"  {backend:<9} {r['raw_tasks_per_s']:>11} {r['e2e_events_per_s']:>9} "
            f"{r['e2e_prompts_per_s']:>9} {r['ratio']:>6}  {raw_lat:>15}  {e2e_lat:>23} "
            f"{r['p99_ratio']:>6}"
        )
    missed = []
    for backend in ("sqlite", "postgres"):
        if (r := results[backend]) is None:
            continue
        if r["ratio"] < TARGET_RATIO:
            missed.append(f"{backend}: ratio {r['ratio']} (target >= {TARGET_RATIO})")
        if r["p99_ratio"] > TARGET_P99:
            missed.append(f"{backend}: p99 {r['p99_ratio']}x raw (target <= {TARGET_P99}x)")
    print(f"  targets: {'; '.join(missed) if missed else 'met'}")
    if missed:
        results["failed"] = "; ".join(missed)
    return results
