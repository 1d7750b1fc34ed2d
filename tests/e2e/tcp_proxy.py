"""A TCP relay the tests can cut: the network between xsell and a real PostgreSQL server going away.

Every connection through the relay is forwarded byte for byte to the real server.
`cut()` drops every open connection (both ends closed, as a failed link or a
restarted server does) and answers new ones by closing them at once; `restore()`
forwards again. Nothing here speaks PostgreSQL's protocol: the server, the driver
and xsell's handling of a lost database are all real.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

__all__ = ["TcpProxy"]


class TcpProxy:
    """Listen on 127.0.0.1 (a free port) and forward to `target`; cut and restore on demand."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self.refused = 0  # connections answered by closing them while cut
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def cut(self) -> None:
        """Drop every open connection; refuse new ones until restore()."""
        with self._lock:
            self._cut = True
            found, self._open = self._open, set()
        for sock in found:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                self.refused += 1
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                cut = self._cut  # cut while connecting: this link never opens
                if not cut:
                    self._open.update((client, server))
            if cut:
                self.refused += 1
                _close(client)
                _close(server)
                continue
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        peer = {client: server, server: client}
        with selectors.DefaultSelector() as selector:
            for sock in peer:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select(timeout=1.0):
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(65536)
                        if not data:
                            return
                        peer[source].sendall(data)
                    with self._lock:
                        if client not in self._open:  # cut meanwhile
                            return
            except (OSError, ValueError):  # closed under us by cut()
                return
            finally:
                with self._lock:
                    self._open.discard(client)
                    self._open.discard(server)
                _close(client)
                _close(server)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
