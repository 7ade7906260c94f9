"""The TLS context the servers of ``musubi serve`` use when given ``--cert`` (and ``--key``)."""

from __future__ import annotations

import ssl
from pathlib import Path

from core.errors import BadRequest


def server_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """None without a certificate; else TLS 1.2+ with ``cert`` and ``key`` (a clear error when unreadable)."""
    if not cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise BadRequest(f"cannot load the TLS certificate {cert} (key {key}): {exc}.") from None
    return ctx
