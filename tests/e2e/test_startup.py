"""`xsell serve` says "serving on" once gunicorn listens, says where everything is, and fails cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.e2e.conftest import start_service, stop_service


def test_serving_is_announced_once_after_the_port_is_bound_with_the_summary(tmp_path: Path) -> None:
    running = start_service(tmp_path, XSELL_API_KEYS="store-value-1,store-value-2")
    try:
        deadline = time.monotonic() + 120
        while "  console:" not in running.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = running.log()
        port = running.url.rsplit(":", 1)[1]
        assert log.count("serving on ") == 1, log
        assert log.index(f"Listening at: http://127.0.0.1:{port}") < log.index("serving on "), log
        assert f"log:          {(tmp_path / 'var' / 'xsell.db').resolve()}" in log
        assert "active model: v" in log
        assert "storefront keys: 2 set (XSELL_API_KEYS)" in log and "admin keys:      not set" in log
        assert "store-value" not in log
        for path in ("/openapi.json", "/console/"):
            assert f"{running.url}{path}" in log
        with urllib.request.urlopen(f"{running.url}/openapi.json", timeout=10) as answer:
            assert answer.status == 200
    finally:
        stop_service(running)


def test_a_port_in_use_gives_one_clear_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "XSELL_DATA_DIR": str(tmp_path / "var"), "XSELL_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "-m", "scripts", "serve"], env=env, capture_output=True, text=True, timeout=120
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"127.0.0.1:{port} is already in use" in errors[0], output
    assert "serving on" not in output and "open:" not in output  # the one line is the first word
