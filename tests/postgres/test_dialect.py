from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from logs.dialect import POSTGRESQL, SQLITE, parse_database_url
from service.settings import Settings


def test_placeholders_become_psycopg_ones_outside_quotes_only() -> None:
    sql = "SELECT '?', 'it''s 5%' FROM t WHERE a = ? AND b LIKE 'x%' AND c = ?"
    assert SQLITE.sql(sql) == sql
    assert POSTGRESQL.sql(sql) == "SELECT '?', 'it''s 5%%' FROM t WHERE a = %s AND b LIKE 'x%%' AND c = %s"
    assert POSTGRESQL.sql("SELECT 10 % 3") == "SELECT 10 %% 3"


def test_translated_ddl_and_upsert_run_on_real_postgresql(pg_url: str) -> None:
    ddl = "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT UNIQUE, x REAL, b BLOB, n INTEGER)"
    upsert = POSTGRESQL.upsert("t", ("k", "x", "b", "n"), ("k",))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(POSTGRESQL.ddl(ddl))
        conn.execute(upsert, ("a", 0.5, b"\x00\xff", 2**40))
        conn.execute(upsert, ("a", 1.5, b"\x01", 2**41))
        conn.execute(POSTGRESQL.sql("INSERT INTO t (k) VALUES (?) ON CONFLICT DO NOTHING"), ("a",))
        rows = conn.execute("SELECT id, k, x, b, n FROM t").fetchall()
    assert rows == [(1, "a", 1.5, b"\x01", 2**41)]


def test_sqlite_spelling_is_unchanged_and_runs(tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute(SQLITE.ddl("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT UNIQUE, x REAL)"))
    upsert = SQLITE.upsert("t", ("k", "x"), ("k",))
    conn.execute(upsert, ("a", 0.5))
    conn.execute(upsert, ("a", 1.5))
    assert conn.execute("SELECT k, x FROM t").fetchall() == [("a", 1.5)]


def test_upsert_refuses_anything_but_plain_identifiers() -> None:
    with pytest.raises(ValueError, match="identifier"):
        POSTGRESQL.upsert("t; DROP TABLE x", ("a",), ("a",))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("mysql://h/db", "not supported"),
        ("postgresql://host", "name the database"),
        ("just-a-path", "use postgresql"),
        ("sqlite://relative", "sqlite:///"),
    ],
)
def test_database_url_allowlist_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_database_url(text, Path("x.db"))


def test_default_is_the_sqlite_log_and_passwords_never_print() -> None:
    assert Settings(data_dir=Path("d")).database.path == Path("d/xsell.db")
    assert parse_database_url("sqlite:////srv/x.db", Path("x")).path == Path("/srv/x.db")
    named = Settings(data_dir=Path("d"), database_url="sqlite:////srv/x.db")
    assert named.resolved_log_path == named.database.path == Path("/srv/x.db")  # the log uses it too
    flag = Settings(data_dir=Path("d"), database_url="sqlite:////srv/x.db", log_path=Path("/l.db"))
    assert flag.resolved_log_path == flag.database.path == Path("/l.db")  # --log beats the variable
    url = parse_database_url("postgresql://xsell:s3cret@db:5433/xsell", Path("x"))
    assert url.is_postgresql and "s3cret" not in url.redacted() and ":5433/xsell" in url.redacted()


def test_a_postgresql_setting_is_taken_and_an_unsupported_scheme_refused_by_name() -> None:
    assert Settings(database_url="postgresql://127.0.0.1/xsell").database.is_postgresql
    with pytest.raises(ValidationError, match="scheme 'mysql' is not supported; use postgresql or sqlite"):
        Settings(database_url="mysql://127.0.0.1/xsell")
