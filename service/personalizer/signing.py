"""Signed model exports: an HMAC-SHA256 of the export's bytes under this server's signing key.

The key is 32 random bytes kept (hex) in ``<XSELL_DATA_DIR>/personalizer-signing.key``,
made on first use with mode 0600 and shared by every worker. A signed export is a
plain tar of two files: ``model.tar`` (the export) and ``signature.json``
(``{"algorithm": "HMAC-SHA256", "key_id": ..., "signature": hex}``). Anyone holding
the key checks one with ``hmac.new(bytes.fromhex(key), model_tar, "sha256")``
(docs/personalizer.md). An import checks the signature before anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
import tarfile
from pathlib import Path

__all__ = ["KEY_FILE", "SignatureError", "fixed_tar", "key_id", "server_key", "sign", "unwrap"]

KEY_FILE = "personalizer-signing.key"
SIGNED_MEMBERS = ("model.tar", "signature.json")
ALGORITHM = "HMAC-SHA256"


class SignatureError(ValueError):
    """A signed export whose signature is malformed or was not made with this server's key."""


def server_key(data_dir: Path) -> bytes:
    """Return this server's signing key, making it (atomically, once for all workers) if need be."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = data_dir / f".{KEY_FILE}.{secrets.token_hex(8)}"
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(staging, path)  # fails if another worker made it first: theirs stands
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    return bytes.fromhex(path.read_text().strip())


def key_id(key: bytes) -> str:
    """Return a short, public name of `key` (so a verifier knows which key signed)."""
    return hashlib.sha256(key).hexdigest()[:16]


def sign(data_dir: Path, export: bytes) -> bytes:
    """Return `export` wrapped with its signature."""
    key = server_key(data_dir)
    signature = {"algorithm": ALGORITHM, "key_id": key_id(key), "signature": _mac(key, export)}
    return fixed_tar(
        [("model.tar", export), ("signature.json", json.dumps(signature, sort_keys=True).encode())]
    )


def unwrap(data_dir: Path, data: bytes) -> bytes:
    """Return the export inside a signed one after checking its signature; any other body unchanged.

    Raises
    ------
    SignatureError
        The body is a signed export whose signature is malformed or not this server's.
    """
    members = _signed_members(data)
    if members is None:
        return data
    try:
        claimed = json.loads(members["signature.json"])
        signature, algorithm = claimed["signature"], claimed["algorithm"]
    except (ValueError, KeyError, TypeError):
        raise SignatureError("signature.json in the signed export is not a signature") from None
    if algorithm != ALGORITHM or not isinstance(signature, str):
        raise SignatureError(f"the signed export's algorithm must be {ALGORITHM}")
    expected = _mac(server_key(data_dir), members["model.tar"])
    if not hmac.compare_digest(signature.encode(), expected.encode()):  # str: ASCII only, else TypeError
        raise SignatureError(
            "the signed export's signature was not made by this server's key for these bytes"
        )
    return members["model.tar"]


def fixed_tar(members: list[tuple[str, bytes]]) -> bytes:
    """Return a plain tar of `members` whose headers hold nothing but names and sizes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _signed_members(data: bytes) -> dict[str, bytes] | None:
    """Return the two members of a signed export, or None if `data` is not one (`data` is in memory)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            found: dict[str, bytes] = {}
            for member in archive:
                if member.name not in SIGNED_MEMBERS or member.name in found or not member.isreg():
                    return None
                handle = archive.extractfile(member)
                if handle is None:
                    return None
                found[member.name] = handle.read()
    except (tarfile.TarError, EOFError, OSError):
        return None
    return found if set(found) == set(SIGNED_MEMBERS) else None
