"""HTTP over the engine's Unix socket (``http.client``, stdlib): the connection and the health probe."""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over the engine's Unix socket.

    :meth:`connect` may be called on its own before ``request``: a refused connection
    (nothing listening, socket file missing) then fails before a byte is sent, which is
    the one failure after which a request may safely be tried again.
    """

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


def ping(socket_path: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """``/v1/health`` of the engine listening on ``socket_path``, or None when nothing answers."""
    if not os.path.exists(socket_path):
        return None
    conn = UnixHTTPConnection(socket_path, timeout)
    try:
        conn.request("GET", "/v1/health")
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status != 200:
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else None
    except (OSError, http.client.HTTPException, json.JSONDecodeError):
        return None
    finally:
        conn.close()
