"""The stuck detector: a step whose model keeps answering the same, or flips between two answers.

Pure: the run context feeds it every completed output of a step (replayed ones too, so a resumed
step judges exactly what the first attempt saw) and raises ``RunStop(code="stuck")`` when it
says so.  Outputs are compared after collapsing whitespace, so a trailing newline does not hide
a loop.
"""

from __future__ import annotations

import hashlib
import re

_WS = re.compile(r"\s+")


def _fingerprint(text: str) -> str:
    return hashlib.sha256(_WS.sub(" ", text).strip().encode("utf-8")).hexdigest()


class StuckDetector:
    """Per step: ``repeat`` equal outputs in a row, or ``A B A B`` (two outputs alternating)."""

    def __init__(self, repeat: int = 2, alternations: int = 2) -> None:
        self.repeat = max(2, repeat)
        self.alternations = max(2, alternations)
        self._seen: dict[str, list[str]] = {}

    def observe(self, path: str, text: str) -> str | None:
        """Add one output of step ``path``; the reason the step is stuck, or None."""
        seq = self._seen.setdefault(path, [])
        seq.append(_fingerprint(text))
        n = self.repeat
        if len(seq) >= n and len(set(seq[-n:])) == 1:
            return f"stuck: the model gave the same output {n} times in a row in step {path}"
        k = 2 * self.alternations
        if len(seq) >= k:
            tail = seq[-k:]
            a, b = tail[0], tail[1]
            if a != b and all(x == (a if i % 2 == 0 else b) for i, x in enumerate(tail)):
                return (f"stuck: the model alternated between two outputs {self.alternations} times in step {path}")
        return None
