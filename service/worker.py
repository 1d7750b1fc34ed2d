"""The gunicorn worker `xsell serve` runs: a request reaches a thread only once it has arrived.

gunicorn's sync worker, and its gthread worker once a first byte is in, read a
request with blocking calls: a client that sends one header byte a second holds the
worker (or thread) for as long as it likes, and a handful of such sockets stopped
every health probe (issue #12). This worker is gthread with one change: until a
connection's request head and body are complete, its bytes are read without blocking
by the worker's poller, so a slow client costs a buffer and a file descriptor, not a
thread. A request that is not complete within ``ARRIVAL_SECONDS`` is dropped, one
whose head outgrows ``MAX_HEAD_BYTES`` gets 431. Measurements and limits:
docs/security.md ("Slow clients").
"""

from __future__ import annotations

import contextlib
import re
import selectors
import socket
import time
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from service.settings import Settings

__all__ = ["ARRIVAL_SECONDS", "MAX_HEAD_BYTES", "Arrival", "ArrivedRequestWorker"]

ARRIVAL_SECONDS = 15.0  # a whole request (head and body) must arrive within this
REFUSED_LINGER_SECONDS = 2.0  # how long a refused request's remaining bytes are read and dropped
MAX_HEAD_BYTES = 64 * 1024  # xsell's clients send a few hundred bytes of headers
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:[^\r\n]*chunked", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue[ \t]*\r\n", re.IGNORECASE)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TOO_LARGE_BODY = b'{"error": "headers_too_large", "message": "the request head is too large"}'
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n" + (
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(_TOO_LARGE_BODY) + _TOO_LARGE_BODY
)


class Arrival:
    """The bytes of one request so far, and what they still lack."""

    __slots__ = (
        "data",
        "deadline",
        "max_body_bytes",
        "head_end",
        "need",
        "chunked",
        "awaits_continue",
        "refused",
    )

    def __init__(self, deadline: float, max_body_bytes: int):
        """`max_body_bytes`: a larger body is not waited for; the app refuses it unread (413)."""
        self.data = bytearray()
        self.deadline = deadline
        self.max_body_bytes = max_body_bytes
        self.head_end = -1  # index just past the blank line, once seen
        self.need = 0  # total bytes of a body of known length
        self.chunked = False
        self.awaits_continue = False  # the client waits for "100 Continue" before its body
        self.refused = False  # answered 431; what else it sends is read and dropped, then closed

    def add(self, data: bytes) -> bool | None:
        """Take more bytes; say whether the request is complete (None: refuse it, head too large)."""
        scanned = len(self.data)
        self.data += data
        if self.head_end < 0:
            end = self.data.find(b"\r\n\r\n", max(0, scanned - 3))
            if end < 0 or end > MAX_HEAD_BYTES:
                return None if len(self.data) > MAX_HEAD_BYTES else False
            self.head_end = end + 4
            head = bytes(self.data[: end + 2])
            self.chunked = _CHUNKED.search(head) is not None
            self.awaits_continue = _EXPECT_CONTINUE.search(head) is not None
            found = _CONTENT_LENGTH.search(head)
            length = int(found.group(1)) if found else 0
            self.need = self.head_end + (0 if length > self.max_body_bytes else length)
        body = len(self.data) - self.head_end
        if self.chunked:
            # The last chunk is "0" CRLF, then trailers (none from xsell's clients), then CRLF.
            return self.data.endswith(b"0\r\n\r\n") or body > self.max_body_bytes
        return len(self.data) >= self.need


class ArrivedRequestWorker(ThreadWorker):
    """gthread, except that threads only ever see requests that have fully arrived."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.arriving: dict[TConn, Arrival] = {}
        self.max_body_bytes = Settings().max_body_bytes  # the app's own limit (XSELL_MAX_BODY_BYTES)
        self.inline = False  # answering a request on the poller's thread (threads = 1)
        self.next_check = 0.0  # when murder_pending next looks for late arrivals

    def enqueue_req(self, conn: TConn) -> None:
        """Hand `conn` to a thread once its request is complete; until then the poller reads it."""
        if self.cfg.is_ssl or conn.is_http2 or negotiation.prior_knowledge_allowed(self.cfg, conn.client):
            super().enqueue_req(conn)  # TLS ends at the proxy in front (docs/security.md)
            return
        # Bytes read ahead behind a kept-alive request are the start of the next one.
        ahead = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        arrival = Arrival(time.monotonic() + ARRIVAL_SECONDS, self.max_body_bytes)
        verdict = arrival.add(ahead)
        if verdict:
            self._dispatch(conn, arrival)
            return
        conn.sock.setblocking(False)
        self.arriving[conn] = arrival
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        if verdict is None:
            self._refuse(conn, arrival)
        else:
            self._on_readable(conn, conn.sock)  # usually the request is there already: no poll round

    def _on_readable(self, conn: TConn, _sock: object) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._forget(conn)
            self._close(conn)
            return
        arrival = self.arriving[conn]
        if arrival.refused:
            return  # dropped: only the end of the stream (or the deadline) matters now
        verdict = arrival.add(data)
        if verdict is False:
            if arrival.awaits_continue and arrival.head_end >= 0:
                # Without it curl waits a second before sending the body. gunicorn may send
                # a second one later: clients take any number of 1xx answers (RFC 9110 15.2).
                arrival.awaits_continue = False
                with contextlib.suppress(OSError):
                    conn.sock.send(_CONTINUE)
            return
        if verdict is None:
            self._refuse(conn, arrival)
        else:
            self._forget(conn)
            self._dispatch(conn, arrival)

    def _dispatch(self, conn: TConn, arrival: Arrival) -> None:
        conn.data_ready = True  # skip gthread's own wait for a first byte
        conn.init()  # creates the HTTP/1 parser (no I/O without TLS)
        conn.sock.setblocking(True)
        conn.parser.unreader.unread(bytes(arrival.data))
        if self.cfg.threads > 1:
            super().enqueue_req(conn)
        elif self.inline:
            # A pipelined request behind the one being answered: after it, not inside it.
            self.method_queue.defer(self._dispatch_inline, conn)
        else:
            self._dispatch_inline(conn)

    def _dispatch_inline(self, conn: TConn) -> None:
        """With one thread, answer here: the request is all in memory, so like sync, minus its hole.

        Handing it to a pool of one would only add two thread switches per request.
        """
        self.inline = True
        try:
            done: Future[Any] = Future()
            done.set_result(self.handle(conn))
            self.finish_request(conn, done)
        finally:
            self.inline = False

    def _refuse(self, conn: TConn, arrival: Arrival) -> None:
        """Answer 431 without blocking, then read and drop the rest until the client closes.

        Closing with unread bytes would reset the connection and could lose the answer.
        """
        arrival.refused = True
        arrival.data = bytearray()
        arrival.deadline = min(arrival.deadline, time.monotonic() + REFUSED_LINGER_SECONDS)
        with contextlib.suppress(OSError):
            conn.sock.send(_TOO_LARGE)  # small enough for any send buffer; else the client is gone
            conn.sock.shutdown(socket.SHUT_WR)

    def _forget(self, conn: TConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.arriving.pop(conn, None)

    def _close(self, conn: TConn) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also drop requests that did not arrive in time, or all of them once stopping.

        gthread calls this after every round of events; the arrivals are looked over at
        most a few times a second, so a busy worker does not walk them per request.
        """
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_check and self.alive:
            return
        self.next_check = now + 0.25
        late = [c for c, a in self.arriving.items() if a.deadline <= now or not self.alive]
        for conn in late:
            self._forget(conn)
            self._close(conn)
