"""Model snapshots reach every node through the database: no shared disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from logs.blob_store import DatabaseBlobStore
from logs.dialect import parse_database_url
from logs.model_index import ModelIndex
from logs.store import LogStore
from policies.base import ModelFormatError
from policies.learning.registry import ModelRegistry

ARGS = "--cb_explore_adf --epsilon 0.2 -q ::"


@pytest.fixture
def index(tmp_path: Path) -> ModelIndex:
    store = LogStore(tmp_path / "log.db")
    store.migrate()
    return ModelIndex(store)


def _node(tmp_path: Path, name: str, index: ModelIndex, shared: DatabaseBlobStore | None) -> ModelRegistry:
    return ModelRegistry(tmp_path / name / "models", index, shared=shared)


def test_a_version_published_on_one_node_loads_on_another(
    tmp_path: Path, pg_url: str, index: ModelIndex
) -> None:
    shared = DatabaseBlobStore(parse_database_url(pg_url, tmp_path / "unused.db"))
    learner, server = _node(tmp_path, "a", index, shared), _node(tmp_path, "b", index, shared)
    first = learner.ensure_initial(ARGS)
    assert server.load(server.active()).vw_args  # type: ignore[arg-type]
    assert (tmp_path / "b" / "models" / first.path).is_file()  # fetched into the node's cache

    second = learner.start_fresh("--cb_explore_adf --epsilon 0.1 -q ::", actor="test", reason="new policy")
    assert server.active() is not None and server.active().version == second.version  # type: ignore[union-attr]
    assert "--epsilon 0.1" in server.load(server.active()).vw_args  # type: ignore[arg-type]

    # a rollback made on the learner's node is what the other node serves next
    learner.rollback(to=first.version, actor="test", reason="bad", older_than_seconds=0)
    assert server.active().version == first.version  # type: ignore[union-attr]
    assert server.has_file(server.active())  # type: ignore[arg-type]


def test_without_the_shared_store_another_node_cannot_serve_it(tmp_path: Path, index: ModelIndex) -> None:
    learner, server = _node(tmp_path, "a", index, None), _node(tmp_path, "b", index, None)
    learner.ensure_initial(ARGS)
    assert not server.has_file(server.active())  # type: ignore[arg-type]


def test_a_damaged_shared_file_is_refused_by_its_checksum(
    tmp_path: Path, pg_url: str, index: ModelIndex
) -> None:
    shared = DatabaseBlobStore(parse_database_url(pg_url, tmp_path / "unused.db"))
    learner, server = _node(tmp_path, "a", index, shared), _node(tmp_path, "b", index, shared)
    model = learner.ensure_initial(ARGS)
    data = shared.get(model.path)
    assert data
    shared.put(model.path, data[:-10] + b"0123456789")
    with pytest.raises(ModelFormatError):
        server.load(model)
