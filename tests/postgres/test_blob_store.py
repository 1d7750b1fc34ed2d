from __future__ import annotations

from pathlib import Path

import pytest

from logs.blob_store import BlobStore, DatabaseBlobStore, FileBlobStore, blob_store_for
from logs.dialect import parse_database_url


@pytest.fixture(params=["files", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "files":
        return FileBlobStore(tmp_path / "models")
    if request.param == "sqlite":
        return DatabaseBlobStore(parse_database_url(None, tmp_path / "xsell.db"))
    return DatabaseBlobStore(parse_database_url(request.getfixturevalue("pg_url"), tmp_path / "x.db"))


def test_model_files_round_trip_byte_for_byte(store: BlobStore) -> None:
    model = bytes(range(256)) * 100
    store.put("v000003.vw", model)
    store.put("v000003.json", b'{"version": 3}')
    store.put("v000003.json", b'{"version": 3, "active": true}')  # replaced, not duplicated
    assert store.get("v000003.vw") == model
    assert store.get("v000003.json") == b'{"version": 3, "active": true}'
    assert store.names() == ["v000003.json", "v000003.vw"]
    store.delete("v000003.vw")
    assert store.get("v000003.vw") is None
    assert store.names() == ["v000003.json"]


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", "", "x;drop"])
def test_names_outside_the_allowlist_are_refused(store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError, match="blob name"):
        store.put(name, b"x")


def test_a_snapshot_put_on_one_node_is_read_on_another(pg_url: str, tmp_path: Path) -> None:
    url = parse_database_url(pg_url, tmp_path / "unused.db")
    learner_node = blob_store_for(url, tmp_path / "node-a")
    serving_node = blob_store_for(url, tmp_path / "node-b")
    learner_node.put("v000001.vw", b"weights")
    assert serving_node.get("v000001.vw") == b"weights"
    assert not (tmp_path / "node-a").exists()  # nothing went to a local disk


def test_on_sqlite_model_files_stay_in_the_model_directory(tmp_path: Path) -> None:
    store = blob_store_for(parse_database_url(None, tmp_path / "xsell.db"), tmp_path / "models")
    store.put("v000001.vw", b"weights")
    assert (tmp_path / "models" / "v000001.vw").read_bytes() == b"weights"
