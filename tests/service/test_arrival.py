"""When a request has fully arrived (the worker hands it to a thread only then)."""

from __future__ import annotations

import pytest

from service.worker import MAX_HEAD_BYTES, Arrival

MAX_BODY = 256 * 1024


def _feed(*pieces: bytes) -> list[bool | None]:
    arrival = Arrival(deadline=0.0, max_body_bytes=MAX_BODY)
    return [arrival.add(piece) for piece in pieces]


def test_a_head_arrives_when_its_blank_line_does_even_split_across_reads() -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n"
    assert _feed(head) == [True]
    assert _feed(head[:-3], head[-3:-1], head[-1:]) == [False, False, True]
    assert _feed(*[head[i : i + 1] for i in range(len(head))])[-2:] == [False, True]


@pytest.mark.parametrize("name", [b"Content-Length", b"content-length", b"CONTENT-LENGTH"])
def test_a_body_of_known_length_must_arrive_whole(name: bytes) -> None:
    head = b"POST /v1/rank HTTP/1.1\r\nHost: shop\r\n" + name + b": 10\r\n\r\n"
    assert _feed(head, b"12345", b"6789", b"0") == [False, False, False, True]
    assert _feed(head + b"1234567890") == [True]


def test_a_chunked_body_must_arrive_to_its_last_chunk() -> None:
    head = b"POST /v1/rank HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert _feed(head, b"5\r\nhello\r\n", b"0\r\n", b"\r\n") == [False, False, False, True]


def test_a_body_too_large_to_buffer_goes_straight_to_the_app() -> None:
    """The app answers 413 from the Content-Length without reading the body."""
    head = b"POST /v1/rank HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    assert _feed(head) == [True]


def test_a_head_that_outgrows_the_limit_is_refused() -> None:
    start = b"GET / HTTP/1.1\r\nX-Big: "
    assert _feed(start, b"x" * MAX_HEAD_BYTES) == [False, None]
    assert _feed(start + b"x" * MAX_HEAD_BYTES + b"\r\n\r\n") == [None]
