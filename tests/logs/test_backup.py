"""`xsell logs backup`: a consistent copy of a live log, WAL included."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from logs.connection import StoreOptions
from logs.store import LogStore
from scripts.cli import cli
from tests.logs.helpers import decision


def _live_log(tmp_path: Path, decisions: int) -> LogStore:
    """A log whose newest writes are still only in its WAL (no checkpoint has run)."""
    store = LogStore(tmp_path / "var" / "xsell.db", StoreOptions(autocheckpoint_pages=1_000_000))
    store.migrate()
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for i in range(decisions):
        store.record_decision(decision(f"e{i}", fingerprint=f"r{i}"))
    return store


def test_backup_of_a_live_log_has_what_the_wal_holds_and_a_file_copy_misses(tmp_path: Path) -> None:
    store = _live_log(tmp_path, 50)
    try:
        assert Path(f"{store.path}-wal").stat().st_size > 0
        shutil.copyfile(store.path, tmp_path / "plain.db")  # what an operator's cp does
        plain = sqlite3.connect(tmp_path / "plain.db")
        assert plain.execute("SELECT count(*) FROM decisions").fetchone()[0] == 0
        plain.close()

        result = CliRunner().invoke(
            cli, ["logs", "backup", "--data-dir", str(tmp_path / "var"), str(tmp_path / "b" / "copy.db")]
        )
        assert result.exit_code == 0, result.output
        assert "decisions 50" in result.output
        copy = sqlite3.connect(tmp_path / "b" / "copy.db")
        assert copy.execute("SELECT count(*) FROM decisions").fetchone()[0] == 50
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        copy.close()
        assert (tmp_path / "b" / "copy.db").stat().st_mode & 0o777 == 0o600
        assert not list((tmp_path / "b").glob(".*partial"))
    finally:
        store.close()


def test_backup_never_overwrites_and_needs_a_log(tmp_path: Path) -> None:
    store = _live_log(tmp_path, 1)
    store.close()
    (tmp_path / "taken.db").write_bytes(b"keep me")
    result = CliRunner().invoke(
        cli, ["logs", "backup", "--data-dir", str(tmp_path / "var"), str(tmp_path / "taken.db")]
    )
    assert result.exit_code == 1
    assert "exists" in result.output
    assert (tmp_path / "taken.db").read_bytes() == b"keep me"
    result = CliRunner().invoke(
        cli, ["logs", "backup", "--data-dir", str(tmp_path / "none"), str(tmp_path / "new.db")]
    )
    assert result.exit_code == 1 and "no xsell log" in result.output
    assert not (tmp_path / "new.db").exists()


def test_backup_while_the_service_writes_is_one_consistent_moment(tmp_path: Path) -> None:
    import threading

    from logs.backup import backup_sqlite

    store = _live_log(tmp_path, 200)
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:
        writer = LogStore(store.path)
        i = 0
        while not stop.is_set():
            writer.record_decision(decision(f"w{i}", fingerprint=f"w{i}"))
            i += 1
            written.append(i)
        writer.close()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        while len(written) < 20:  # the writer is under way before the backup starts
            stop.wait(0.01)
        counts = backup_sqlite(store.path, tmp_path / "live.db")
    finally:
        stop.set()
        thread.join()
        store.close()
    copy = sqlite3.connect(tmp_path / "live.db")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    decisions = copy.execute("SELECT count(*) FROM decisions").fetchone()[0]
    assert decisions == counts["decisions"] and 220 <= decisions <= 200 + len(written)
    # every decision in the copy is whole: its payloads are there too
    assert copy.execute("SELECT count(*) FROM decisions WHERE actions_ref IS NOT NULL").fetchone()[0] > 0
    assert (
        copy.execute(
            "SELECT count(*) FROM decisions d WHERE d.actions_ref IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM payloads p WHERE p.digest = d.actions_ref)"
        ).fetchone()[0]
        == 0
    )
    copy.close()
