"""`xsell serve` and `xsell learn`: the service's processes."""

from __future__ import annotations

import click

from scripts.log_location import located_settings, log_options


@click.command()
@click.option("--host", help="Address to bind (XSELL_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (XSELL_PORT, default 8000).")
@click.option("--workers", type=int, help="gunicorn workers (XSELL_WORKERS, default 2).")
@click.option("--threads", type=int, help="Threads per worker (XSELL_THREADS, default 1).")
@log_options()
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None) -> None:
    """Start gunicorn and the learner, and supervise both.

    Example:

    \b
        xsell serve --port 8000 --workers 4
    """
    from scripts.serve import supervise

    settings = located_settings(creates=True, host=host, port=port, workers=workers, threads=threads)
    raise SystemExit(supervise(settings))


@click.command()
@log_options()
def learn() -> None:
    """Run the learner alone (for deployments that run it apart from the web workers).

    Only one learner learns at a time; a second one waits as a standby.

    Example:

    \b
        xsell learn --data-dir /srv/xsell
    """
    from scripts.learn import run_learner

    run_learner(located_settings(creates=True))
