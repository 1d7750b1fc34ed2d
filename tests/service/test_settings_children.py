"""Child processes of `xsell serve` see the settings' sources as the parent does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logs.model_index import ModelIndex
from logs.store import LogStore, StoreOptions
from service.effective import effective
from service.settings import Settings


def _clear_xsell_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("XSELL_"):
            monkeypatch.delenv(name)


def test_to_env_exports_only_what_was_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_xsell_env(monkeypatch)
    monkeypatch.setenv("XSELL_WORKERS", "3")
    settings = Settings(data_dir=tmp_path, admin_api_keys="k1")  # as flags would give them

    env = settings.to_env()

    assert env == {"XSELL_WORKERS": "3", "XSELL_DATA_DIR": str(tmp_path), "XSELL_ADMIN_API_KEYS": "k1"}


def test_a_worker_names_the_same_sources_as_xsell_config_show(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clear_xsell_env(monkeypatch)
    monkeypatch.setenv("XSELL_WORKERS", "3")
    parent = Settings(data_dir=tmp_path)
    for name, value in parent.to_env().items():  # what `xsell serve` hands gunicorn and the learner
        monkeypatch.setenv(name, value)
    child = Settings()
    store = LogStore(tmp_path / "xsell.db", StoreOptions(5.0, "NORMAL"))
    store.migrate()

    parent_sources = effective(parent, ModelIndex(store)).sources
    child_sources = effective(child, ModelIndex(store)).sources

    assert child_sources == parent_sources
    assert child_sources["workers"] == "environment" and child_sources["data_dir"] == "environment"
    assert child_sources["port"] == "default" and child_sources["reward_window_seconds"] == "default"
