"""Bytes to text for indexing, never raising on bad bytes or unknown encodings (light).

The rule, in order:

1. a UTF-8 BOM: UTF-8 without it; a UTF-16 BOM (LE or BE): UTF-16 (undecodable units replaced);
2. a NUL byte in the first 8 KiB (git's own test): binary, ``None``;
3. valid UTF-8: as is;
4. UTF-8 with at most one bad byte in a thousand (a stray Latin-1 byte in a UTF-8 file):
   UTF-8 with U+FFFD for the bad bytes, so the rest of the file's non-ASCII text survives;
5. otherwise a legacy 8-bit file: Latin-1, which maps every byte (code is mostly ASCII,
   so identifiers and structure survive; accented comments may come out wrong).

Line ends are left alone here; the chunker treats ``\\r\\n``, ``\\r`` and ``\\n`` alike.
"""

from __future__ import annotations

import codecs
import os

SNIFF_BYTES = 8192
_BAD_BYTES_PER_MILLE = 1


def is_binary(data: bytes) -> bool:
    """Git's rule: a NUL byte in the first 8 KiB means binary (UTF-16 is caught by its BOM first)."""
    return data.find(b"\0", 0, SNIFF_BYTES) >= 0


def decode_bytes(data: bytes) -> str | None:
    """The text of a file's bytes by the rule in the module docstring, or ``None`` if binary."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    if is_binary(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    if text.count("\ufffd") * 1000 <= max(1, len(data)) * _BAD_BYTES_PER_MILLE:
        return text
    return data.decode("latin-1")


def read_text(path: str | os.PathLike[str]) -> str | None:
    """The decoded text of the file at ``path``, or ``None`` if it is unreadable or binary. Never raises."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    return decode_bytes(data)
