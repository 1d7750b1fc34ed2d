"""Consistent copies of a live SQLite log, and moving one into PostgreSQL with counts checked.

A plain file copy of a WAL-mode database misses whatever the WAL still holds (41 MB of
WAL beside a 3.8 MB file was seen), and copying both files while writers run can pair
a database with a WAL from another moment. SQLite's online backup API copies pages
through a read transaction instead: one consistent moment, WAL included, while the
service keeps writing.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from logs import pg_migrations, postgres
from logs.db import LogUnavailable

__all__ = ["backup_sqlite", "copy_to_postgresql", "table_counts"]

PAGES_PER_STEP = 1024  # writers get the lock back between steps of about 4 MB


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per user table (SQLite's own bookkeeping tables left out)."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def backup_sqlite(source: Path, dest: Path) -> dict[str, int]:
    """Copy the live log at `source` to `dest` (a new file); return the copy's row counts.

    The copy is written beside `dest` under a temporary name and renamed when complete,
    so a crash never leaves half a backup under the name an operator will restore.
    """
    if not source.is_file():
        raise LogUnavailable(f"{source}: no log here")
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose a new name (a backup never overwrites)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out, pages=PAGES_PER_STEP)
            # One self-contained file: the copy carries no WAL of its own.
            out.execute("PRAGMA journal_mode = DELETE")
            counts = table_counts(out)
            check = out.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            out.close()
    finally:
        src.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise LogUnavailable(f"the copy failed its integrity check: {check}")
    os.chmod(partial, 0o600)  # shopper data: owner only, like the log
    os.replace(partial, dest)
    return counts


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r}: not a plain identifier; refusing to copy it")
    return f'"{name}"'


def copy_to_postgresql(source: Path, conninfo: str) -> dict[str, int]:
    """Copy the SQLite log into an empty PostgreSQL database, in one transaction; return the counts.

    The PostgreSQL schema comes from the log's own migrations (logs/pg_migrations.py),
    so indexes and constraints are the ones the service expects. Tables are copied
    parents first (foreign keys hold throughout), identity counters are moved past the
    copied ids, and each table's row count must equal SQLite's or nothing is committed.
    """
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        src.execute("BEGIN")  # one read snapshot for every table and count
        missing = _unmigrated(src)
        if missing:
            raise LogUnavailable(
                f"{source} is at an older schema (missing {', '.join(missing)}): start this version's "
                "`xsell serve` or `xsell learn` on it once, then copy"
            )
        counts = {t: n for t, n in table_counts(src).items() if t not in _SQLITE_ONLY}
        with postgres.connect(conninfo, autocommit=False) as pg:
            existing = pg.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
            if existing:
                names = ", ".join(sorted(row["table_name"] for row in existing)[:5])
                raise FileExistsError(
                    f"the PostgreSQL database already has tables ({names}); use an empty one"
                )
            pg_migrations.apply_on(pg)
            for table in _parents_first(src, list(counts)):
                _copy_table(src, pg, table)
            _advance_identities(pg)
            for table, expected in counts.items():
                row = pg.execute(f"SELECT count(*) AS n FROM {_ident(table)}").fetchone()
                if row is None or row["n"] != expected:
                    raise LogUnavailable(f"{table}: {expected} rows in SQLite but {row and row['n']} copied")
            pg.commit()
    finally:
        src.close()
    return counts


_SQLITE_ONLY = {"_sqlite_migrations"}  # PostgreSQL keeps its own record (_xsell_migrations)
# PostgreSQL's own columns (m015, logs/commit_order.py), filled from SQLite: decisions
# keep their rowid as seq, and every copied row counts as written before any PostgreSQL
# transaction (txid 0) in SQLite's order, so the rollup watermarks copied beside them
# still say exactly which rows are counted.
_POSITION_COLUMNS = {
    "decisions": {"seq": "rowid", "txid": "0"},
    "feedback": {"txid": "0"},
    "pacing_log": {"txid": "0"},
}


def _unmigrated(src: sqlite3.Connection) -> list[str]:
    try:
        done = {row[0] for row in src.execute("SELECT name FROM _sqlite_migrations")}
    except sqlite3.OperationalError:
        done = set()
    return [name for name in pg_migrations.names() if name not in done]


def _parents_first(src: sqlite3.Connection, tables: list[str]) -> list[str]:
    """Order tables so each comes after the tables its foreign keys point to."""
    parents = {
        t: {row[2] for row in src.execute(f"PRAGMA foreign_key_list({_ident(t)})")} & set(tables) - {t}
        for t in tables
    }
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        if not ready:
            raise LogUnavailable(f"foreign keys form a cycle among {sorted(set(tables) - set(ordered))}")
        ordered.extend(ready)
    return ordered


def _copy_table(src: sqlite3.Connection, pg: psycopg.Connection[Any], table: str) -> None:
    columns = [row[1] for row in src.execute(f"PRAGMA table_info({_ident(table)})")]
    extra = _POSITION_COLUMNS.get(table, {})
    names = ", ".join(_ident(c) for c in [*columns, *extra])
    selected = ", ".join([*(_ident(c) for c in columns), *extra.values()])
    with pg.cursor().copy(f"COPY {_ident(table)} ({names}) FROM STDIN") as copy:
        for row in src.execute(f"SELECT {selected} FROM {_ident(table)}"):
            copy.write_row(row)


def _advance_identities(pg: psycopg.Connection[Any]) -> None:
    """Copied rows kept their ids; the next id PostgreSQL hands out must come after them."""
    for row in pg.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall():
        table, column = _ident(row["table_name"]), _ident(row["column_name"])
        pg.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(max({column}), 0) + 1, false)"
            f" FROM {table}",
            (row["table_name"], row["column_name"]),
        )
