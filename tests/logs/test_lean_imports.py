"""A worker that logs decisions does not carry pandas (nor pyarrow) because sqlite-utils could."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_serving_and_migrating_import_neither_pandas_nor_pyarrow(tmp_path: Path) -> None:
    # pandas is installed (the dev tools bring it), so sqlite-utils would import it
    code = (
        "import sys; from pathlib import Path\n"
        "import service.app, scripts.learn\n"
        "from logs.store import LogStore\n"
        f"LogStore(Path({str(tmp_path / 'log.db')!r})).migrate()\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'sqlite_utils') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    ).stdout
    assert out.strip() == "['sqlite_utils']"


def test_pandas_stays_importable_afterwards(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path\n"
        "from logs.store import LogStore\n"
        f"LogStore(Path({str(tmp_path / 'log.db')!r})).migrate()\n"
        "import pandas\n"
        "print(pandas.DataFrame({'a': [1]}).shape)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    ).stdout
    assert out.strip() == "(1, 1)"
