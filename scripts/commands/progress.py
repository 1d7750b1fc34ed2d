"""A progress bar for long commands: on a terminal only, on stderr, so output stays data.

`xsell simulate`, `xsell evaluate` and `xsell relations build` can run for many
seconds; on a terminal they show how far they are. Piped or in a script (stderr not
a TTY) they stay quiet, so logs and `--json` output hold nothing but the answer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import click

__all__ = ["progress"]


@contextmanager
def progress(length: int, label: str, *, file: IO[str] | None = None) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`: moves a bar of `length` steps on a terminal, does nothing elsewhere."""
    stream = file if file is not None else sys.stderr
    if not stream.isatty() or length <= 0:
        yield lambda steps: None
        return
    with click.progressbar(length=length, label=label, file=stream, show_eta=True, show_percent=True) as bar:
        yield bar.update
