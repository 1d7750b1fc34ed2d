"""Fetch the ``azure-ai-personalizer`` sdist like any test dependency and unpack its tests.

pip downloads it into a cache directory outside the repository (``XSELL_TEST_CACHE``,
default ``~/.cache/xsell-tests``); its SHA-256 is pinned, so a changed file is refused
rather than run. Nothing from it is ever copied into the repository.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = ["SDIST", "SDIST_SHA256", "suite_tests"]

SDIST = "azure-ai-personalizer==1.0.0b1"
SDIST_FILE = "azure-ai-personalizer-1.0.0b1.zip"
SDIST_SHA256 = "d5ca96fff31b716575bfac1e3349f40c6bb3ec4837d0cabc7d7f8e32e47c226c"


def cache_dir() -> Path:
    """Return where fetched test dependencies are kept between runs."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xsell-tests"
    return Path(os.environ.get("XSELL_TEST_CACHE", default))


def suite_tests() -> Path:
    """Return the unpacked ``tests`` directory of the sdist, fetching it if it is not cached."""
    cache = cache_dir()
    archive = cache / SDIST_FILE
    if not archive.exists() or _sha256(archive) != SDIST_SHA256:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                str(cache),
                SDIST,
            ],
            check=True,
        )
    found = _sha256(archive)
    if found != SDIST_SHA256:
        raise RuntimeError(f"{archive} has SHA-256 {found}, expected {SDIST_SHA256}: refusing to run it")
    unpacked = cache / "azure-ai-personalizer-1.0.0b1"
    if not (unpacked / "tests" / "conftest.py").exists():
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(cache)
    return unpacked / "tests"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
