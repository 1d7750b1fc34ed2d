"""Personalizer's model routes: export, import, reset and properties, over xsell's registry.

An export here holds only what makes the model: the VW file, its card (arguments,
format, checksum, events learned) and a record naming the same checksum, in a tar
whose every header is fixed (no times, owners or version names). So an import
followed by an export gives back the same bytes, as Personalizer's did. ``xsell
models export`` keeps giving the full registry record.

``signed=true`` wraps that export with an HMAC-SHA256 of its bytes under this
server's signing key (``signing.py``); importing a signed export checks it first.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from flask import Response, request

from policies.learning.model_archive import EXPORT_FORMAT, ExportError, read_export
from policies.learning.registry import RegistryError
from service.errors import InvalidField
from service.openapi import documented
from service.personalizer import signing
from service.personalizer.admin import ACTOR, active, admin_blueprint, start_fresh
from service.personalizer.formats import iso
from service.resources import Resources, resources
from service.responses import no_content, personalizer_json

__all__ = ["bp", "canonical_export"]

bp = admin_blueprint("model")


@bp.get("/model")
@documented(key="admin")
def export_model() -> Response:
    """The active model's export; with ``signed=true``, wrapped with its HMAC signature."""
    signed = request.args.get("signed", "false").lower()
    if signed not in ("true", "false"):
        raise InvalidField("signed", "must be true or false")
    data = canonical_export(resources())
    if signed == "true":
        data = signing.sign(resources().settings.data_dir, data)
    return Response(data, status=200, content_type="application/octet-stream")


@bp.put("/model")
@documented(status=204, key="admin", errors=(413, 422))
def import_model() -> Response:
    """Import an export (signed or not) and serve it at once, as Personalizer's import did. 204."""
    res = resources()
    data = request.get_data()
    if not data:
        raise InvalidField("body", "send the model file exported by GET model")
    try:
        data = signing.unwrap(res.settings.data_dir, data)
    except signing.SignatureError as error:
        raise InvalidField("body", str(error)) from error
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.tar"
        path.write_bytes(data)
        try:
            model = res.registry.import_file(path, actor=ACTOR)
        except RegistryError as error:
            raise InvalidField("body", str(error).replace(str(path), "the uploaded model")) from error
    res.registry.activate(model.version, actor=ACTOR, reason="imported over the Personalizer API")
    return no_content()


@bp.delete("/model")
@documented(status=204, key="admin")
def reset_model() -> Response:
    """Forget what was learned: serve a new, untrained model with the same arguments. 204."""
    res = resources()
    start_fresh(res, active(res).vw_args, "model reset over the Personalizer API", "model")
    return no_content()


@bp.get("/model/properties")
@documented(key="admin")
def model_properties() -> Response:
    """When the first model was made and when the served one was."""
    res = resources()
    versions = res.registry.index.versions()
    served = active(res)
    first = min((v.created_at for v in versions), default=served.created_at)
    return personalizer_json({"creationTime": iso(first), "lastModifiedTime": iso(served.created_at)})


def canonical_export(res: Resources) -> bytes:
    """Return the served model as an export of its content alone, the same bytes for the same model."""
    with tempfile.TemporaryDirectory() as directory:
        full, model_file = Path(directory) / "full.tar", Path(directory) / "model.vw"
        res.registry.export(active(res).version, full)  # checks the file against its checksum
        try:
            contents = read_export(full, model_file)
        except ExportError as error:  # our own export: only a full disk gets here
            raise RuntimeError(f"re-reading the model export failed: {error}") from error
        card = json.dumps(contents.card, sort_keys=True, indent=2).encode()
        record = {
            "format": EXPORT_FORMAT,
            "model": {"sha256": contents.sha256, "vw_args": contents.card["vw_args"]},
        }
        members = [
            ("model.vw", model_file.read_bytes()),
            ("model.json", card),
            ("record.json", json.dumps(record, sort_keys=True, indent=2).encode()),
        ]
    return signing.fixed_tar(members)
