"""DELETE /v1/shoppers/{id} on the real service: no form of the id survives on disk or in logs.

The attack: after a shopper asked to be erased, read the SQLite file, its WAL and the
service's output (gunicorn access log on, application log) byte by byte, looking for
their id (raw and URL-encoded), the keyed hash it was stored under, their search words,
the event id they chose, the request hash a retry is checked against, and their
purchase value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import requests

from tests.e2e.conftest import RunningService, start_service, stop_service

pytestmark = pytest.mark.e2e

SECRET = "erasure-test-secret"
SHOPPER = "Zoë Quill+7731@example.org"  # needs URL-encoding: not ASCII, a space, + and @
OTHER = "other-shopper-5150"
SEARCH, OTHER_SEARCH = "Zanzibar heliotrope tripod", "Quokka marmalade"
EVENT_ID = "zq7731-cart-0001"  # chosen by the storefront: the retry fingerprint is stored too
PURCHASE = 4321.87


def key_of(shopper: str) -> str:
    return hmac.new(SECRET.encode(), shopper.encode(), hashlib.sha256).hexdigest()


def forms_of_the_id(shopper: str) -> list[bytes]:
    """Every way the id can be written: raw, URL-encoded (path and form style), its HMAC key."""
    return [
        form.encode()
        for form in {shopper, quote(shopper), quote(shopper, safe=""), quote_plus(shopper), key_of(shopper)}
    ]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningService]:
    service = start_service(
        tmp_path,
        XSELL_ACCESS_LOG="true",
        XSELL_SHOPPER_ID_SECRET=SECRET,
        XSELL_REWARD_WINDOW_SECONDS="0.5",
        XSELL_PACING_SESSION_CAP="100",
    )
    yield service
    stop_service(service)


def _shop(url: str, shopper: str, search: str, event_id: str | None, value: float) -> None:
    """Set preferences, ask for offers, click and buy the first one: every route that sees the id."""
    path = f"{url}/v1/shoppers/{quote(shopper, safe='')}"
    assert requests.post(f"{path}/preferences", json={"frequency": "normal"}, timeout=10).status_code == 200
    page = f"https://shop.example/account/{quote(shopper, safe='')}"  # a storefront page naming them
    assert requests.get(f"{path}/preferences", headers={"Referer": page}, timeout=10).status_code == 200
    body = {
        "cart": [{"sku": "camera-01", "qty": 1}],
        "shopper_id": shopper,
        "search": search,
        "device": "mobile",
        "locale": "is-IS",
        "stage": "cart",
        "max_offers": 2,
    }
    if event_id is not None:
        body["event_id"] = event_id
    answer = requests.post(f"{url}/v1/offers", json=body, timeout=10).json()
    assert answer["offers"], answer
    sku, event = answer["offers"][0]["sku"], answer["event_id"]
    for signal in ({"signal": "click"}, {"signal": "purchase", "value": value}):
        feedback = requests.post(
            f"{url}/v1/events/{event}/feedback", json={**signal, "action_id": sku}, timeout=10
        )
        assert feedback.status_code == 200, feedback.text


def _stored_fingerprint(db: Path, event_id: str) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT request_sha256 FROM decisions WHERE event_id = ?", (event_id,)).fetchone()
    finally:
        conn.close()
    # the tagged sha256 of service/intake_fingerprint.py
    assert row is not None and re.fullmatch(r"v2:[0-9a-f]{64}", row[0]), row
    return str(row[0])


def _found(haystack: bytes, needles: list[bytes]) -> list[bytes]:
    lowered = haystack.lower()
    return [needle for needle in needles if needle.lower() in lowered]


def test_erasure_leaves_no_form_of_the_id_in_the_database_its_wal_or_the_logs(
    running: RunningService,
) -> None:
    _shop(running.url, SHOPPER, SEARCH, EVENT_ID, PURCHASE)
    _shop(running.url, OTHER, OTHER_SEARCH, None, 87.5)
    db = running.data_dir / "xsell.db"
    fingerprint = _stored_fingerprint(db, EVENT_ID)

    erased = requests.delete(f"{running.url}/v1/shoppers/{quote(SHOPPER, safe='')}", timeout=30)
    assert erased.status_code == 200, erased.text

    in_the_log = [*forms_of_the_id(SHOPPER), b"zanzibar", b"heliotrope"]
    on_disk = [*in_the_log, EVENT_ID.encode(), fingerprint.encode(), struct.pack(">d", PURCHASE), b"4321.87"]
    # Read while the service runs: closing the last connection would checkpoint and delete the WAL.
    database, wal = db.read_bytes(), Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b""
    assert _found(database, on_disk) == []
    assert _found(wal, on_disk) == []
    # The other shopper is still there, so the grep does read what is stored.
    assert _found(database + wal, [key_of(OTHER).encode(), b"quokka", b"marmalade"]) != []

    stop_service(running)  # flushes every access and application log line
    output = running.log_path.read_bytes()
    assert b'"DELETE /v1/shoppers/- HTTP/1.1" 200' in output  # the access log is on and saw the erasure
    assert _found(output, in_the_log) == []
    assert _found(db.read_bytes(), on_disk) == []
    assert erased.json()["decisions_anonymised"] == 1
