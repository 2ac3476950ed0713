"""The compose file parses and every council service runs a command the CLI has."""

from __future__ import annotations

from typing import Any

import click
import yaml

from cli import main
from tests.support import ROOT


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_file_has_the_stack() -> None:
    """Redis (AOF, noeviction), PostgreSQL, Mailpit, migrate, worker, two beats, Flower."""
    services = _compose()["services"]
    assert {"redis", "postgres", "mailpit", "migrate", "worker", "beat", "flower"} <= set(services)
    assert services["redis"]["command"] == [
        "redis-server", "--appendonly", "yes", "--maxmemory-policy", "noeviction"
    ]  # fmt: skip
    assert services["beat"]["deploy"]["replicas"] == 2  # one leads, one stands by
    for name, service in services.items():
        one_shot = service.get("restart") == "no" or service.get("profiles") == ["cli"]
        assert one_shot or "healthcheck" in service, f"{name} has no health check"


def test_web_service_serves_off_loopback_with_a_health_check() -> None:
    """The web view listens on every interface of its container (so it requires a login,
    configured by environment), and its health check needs neither curl nor a login."""
    web = _compose()["services"]["web"]
    assert web["image"] == "council-workflow"
    assert web["command"][:3] == ["serve", "--host", "0.0.0.0"]
    check = " ".join(web["healthcheck"]["test"])
    assert web["healthcheck"]["test"][:2] == ["CMD", "python"]
    assert "urllib.request.urlopen('http://127.0.0.1:8080/healthz'" in check
    env = web["environment"]
    for name in ("COUNCIL_WEB_PASSWORD_FILE", "COUNCIL_WEB_OIDC_ISSUER",
                 "COUNCIL_WEB_OIDC_CLIENT_ID", "COUNCIL_WEB_OIDC_CLIENT_SECRET_FILE",
                 "COUNCIL_WEB_OIDC_ALLOWED_EMAILS", "COUNCIL_WEB_OIDC_ALLOWED_GROUPS"):  # fmt: skip
        assert env[name] == f"${{{name}:-}}", name
    assert "COUNCIL_BROKER_URL" not in env  # it hands nothing to the workers


def test_council_services_run_existing_cli_commands() -> None:
    """Each council service's command resolves to a real `council` command and options."""
    services = _compose()["services"]
    council = {name: s for name, s in services.items() if s.get("image") == "council-workflow"}
    assert {"migrate", "worker", "beat", "council"} <= set(council)
    for name, service in council.items():
        argv = list(service["command"])
        if argv == ["--help"]:
            continue
        command: click.Action = main
        args = argv
        while isinstance(command, click.Group):
            assert args, f"{name}: {argv} names no command"
            assert args[0] in command.commands, f"{name}: no command {args[0]!r}"
            command, args = command.commands[args[0]], args[1:]
        command.make_context(command.name or name, list(args))  # parses the options


def test_the_workers_and_beat_share_the_site() -> None:
    """Beat schedules the site's rebuilds and the workers write it only when both have
    site_dir: the shared settings give it to every council service, on one volume."""
    compose = _compose()
    services = compose["services"]
    for name in ("worker", "beat"):
        assert services[name]["environment"]["COUNCIL_SITE_DIR"] == "/srv/site/current"
        assert "site:/srv/site" in services[name]["volumes"]
    assert "site" in compose["volumes"]
