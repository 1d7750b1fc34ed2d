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

import psycopg

from logs import postgres
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


_TYPES = (
    (re.compile(r"INT", re.I), "BIGINT"),
    (re.compile(r"REAL|FLOA|DOUB|NUMERIC", re.I), "DOUBLE PRECISION"),
    (re.compile(r"BLOB", re.I), "BYTEA"),
)


def _pg_type(declared: str) -> str:
    for pattern, name in _TYPES:
        if pattern.search(declared):
            return name
    return "TEXT"


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r}: not a plain identifier; refusing to copy it")
    return f'"{name}"'


def copy_to_postgresql(source: Path, conninfo: str) -> tuple[dict[str, int], list[str]]:
    """Copy every table of the SQLite log into an empty PostgreSQL database, in one transaction.

    Tables keep their columns and primary keys; indexes are recreated where their SQL is
    portable, and the names of those that are not (expression indexes on SQLite's JSON
    functions) are returned, to be rebuilt by the PostgreSQL migrations. Each table's row
    count in PostgreSQL must equal SQLite's or nothing is
    committed. A database that already holds any of these tables is refused.
    """
    skipped: list[str] = []
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        src.execute("BEGIN")  # one read snapshot for every table and count
        counts = table_counts(src)
        if not counts:
            raise LogUnavailable(f"{source}: no tables to copy")
        with postgres.connect(conninfo, autocommit=False) as pg:
            existing = pg.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                " AND table_name = ANY(%s)",
                (list(counts),),
            ).fetchall()
            if existing:
                names = ", ".join(sorted(row["table_name"] for row in existing))
                raise FileExistsError(f"the PostgreSQL database already has tables {names}; use an empty one")
            for table in counts:
                _copy_table(src, pg, table)
            for name, sql in src.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            ).fetchall():
                try:
                    with pg.transaction():  # a savepoint: one unportable index spoils nothing else
                        pg.execute(sql)
                except psycopg.Error:
                    skipped.append(name)
            for table, expected in counts.items():
                row = pg.execute(f"SELECT count(*) AS n FROM {_ident(table)}").fetchone()
                if row is None or row["n"] != expected:
                    raise LogUnavailable(f"{table}: {expected} rows in SQLite but {row and row['n']} copied")
            pg.commit()
    finally:
        src.close()
    return counts, skipped


def _copy_table(src: sqlite3.Connection, pg, table: str) -> None:  # type: ignore[no-untyped-def]
    columns = src.execute(f"PRAGMA table_info({_ident(table)})").fetchall()
    keys = [c[1] for c in sorted(columns, key=lambda c: c[5]) if c[5]]
    definitions = [f"{_ident(c[1])} {_pg_type(c[2] or '')}" + (" NOT NULL" if c[3] else "") for c in columns]
    if keys:
        definitions.append(f"PRIMARY KEY ({', '.join(_ident(k) for k in keys)})")
    pg.execute(f"CREATE TABLE {_ident(table)} ({', '.join(definitions)})")
    names = ", ".join(_ident(c[1]) for c in columns)
    blobs = {i for i, c in enumerate(columns) if _pg_type(c[2] or "") == "BYTEA"}
    with pg.cursor().copy(f"COPY {_ident(table)} ({names}) FROM STDIN") as copy:
        for row in src.execute(f"SELECT {names} FROM {_ident(table)}"):
            copy.write_row([bytes(v) if i in blobs and v is not None else v for i, v in enumerate(row)])
