"""Keys fail closed: a key setting that yields no key refuses to start, open routes are a choice."""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from scripts.cli import cli
from scripts.serve import announce_access, open_routes
from service import auth
from service.app import create_app
from service.auth import AccessRefused, access_mode, is_loopback, storefront_routes
from tests.conftest import make_settings

# Each of these once left every storefront route open, shopper erasure included.
KEYLESS_VALUES = ["", ",", " ", "#x", " , ,", "# a comment, #another"]
KEYLESS_FILES = ["", "\n\n", "   \n", "# storefront keys\n#x\n"]


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    """`xsell serve` sets a private umask for its process; give the test process its own back."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


SHOPPER_ROUTES = [
    ("get", "/v1/shoppers/alice/preferences", None),
    ("post", "/v1/shoppers/alice/preferences", {"frequency": "fewer"}),
    ("delete", "/v1/shoppers/alice", None),
]


@pytest.mark.parametrize("value", KEYLESS_VALUES)
@pytest.mark.parametrize("field", ["api_keys", "admin_api_keys"])
def test_a_key_list_without_a_key_is_refused(tmp_path: Path, field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"XSELL_{field.upper()} is set but holds no key"):
        make_settings(tmp_path, **{field: value})


@pytest.mark.parametrize("content", KEYLESS_FILES)
@pytest.mark.parametrize(
    ("field", "method"), [("api_key_file", "storefront_keys"), ("admin_api_key_file", "admin_keys")]
)
def test_a_key_file_without_a_key_is_refused(tmp_path: Path, field: str, method: str, content: str) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(content)
    settings = make_settings(tmp_path, **{field: keys})
    with pytest.raises(ValueError, match="is set but holds no key"):
        getattr(settings, method)()
    with pytest.raises(ValueError, match="is set but holds no key"):
        access_mode(settings)
    with pytest.raises(ValueError, match="is set but holds no key"):
        create_app(settings)  # a worker started some other way refuses too


def test_keys_are_read_from_both_places_without_blanks_or_comments(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# rotated 2026-11\nfile-key\n\n")
    settings = make_settings(tmp_path, api_keys=" inline-key , ,#old", api_key_file=keys)
    assert settings.storefront_keys() == frozenset({"inline-key", "file-key"})
    assert access_mode(settings) == "keys"


@pytest.mark.parametrize("value", [",", "#x"])
def test_serve_refuses_a_key_list_without_a_key(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--data-dir", str(tmp_path / "var")], env={"XSELL_API_KEYS": value}
    )
    assert result.exit_code == 2
    assert "XSELL_API_KEYS is set but holds no key" in result.output


def test_serve_refuses_an_empty_key_file_before_starting_anything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = tmp_path / "admin-keys.txt"
    keys.write_text("\n")
    with caplog.at_level(logging.ERROR, logger="xsell.serve"):
        result = CliRunner().invoke(
            cli, ["serve", "--data-dir", str(tmp_path / "var")], env={"XSELL_ADMIN_API_KEY_FILE": str(keys)}
        )
    assert result.exit_code == 2
    assert "XSELL_ADMIN_API_KEY_FILE" in caplog.text and "holds no key" in caplog.text
    assert not (tmp_path / "var" / "xsell.db").exists()  # nothing was started or migrated


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("shop.example.com", False),
    ],
)
def test_only_loopback_addresses_count_as_development(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_no_storefront_key_on_a_public_address_needs_open_access(tmp_path: Path) -> None:
    with pytest.raises(AccessRefused, match="XSELL_OPEN_ACCESS=true"):
        access_mode(make_settings(tmp_path, host="0.0.0.0"))
    with pytest.raises(AccessRefused):
        access_mode(make_settings(tmp_path, host="0.0.0.0", admin_api_keys="admin-only"))
    assert access_mode(make_settings(tmp_path, host="0.0.0.0", open_access=True)) == "open"
    assert access_mode(make_settings(tmp_path)) == "development"
    assert access_mode(make_settings(tmp_path, host="0.0.0.0", api_keys="k")) == "keys"


def test_serve_on_a_public_address_without_keys_does_not_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="xsell.serve"):
        result = CliRunner().invoke(
            cli,
            ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "var")],
            env={"XSELL_API_KEYS": None},
        )
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0 with no storefront key" in caplog.text
    assert not (tmp_path / "var" / "xsell.db").exists()


def test_open_routes_are_listed_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path, host="0.0.0.0", open_access=True)
    with caplog.at_level(logging.WARNING, logger="xsell.serve"):
        announce_access(settings, access_mode(settings))
    opened = [r.getMessage() for r in caplog.records if "open: " in r.getMessage()]
    assert opened, caplog.text
    assert "ANYONE who can reach 0.0.0.0" in caplog.text
    for route in ("POST /v1/rank", "DELETE /v1/shoppers/", "GET /v1/shoppers/", "POST /v1/offers"):
        assert any(route in line for line in opened), (route, opened)
    assert not any("/v1/models" in line for line in opened)  # admin routes are never open


def test_the_logged_routes_are_the_ones_the_app_guards(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    guarded = storefront_routes(app)
    assert guarded
    assert open_routes() == guarded
    app.extensions["xsell"].store.close()


@pytest.mark.parametrize(("method", "path", "body"), SHOPPER_ROUTES)
def test_shopper_routes_need_a_key_when_keys_are_set(
    tmp_path: Path, method: str, path: str, body: dict | None
) -> None:
    app = create_app(make_settings(tmp_path, api_keys="store-key", admin_api_keys="admin-key"))
    client = app.test_client()
    call = getattr(client, method)
    assert call(path, json=body).status_code == 401
    assert call(path, json=body, headers={"X-Api-Key": "store-kez"}).status_code == 403
    assert call(path, json=body, headers={"X-Api-Key": "store-key"}).status_code in (200, 204)
    assert call(path, json=body, headers={"Authorization": "Bearer admin-key"}).status_code in (200, 204)
    app.extensions["xsell"].store.close()


@pytest.mark.parametrize(("method", "path", "body"), SHOPPER_ROUTES)
def test_an_app_on_a_public_address_without_keys_fails_closed(
    tmp_path: Path, method: str, path: str, body: dict | None
) -> None:
    """gunicorn started by hand with XSELL_HOST=0.0.0.0 and no key: no open routes."""
    closed = create_app(make_settings(tmp_path / "closed", host="0.0.0.0"))
    assert getattr(closed.test_client(), method)(path, json=body).status_code == 401
    closed.extensions["xsell"].store.close()
    opened = create_app(make_settings(tmp_path / "open", host="0.0.0.0", open_access=True))
    assert getattr(opened.test_client(), method)(path, json=body).status_code in (200, 204)
    opened.extensions["xsell"].store.close()


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key is compared, whichever matches, and always as equal-length digests."""
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = ["short", "a-much-longer-key-" * 4, "third"]
    for presented in ("short", "third", "nope", "a-much-longer-key-" * 4):
        compared.clear()
        assert auth._matches(presented, keys) is (presented in keys)
        assert len(compared) == len(keys)
        assert set(compared) == {(32, 32)}
