"""The stand-in's async decorator: run an async test to completion on its own event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from azure.core.pipeline.transport import AioHttpTransport

from . import counting, note_requests

__all__ = ["recorded_by_proxy_async"]


def recorded_by_proxy_async(test: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run the async test live; pytest sees a plain test, so no asyncio plugin is needed."""

    @functools.wraps(test)
    def live(*args: Any, **kwargs: Any) -> None:
        with counting(AioHttpTransport) as sent:
            asyncio.run(test(*args, **{"variables": {}, **kwargs}))
        note_requests(sent)

    return live
