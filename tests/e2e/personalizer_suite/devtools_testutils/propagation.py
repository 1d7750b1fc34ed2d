"""The suite's waits for Azure to apply a change, cut to a bound xsell keeps (loaded with ``-p``).

Microsoft's tests sleep 30 s after each configuration or policy change and 60 s between
looks at a running evaluation: the time an Azure resource took to apply a change. xsell
applies one on every worker within ``XSELL_MODEL_POLL_SECONDS`` (0.2 s in the runner), so
a wait of ``WAIT_SECONDS`` still gives each change many times its bound while the suite
checks the same thing after it. Without this, a run spends two minutes asleep.

Only waits of ``PROPAGATION_SECONDS`` or more are the suite's; shorter sleeps (azure-core's
retry backoff, asyncio's own) are left as they are. The waits actually cut are written to
``SUITE_WAITS_LOG`` so the runner can tell that the suite still waited where it meant to.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

__all__ = ["PROPAGATION_SECONDS", "WAIT_SECONDS"]

PROPAGATION_SECONDS = 10.0  # the suite's waits are 30 s and 60 s
WAIT_SECONDS = 2.0  # ten times the runner's XSELL_MODEL_POLL_SECONDS

_sleep = time.sleep
_async_sleep = asyncio.sleep


def _shortened(delay: float) -> float:
    if delay < PROPAGATION_SECONDS:
        return delay
    log = os.environ.get("SUITE_WAITS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{delay:g}\n")
    return WAIT_SECONDS


def _cut_sleep(delay: float) -> None:
    _sleep(_shortened(delay))


async def _cut_async_sleep(delay: float, result: Any = None) -> Any:
    return await _async_sleep(_shortened(delay), result)


def pytest_configure(config: Any) -> None:
    time.sleep = _cut_sleep
    asyncio.sleep = _cut_async_sleep
