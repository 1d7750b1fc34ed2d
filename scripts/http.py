"""A small keep-alive JSON client over http.client (no extra runtime dependency)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The service answered with an error status."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class JsonClient:
    """POST and GET JSON against one base URL, reusing the connection."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, json.dumps(body).encode())

    def get(self, path: str) -> Any:
        return self._request("GET", path, None)

    def _request(self, method: str, path: str, payload: bytes | None) -> Any:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            try:
                headers = {"Content-Type": "application/json"} if payload is not None else {}
                self._conn.request(method, path, body=payload, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException):
                # The server may close an idle keep-alive connection; retry once on a new one.
                self.close()
                if attempt == 2:
                    raise
                continue
            body = json.loads(data) if data else None
            if response.status >= 400:
                raise HttpError(response.status, body)
            return body
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
