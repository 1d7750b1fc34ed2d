"""Exactly one learner: the advisory lock across nodes, the lock file on one box."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from logs.dialect import parse_database_url
from logs.election import AdvisoryLock, FileLock
from scripts.learn import learner_lock, wait_for_lock, watch_lock


def _wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def test_only_one_node_holds_the_advisory_lock(pg_url: str) -> None:
    first, second = AdvisoryLock(pg_url), AdvisoryLock(pg_url)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.still_held() and not second.still_held()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


def test_a_standby_takes_over_when_the_holders_process_is_killed(pg_url: str, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from logs.election import AdvisoryLock\n"
            "lock = AdvisoryLock(sys.argv[1])\n"
            "assert lock.try_acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
            pg_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=Path(__file__).parents[2],
    )
    standby = AdvisoryLock(pg_url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not standby.try_acquire()
        os.killpg(holder.pid, signal.SIGKILL)  # no unlock, no goodbye: the socket just closes
        holder.wait()
        stop = threading.Event()
        started = time.monotonic()
        assert wait_for_lock(standby, stop, poll_seconds=0.1)
        assert time.monotonic() - started < 10
        assert standby.still_held()
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        standby.release()


def test_a_holder_whose_connection_breaks_stops_learning(pg_url: str) -> None:
    lock = AdvisoryLock(pg_url)
    assert lock.try_acquire()
    stop = threading.Event()
    watchdog = threading.Thread(target=watch_lock, args=(lock, stop, 0.05), daemon=True)
    watchdog.start()
    with psycopg.connect(pg_url, autocommit=True) as admin:  # what a server restart does to it
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    _wait_until(stop.is_set, 30, "the learner is told to stop")
    other = AdvisoryLock(pg_url)
    try:
        assert other.try_acquire()
    finally:
        other.release()
        lock.release()


def test_an_unreachable_server_means_standby_not_a_crash() -> None:
    lock = AdvisoryLock("postgresql://postgres@127.0.0.1:1/none")
    assert not lock.try_acquire()
    assert not lock.still_held()


def test_the_lock_follows_the_database_setting(pg_url: str, tmp_path: Path) -> None:
    assert isinstance(learner_lock(parse_database_url(pg_url, tmp_path / "x.db"), tmp_path), AdvisoryLock)
    on_sqlite = learner_lock(parse_database_url(None, tmp_path / "x.db"), tmp_path / "models")
    assert isinstance(on_sqlite, FileLock) and on_sqlite.path == tmp_path / "models" / "learner.lock"


def test_the_lock_file_admits_one_learner_and_a_stopped_standby_gives_up(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "learner.lock"), FileLock(tmp_path / "learner.lock")
    assert first.try_acquire()
    stop = threading.Event()
    stop.set()
    assert not wait_for_lock(second, stop)
    first.release()
    assert wait_for_lock(second, threading.Event())
    second.release()
