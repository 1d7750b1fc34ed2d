"""A reused Personalizer event id costs lookups, not a translation of the request per earlier use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.personalizer import events
from tests.conftest import make_settings

RANK = "/personalizer/v1.0/rank"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path))
    yield app
    app.extensions["xsell"].store.close()


def body(use: int) -> dict[str, Any]:
    return {
        "eventId": "hot",
        "contextFeatures": [{"device": f"d{use}"}],
        "actions": [{"id": f"a{k}", "features": [{"kind": f"k{k}"}]} for k in range(5)],
    }


def test_the_request_is_translated_once_however_often_its_id_was_used(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    translate = events.to_namespaces

    def counted(features: Any, where: str) -> Any:
        calls.append(where)
        return translate(features, where)

    monkeypatch.setattr(events, "to_namespaces", counted)
    client = app.test_client()
    for use in range(1, 8):
        calls.clear()
        answer = client.post(RANK, json=body(use))
        assert answer.status_code == 201
        assert answer.get_json()["eventId"] == "hot"
        # The context and each of the 5 actions once: it was once per earlier use of the
        # id, so an id used 100 times made one rank cost ~200 (600 ms, not 3 ms).
        assert len(calls) == 6, f"use {use}: {len(calls)} translations"
    store = app.extensions["xsell"].store
    assert store.find_decision("hot\x1e7") is not None
