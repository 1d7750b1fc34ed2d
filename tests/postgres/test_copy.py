"""`xsell logs copy --to postgresql://…`: every table moved, counts checked."""

from __future__ import annotations

from pathlib import Path

import psycopg
from click.testing import CliRunner

from logs import pg_migrations
from logs.store import LogStore
from scripts.cli import cli
from tests.logs.helpers import decision


def _log(tmp_path: Path, decisions: int) -> Path:
    store = LogStore(tmp_path / "var" / "xsell.db")
    store.migrate()
    for i in range(decisions):
        store.record_decision(decision(f"e{i}", fingerprint=f"r{i}"))
    store.close()
    return store.path


def test_copy_moves_every_table_with_its_rows(tmp_path: Path, pg_url: str) -> None:
    import sqlite3

    path = _log(tmp_path, 40)
    source = sqlite3.connect(path)
    tables = [r[0] for r in source.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    expected = {t: source.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    cursor = source.execute("SELECT *, rowid AS sqlite_rowid FROM decisions ORDER BY rowid LIMIT 1")
    first = cursor.fetchone()
    sqlite_columns = [d[0] for d in cursor.description][:-1]
    source.close()
    assert expected["decisions"] == 40

    result = CliRunner().invoke(cli, ["logs", "copy", "--data-dir", str(tmp_path / "var"), "--to", pg_url])
    assert result.exit_code == 0, result.output
    assert "counts checked" in result.output and "decisions 40" in result.output
    with psycopg.connect(pg_url) as pg:
        for table, count in expected.items():
            if not table.startswith(("sqlite_", "_sqlite_")):
                assert pg.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == count, table
        # the schema is the migrations' own, recorded as applied, indexes included
        applied = [r[0] for r in pg.execute("SELECT name FROM _xsell_migrations ORDER BY applied_at, name")]
        assert applied == pg_migrations.names()
        indexes = {r[0] for r in pg.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'decisions'")}
        assert {"decisions_to_learn", "decisions_created"} <= indexes
        assert "decisions_experiment" not in indexes  # dropped by m017
        columns = [r[0] for r in pg.execute("SELECT * FROM decisions LIMIT 0").description or []]
        row = pg.execute("SELECT * FROM decisions WHERE event_id = 'e0'").fetchone()
    assert row is not None
    copied = dict(zip(columns, row, strict=True))
    assert {c: copied[c] for c in sqlite_columns} == dict(
        zip(sqlite_columns, [bytes(v) if isinstance(v, bytes) else v for v in first[:-1]], strict=True)
    )
    # PostgreSQL's read order (m015): the SQLite rowid, written before any transaction
    assert (copied["seq"], copied["txid"]) == (first[-1], 0)


def test_ids_handed_out_after_a_copy_follow_the_copied_ones(tmp_path: Path, pg_url: str) -> None:
    import sqlite3

    path = _log(tmp_path, 3)
    source = sqlite3.connect(path)
    source.execute("INSERT INTO counters (name, value) VALUES ('x', 1)")
    source.execute(
        "INSERT INTO feedback (event_id, action_id, signal, value, dedupe_key, received_at, on_time)"
        " VALUES ('e0', 'a', 'reward', 1.0, 'k', 0, 1)"
    )
    source.commit()
    source.close()
    args = ["logs", "copy", "--data-dir", str(tmp_path / "var"), "--to", pg_url]
    assert CliRunner().invoke(cli, args).exit_code == 0
    with psycopg.connect(pg_url) as pg:
        new_id = pg.execute(
            "INSERT INTO feedback (event_id, action_id, signal, value, dedupe_key, received_at, on_time)"
            " VALUES ('e1', 'a', 'reward', 1.0, 'k', 0, 1) RETURNING id"
        ).fetchone()[0]
        assert new_id > pg.execute("SELECT min(id) FROM feedback").fetchone()[0]


def test_copy_refuses_a_database_that_already_has_the_tables(tmp_path: Path, pg_url: str) -> None:
    _log(tmp_path, 3)
    args = ["logs", "copy", "--data-dir", str(tmp_path / "var"), "--to", pg_url]
    assert CliRunner().invoke(cli, args).exit_code == 0
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "already has tables" in again.output, again.output
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT count(*) FROM decisions").fetchone()[0] == 3  # nothing doubled


def test_copy_refuses_what_is_not_postgresql(tmp_path: Path) -> None:
    _log(tmp_path, 1)
    for target, problem in [("mysql://h/db", "not supported"), ("sqlite:///x.db", "goes to PostgreSQL")]:
        result = CliRunner().invoke(
            cli, ["logs", "copy", "--data-dir", str(tmp_path / "var"), "--to", target]
        )
        assert result.exit_code == 2 and problem in result.output, result.output


def test_an_unreachable_server_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    _log(tmp_path, 1)
    result = CliRunner().invoke(
        cli,
        ["logs", "copy", "--data-dir", str(tmp_path / "var"), "--to", "postgresql://xsell@127.0.0.1:1/xsell"],
    )
    assert result.exit_code == 1
    assert "PostgreSQL is unreachable" in result.output and "Traceback" not in result.output
