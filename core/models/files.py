"""Reading the files a cost estimate covers, and counting them with a cache.

The engine reads the paths the client names (it runs as the same OS user as the
CLI), so large trees never travel over the socket.  Files are read as UTF-8
(invalid bytes replaced, as a provider would receive them after decoding), or as
UTF-16/UTF-32 when they start with that encoding's byte-order mark; binary files
(a NUL byte in the first 8 KB of a file without such a mark), directories and
unreadable paths are skipped and reported.  Limits keep one request bounded.

Counts are cached by a hash of the file's bytes, which the engine reads anyway:
a file rewritten with the same size and a restored mtime (``rsync -t``,
``cp -p``, tar) gets a new count, which a (path, size, mtime) key could not see.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import BadRequest
from core.models.estimate import Document
from core.models.tokens import CountCache, count_exact

MAX_FILES = 20_000
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass
class FileSet:
    """Documents read from disk, what was skipped and why, and their stat keys for the cache."""

    docs: list[Document] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    keys: dict[int, tuple[str, int, str]] = field(default_factory=dict)  # id(doc) -> (path, size, blake2b of bytes)


# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode(data: bytes) -> str | None:
    """The text of a file's bytes: by its byte-order mark, else UTF-8; None when it looks binary."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(enc, errors="replace")
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def read_files(paths: Sequence[str]) -> FileSet:
    """Read ``paths`` (absolute) within the limits; skip what cannot be counted."""
    if len(paths) > MAX_FILES:
        raise BadRequest(f"{len(paths)} files is more than one estimate takes ({MAX_FILES}); narrow the --glob.", field="paths")
    fs = FileSet()
    total = 0
    for raw in paths:
        if not isinstance(raw, str) or not raw:
            raise BadRequest("paths must be a list of absolute file paths.", field="paths")
        if not os.path.isabs(raw):
            raise BadRequest(f"path {raw!r} must be absolute (the CLI resolves relative paths).", field="paths")
        path = os.path.normpath(raw)
        try:
            st = os.stat(path)
        except OSError as exc:
            fs.skipped.append({"name": path, "reason": exc.strerror or "cannot stat"})
            continue
        if not os.path.isfile(path):
            fs.skipped.append({"name": path, "reason": "not a regular file (give files, or use --glob for a tree)"})
            continue
        if st.st_size > MAX_FILE_BYTES:
            fs.skipped.append({"name": path, "reason": f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"})
            continue
        if total + st.st_size > MAX_TOTAL_BYTES:
            raise BadRequest(f"the files add up to more than {MAX_TOTAL_BYTES // (1024 * 1024)} MB; estimate a smaller set.",
                             field="paths")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            fs.skipped.append({"name": path, "reason": exc.strerror or "cannot read"})
            continue
        text = decode(data)
        if text is None:
            fs.skipped.append({"name": path, "reason": "binary file"})
            continue
        total += len(data)
        doc = Document(path, text, len(data))
        fs.docs.append(doc)
        fs.keys[id(doc)] = (path, len(data), hashlib.blake2b(data, digest_size=16).hexdigest())
    return fs


def text_documents(texts: Any) -> list[Document]:
    """``[{"name": ..., "text": ...}]`` from a request body as documents."""
    if texts in (None, []):
        return []
    if not isinstance(texts, list):
        raise BadRequest('texts must be a list of {"name": ..., "text": ...} objects.', field="texts")
    docs = []
    for i, t in enumerate(texts):
        if not isinstance(t, dict) or not isinstance(t.get("text"), str):
            raise BadRequest(f'texts[{i}] needs a "text" string.', field="texts")
        name = t.get("name") or f"text-{i + 1}"
        docs.append(Document(str(name), t["text"], len(t["text"].encode("utf-8"))))
    return docs


class CachedCounter:
    """A counter for :func:`core.models.estimate.estimate` that reuses counts of unchanged files."""

    def __init__(self, cache: CountCache, keys: dict[int, tuple[str, int, str]]) -> None:
        self.cache = cache
        self.keys = keys

    def __call__(self, doc: Document, enc: str) -> int:
        k = self.keys.get(id(doc))
        if k is None:
            return count_exact(doc.text, enc)
        key = (*k, enc)
        n = self.cache.get(key)
        if n is None:
            n = count_exact(doc.text, enc)
            self.cache.put(key, n)
        return n
