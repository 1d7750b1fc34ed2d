"""Model import, attacked: crafted VW headers, lying checksums, malformed and hostile archives.

Through ``PUT /personalizer/model`` (the Flask app on a real log, real VW) and the
registry itself (what ``xsell models import`` calls). Each refusal is a JSON 4xx,
leaves the served model alone and writes nothing outside the model directory.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import vowpalwabbit
from flask.testing import FlaskClient

from policies.learning import model_archive
from policies.learning.registry import ModelRegistry, RegistryError
from service.app import create_app
from tests.conftest import make_settings

MODEL = "/personalizer/v1.0/model"
ADMIN = {"Ocp-Apim-Subscription-Key": "admin-key"}
ARGS = "--cb_explore_adf --epsilon 0.1"
GIB = 1 << 30


@pytest.fixture
def pclient(tmp_path: Path) -> FlaskClient:
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-key"))
    yield app.test_client()
    app.extensions["xsell"].store.close()


def registry_of(client: FlaskClient) -> ModelRegistry:
    return client.application.extensions["xsell"].registry


def vw_model(tmp_path: Path, *extra: str) -> bytes:
    """Return the bytes of a model VW itself saved with ARGS and `extra` arguments."""
    path = tmp_path / "made-by-vw.vw"
    workspace = vowpalwabbit.Workspace(arg_list=[*ARGS.split(), "--quiet", *extra])
    workspace.save(str(path))
    workspace.finish()
    data = path.read_bytes()
    path.unlink()
    return data


def card_for(model: bytes, **changes: Any) -> dict[str, Any]:
    card = {
        "kind": "vw",
        "vw_args": ARGS,
        "format_version": 1,
        "sha256": hashlib.sha256(model).hexdigest(),
        "events_learned": 5,
    }
    return {**card, **changes}


def member(
    name: str, data: bytes, kind: bytes = tarfile.REGTYPE, **fields: Any
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, len(data) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def archive(
    members: list[tuple[tarfile.TarInfo, bytes]], compress: Callable[[bytes], bytes] = bytes
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return compress(buffer.getvalue())


def export(
    model: bytes, card: Any = None, record: Any = None, extra: list[tuple[tarfile.TarInfo, bytes]] = ()
) -> bytes:
    card = card_for(model) if card is None else card
    record = {"format": 1, "model": {"version": "v7"}} if record is None else record
    members = [
        member("model.vw", model),
        member("model.json", json.dumps(card).encode()),
        member("record.json", json.dumps(record).encode()),
    ]
    return archive([*members, *extra])


def put(client: FlaskClient, data: bytes) -> Any:
    return client.put(MODEL, headers=ADMIN, data=data, content_type="application/octet-stream")


def assert_refused(client: FlaskClient, response: Any, message: str) -> None:
    """A JSON 400 naming the problem; the model that served before still serves."""
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert message in error["message"]
    assert error["innerError"]["code"] == "invalid_field"
    model_dir = str(registry_of(client).model_dir)
    assert "/tmp/" not in error["message"] and model_dir not in error["message"]  # no path
    assert registry_of(client).active().version == "v1"
    assert [v.version for v in registry_of(client).index.versions()] == ["v1"]
    leftovers = [p.name for p in registry_of(client).model_dir.iterdir() if p.name.startswith(".import")]
    assert leftovers == []


def test_a_header_that_would_make_vw_write_a_file_is_refused_and_the_file_untouched(
    pclient: FlaskClient, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    # VW appends " --id ID" to the options it applies; an id with spaces smuggles options in.
    crafted = vw_model(tmp_path, "--id", f"x --readable_model {victim}")
    assert_refused(pclient, put(pclient, export(crafted)), "--id is not allowed")
    assert victim.read_text() == "precious"
    absent = tmp_path / "never-created.txt"
    crafted = vw_model(tmp_path, "--id", f"x --invert_hash {absent}")
    assert_refused(pclient, put(pclient, export(crafted)), "not allowed")
    assert not absent.exists()


def test_a_card_whose_arguments_the_allowlist_refuses_is_refused(
    pclient: FlaskClient, tmp_path: Path
) -> None:
    model = vw_model(tmp_path)
    target = tmp_path / "preds"
    response = put(pclient, export(model, card_for(model, vw_args=f"{ARGS} -p{target}")))
    assert_refused(pclient, response, "-p is not allowed")
    assert not target.exists()


def test_the_checksum_is_computed_on_import_and_a_stated_one_must_match(
    pclient: FlaskClient, tmp_path: Path
) -> None:
    model = vw_model(tmp_path)
    lying = card_for(model, sha256="0" * 64)
    assert_refused(pclient, put(pclient, export(model, lying)), "model.json: the checksum it states")
    record = {"format": 1, "model": {"version": "v7", "sha256": "f" * 64}}
    assert_refused(pclient, put(pclient, export(model, record=record)), "record.json: the checksum")
    unstated = card_for(model)
    del unstated["sha256"]
    assert put(pclient, export(model, unstated)).status_code == 204
    active = registry_of(pclient).active()
    assert active.sha256 == hashlib.sha256(model).hexdigest()
    card = json.loads((registry_of(pclient).model_dir / f"{active.version}.json").read_text())
    assert card["sha256"] == active.sha256 and active.note == "imported from model.tar (v7)"


@pytest.mark.parametrize(
    ("card", "record", "message"),
    [
        (None, [], "record.json in the export is not a JSON object"),
        (None, {"format": 1}, 'record.json in the export has no "model" object'),
        (None, {"format": 1, "model": "v3"}, 'has no "model" object'),
        (None, {"format": 2, "model": {}}, "unsupported export format '2'"),
        (None, "not json", "is not a JSON object"),
        ([], None, "model.json in the export is not a JSON object"),
        ({"kind": "vw"}, None, "unsupported model kind/format"),
        ({"kind": "vw", "format_version": 1, "events_learned": 1}, None, "vw_args is missing"),
        ({"kind": "vw", "format_version": 1, "vw_args": ARGS, "events_learned": -1}, None, "events_learned"),
        (
            {"kind": "vw", "format_version": 1, "vw_args": ARGS, "events_learned": True},
            None,
            "events_learned",
        ),
    ],
)
def test_malformed_records_and_cards_get_a_json_400(
    pclient: FlaskClient, tmp_path: Path, card: Any, record: Any, message: str
) -> None:
    assert_refused(pclient, put(pclient, export(vw_model(tmp_path), card, record)), message)


@pytest.mark.parametrize(
    ("replace_model", "message"),
    [
        (
            member("model.vw", b"", tarfile.SYMTYPE, linkname="/etc/passwd"),
            "model.vw in the export is not a regular",
        ),
        (member("model.vw", b"", tarfile.LNKTYPE, linkname="model.json"), "not a regular file"),
        (member("model.vw", b"", tarfile.DIRTYPE), "not a regular file"),
        (member("model.vw", b"", tarfile.FIFOTYPE), "not a regular file"),
        (member("model.vw", b"", tarfile.CHRTYPE, devmajor=1, devminor=3), "not a regular file"),
    ],
)
def test_a_model_member_that_is_not_a_regular_file_is_refused(
    pclient: FlaskClient, tmp_path: Path, replace_model: tuple[tarfile.TarInfo, bytes], message: str
) -> None:
    model = vw_model(tmp_path)
    data = archive(
        [
            replace_model,
            member("model.json", json.dumps(card_for(model)).encode()),
            member("record.json", b'{"format": 1, "model": {}}'),
        ]
    )
    assert_refused(pclient, put(pclient, data), message)


def test_unexpected_duplicate_or_missing_members_are_refused(pclient: FlaskClient, tmp_path: Path) -> None:
    model = vw_model(tmp_path)
    extra = export(model, extra=[member("../../etc/cron.d/x", b"* * * * * root true\n")])
    assert_refused(pclient, put(pclient, extra), "unexpected member '../../etc/cron.d/x'")
    twice = export(model, extra=[member("model.vw", model)])
    assert_refused(pclient, put(pclient, twice), "model.vw appears twice")
    missing = archive([member("model.vw", model)])
    assert_refused(pclient, put(pclient, missing), "missing model.json, record.json")
    assert_refused(pclient, put(pclient, b"\0" * 1024), "missing model.json, model.vw, record.json")
    assert_refused(pclient, put(pclient, b"BZh9 not really bzip2"), "cannot read the export")


def _bomb_header(size: int, *, pax_size: int | None = None) -> bytes:
    """A tar header block for model.vw declaring `size` bytes (pax can override it)."""
    info = tarfile.TarInfo("model.vw")
    info.size = size
    if pax_size is not None:
        info.pax_headers = {"size": str(pax_size)}
    return info.tobuf(tarfile.PAX_FORMAT)


def bzip2_bomb(header: bytes, expanded: int) -> bytes:
    """`header` then `expanded` zero bytes, bzip2-compressed as concatenated streams: tiny on disk."""
    chunk = bz2.compress(b"\0" * (64 << 20))
    return bz2.compress(header) + chunk * (expanded // (64 << 20))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (_bomb_header(GIB), "'model.vw' in the export declares more than"),
        (_bomb_header(10, pax_size=GIB), "model.vw in the export is larger than"),  # the small size lied
    ],
)
def test_a_bzip2_bomb_is_refused_before_it_is_expanded(
    pclient: FlaskClient, header: bytes, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = bzip2_bomb(header, GIB)
    assert len(bomb) < 20_000  # expands to over 1 GiB
    read: list[int] = []
    real_read = model_archive._CappedReader.read
    monkeypatch.setattr(
        model_archive._CappedReader, "read", lambda self, size=-1: read.append(size) or real_read(self, size)
    )
    assert_refused(pclient, put(pclient, bomb), message)
    assert 0 < len(read) < 100  # a few blocks of headers were read, not the gigabyte


def test_a_huge_pax_header_is_refused_before_it_is_read(pclient: FlaskClient) -> None:
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, GIB
    bomb = bzip2_bomb(pax.tobuf(tarfile.USTAR_FORMAT), GIB)
    assert_refused(pclient, put(pclient, bomb), "declares more than 65,536 bytes")


def test_the_stream_is_capped_even_when_every_declared_size_is_allowed(
    pclient: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_archive, "MAX_STREAM_BYTES", 4096)
    assert_refused(pclient, put(pclient, export(vw_model(tmp_path))), "expands to more than 4,096 bytes")


def test_a_compressed_export_is_accepted(pclient: FlaskClient, tmp_path: Path) -> None:
    model = vw_model(tmp_path)
    assert put(pclient, gzip.compress(export(model))).status_code == 204
    assert registry_of(pclient).active().sha256 == hashlib.sha256(model).hexdigest()


def test_the_registry_refuses_the_same_way_without_naming_paths(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    source = tmp_path / "incoming" / "upload.tar"
    source.parent.mkdir()
    source.write_bytes(export(vw_model(tmp_path, "--id", "x --readable_model /tmp/never")))
    with pytest.raises(RegistryError, match="--id is not allowed") as refused:
        registry.import_file(source, actor="cli")
    assert str(tmp_path) not in str(refused.value)
    with pytest.raises(RegistryError, match="cannot read the export") as missing:
        registry.import_file(tmp_path / "missing.tar", actor="cli")
    assert str(tmp_path) not in str(missing.value)
