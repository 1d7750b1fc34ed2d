"""`xsell serve`: start gunicorn and the learner, and keep both running."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from logs.catalog_store import CatalogStore
from scripts.demo_store import load_demo
from service.resources import open_log_and_registry
from service.settings import Settings

log = logging.getLogger("xsell.serve")
RESTART_BACKOFF_SECONDS = (1, 2, 5, 10, 30)


def prepare(settings: Settings) -> None:
    """Migrate the log, publish an initial model and (into an empty catalog) the demo store."""
    store, registry = open_log_and_registry(settings)
    registry.ensure_initial(settings.vw_args)
    catalog = CatalogStore(store)
    if settings.demo_catalog and catalog.count() == 0:
        loaded = load_demo(catalog)
        log.info("loaded the demo store: %d products (XSELL_DEMO_CATALOG=false to start empty)", loaded)
    store.close()


def gunicorn_command(settings: Settings) -> list[str]:
    """Return the gunicorn command line for these settings."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{settings.host}:{settings.port}",
        "--workers",
        str(settings.workers),
        "--timeout",
        str(settings.request_timeout_seconds),
        "--logger-class=service.access_log.RedactingLogger",  # no shopper id in any log line
        "--graceful-timeout",
        "10",
    ]
    if settings.threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(settings.threads)]
    if settings.access_log:
        command += ["--access-logfile", "-"]
    return [*command, "service.app:create_app()"]


def learner_command() -> list[str]:
    return [sys.executable, "-m", "scripts", "learn"]


def supervise(settings: Settings) -> int:
    """Run gunicorn and the learner; restart the learner if it dies; stop both on a signal."""
    prepare(settings)
    env = {**os.environ, **settings.to_env()}
    server = subprocess.Popen(gunicorn_command(settings), env=env)
    learner = subprocess.Popen(learner_command(), env=env)
    log.info(
        "serving on http://%s:%d (gunicorn pid %d, learner pid %d)",
        settings.host,
        settings.port,
        server.pid,
        learner.pid,
    )
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts = 0
    try:
        while not stopping:
            if server.poll() is not None:
                log.error("gunicorn exited with %s; stopping", server.returncode)
                return server.returncode or 1
            if learner.poll() is not None:
                delay = RESTART_BACKOFF_SECONDS[min(restarts, len(RESTART_BACKOFF_SECONDS) - 1)]
                log.error("learner exited with %s; restarting in %ds", learner.returncode, delay)
                time.sleep(delay)
                learner = subprocess.Popen(learner_command(), env=env)
                restarts += 1
            time.sleep(0.2)
        return 0
    finally:
        for process in (server, learner):
            if process.poll() is None:
                process.terminate()
        for process in (server, learner):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
