"""Shared fixtures: real SQLite files and real VW models under tmp_path."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from logs.model_index import ModelIndex
from logs.store import LogStore
from policies.learning.registry import ModelRegistry
from service.app import create_app
from service.settings import Settings

EPSILON_ARGS = "--cb_explore_adf --epsilon 0.2 -q ::"


@pytest.hookimpl(trylast=True)  # after tests/e2e/conftest.py marks its tests slow
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding slow tests run first, each file's tests in their order.

    `make test` hands whole files to two processes in collection order; a long file
    begun last would leave one process working alone at the end of the run.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for one test: its own data directory, fast windows and polling."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "var",
        "reward_window_seconds": 60.0,
        "model_poll_seconds": 0.01,
        "learner_grace_seconds": 0.0,
        "snapshot_interval_seconds": 0.0,
        "busy_timeout_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def demo_shop(data_root: Path, *, clock: Callable[[], float] = time.time, **overrides: object) -> Flask:
    """An app on its own log with the bundled demo store loaded (close its store when done)."""
    from scripts.demo_store import load_demo

    app = create_app(make_settings(data_root, **overrides), clock=clock)
    load_demo(app.extensions["xsell"].catalog)
    return app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    store = LogStore(tmp_path / "log.db")
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def registry(tmp_path: Path, store: LogStore) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models", ModelIndex(store), keep_files=5)


def rank_body(**overrides: object) -> dict[str, object]:
    """A valid rank request; tests override the parts they care about."""
    body: dict[str, object] = {
        "context": {"shopper": {"device": "mobile", "segment": "pro"}},
        "actions": [
            {"id": "tripod", "features": {"offer": {"kind": "photo", "price": 49.0}}},
            {"id": "memory_card", "features": {"offer": {"kind": "storage", "price": 19.0}}},
            {"id": "bag", "features": {"offer": {"kind": "carry", "tags": ["travel", "padded"]}}},
        ],
    }
    body.update(overrides)
    return body
