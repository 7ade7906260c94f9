"""What a context pack needs around :func:`core.rag.context.pack`: the hits' current lines, a model's counter (light).

Search answers carry a snippet (the first lines); a pack needs each chunk's whole text, which
this module reads from the project's files as they are now (a file changed since it was indexed
gives its current lines; one that is gone or moved outside the project gives none, and the
hit is left out as ``unavailable``).  Reads stay inside the project root (symlinks resolved).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.rag.context import ContextPack, Counter, pack

if TYPE_CHECKING:
    from core.models.registry import ModelSpec


def counter_for(spec: ModelSpec) -> Counter:
    """Token count of text for ``spec``'s tokenizer: exact for o200k/cl100k, the calibrated estimate otherwise."""
    from core.models.tokens import count_tokens

    fam = spec.tokenizer
    return lambda text: count_tokens(text, fam).tokens


def read_lines(root: str | Path, paths: Sequence[str]) -> dict[str, list[str]]:
    """``path -> lines`` for each readable file under ``root`` (unreadable, outside or missing: left out)."""
    from core.paths import is_within
    from core.rag.chunk_core import split_lines
    from core.rag.textio import read_text

    base = os.path.realpath(root)
    out: dict[str, list[str]] = {}
    for rel in dict.fromkeys(paths):
        real = os.path.realpath(os.path.join(base, rel))
        if not is_within(real, base):
            continue
        text = read_text(real)
        if text is not None:
            out[rel] = split_lines(text)
    return out


def pack_from_files(root: str | Path, hits: Sequence[Mapping[str, Any]], *, budget: int, model: str,
                    count: Counter, min_score: float | None = None) -> ContextPack:
    """:func:`pack` over ``hits`` with their lines read from the files under ``root`` (blocking: run in a thread)."""
    files = read_lines(root, [str(h["path"]) for h in hits])
    with_text = [{**h, "text": None} for h in hits]  # no stale snippet: the file's lines, or unavailable
    return pack(with_text, budget=budget, model=model, count=count, min_score=min_score, files=files)
