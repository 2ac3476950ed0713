"""The doctor's look at the broker: does it answer, and does it keep what it is given.

A Redis broker is asked directly (redis-py): its version, persistence and eviction
policy. Any other broker is reached through the probe the caller passes
(:class:`BrokerProbe`, Celery's kombu in ``tasks/control.py``): ``workflow/``
imports no Celery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workflow.ops.doctor.results import Result, Status, fail, ok, skip, warn
from workflow.ops.redaction import mask_url

if TYPE_CHECKING:
    import redis

    from workflow.settings import Settings


@dataclass(frozen=True)
class BrokerAnswer:
    """What reaching a (non-Redis) broker found."""

    reachable: bool
    #: False when the URL names no transport Celery knows.
    usable_url: bool = True
    error: str = ""


#: Reaches a broker URL within a timeout (one attempt).
BrokerProbe = Callable[[str, float], BrokerAnswer]


def broker_address(settings: Settings) -> tuple[str, str, bool]:
    """(URL, how to show it, embedded?) of the broker workers use."""
    if settings.broker_url:
        return settings.broker_url, mask_url(settings.broker_url), False
    from workflow.ops.embedded import EmbeddedRedis

    embedded = EmbeddedRedis(settings.var_dir / "redis", settings.redis_server)
    return embedded.url, f"embedded Redis on {embedded.socket_path}", True


def _usable_broker(settings: Settings, results: list[Result]) -> str | None:
    if results and results[0].check == "broker" and results[0].status is Status.OK:
        return broker_address(settings)[0]
    return None


def check_broker(settings: Settings, timeout: float, reach: BrokerProbe) -> list[Result]:
    from workflow.ops import heartbeat

    url, shown, embedded = broker_address(settings)
    if embedded:
        from workflow.ops.embedded import ping

        if not ping(Path(url.removeprefix("redis+socket://")), timeout=min(timeout, 2.0)):
            return [
                fail(
                    "broker",
                    f"{shown}: not running",
                    "start a worker (`council worker`): the first one starts the embedded "
                    "broker; or set COUNCIL_BROKER_URL",
                    unreachable=True,
                ),
                *_broker_skipped("the broker is not running"),
            ]
    client = heartbeat.connect(url, timeout)
    if client is None:
        return _other_broker(url, shown, timeout, reach)
    with client:
        return _redis_broker(client, shown)


def _broker_skipped(why: str) -> list[Result]:
    return [skip("broker persistence", why), skip("broker eviction", why)]


def _redis_broker(client: redis.Redis, shown: str) -> list[Result]:
    import redis

    try:
        version = client.info("server").get("redis_version", "?")
    except redis.AuthenticationError as exc:
        return [
            fail(
                "broker",
                f"{shown}: login refused ({exc})",
                "check the user and password in COUNCIL_BROKER_URL",
                unreachable=True,
            ),
            *_broker_skipped("cannot log in to the broker"),
        ]
    except redis.RedisError as exc:
        return [
            fail(
                "broker",
                f"cannot reach {shown}: {exc}",
                "start Redis, or correct COUNCIL_BROKER_URL",
                unreachable=True,
            ),
            *_broker_skipped("the broker is unreachable"),
        ]
    config = _redis_config(client)
    return [
        ok("broker", f"{shown}: Redis {version} answers"),
        _persistence(config),
        _eviction(config),
    ]


def _redis_config(client: redis.Redis) -> dict[str, str]:
    """appendonly, save and maxmemory-policy from CONFIG GET, else from INFO; '' when unknown.

    Managed Redis services often refuse CONFIG (renamed or ACL); INFO still
    tells whether the append-only file is on and the eviction policy, but not
    the RDB save schedule. The key ``via`` says where the values came from.
    """
    import redis

    try:
        config: dict[str, str] = {}
        for name in ("appendonly", "appendfsync", "save", "maxmemory-policy"):
            config.update({str(k): str(v) for k, v in client.config_get(name).items()})
        config["via"] = "CONFIG"
        return config
    except redis.ResponseError:
        pass
    try:
        persistence = client.info("persistence")
        memory = client.info("memory")
    except redis.ResponseError:
        return {"via": "none"}
    return {
        "via": "INFO",
        "appendonly": "yes" if str(persistence.get("aof_enabled")) == "1" else "no",
        "maxmemory-policy": str(memory.get("maxmemory_policy", "")),
    }


def _persistence(config: dict[str, str]) -> Result:
    name = "broker persistence"
    fix = "run Redis with `--appendonly yes` (or CONFIG SET appendonly yes, then CONFIG REWRITE)"
    if config["via"] == "none":
        return warn(name, "cannot tell: the server refuses CONFIG and INFO", fix)
    via = "" if config["via"] == "CONFIG" else " (from INFO: the server refuses CONFIG)"
    if config.get("appendonly") == "yes":
        fsync = config.get("appendfsync")
        return ok(name, f"append-only file on{f', appendfsync {fsync}' if fsync else ''}{via}")
    if "save" not in config:
        return warn(
            name,
            f"append-only file off, and the RDB save schedule cannot be read{via}",
            fix,
        )
    if config["save"].strip():
        return ok(
            name,
            f"RDB snapshots only (save {config['save']}): a crash loses the messages queued "
            "since the last snapshot; `appendonly yes` loses at most a second",
        )
    return warn(
        name,
        "no persistence (appendonly no, no RDB snapshots): a restart loses every queued "
        "message until the reconciler redoes it from the database",
        fix,
    )


def _eviction(config: dict[str, str]) -> Result:
    name = "broker eviction"
    policy = config.get("maxmemory-policy", "")
    via = "" if config["via"] == "CONFIG" else " (from INFO: the server refuses CONFIG)"
    fix = "run Redis with `--maxmemory-policy noeviction`"
    if not policy:
        return warn(name, "cannot tell: the server refuses CONFIG and INFO", fix)
    if policy == "noeviction":
        return ok(name, f"maxmemory-policy noeviction{via}")
    return fail(name, f"maxmemory-policy {policy}: a full Redis drops queued messages{via}", fix)


def _other_broker(url: str, shown: str, timeout: float, reach: BrokerProbe) -> list[Result]:
    """A broker that is not Redis (RabbitMQ): asked through Celery's kombu; no Redis checks."""
    answer = reach(url, timeout)
    if not answer.usable_url:
        return [
            fail(
                "broker",
                f"{shown}: not a broker URL Celery can use ({answer.error})",
                "correct COUNCIL_BROKER_URL (redis://host:6379/0, amqp://user@host//)",
                unreachable=True,
            ),
            *_broker_skipped("no usable broker URL"),
        ]
    if not answer.reachable:
        return [
            fail(
                "broker",
                f"cannot reach {shown}: {answer.error}",
                "start the broker, or correct COUNCIL_BROKER_URL",
                unreachable=True,
            ),
            *_broker_skipped("the broker is unreachable"),
        ]
    return [
        ok("broker", f"{shown} answers"),
        *_broker_skipped("not a Redis broker: check its persistence yourself"),
    ]
