"""`xsell config`: the settings in force and the live ones."""

from __future__ import annotations

import json

import click

from scripts.commands.options import json_option
from scripts.log_location import located_settings, log_options


@click.group()
def config() -> None:
    """See every setting in force and where it comes from; change the live ones.

    Precedence: a default, then an XSELL_* variable (or a flag), then a live change
    kept in the log. The live settings reach the running service within its poll
    interval, without a restart.

    Example:

    \b
        xsell config show
        xsell config set default_reward=-0.05 reward_window_seconds=1800
        xsell config reset default_reward
    """


@config.command("show")
@log_options()
@json_option("Print JSON (as GET /v1/config answers).")
def config_show(as_json: bool) -> None:
    """Print every setting in force: value and source (default, environment, live), and the reward rules.

    Example:

    \b
        xsell config show --data-dir /srv/xsell
    """
    from scripts.config import in_force, render

    settings = located_settings(must_exist=False)
    found = in_force(
        settings, log_exists=settings.database.is_postgresql or settings.resolved_log_path.is_file()
    )
    click.echo(json.dumps(found.describe(), indent=2) if as_json else render(found))


@config.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@log_options()
def config_set(assignments: tuple[str, ...]) -> None:
    """Change live settings in the log (all or none); the service picks them up while running.

    Example:

    \b
        xsell config set learning_mode=apprentice exploration_share=0.1
    """
    from scripts.config import ConfigError, change, parse_assignments, render

    try:
        values = parse_assignments(assignments)
        found = change(located_settings(), values)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    click.echo(render(found, values))


@config.command("reset")
@click.argument("names", nargs=-1, required=True, metavar="SETTING...")
@log_options()
def config_reset(names: tuple[str, ...]) -> None:
    """Drop live changes: each setting named follows the environment (or its default) again.

    Example:

    \b
        xsell config reset default_reward learning_mode
    """
    from scripts.config import ConfigError, change, render

    try:
        found = change(located_settings(), {}, reset=names)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    click.echo(render(found, names))
