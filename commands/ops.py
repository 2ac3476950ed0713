"""Operating an installation: config show, doctor."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from commands.base import App, pass_app

if TYPE_CHECKING:
    from workflow.ops.config_view import Row

#: The doctor's checks (workflow.ops.doctor.GROUPS), spelled out so --help imports nothing.
CHECKS = ("definitions", "database", "broker", "smtp", "worker", "beat")


@click.group()
def config() -> None:
    """The settings in effect (COUNCIL_* variables, council.toml, defaults)."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def config_show(app: App, as_json: bool) -> None:
    """Print every setting, its value and where it came from; secrets print as ***."""
    from commands import console
    from workflow.ops.config_view import describe, text, toml_path

    rows = describe(app.settings)
    found = toml_path()
    if as_json:
        console.print_json(
            {
                "council_toml": str(found) if found else None,
                "settings": {row.name: row.as_json() for row in rows},
            }
        )
        return
    console.print_table(
        ["setting", "value", "source"],
        [[row.name, text(row.effective), _source(row)] for row in rows],
        title=f"settings from COUNCIL_* variables, then {found or 'council.toml (none here)'}",
    )


def _source(row: Row) -> str:
    if row.source == "environment":
        return f"environment ({row.env})"
    if row.value is None and row.effective is not None:
        return f"{row.source} (derived)"
    return row.source


@click.command()
@click.option(
    "--check",
    "only",
    type=click.Choice(CHECKS),
    multiple=True,
    help="Run only this check (repeatable); worker and beat include broker.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.5, max=120),
    default=5.0,
    show_default=True,
    help="Seconds each check may take.",
)
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 6): for health checks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor(
    ctx: click.Context, only: tuple[str, ...], timeout: float, strict: bool, as_json: bool
) -> None:
    """Check the installation: definitions, database, broker, SMTP, workers, beat.

    Prints one line per check (ok, warn, fail or skip) with a fix for each
    problem. Exit 0 when nothing failed (warnings pass unless --strict), 5 when
    the database, broker or SMTP server cannot be used, 6 when another check
    failed.
    """
    from commands import console
    from tasks.control import PROBES
    from workflow.ops import doctor

    app = ctx.ensure_object(App)
    results = doctor.run(app.settings, only=only, timeout=timeout, probes=PROBES)
    code = doctor.exit_code(results, strict=strict)
    if as_json:
        console.print_json({"exit_code": code, "checks": [r.as_json() for r in results]})
    else:
        console.print_table(
            ["check", "status", "detail", "fix"],
            [[r.check, r.status.value, r.detail, r.fix] for r in results],
        )
        counts = {s: sum(r.status is s for r in results) for s in doctor.Status}
        click.echo(", ".join(f"{n} {s.value}" for s, n in counts.items() if n))
    ctx.exit(code)


COMMANDS: list[click.Command] = [config, doctor]
