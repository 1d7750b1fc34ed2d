"""Slow clients cannot hold the workers: ranks and health probes answer while sockets dribble.

Before the fix two sockets sending one header byte a second made 4 of 5 health
probes time out: each sync worker sat in a blocking read of a header that never
ended. Here more slow sockets than there are workers and threads are connected
and mid-request before the first rank is sent, and keep dribbling throughout.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from service.worker import ARRIVAL_SECONDS, MAX_HEAD_BYTES
from tests.e2e.conftest import RunningService, start_service, stop_service

pytestmark = pytest.mark.e2e

SLOW_SOCKETS = 12  # more than 2 workers x 4 threads: enough to stop sync or plain gthread workers
RANKS = 40
CONTEXT = {"shopper": {"segment": "pro", "device": "mobile"}}
ACTIONS = [{"id": "tripod"}, {"id": "memory_card"}, {"id": "bag"}]
HEAD = b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Slow: " + b"x" * 4000 + b"\r\n\r\n"
BODY_HEAD = (
    b"POST /v1/rank HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
)


class Dribbler:
    """Sockets that each send the start of a request now, then one byte a second until stopped."""

    def __init__(self, port: int, payloads: list[tuple[bytes, int]]):
        """`payloads`: (the whole request, how many of its bytes to send at once)."""
        self.sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in payloads]
        self.payloads = [payload for payload, _ in payloads]
        self.sent = [at_once for _, at_once in payloads]
        for sock, (payload, at_once) in zip(self.sockets, payloads, strict=True):
            sock.sendall(payload[:at_once])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            for i, sock in enumerate(self.sockets):
                if self.sent[i] < len(self.payloads[i]) - 1:  # never complete the request
                    try:
                        sock.sendall(self.payloads[i][self.sent[i] : self.sent[i] + 1])
                        self.sent[i] += 1
                    except OSError:
                        pass  # dropped by the server after ARRIVAL_SECONDS: that is allowed

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def slow_service(tmp_path: Path) -> Iterator[RunningService]:
    running = start_service(tmp_path)
    yield running
    stop_service(running)


@pytest.fixture(params=["1", "4"], ids=["1-thread", "4-threads"])
def any_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningService]:
    """One thread answers on the worker's poller; more hand requests to a thread pool."""
    running = start_service(tmp_path, XSELL_THREADS=request.param)
    yield running
    stop_service(running)


def _port(service: RunningService) -> int:
    return int(service.url.rsplit(":", 1)[1])


def test_ranks_and_health_answer_while_slow_sockets_dribble(any_service: RunningService) -> None:
    # Half dribble the head; the other half send the head whole and dribble the body.
    payloads = [
        (HEAD, 1) if i % 2 == 0 else (BODY_HEAD + b" " * 4000, len(BODY_HEAD)) for i in range(SLOW_SOCKETS)
    ]
    dribbler = Dribbler(_port(any_service), payloads)
    try:
        with requests.Session() as session:
            answers = []
            for i in range(RANKS):
                if i % 10 == 0:
                    health = session.get(f"{any_service.url}/healthz", timeout=10)
                    assert health.status_code == 200
                response = session.post(
                    f"{any_service.url}/v1/rank", json={"context": CONTEXT, "actions": ACTIONS}, timeout=10
                )
                answers.append(response.status_code)
        assert answers == [200] * RANKS
        # Fresh connections too, not only one kept alive
        for _ in range(5):
            assert requests.get(f"{any_service.url}/healthz", timeout=10).status_code == 200
    finally:
        dribbler.close()


def test_a_request_that_never_arrives_is_dropped(slow_service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", _port(slow_service)), timeout=ARRIVAL_SECONDS * 4) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: sh")
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server, without an answer
        assert time.monotonic() - started >= ARRIVAL_SECONDS - 1.5  # not before its time was up


def test_a_head_too_large_gets_431(slow_service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", _port(slow_service)), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Big: " + b"x" * (MAX_HEAD_BYTES + 10))
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b'"headers_too_large"' in answer
    assert requests.get(f"{slow_service.url}/healthz", timeout=10).status_code == 200


def test_pipelined_and_kept_alive_requests_still_work(any_service: RunningService) -> None:
    two = b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n" * 2
    with socket.create_connection(("127.0.0.1", _port(any_service)), timeout=30) as sock:
        sock.sendall(two)
        answer = b""
        while answer.count(b"HTTP/1.1 200") < 2:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    body = b'{"context": {"shopper": {"segment": "pro"}}, "actions": [{"id": "a"}, {"id": "b"}]}'
    with socket.create_connection(("127.0.0.1", _port(any_service)), timeout=30) as sock:
        request = (
            b"POST /v1/rank HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        sock.sendall(request)  # the head first, then the body in two parts
        sock.sendall(body[:10])
        sock.sendall(body[10:])
        answer = b""
        while b'"ranking"' not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_client_that_waits_for_100_continue_gets_it(slow_service: RunningService) -> None:
    """curl sends large bodies only after "100 Continue": the worker says it before buffering them."""
    body = b'{"context": {"shopper": {"segment": "pro"}}, "actions": [{"id": "a"}, {"id": "b"}]}'
    head = (
        b"POST /v1/rank HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", _port(slow_service)), timeout=30) as sock:
        sock.sendall(head)
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = b""
        while b'"ranking"' not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert b"HTTP/1.1 200 " in answer
