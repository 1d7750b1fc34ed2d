"""Model files where every node can read them: a directory on one box, a table across nodes.

The registry saves each snapshot as a few named files. On one box they stay in the
model directory (FileBlobStore). With several nodes and no shared disk they go into
the database the log already uses (DatabaseBlobStore, table models_blob), so a node
that starts or hot-reloads fetches the bytes the learner on another node published.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Protocol

from logs import postgres
from logs.db import connect, retrying
from logs.dialect import DatabaseUrl

__all__ = ["BlobStore", "DatabaseBlobStore", "FileBlobStore", "blob_store_for"]

CREATE = """
CREATE TABLE IF NOT EXISTS models_blob (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL
)
"""


class BlobStore(Protocol):
    def put(self, name: str, data: bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...
    def names(self) -> list[str]: ...
    def delete(self, name: str) -> None: ...


def _check(name: str) -> str:
    """Names are the registry's own file names: an allowlist, so none escapes its directory."""
    if not name or name.startswith(".") or not all(c.isalnum() or c in "._-" for c in name):
        raise ValueError(f"blob name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


class FileBlobStore:
    """Files in one directory, written to a temporary name and renamed (never half a file)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def put(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / _check(name)
        partial = target.with_name(f".{name}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)

    def get(self, name: str) -> bytes | None:
        path = self.directory / _check(name)
        return path.read_bytes() if path.is_file() else None

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir() if p.is_file() and not p.name.startswith("."))

    def delete(self, name: str) -> None:
        (self.directory / _check(name)).unlink(missing_ok=True)


class DatabaseBlobStore:
    """Rows of models_blob in the log's database, SQLite or PostgreSQL alike."""

    def __init__(self, url: DatabaseUrl, *, deadline_seconds: float = 30.0, create: bool = True):
        """`create=False` for a reader (`xsell evaluate`): nothing is written, so a read-only
        role or a hot standby serves it; the service has created the table."""
        self.url = url
        self.deadline = deadline_seconds
        self._sqlite: sqlite3.Connection | None = None
        if create:
            self._run(lambda execute: execute(url.dialect.ddl(CREATE), ()))

    def put(self, name: str, data: bytes) -> None:
        sql = self.url.dialect.upsert("models_blob", ("name", "data", "size", "created_at"), ("name",))
        self._run(lambda execute: execute(sql, (_check(name), data, len(data), time.time())))

    def get(self, name: str) -> bytes | None:
        sql = self.url.dialect.sql("SELECT data FROM models_blob WHERE name = ?")
        rows = self._run(lambda execute: execute(sql, (_check(name),)))
        return bytes(rows[0][0]) if rows else None

    def names(self) -> list[str]:
        rows = self._run(lambda execute: execute("SELECT name FROM models_blob ORDER BY name", ()))
        return [str(row[0]) for row in rows]

    def delete(self, name: str) -> None:
        sql = self.url.dialect.sql("DELETE FROM models_blob WHERE name = ?")
        self._run(lambda execute: execute(sql, (_check(name),)))

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    def _run(self, work):  # type: ignore[no-untyped-def]
        """Run one statement in its own transaction on whichever backend; return its rows."""
        if self.url.conninfo is not None:
            conninfo = self.url.conninfo

            def on_postgres() -> list[tuple[object, ...]]:
                with postgres.pool(conninfo).connection() as conn, conn.transaction():
                    cursor = conn.cursor(row_factory=lambda _cursor: tuple)

                    def execute(sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
                        cursor.execute(sql, params)
                        return list(cursor.fetchall()) if cursor.description else []

                    return work(execute)

            return postgres.retrying(on_postgres, deadline_seconds=self.deadline)
        assert self.url.path is not None
        if self._sqlite is None:
            self._sqlite = connect(self.url.path, busy_timeout_seconds=self.deadline, synchronous="NORMAL")
        conn = self._sqlite

        def on_sqlite() -> list[tuple[object, ...]]:
            def execute(sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
                return [tuple(row) for row in conn.execute(sql, params).fetchall()]

            return work(execute)

        return retrying(on_sqlite, deadline_seconds=self.deadline)


def blob_store_for(url: DatabaseUrl, model_dir: Path) -> BlobStore:
    """The model directory on SQLite (one box); the database on PostgreSQL (every node)."""
    return DatabaseBlobStore(url) if url.is_postgresql else FileBlobStore(model_dir)
