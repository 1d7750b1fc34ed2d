"""Operations: children die with `xsell serve`, one control socket per instance, private files."""

from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path

import pytest
import requests

from tests.e2e import conftest
from tests.e2e.conftest import RunningService, start_service, stop_service, wait_for

pytestmark = pytest.mark.e2e

CONTEXT = {"shopper": {"segment": "pro"}}
ACTIONS = [{"id": "tripod"}, {"id": "bag"}]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has yet to reap it


def test_children_stop_when_serve_is_killed_and_a_restart_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = start_service(tmp_path)
    port = int(first.url.rsplit(":", 1)[1])
    processes = _children(first.process.pid)  # gunicorn's master and the learner
    assert len(processes) == 2, processes
    processes += [worker for pid in processes for worker in _children(pid)]  # and the web workers
    assert len(processes) >= 4, processes

    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    first.log_file.close()
    exited = f"children of a killed serve exit: {processes}"
    wait_for(lambda: not any(_alive(pid) for pid in processes), exited, 120)

    # The same port and data directory serve again, and the new learner is the one learning.
    monkeypatch.setattr(conftest, "free_port", lambda: port)
    (tmp_path / "again").mkdir()
    second = start_service(tmp_path / "again", XSELL_DATA_DIR=str(first.data_dir))
    try:
        assert requests.post(
            f"{second.url}/v1/rank", json={"context": CONTEXT, "actions": ACTIONS}, timeout=10
        ).ok
        wait_for(lambda: "learner started" in second.log(), "the new learner takes the learner lock", 120)
        assert "waiting as standby" not in second.log()
    finally:
        stop_service(second)


def test_each_instance_has_its_own_control_socket(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    one = start_service(tmp_path / "one")
    two = start_service(tmp_path / "two")
    try:
        sockets = [service.data_dir / "gunicorn.ctl" for service in (one, two)]
        assert all(stat.S_ISSOCK(path.stat().st_mode) for path in sockets)
        assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in sockets)
        stop_service(one)
        assert not sockets[0].exists()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(sockets[1]))  # the other instance's socket is still there and listening
    finally:
        stop_service(one)
        stop_service(two)


def _loose_files(data_dir: Path) -> list[str]:
    paths = [data_dir, *data_dir.rglob("*")]
    return [f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}" for p in paths if p.lstat().st_mode & 0o077]


def test_the_log_models_and_keys_are_private(tmp_path: Path) -> None:
    # What an earlier version left behind: a world-readable data directory and log.
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    service = start_service(tmp_path)
    try:
        for _ in range(5):
            assert requests.post(
                f"{service.url}/v1/rank", json={"context": CONTEXT, "actions": ACTIONS}, timeout=10
            ).ok
    finally:
        stop_service(service)
    os.chmod(data_dir / "xsell.db", 0o644)
    os.chmod(data_dir / "models", 0o755)

    again = start_service(tmp_path)
    try:
        assert requests.post(
            f"{again.url}/v1/rank", json={"context": CONTEXT, "actions": ACTIONS}, timeout=10
        ).ok
        names = {p.name for p in data_dir.rglob("*")}
        assert {"xsell.db", "xsell.db-wal", "xsell.db-shm", "shopper-id.key", "models"} <= names, names
        assert any(p.suffix == ".vw" for p in (data_dir / "models").iterdir())
        assert _loose_files(data_dir) == []
    finally:
        stop_service(again)


def test_the_service_stops_cleanly(tmp_path: Path) -> None:
    service: RunningService = start_service(tmp_path)
    children = _children(service.process.pid)
    stop_service(service)
    assert service.process.returncode == 0
    assert not any(_alive(pid) for pid in children)
