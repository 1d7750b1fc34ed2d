"""The `xsell` command group: logging set-up and the commands it registers.

Each command group lives in its own module under `scripts/commands/`; this file only
gathers them, so `xsell --help` lists every command from one place.
"""

from __future__ import annotations

import logging

import click

from scripts.commands.bench import bench
from scripts.commands.catalog import catalog, relations
from scripts.commands.config import config
from scripts.commands.evaluate import evaluate
from scripts.commands.experiments import experiments
from scripts.commands.faults import faults
from scripts.commands.logs import logs
from scripts.commands.models import models
from scripts.commands.running import learn, serve
from scripts.commands.simulate import simulate


@click.group()
@click.version_option(package_name="xsell")
def cli() -> None:
    """xsell: a contextual-bandit decision service for cross-sell offers."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )


for command in (serve, learn, simulate, evaluate, faults, bench, models, catalog, relations, logs, config):
    cli.add_command(command)
cli.add_command(experiments)  # experiments against a holdout (#15)
