"""The `xsell` command group."""

from __future__ import annotations

import json
import logging
from typing import Any

import click
from pydantic import ValidationError

from service.settings import Settings


def _settings(**overrides: Any) -> Settings:
    """Build settings from XSELL_* variables, with command-line flags taking precedence."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise click.UsageError(f"invalid configuration: {problems}") from error


@click.group()
@click.version_option(package_name="xsell")
def cli() -> None:
    """xsell: a contextual-bandit decision service for cross-sell offers."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )


@cli.command()
@click.option("--host", help="Address to bind (XSELL_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (XSELL_PORT, default 8000).")
@click.option("--workers", type=int, help="gunicorn workers (XSELL_WORKERS, default 2).")
@click.option("--threads", type=int, help="Threads per worker (XSELL_THREADS, default 1).")
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Log and models (XSELL_DATA_DIR, default var)."
)
def serve(
    host: str | None, port: int | None, workers: int | None, threads: int | None, data_dir: str | None
) -> None:
    """Start gunicorn and the learner, and supervise both.

    Example:

        xsell serve --port 8000 --workers 4
    """
    from scripts.serve import supervise

    settings = _settings(host=host, port=port, workers=workers, threads=threads, data_dir=data_dir)
    raise SystemExit(supervise(settings))


@cli.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="Log and models (XSELL_DATA_DIR).")
def learn(data_dir: str | None) -> None:
    """Run the learner alone (for deployments that run it apart from the web workers).

    Only one learner learns at a time; a second one waits as a standby.

    Example:

        xsell learn --data-dir /srv/xsell
    """
    from scripts.learn import run_learner

    run_learner(_settings(data_dir=data_dir))


@cli.command()
@click.option("--rounds", type=int, default=5000, show_default=True, help="Decisions per run.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Independent problems per setting.")
@click.option("--vw-args", "vw_args", multiple=True, help="VW arguments to compare (repeatable).")
@click.option("--url", help="Drive a running service over HTTP instead of in-process.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def simulate(rounds: int, seeds: int, vw_args: tuple[str, ...], url: str | None, as_json: bool) -> None:
    """Run seeded simulated shoppers and report how well policies learn.

    In-process, each VW argument set serves and learns ROUNDS decisions on SEEDS
    synthetic problems; the table shows the click rate while learning, the exact
    click rate of the final policy, and uniform random and the best policy for scale.

    Example:

        xsell simulate --rounds 5000 --vw-args "--cb_explore_adf --squarecb -q ::"
        xsell simulate --url http://127.0.0.1:8000 --rounds 3000
    """
    from scripts.simulate import EXPLORATION_CANDIDATES, simulate_http, simulate_in_process

    if url:
        rates = simulate_http(url, rounds=rounds, seed=0)
        if as_json:
            click.echo(json.dumps({"click_rate_per_500": rates}))
        else:
            for index, rate in enumerate(rates):
                click.echo(f"rounds {index * 500 + 1:>6}-{(index + 1) * 500:<6} click rate {rate:.3f}")
        return
    candidates = vw_args or EXPLORATION_CANDIDATES
    rows = []
    for args in candidates:
        results = [simulate_in_process(args, rounds=rounds, seed=seed) for seed in range(seeds)]
        rows.append(
            {
                "vw_args": args,
                "online_reward": sum(r.online_reward for r in results) / seeds,
                "final_value": sum(r.final_value for r in results) / seeds,
                "uniform_value": sum(r.uniform_value for r in results) / seeds,
                "best_value": sum(r.best_value for r in results) / seeds,
                "seconds": sum(r.seconds for r in results),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'online':>7} {'final':>7} {'uniform':>7} {'best':>7}  vw_args")
    for row in rows:
        click.echo(
            f"{row['online_reward']:7.3f} {row['final_value']:7.3f} {row['uniform_value']:7.3f} "
            f"{row['best_value']:7.3f}  {row['vw_args']}"
        )
