"""`xsell bench`: benchmarks that print figures against a baseline measured in the same run."""

from __future__ import annotations

import json
import logging

import click

from scripts.commands.options import json_option
from scripts.log_location import settings_from


@click.group()
def bench() -> None:
    """Benchmarks that print figures (ratios against a baseline measured in the same run).

    Example:

    \b
        xsell bench estimators --events 1000000
    """


@bench.command("serve")
@click.option("--quick", is_flag=True, help="5 s per endpoint (under a minute in all).")
@click.option(
    "--seconds", type=click.FloatRange(1), default=20.0, show_default=True, help="Load per endpoint."
)
@click.option(
    "--clients",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="wrk connections, or Python client processes.",
)
@click.option(
    "--load",
    type=click.Choice(["auto", "wrk", "python"]),
    default="auto",
    show_default=True,
    help="Load generator: wrk when installed (apt-get install wrk), else Python clients.",
)
@click.option(
    "--soak",
    type=click.FloatRange(1),
    help="Instead: rank for this many seconds and report workers' and learner's memory at start and end.",
)
@click.option(
    "--postgres",
    "postgres_server",
    metavar="URL",
    help="Instead: rank and feedback on PostgreSQL against SQLite in one run (URL: a server whose role"
    " may create a database; a fresh one is made and dropped), then freshness across two nodes.",
)
@click.option(
    "--synchronous",
    type=click.Choice(["NORMAL", "FULL"]),
    default="NORMAL",
    show_default=True,
    help="With --postgres: XSELL_LOG_SYNCHRONOUS for both backends (FULL: a disk flush per commit).",
)
@click.option("--workers", type=click.IntRange(1, 64), help="gunicorn workers (default XSELL_WORKERS).")
@click.option("--threads", type=click.IntRange(1, 64), help="Threads per worker (default XSELL_THREADS).")
@json_option("Print one JSON object instead of the table.")
def bench_serve_command(
    quick: bool,
    seconds: float,
    clients: int,
    load: str,
    soak: float | None,
    postgres_server: str | None,
    synchronous: str,
    workers: int | None,
    threads: int | None,
    as_json: bool,
) -> None:
    """Start the real service and measure rank, offers and feedback against a trivial endpoint.

    Example:

    \b
        xsell bench serve --quick
        xsell bench serve --soak 600 --clients 8
        xsell bench serve --postgres postgresql://xsell@127.0.0.1/postgres
    """
    from scripts.devtools.bench_serve import render, run_serve_bench

    settings = settings_from(workers=workers, threads=threads)
    if postgres_server is not None:
        from scripts.devtools.bench_postgres import render as render_postgres
        from scripts.devtools.bench_postgres import run_postgres_bench

        found = run_postgres_bench(
            server=postgres_server,
            seconds=5.0 if quick else seconds,
            clients=clients,
            workers=settings.workers,
            threads=settings.threads,
            synchronous=synchronous,
            load=load,
        )
        click.echo(json.dumps(found, indent=2) if as_json else render_postgres(found))
        return
    if soak is not None:
        from scripts.devtools.bench_soak import render_soak, run_soak

        found = run_soak(seconds=soak, clients=clients, workers=settings.workers, threads=settings.threads)
        click.echo(json.dumps(found, indent=2) if as_json else render_soak(found))
        return
    result = run_serve_bench(
        seconds=5.0 if quick else seconds,
        clients=clients,
        workers=settings.workers,
        threads=settings.threads,
        load=load,
    )
    click.echo(json.dumps(result, indent=2) if as_json else render(result))


@bench.command("estimators")
@click.option("--events", type=click.IntRange(1000), default=1_000_000, show_default=True)
@click.option(
    "--repeats", type=click.IntRange(1), default=3, show_default=True, help="Best of this many runs."
)
@click.option("--bootstrap-samples", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--replay-events",
    type=click.IntRange(0),
    default=20_000,
    show_default=True,
    help="Also time a whole evaluation (replay, reward model) on this many decisions; 0 skips it.",
)
def bench_estimators_command(events: int, repeats: int, bootstrap_samples: int, replay_events: int) -> None:
    """Time IPS, SNIPS, DM, DR and SNDR (each with its interval and ESS) on synthetic decisions.

    Example:

    \b
        xsell bench estimators --events 1000000 --bootstrap-samples 100
    """
    from scripts.devtools.bench import bench_estimators, bench_replay

    click.echo(f"{events:,} logged decisions, best of {repeats}")
    click.echo(f"{'estimator':<32} {'seconds':>9} {'events/s':>14} {'x baseline':>11}")
    for timing in bench_estimators(events, repeats=repeats, bootstrap_samples=bootstrap_samples):
        click.echo(
            f"{timing.name:<32} {timing.seconds:9.3f} {timing.events_per_second:14,.0f} "
            f"{timing.ratio_to_baseline:11.1f}"
        )
    if replay_events:
        click.echo(f"\nwhole evaluation of {replay_events:,} synthetic decisions (6 offers)")
        for timing in bench_replay(replay_events):
            click.echo(f"{timing.name:<32} {timing.seconds:9.3f} {timing.events_per_second:14,.0f}")


@bench.command("learning")
@click.option("--rounds", type=click.IntRange(100), default=3600, show_default=True)
@click.option("--seeds", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--window", type=click.FloatRange(min=1), default=600.0, show_default=True, help="Seconds.")
@click.option(
    "--click-delay", type=click.FloatRange(min=0), default=20.0, show_default=True, help="Mean seconds."
)
@click.option(
    "--purchase-delay", type=click.FloatRange(min=0), default=180.0, show_default=True, help="Mean seconds."
)
def bench_learning_command(
    rounds: int, seeds: int, window: float, click_delay: float, purchase_delay: float
) -> None:
    """Compare when to learn: at a short horizon with corrections, at the first signal, at the window's end.

    Simulated shoppers (one a second) go through the real app, log and learner on a
    simulated clock; clicks come after a delay, and a purchase follows some clicks
    minutes later. Prints the served policy's expected reward as the run goes.

    Example:

    \b
        xsell bench learning --rounds 3600 --seeds 3
    """
    from scripts.devtools.learning_loop import compare_designs, render_comparison

    logging.disable(logging.INFO)  # the app logs every snapshot it loads
    found = compare_designs(
        seeds=tuple(range(1, seeds + 1)),
        rounds=rounds,
        window_seconds=window,
        click_delay_seconds=click_delay,
        purchase_delay_seconds=purchase_delay,
        purchase_share=(0.6, 0.1, 0.6, 0.1, 0.6, 0.1),
    )
    click.echo(render_comparison(found))


@bench.command("console")
@click.option(
    "--decisions",
    type=click.IntRange(1000),
    default=1_000_000,
    show_default=True,
    help="Decisions in the log.",
)
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True, help="Median of this many.")
@json_option("Print one JSON object instead of the table.")
def bench_console_command(decisions: int, repeats: int, as_json: bool) -> None:
    """Time every console page and loop-health figure against a log of a million decisions.

    Builds the log with bulk inserts (in a temporary directory), runs the learner's
    rollup, estimate and drift chores over it, then times each figure and page
    (target: under 300 ms) beside GET /healthz and one full scan of the log.

    Example:

    \b
        xsell bench console
        xsell bench console --decisions 100000 --json
    """
    from scripts.devtools.bench_console import as_dict, render, run_console_bench

    logging.disable(logging.INFO)  # the app logs every model it loads
    found = run_console_bench(decisions, repeats=repeats)
    click.echo(json.dumps(as_dict(found), indent=2) if as_json else render(found))
