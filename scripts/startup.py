"""What `xsell serve` checks and says while starting: a free port, a bound port, one summary.

"serving on ..." is said only once gunicorn has bound the port (before, it was said
as gunicorn started, and a port already in use ended in a traceback). The summary
tells an operator in one place where everything is: the address, the log, the
active model, which keys are set (never their values), the API docs and the console.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import time
from collections.abc import Callable

from service.settings import Settings

__all__ = ["PortInUse", "check_port_free", "startup_summary", "wait_until_bound"]


class PortInUse(Exception):
    """The address xsell should serve on is taken; the message says which and what to do."""


def _addresses(host: str, port: int) -> list[tuple[int, tuple]]:
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return [(family, address) for family, _, _, _, address in infos]


def check_port_free(host: str, port: int) -> None:
    """Bind the address as gunicorn will (SO_REUSEADDR) and let it go at once.

    Raises
    ------
    PortInUse
        Something already listens there.
    """
    for family, address in _addresses(host, port):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise PortInUse(
                        f"{host}:{port} is already in use: stop what listens there or choose "
                        "another port (--port or XSELL_PORT)"
                    ) from None
                raise PortInUse(f"cannot bind {host}:{port}: {error.strerror}") from None


def wait_until_bound(
    host: str,
    port: int,
    server: subprocess.Popen[bytes],
    *,
    deadline_seconds: float = 60.0,
    cancelled: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Return True once a connection to the address succeeds; False if `server` exits or we stop first.

    The port was free before gunicorn started (`check_port_free`), so whoever answers
    now is gunicorn's master, which accepts into its backlog as soon as it has bound.
    Gives up (False) after `deadline_seconds`, leaving the caller to stop `server`.
    """
    connect_to = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    ends = clock() + deadline_seconds
    while clock() < ends:
        if server.poll() is not None or cancelled():
            return False
        try:
            with socket.create_connection((connect_to, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)  # polling a socket, not deciding an outcome
    return False


def startup_summary(settings: Settings, active_model: str | None) -> list[str]:
    """Return the lines that tell an operator where everything is (no key value, ever)."""
    base = f"http://{_url_host(settings.host)}:{settings.port}"
    storefront = _keys_line(
        len(settings.storefront_keys()), settings.api_keys, settings.api_key_file, "API_KEY"
    )
    admin = _keys_line(
        len(settings.admin_keys()), settings.admin_api_keys, settings.admin_api_key_file, "ADMIN_API_KEY"
    )
    shopper = (
        "set (XSELL_SHOPPER_ID_SECRET)"
        if settings.shopper_id_secret is not None
        else f"from {(settings.data_dir / 'shopper-id.key').resolve()}"
    )
    return [
        f"serving on {base}",
        f"  log:          {_log_line(settings)}",
        f"  models:       {settings.resolved_model_dir.resolve()}",
        f"  active model: {active_model or 'none yet'}",
        f"  storefront keys: {storefront}",
        f"  admin keys:      {admin}",
        f"  shopper-id key:  {shopper}",
        f"  API docs: {base}/openapi.json",
        f"  console:  {base}/console/",
    ]


def _log_line(settings: Settings) -> str:
    database = settings.database
    return database.redacted() if database.is_postgresql else str(settings.resolved_log_path.resolve())


def _keys_line(count: int, listed: object, path: object, name: str) -> str:
    """Say how many keys are set and where from; never a key."""
    sources = [f"XSELL_{name}S"] if listed is not None else []
    if path is not None:
        sources.append(f"XSELL_{name}_FILE {path}")
    return f"{count} set ({', '.join(sources)})" if count else "not set"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
