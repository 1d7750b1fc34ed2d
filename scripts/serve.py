"""`xsell serve`: start gunicorn and the learner, and keep both running."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import gunicorn

from logs.catalog_store import CatalogStore
from logs.db import LogUnavailable
from scripts.demo_store import load_demo_on_first_start
from scripts.startup import PortInUse, check_port_free, startup_summary, wait_until_bound
from service import http_metrics
from service.auth import AccessMode, AccessRefused, access_mode, storefront_routes
from service.resources import open_log_and_registry
from service.settings import Settings

log = logging.getLogger("xsell.serve")
RESTART_BACKOFF_SECONDS = (1, 2, 5, 10, 30)
PRIVATE_UMASK = 0o077  # the log, models, keys and sockets are the service's alone
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
UNIX_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the trailing NUL


def prepare(settings: Settings) -> str | None:
    """Migrate the log, publish an initial model and (first start only) the demo store.

    Returns the active model version, for the start-up summary.
    """
    database = settings.database
    if database.conninfo is not None:
        from logs.postgres import check_reachable

        # Fail at once on a wrong URL or a server that is down, not after the busy timeout.
        log.info("log on PostgreSQL %s (server %s)", database.redacted(), check_reachable(database.conninfo))
    store, registry = open_log_and_registry(settings)
    registry.ensure_initial(settings.vw_args)
    active = registry.active()
    if settings.demo_catalog:
        loaded = load_demo_on_first_start(CatalogStore(store))
        if loaded:
            log.info(
                "loaded the demo store: %d products; your first `xsell catalog import` removes it"
                " (XSELL_DEMO_CATALOG=false to start empty)",
                loaded,
            )
    store.close()
    return active.version if active else None


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
        # A request reaches a thread only once it has fully arrived: slow clients hold none.
        "--worker-class",
        "service.worker.ArrivedRequestWorker",
        "--threads",
        str(settings.threads),
        *_control_socket_options(settings),
    ]
    if settings.access_log:
        command += ["--access-logfile", "-"]
    return [*command, "service.app:create_app()"]


def learner_command() -> list[str]:
    return [sys.executable, "-m", "scripts", "learn"]


def _control_socket_options(settings: Settings) -> list[str]:
    """Give this instance its own gunicorn control socket, in its data directory.

    gunicorn's default ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl) is
    one path for every instance of a user, so stopping one removed the other's.
    """
    if tuple(int(part) for part in gunicorn.version_info[:2]) < (25, 1):
        return []  # no control socket before gunicorn 25.1
    path = (settings.data_dir / "gunicorn.ctl").resolve()
    if len(os.fsencode(str(path))) > UNIX_SOCKET_PATH_MAX:
        log.warning("no gunicorn control socket: %s is longer than a unix socket path may be", path)
        return ["--no-control-socket"]
    return ["--control-socket", str(path)]


def open_routes() -> list[str]:
    """Return the routes a storefront key guards, as the workers will serve them."""
    from flask import Flask

    from service import feedback, offers, personalizer, rank, shoppers

    app = Flask("xsell-routes")
    for blueprint in (rank.bp, offers.bp, feedback.bp, shoppers.bp):
        app.register_blueprint(blueprint)
    personalizer.register(app)
    return storefront_routes(app)


def announce_access(settings: Settings, mode: AccessMode) -> None:
    """Log, loudly when they are open, how the storefront routes are guarded."""
    if mode == "keys":
        if settings.open_access:
            log.warning("XSELL_OPEN_ACCESS is ignored: storefront keys are set, so every route needs one")
        log.info("storefront routes need a storefront or admin key")
        return
    where = (
        "anyone on this machine (development mode: no storefront key, loopback address)"
        if mode == "development"
        else f"ANYONE who can reach {settings.host}:{settings.port} (XSELL_OPEN_ACCESS=true)"
    )
    log.warning("NO STOREFRONT KEY: these routes are open to %s:", where)
    for route in open_routes():
        log.warning("  open: %s", route)
    log.warning("set XSELL_API_KEYS to require a key on all of them (docs/security.md)")


def private_files(settings: Settings) -> None:
    """Create the data directories 0700 and take group and other access from existing files.

    The umask covers what this process and its children create from now on; the walk
    fixes what an earlier version left world-readable (log, WAL, models, keys).
    """
    os.umask(PRIVATE_UMASK)
    models = settings.resolved_model_dir
    for directory in (settings.data_dir, models):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = settings.resolved_log_path
    # Only what xsell itself keeps there: a data directory may be shared with other files.
    paths: list[Path] = [settings.data_dir, settings.data_dir / "shopper-id.key", models, *models.rglob("*")]
    paths += [log_path.with_name(log_path.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    for path in paths:
        try:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not mode & 0o077:
                continue
            path.chmod(stat.S_IMODE(mode) & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError as error:
            log.warning("cannot make %s private: %s", path, error.strerror)


def _die_with_parent(parent: int) -> None:
    """In a child before exec: ask Linux for SIGTERM when the supervisor dies, even by kill -9."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    parent = os.getpid()
    return subprocess.Popen(command, env=env, preexec_fn=lambda: _die_with_parent(parent))


def supervise(settings: Settings) -> int:
    """Run gunicorn and the learner; restart the learner if it dies; stop both on a signal."""
    private_files(settings)
    try:
        mode = access_mode(settings)
    except (AccessRefused, ValueError) as error:
        log.error("not starting: %s", error)
        return 2
    try:
        check_port_free(settings.host, settings.port)
    except PortInUse as error:
        log.error("not starting: %s", error)
        return 1
    if settings.database.is_postgresql and settings.shopper_id_secret is None:
        # Each node would make its own DATA_DIR/shopper-id.key: one shopper, a different
        # key on every node, so pacing, preferences and erasure would miss rows.
        log.error(
            "not starting: on PostgreSQL every node must hash shopper ids with one key;"
            " set XSELL_SHOPPER_ID_SECRET, the same on every node (docs/deploy.md)"
        )
        return 2
    announce_access(settings, mode)
    try:
        active = prepare(settings)
    except LogUnavailable as error:
        # One line that says what to fix (the server, the URL), never a traceback.
        log.error("not starting: the log at %s is unavailable: %s", settings.database.redacted(), error)
        return 1
    # every gunicorn worker's request figures in one place, for /metrics and the console
    env = {**os.environ, **settings.to_env(), **http_metrics.multiprocess_env(settings.data_dir)}
    server = _spawn(gunicorn_command(settings), env)
    learner = _spawn(learner_command(), env)
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts = 0
    try:
        # "serving on" only once gunicorn has bound the port, and the summary only once
        if not wait_until_bound(settings.host, settings.port, server, cancelled=lambda: stopping):
            if not stopping:
                log.error(
                    "not serving: gunicorn did not bind %s:%d (its lines above say why)",
                    settings.host,
                    settings.port,
                )
            return 0 if stopping else 1
        for line in startup_summary(settings, active):
            log.info("%s", line)
        log.info("  processes:    gunicorn pid %d, learner pid %d", server.pid, learner.pid)
        while not stopping:
            if server.poll() is not None:
                log.error("gunicorn exited with %s; stopping", server.returncode)
                return server.returncode or 1
            if learner.poll() is not None:
                delay = RESTART_BACKOFF_SECONDS[min(restarts, len(RESTART_BACKOFF_SECONDS) - 1)]
                log.error("learner exited with %s; restarting in %ds", learner.returncode, delay)
                time.sleep(delay)
                learner = _spawn(learner_command(), env)
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
