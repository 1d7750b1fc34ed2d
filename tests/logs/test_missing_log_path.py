"""A missing log path fails by name; it never becomes a SQLite file called None in the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from logs.db import connect
from logs.dialect import POSTGRESQL, SQLITE, DatabaseUrl
from logs.store import LogStore

# How a missing path has reached the log: a PostgreSQL store's `path` (None) handed to a
# child process as str(store.path), or formatted into a directory.
MISSING = [
    None,
    "None",
    Path("None"),
    "var/None",
    DatabaseUrl(SQLITE, path=None),
    DatabaseUrl(SQLITE, path=Path("None")),
]


@pytest.mark.parametrize(
    "location",
    MISSING,
    ids=["None", "str(None)", "Path(None)", "in-a-dir", "url-without-path", "url-to-None"],
)
def test_a_store_refuses_a_missing_path(
    location: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="None"):
        LogStore(location).migrate()  # type: ignore[arg-type]
    assert list(tmp_path.rglob("*")) == []  # no file, no directory made


def test_a_postgresql_stores_path_passed_on_as_text_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    on_postgres = LogStore(DatabaseUrl(POSTGRESQL, conninfo="postgresql://127.0.0.1:5432/xsell"))
    with pytest.raises(ValueError, match="PostgreSQL store has no file"):
        LogStore(str(on_postgres.path))
    assert not (tmp_path / "None").exists()


def test_opening_a_sqlite_file_named_none_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="str\\(None\\)"):
        connect(Path("None"), busy_timeout_seconds=1, synchronous="NORMAL")
    assert not (tmp_path / "None").exists()


def test_a_log_file_with_another_name_still_opens(tmp_path: Path) -> None:
    store = LogStore(str(tmp_path / "None.db"))
    store.migrate()
    assert store.has_schema()
    store.close()
