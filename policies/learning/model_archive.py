"""Model exports: one tar holding model.vw, model.json (its card) and record.json.

An export comes from outside (``xsell models import``, ``PUT /personalizer/model``),
so reading one costs bounded work whatever it holds: it is read as a stream (gzip,
bzip2 or xz compressed, or plain), through a reader that stops at a hard cap on the
bytes it yields (a 1 KB bzip2 file can expand to 1 GB, and a tar header's declared
size can lie); only the three expected regular files are accepted, each checked
against its size limit before it is read, and the model is copied to disk in
blocks, never held in memory.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import re
import tarfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from policies.base import ModelCard
from policies.deciding.vw import FORMAT_VERSION, VWPolicy, check_vw_args

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_MEMBERS",
    "MAX_JSON_BYTES",
    "MAX_MODEL_BYTES",
    "ExportContents",
    "ExportError",
    "imported_card",
    "original_version",
    "read_export",
    "write_export",
]

EXPORT_FORMAT = 1
EXPORT_MEMBERS = frozenset({"model.vw", "model.json", "record.json"})
MAX_MODEL_BYTES = 256 * 1024 * 1024  # a full 24-bit model with several weights per feature fits
MAX_JSON_BYTES = 64 * 1024
# Every byte a reader may yield: the members, their headers and padding, the end blocks.
MAX_STREAM_BYTES = MAX_MODEL_BYTES + 1024 * 1024
_BLOCK = 1 << 20
_VERSION_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_COMPRESSED: dict[bytes, Callable[[IO[bytes]], IO[bytes]]] = {
    b"\x1f\x8b": lambda raw: cast(IO[bytes], gzip.GzipFile(fileobj=raw)),
    b"BZh": bz2.BZ2File,
    b"\xfd7zXZ\x00": lzma.LZMAFile,
}


class ExportError(ValueError):
    """The file is not a usable model export; the message says why (and names no path)."""


@dataclass(frozen=True, slots=True)
class ExportContents:
    """What an export held: its card and record (JSON objects) and the model's computed checksum."""

    card: dict[str, Any]
    record: dict[str, Any]
    sha256: str
    model_bytes: int


def write_export(model_file: Path, card_file: Path, record: dict[str, Any], destination: Path) -> None:
    """Write the model, its card and `record` into one plain tar at `destination` (atomically)."""
    data = json.dumps({"format": EXPORT_FORMAT, "model": record}, indent=2).encode()
    temporary = destination.with_name(f".{destination.name}.tmp")
    with tarfile.open(temporary, "w") as archive:
        archive.add(model_file, arcname="model.vw")
        archive.add(card_file, arcname="model.json")
        info = tarfile.TarInfo("record.json")
        info.size = len(data)
        info.mtime = int(time.time())
        archive.addfile(info, io.BytesIO(data))
    temporary.replace(destination)


def read_export(source: Path, model_destination: Path) -> ExportContents:
    """Read an export, copying its model file to `model_destination`.

    Raises
    ------
    ExportError
        The file is unreadable, too large once expanded, holds anything but the three
        expected regular files, or its JSON members are not objects. Nothing is left
        at `model_destination` then.
    """
    try:
        return _read(source, model_destination)
    except ExportError:
        model_destination.unlink(missing_ok=True)
        raise
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zlib.error) as error:
        model_destination.unlink(missing_ok=True)
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ExportError(f"cannot read the export ({reason})") from None


