"""Read the options a Vowpal Wabbit model file would make VW apply, without VW.

VW applies the options stored in a model file's header when it loads the file
(``-i``), whatever the command line says, and some options write files (a header
holding ``--readable_model PATH`` overwrote PATH). So before VW opens any model file
its header is read here, byte by byte, and its options go through the same
allowlist as an operator's arguments (``policies.deciding.vw_args``).

The layout is VW 9's ``save_load_header`` (vowpalwabbit/core/src/parse_regressor.cc),
little-endian: a length-prefixed version string; a length-prefixed model id; the byte
``m``; min and max label (float32 each); the bit precision (uint32); ``lda`` (uint32);
n-gram and skip definitions (uint32 count, 3 bytes each); the length-prefixed option
string; a checksum. VW assembles the options it applies as `` --id ID`` (when the id
is not empty), `` --bit_precision BITS``, one ``--ngram``/``--skips`` per definition,
then the stored option string; ``header_options`` does the same.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from policies.base import ModelFormatError
from policies.deciding.vw_args import VWArgs, check_header_options

__all__ = ["ModelHeader", "check_model_header", "read_header"]

MAX_STRING_BYTES = 512  # VW's own limit for the version and the id
MAX_OPTION_BYTES = 64 * 1024
_VERSION = re.compile(r"9\.\d{1,4}\.\d{1,4}")  # the layout above is VW 9's


@dataclass(frozen=True, slots=True)
class ModelHeader:
    """What a model file's header tells VW."""

    vw_version: str
    model_id: str
    bits: int
    lda: int
    ngrams: int
    skips: int
    stored_options: str

    def header_options(self) -> str:
        """Return the option string VW would apply when loading the file."""
        assembled = f" --id {self.model_id}" if self.model_id else ""
        assembled += f" --bit_precision {self.bits}"
        if self.ngrams or self.skips:
            assembled += " --ngram ?" * self.ngrams + " --skips ?" * self.skips
        return f"{assembled} {self.stored_options}"


def read_header(path: Path) -> ModelHeader:
    """Read a VW 9 model file's header; raise ModelFormatError if it is not one."""
    try:
        with path.open("rb") as handle:
            data = handle.read(4 * MAX_STRING_BYTES + MAX_OPTION_BYTES)
    except OSError as error:
        raise ModelFormatError(f"{path.name}: cannot read the model file ({error.strerror})") from None
    reader = _Reader(data, path.name)
    version = reader.text(MAX_STRING_BYTES, "version")
    if not _VERSION.fullmatch(version):
        raise ModelFormatError(f"{path.name}: not a Vowpal Wabbit 9 model file (version {version[:20]!r})")
    model_id = reader.text(MAX_STRING_BYTES, "id")
    if reader.take(1) != b"m":
        raise ModelFormatError(f"{path.name}: not a Vowpal Wabbit model file")
    reader.take(8)  # min and max label
    bits, lda, ngrams = reader.u32(), reader.u32(), reader.u32()
    reader.take(3 * min(ngrams, MAX_STRING_BYTES))
    skips = reader.u32()
    reader.take(3 * min(skips, MAX_STRING_BYTES))
    stored = reader.text(MAX_OPTION_BYTES, "options")
    return ModelHeader(version, model_id, bits, lda, ngrams, skips, stored)


def check_model_header(path: Path) -> VWArgs:
    """Return the allowlisted options in a model file's header; raise ModelFormatError if any is refused."""
    header = read_header(path)
    if header.lda:
        raise ModelFormatError(f"{path.name}: the model header asks for LDA, which xsell does not use")
    try:
        return check_header_options(header.header_options())
    except ValueError as error:
        raise ModelFormatError(f"{path.name}: refusing a model whose header VW would obey: {error}") from None


class _Reader:
    """Take fields off the front of the header bytes; short data is a format error."""

    def __init__(self, data: bytes, name: str):
        self.data, self.name, self.offset = data, name, 0

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise ModelFormatError(f"{self.name}: the model header is truncated")
        piece = self.data[self.offset : self.offset + count]
        self.offset += count
        return piece

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def text(self, limit: int, field: str) -> str:
        """Read a length-prefixed string; VW uses it up to its first NUL."""
        length = self.u32()
        if length > limit:
            raise ModelFormatError(f"{self.name}: the model header's {field} is too long ({length} bytes)")
        raw = self.take(length).split(b"\0", 1)[0]
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise ModelFormatError(f"{self.name}: the model header's {field} is not ASCII text") from None
