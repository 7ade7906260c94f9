"""The unit of code search: a contiguous run of lines of one file (light)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of lines of one file, with what it defines; the signature of a long header is cut (see chunking)."""

    path: str        # POSIX path relative to the project root
    start_line: int  # 1-based, inclusive
    end_line: int    # 1-based, inclusive
    language: str    # "python", "markdown", "typescript", "go", ... or "text"
    kind: str        # "function" | "method" | "class" | "module" | "section" | "window"
    symbol: str      # qualified name "Class.method" / "outer.inner"; markdown: heading path "Intro > Setup"; "" if none
    signature: str   # the def/class line(s) (decorators excluded) or the heading line; repeated on every part; "" if none  # noqa: E501
    text: str        # the chunk's own source lines (exactly lines start_line..end_line)
    part: int = 0    # 0: whole; 1..n: parts of a body split to fit the model window

    @property
    def hash(self) -> str:
        """SHA-256 hex of (language, symbol, signature, text): path-free, so moved code is free.

        Fields are joined by NUL (which never occurs in decoded source text) so that
        moving characters from one field to the next changes the hash.
        """
        h = hashlib.sha256()
        for field in (self.language, self.symbol, self.signature, self.text):
            h.update(field.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        return h.hexdigest()
