"""Start the real `xsell serve` (gunicorn workers and the learner) on a free port and wait until it is ready.

One way to do it for the benchmarks, the fault runs and the end-to-end tests, so
each of them starts the service exactly as a user does (`python -m scripts serve`,
configured only by XSELL_* variables) and gives up with the service's own log when
it does not come up. Standard library only: no dev dependency on this path.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["RunningService", "free_port", "start_service", "stop_service"]


def free_port() -> int:
    """Return a loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningService:
    """A started `xsell serve`: its URL, data directory, process and the file its output goes to."""

    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log(self) -> str:
        """Return everything the service has printed so far."""
        return self.log_path.read_text(errors="replace")


def _ready(url: str, timeout_seconds: float) -> bool:
    parts = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(parts[0], int(parts[1]), timeout=timeout_seconds)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False  # not listening yet, or too busy starting to answer within the probe's timeout
    finally:
        conn.close()


def start_service(
    data_dir: Path,
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    # A bound on a failure, not an expectation: a machine several times oversubscribed
    # (CI beside other jobs) was seen taking over 60 s to boot the workers and the learner.
    ready_seconds: float = 180.0,
) -> RunningService:
    """Start `xsell serve` on DATA_DIR and return once GET /readyz answers 200.

    `env` adds XSELL_* variables (and may override XSELL_DATA_DIR); the service's
    output goes to `log_path`.

    Raises
    ------
    RuntimeError
        When the service exits or is not ready within `ready_seconds` (it is stopped;
        the message ends with its log).
    """
    port = port or free_port()
    variables = {**os.environ, "XSELL_DATA_DIR": str(data_dir), "XSELL_PORT": str(port), **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts", "serve"], env=variables, stdout=log_file, stderr=subprocess.STDOUT
    )
    service = RunningService(f"http://127.0.0.1:{port}", data_dir, process, log_path, log_file)
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_file.close()
            raise RuntimeError(f"xsell serve exited early:\n{service.log()[-4000:]}")
        if _ready(service.url, timeout_seconds=1.0):
            return service
        time.sleep(0.2)
    stop_service(service)
    raise RuntimeError(f"xsell serve did not become ready in {ready_seconds:.0f} s:\n{service.log()[-4000:]}")


def stop_service(service: RunningService) -> None:
    """Stop the service as an operator does (SIGTERM), killing it if it has not exited after 30 s."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
    with contextlib.suppress(OSError):
        service.log_file.close()
