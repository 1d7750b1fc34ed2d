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
