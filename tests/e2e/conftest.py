"""Start the real thing: `xsell serve` (gunicorn workers + learner) on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningService:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_service(tmp_path: Path, **env: str) -> RunningService:
    port = free_port()
    data_dir = tmp_path / "var"
    variables = {
        **os.environ,
        "XSELL_DATA_DIR": str(data_dir),
        "XSELL_PORT": str(port),
        "XSELL_WORKERS": "2",
        "XSELL_MODEL_POLL_SECONDS": "0.2",
        "XSELL_SNAPSHOT_INTERVAL_SECONDS": "0.5",
        "XSELL_LEARNER_GRACE_SECONDS": "0.2",
        **env,
    }
    log_path = tmp_path / "service.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts", "serve"], env=variables, stdout=log_file, stderr=subprocess.STDOUT
    )
    service = RunningService(f"http://127.0.0.1:{port}", data_dir, process, log_path, log_file)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"xsell serve exited early:\n{service.log()}")
        try:
            if requests.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                return service
        except requests.RequestException:
            pass  # not listening yet, or too busy starting to answer within the probe's timeout
        time.sleep(0.2)
    stop_service(service)
    raise RuntimeError(f"xsell serve did not become ready:\n{service.log()}")


def stop_service(service: RunningService) -> None:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
    service.log_file.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    running = start_service(tmp_path, XSELL_REWARD_WINDOW_SECONDS="0.5")
    yield running
    stop_service(running)
