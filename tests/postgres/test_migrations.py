"""The log's migrations run on PostgreSQL too, to the same tables and columns as on SQLite."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg

from logs import pg_migrations
from logs.store import LogStore


def _sqlite_schema(tmp_path: Path) -> dict[str, list[str]]:
    store = LogStore(tmp_path / "log.db")
    store.migrate()
    store.close()
    conn = sqlite3.connect(tmp_path / "log.db")
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name != '_sqlite_migrations'"
        )
    ]
    schema = {t: [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')] for t in tables}
    conn.close()
    return schema


def _postgres_schema(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as pg:
        rows = pg.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name != '_xsell_migrations'"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
    schema: dict[str, list[str]] = {}
    for table, column in rows:
        schema.setdefault(table, []).append(column)
    return schema


def test_postgresql_gets_every_table_and_column_sqlite_has(tmp_path: Path, pg_url: str) -> None:
    ran = pg_migrations.apply(pg_url)
    assert ran == pg_migrations.names() and ran
    expected = _sqlite_schema(tmp_path)
    # PostgreSQL's own read order (m015, logs/commit_order.py): SQLite has rowids for it
    for table in ("decisions", "feedback", "pacing_log"):
        expected[table] += ["seq", "txid"] if table == "decisions" else ["txid"]
    assert expected and _postgres_schema(pg_url) == expected
    assert pg_migrations.apply(pg_url) == []  # up to date: nothing runs twice


def test_nodes_starting_at_once_migrate_once(pg_url: str) -> None:
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(pg_migrations.apply(pg_url))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 0, len(pg_migrations.names())]
    with psycopg.connect(pg_url) as pg:
        names = [r[0] for r in pg.execute("SELECT name FROM _xsell_migrations")]
    assert sorted(names) == sorted(pg_migrations.names())


def test_a_failing_migration_leaves_nothing_half_done(pg_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from logs import migrations

    def broken(db) -> None:  # type: ignore[no-untyped-def]
        db.execute("CREATE TABLE half (x INTEGER)")
        db.execute("THIS IS NOT SQL")

    monkeypatch.setattr(
        migrations.migrations,
        "_migrations",
        [
            *migrations.migrations._migrations,
            type(migrations.migrations._migrations[0])("m999_broken", broken),
        ],
    )
    try:
        pg_migrations.apply(pg_url)
    except psycopg.Error:
        pass
    else:
        raise AssertionError("the broken migration should fail")
    schema = _postgres_schema(pg_url)
    assert "half" not in schema and "decisions" in schema  # the good ones stay, the broken one left nothing
    with psycopg.connect(pg_url) as pg:
        assert (
            pg.execute("SELECT count(*) FROM _xsell_migrations WHERE name = 'm999_broken'").fetchone()[0] == 0
        )