def _read(source: Path, model_destination: Path) -> ExportContents:
    found: dict[str, Any] = {}
    with (
        source.open("rb") as raw,
        tarfile.open(fileobj=_capped(raw), mode="r|", tarinfo=_BoundedTarInfo) as archive,
    ):
        for member in archive:
            name = member.name
            if name not in EXPORT_MEMBERS:
                raise ExportError(f"not an xsell model export (unexpected member {name[:60]!r})")
            if name in found:
                raise ExportError(f"not an xsell model export ({name} appears twice)")
            if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.issparse():
                raise ExportError(f"{name} in the export is not a regular file")
            limit = MAX_MODEL_BYTES if name == "model.vw" else MAX_JSON_BYTES
            if member.size > limit:
                raise ExportError(f"{name} in the export is larger than {limit:,} bytes")
            handle = archive.extractfile(member)
            assert handle is not None  # a regular file always has data
            found[name] = _copy(handle, model_destination) if name == "model.vw" else _json(name, handle)
    missing = sorted(EXPORT_MEMBERS - set(found))
    if missing:
        raise ExportError(f"not an xsell model export (missing {', '.join(missing)})")
    sha256, size = found["model.vw"]
    return ExportContents(found["model.json"], found["record.json"], sha256, size)


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header that refuses a declared size over its limit before any of its data is read.

    tarfile reads the data of pax and GNU long-name headers into memory as it meets
    them, before a member is handed out; ``_proc_member`` is the hook every header
    passes through first (a private name, in tarfile since Python 2).
    """

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        is_model = self.name == "model.vw" and self.type in (tarfile.REGTYPE, tarfile.AREGTYPE)
        limit = MAX_MODEL_BYTES if is_model else MAX_JSON_BYTES
        if self.size > limit:
            raise ExportError(f"{self.name[:60]!r} in the export declares more than {limit:,} bytes")
        return super()._proc_member(archive)  # type: ignore[misc, no-any-return]


def _capped(raw: IO[bytes]) -> IO[bytes]:
    """Return a reader of the tar stream (decompressed if need be) that fails past MAX_STREAM_BYTES."""
    magic = raw.read(6)
    raw.seek(0)
    opener = next((o for m, o in _COMPRESSED.items() if magic.startswith(m)), None)
    stream = opener(raw) if opener else raw
    return _CappedReader(stream, MAX_STREAM_BYTES)  # type: ignore[return-value]


class _CappedReader(io.RawIOBase):
    """Yield the bytes of `stream` until `limit`; past it, raise ExportError instead."""

    def __init__(self, stream: IO[bytes], limit: int):
        self.stream, self.left = stream, limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        wanted = self.left + 1 if size < 0 else min(size, self.left + 1)
        data = self.stream.read(wanted)
        self.left -= len(data)
        if self.left < 0:
            raise ExportError(f"the export expands to more than {MAX_STREAM_BYTES:,} bytes")
        return data


def _copy(handle: IO[bytes], destination: Path) -> tuple[str, int]:
    """Copy a member to `destination` in blocks; return its SHA-256 and size."""
    digest, size = hashlib.sha256(), 0
    with destination.open("wb") as out:
        while block := handle.read(_BLOCK):
            size += len(block)
            if size > MAX_MODEL_BYTES:
                raise ExportError(f"model.vw in the export is larger than {MAX_MODEL_BYTES:,} bytes")
            digest.update(block)
            out.write(block)
    return digest.hexdigest(), size


def _json(name: str, handle: IO[bytes]) -> dict[str, Any]:
    data = handle.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ExportError(f"{name} in the export is larger than {MAX_JSON_BYTES:,} bytes")
    try:
        value = json.loads(data)
    except ValueError:
        raise ExportError(f"{name} in the export is not JSON") from None
    if not isinstance(value, dict):
        raise ExportError(f"{name} in the export is not a JSON object")
    return value


def imported_card(contents: ExportContents) -> ModelCard:
    """Return the card to register for an imported model: checked fields, the computed checksum.

    A checksum the export supplies (in its card or its record) proves nothing by
    itself: it is only compared with the one computed from the bytes received.

    Raises
    ------
    ExportError
        A field is missing or wrong, the arguments are not allowed, or a supplied
        checksum differs from the computed one.
    """
    card, record = contents.card, contents.record
    if record.get("format") != EXPORT_FORMAT:
        raise ExportError(f"unsupported export format {str(record.get('format'))[:20]!r}")
    if not isinstance(record.get("model"), dict):
        raise ExportError('record.json in the export has no "model" object')
    if card.get("kind") != VWPolicy.kind or card.get("format_version") != FORMAT_VERSION:
        wanted = f"{VWPolicy.kind}/{FORMAT_VERSION}"
        raise ExportError(f"model.json: unsupported model kind/format (xsell reads {wanted})")
    vw_args, learned = card.get("vw_args"), card.get("events_learned")
    if not isinstance(vw_args, str):
        raise ExportError("model.json: vw_args is missing or not text")
    if not isinstance(learned, int) or isinstance(learned, bool) or learned < 0:
        raise ExportError("model.json: events_learned is missing or not a whole number")
    try:
        check_vw_args(vw_args)
    except ValueError as error:
        raise ExportError(f"model.json: vw_args refused: {error}") from None
    stated = (("model.json", card.get("sha256")), ("record.json", record["model"].get("sha256")))
    for where, claimed in stated:
        if claimed is not None and claimed != contents.sha256:
            raise ExportError(f"{where}: the checksum it states does not match model.vw's bytes")
    return ModelCard(VWPolicy.kind, vw_args, FORMAT_VERSION, contents.sha256, learned)


def original_version(contents: ExportContents) -> str:
    """Return the version name the export had where it came from, if it is a plausible one."""
    version = contents.record["model"].get("version")
    return version if isinstance(version, str) and _VERSION_NAME.fullmatch(version) else "unnamed version"
