"""The embedding worker's wire format (light): length-prefixed msgspec msgpack frames over a pipe.

Each frame is a 4-byte big-endian length followed by that many bytes of msgpack encoding one map.
Requests are ``{"id": int, "op": str, ...arguments}``; answers ``{"id": int, "ok": true, "result": {...}}``
or ``{"id": int, "ok": false, "error": {"code": str, "message": str, ...}}``.  Vectors and ids travel
as raw bytes (float32 / int64, native byte order: both ends run on the same machine), so a batch of
embeddings costs one copy, not a list of Python floats.

Why length-prefixed msgpack: binary-safe (raw vector bytes, any text), framing survives a body that
does not decode (the next frame still starts at a known offset), and msgspec decodes faster than json.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

MAX_FRAME = 256 * 1024 * 1024
"""Largest frame either side accepts: a 100k-row batch of 384-d vectors is ~150 MB."""
HEADER = struct.Struct(">I")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(dict[str, Any])


class FrameError(ValueError):
    """A frame is too large or its body is not a msgpack map."""


def encode(message: dict[str, Any]) -> bytes:
    """Header plus body of one frame."""
    body = _encoder.encode(message)
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes is larger than the limit of {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    """The body length announced by a 4-byte header; :class:`FrameError` when over :data:`MAX_FRAME`."""
    (n,) = HEADER.unpack(header)
    if n > MAX_FRAME:
        raise FrameError(f"frame announces {n} bytes, more than the limit of {MAX_FRAME}")
    return int(n)


def decode(body: bytes) -> dict[str, Any]:
    """The map in one frame body; :class:`FrameError` when it is not one."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise FrameError(f"frame body is not a msgpack map: {exc}") from None
