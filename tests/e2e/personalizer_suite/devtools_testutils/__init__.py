"""A stand-in for Azure's ``devtools_testutils``, enough to run the Personalizer suite live.

Microsoft's tests for ``azure-ai-personalizer`` import Azure's recording tooling
(a test proxy that records or replays HTTP). xsell runs them LIVE against a real
``xsell serve``, so this stand-in records nothing: the test proxy is absent, the
sanitizers have nothing to clean, ``recorded_by_proxy`` calls the test as it is, and
``EnvironmentVariableLoader`` hands each test the endpoint and key of the resource
it names, read from ``PERSONALIZER_ENDPOINT_SINGLE_SLOT`` and the like (as Azure's
loader does in live mode). A variable that is missing fails the test: a live run
never falls back to the suite's fake ``REDACTED`` values.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from azure.core.pipeline.transport import RequestsTransport

__all__ = [
    "AzureRecordedTestCase",
    "EnvironmentVariableLoader",
    "add_general_regex_sanitizer",
    "add_oauth_response_sanitizer",
    "add_remove_header_sanitizer",
    "recorded_by_proxy",
    "test_proxy",
]


class AzureRecordedTestCase:
    """Base class of the suite's test classes: every run here is live."""

    @property
    def is_live(self) -> bool:
        """Always True: requests reach the real service and the suite's waits apply."""
        return True


class EnvironmentVariableLoader:
    """Pass each named setting to the test from its environment variable (upper case).

    ``EnvironmentVariableLoader("personalizer", personalizer_endpoint_single_slot="https://...")``
    decorates a test; the keyword values are the recordings' fakes, used by Azure's
    loader only in playback, so they are ignored here.
    """

    def __init__(self, directory: str, **fake_values: str):
        self.directory = directory
        self.names = tuple(fake_values)

    def __call__(self, test: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(test)
        def with_settings(*args: Any, **kwargs: Any) -> Any:
            missing = [n.upper() for n in self.names if n.upper() not in os.environ]
            if missing:
                raise RuntimeError(f"set {', '.join(missing)} to run the suite live")
            return test(*args, **{**kwargs, **{n: os.environ[n.upper()] for n in self.names}})

        return with_settings


def recorded_by_proxy(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run the test as written: live, nothing recorded. ``variables`` starts empty, as in a live run."""

    @functools.wraps(test)
    def live(*args: Any, **kwargs: Any) -> None:
        with counting(RequestsTransport) as sent:
            test(*args, **{"variables": {}, **kwargs})
        note_requests(sent)

    return live


@contextlib.contextmanager
def counting(transport: type) -> Iterator[list[int]]:
    """Count the requests `transport` sends while the block runs (the proxy's recording, in short)."""
    sent = [0]
    original = transport.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return original(self, request, **kwargs)

    with mock.patch.object(transport, "send", send):
        yield sent


def note_requests(sent: list[int]) -> None:
    """Note how many requests the test sent, in ``$SUITE_REQUESTS_LOG`` when set.

    A test that sends nothing passes anywhere (Azure's recording of it is empty too);
    the runner reads the counts so such a test is never taken as evidence of anything.
    """
    log = os.environ.get("SUITE_REQUESTS_LOG")
    if log:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{test} {sent[0]}\n")


@pytest.fixture(scope="session")
def test_proxy() -> Iterator[None]:
    """No proxy: requests go straight to the service."""
    yield None


def add_remove_header_sanitizer(**kwargs: Any) -> None:
    """Nothing is recorded, so there is no header to remove."""


def add_general_regex_sanitizer(**kwargs: Any) -> None:
    """Nothing is recorded, so there is no text to rewrite."""


def add_oauth_response_sanitizer(**kwargs: Any) -> None:
    """Nothing is recorded, so there is no token to hide."""
