"""Move a model version between installations: export one to a tar file, import one as a candidate.

The archive format and its bounded reading live in ``policies.learning.model_archive``;
this module is what the registry does with it. An import never serves by itself: it
becomes a candidate that an operator promotes.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from policies.base import ModelFormatError
from policies.deciding.vw import VWPolicy, card_path
from policies.learning.model_archive import (
    ExportError,
    imported_card,
    original_version,
    read_export,
    write_export,
)
from policies.learning.model_records import ModelChange, ModelVersion, RegistryError

if TYPE_CHECKING:
    from policies.learning.registry import ModelRegistry

__all__ = ["export_version", "import_export"]


def export_version(registry: ModelRegistry, version: str, destination: Path) -> ModelVersion:
    """Write `version` (model file, card and registry record) into one tar file at `destination`.

    Raises
    ------
    UnknownVersion
        No such version.
    RegistryError
        Its file was pruned.
    ModelFormatError
        Its file does not match its checksum (such a file is never exported).
    """
    model = registry.find(version)
    if not registry.has_file(model):
        raise RegistryError(f"{version}: its model file was pruned; nothing to export")
    registry.load(model)  # never export a file that does not match its checksum
    source = registry.model_dir / model.path
    write_export(source, card_path(source), asdict(model), destination)
    return model


def import_export(registry: ModelRegistry, source: Path, *, actor: str) -> ModelVersion:
    """Register an exported model as a new candidate version; it serves only once activated.

    The export is read with bounded work; the checksum registered is the one computed
    here; the model's header passes the VW option allowlist before VW opens it.
    Messages name no path.

    Raises
    ------
    RegistryError
        The file is not a usable export, or the model inside is refused or will not load.
    """
    registry.model_dir.mkdir(parents=True, exist_ok=True)
    staging = registry.model_dir / f".import-{uuid.uuid4().hex}.vw"
    try:
        contents = read_export(source, staging)
        card = imported_card(contents)
        card_path(staging).write_text(json.dumps(asdict(card), indent=2))
        VWPolicy.load(staging)  # the header's options, the checksum, then VW itself
    except (ExportError, ModelFormatError) as error:
        for leftover in (staging, card_path(staging)):
            leftover.unlink(missing_ok=True)
        message = str(error).replace(staging.name, "model.vw")
        raise RegistryError(f"the model export was refused: {message}") from None
    seq, path = registry.reserve_path()
    os.replace(card_path(staging), card_path(path))
    os.replace(staging, path)
    note = f"imported from {source.name} ({original_version(contents)})"
    model = ModelVersion.of_file(seq, path, card, parent=None, state="candidate", note=note)
    registry.share_files(path)  # other nodes fetch it from the database (no shared disk)
    registry.index.publish(model)
    registry.index.record_change(ModelChange(time.time(), "import", model.version, None, actor, model.note))
    return model
