"""The doctor's pure parts: exit codes, URL masking, broker URLs for redis-py, check names."""

from __future__ import annotations

import click
import pytest
import yaml

from cli import main
from commands.ops import CHECKS
from tests.support import ROOT
from workflow.ops import doctor, heartbeat
from workflow.ops.doctor import Result, Status, exit_code
from workflow.ops.redaction import Redactor, mask_url


def line(status: Status, *, unreachable: bool = False) -> Result:
    return Result("x", status, "detail", "fix" if status is not Status.OK else "", unreachable)


@pytest.mark.parametrize(
    ("statuses", "strict", "code"),
    [
        ([Status.OK, Status.SKIP], False, 0),
        ([Status.OK, Status.WARN], False, 0),
        ([Status.OK, Status.WARN], True, 6),
        ([Status.OK, Status.FAIL], False, 6),
        ([Status.SKIP], True, 0),
    ],
)
def test_exit_code(statuses: list[Status], strict: bool, code: int) -> None:
    """0 unless a check failed (warnings fail only with --strict); 6 for a failed check."""
    assert exit_code([line(s) for s in statuses], strict=strict) == code


def test_an_unusable_server_wins_with_exit_5() -> None:
    results = [line(Status.FAIL), line(Status.FAIL, unreachable=True), line(Status.WARN)]
    assert exit_code(results) == 5
    assert exit_code(results, strict=True) == 5


def test_the_cli_offers_every_check() -> None:
    """commands.ops spells the check names out (so --help stays light); they must agree."""
    assert CHECKS == doctor.GROUPS


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://council:s3cret@db:5432/council", "postgresql+psycopg://council:***@db:5432/council"),
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("amqp://guest:gu@st@rabbit//", "amqp://guest:***@rabbit//"),
        ("postgresql://db/council?user=c&password=s3cret&sslmode=require", "postgresql://db/council?user=c&password=***&sslmode=require"),
        ("postgresql://council@db/council", "postgresql://council@db/council"),
        ("redis+socket:///var/redis/redis.sock", "redis+socket:///var/redis/redis.sock"),
        ("council@kommun.example", "council@kommun.example"),
        ("cannot reach redis://:s3cret@h:1/0: refused", "cannot reach redis://:***@h:1/0: refused"),
    ],
)  # fmt: skip
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_redactor_scrubs_secrets_and_decoded_url_passwords() -> None:
    redact = Redactor.for_values(
        [
            ("database_url", "postgresql://council:p%40ss-word@db/council"),
            ("smtp_password", "hunter2-long"),
            ("smtp_username", "council"),
        ]
    )
    assert redact("login hunter2-long refused; p@ss-word; council") == (
        "login *** refused; ***; council"
    )


@pytest.mark.parametrize(
    ("broker", "client"),
    [
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("rediss://:pw@redis:6380/1", "rediss://:pw@redis:6380/1"),
        ("redis+socket:///var/redis/redis.sock", "unix:///var/redis/redis.sock"),
        ("redis+socket://:pw@/var/redis/redis.sock", "unix://:pw@/var/redis/redis.sock"),
        ("amqp://guest@rabbit//", None),
    ],
)
def test_broker_url_for_redis_py(broker: str, client: str | None) -> None:
    """kombu's Redis URLs as redis-py spells them; another broker has none."""
    assert heartbeat.client_url(broker) == client


def test_compose_health_checks_that_run_council_parse() -> None:
    """A health check calling `council …` (beat's doctor) names a real command and options."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    checked = 0
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] != ["CMD", "council"]:
            continue
        command: click.Action = main
        args = list(test[2:])
        while isinstance(command, click.Group):
            assert args, f"{name}: {test} names no command"
            assert args[0] in command.commands, f"{name}: {test}"
            command, args = command.commands[args[0]], args[1:]
        command.make_context(command.name or name, args)
        checked += 1
    assert checked >= 1
    beat = compose["services"]["beat"]["healthcheck"]["test"]
    assert beat == ["CMD", "council", "doctor", "--check", "beat", "--strict"]
