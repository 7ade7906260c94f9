"""The failure log: every background call that failed in this app run, newest last (F12 lists it)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from core.errors import MusubiError

#: How many failures F12 keeps (the newest last); older ones drop off.
FAILURE_LOG_SIZE = 20


@dataclass(frozen=True)
class Failure:
    """One failed background call, as the F12 debug info lists it."""

    at: datetime
    where: str
    title: str
    kind: str
    message: str

    def line(self) -> str:
        # An untyped error's message already starts with its class name; a typed one's does not.
        detail = self.message if self.message.startswith(self.kind) else f"{self.message} ({self.kind})"
        return f"{self.at:%H:%M:%S} {self.where}: {self.title} — {detail}"


class FailureLog:
    """The newest :data:`FAILURE_LOG_SIZE` failures of this app run."""

    def __init__(self, size: int = FAILURE_LOG_SIZE) -> None:
        self.entries: deque[Failure] = deque(maxlen=size)

    def add(self, where: str, title: str, exc: BaseException) -> Failure:
        failure = Failure(datetime.now(UTC), where, title, type(exc).__name__, failure_message(exc))
        self.entries.append(failure)
        return failure

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) rows for the debug info; one row saying "none" when nothing failed."""
        if not self.entries:
            return [("failures", "none in this run")]
        return [(f"failure {i}", f.line()) for i, f in enumerate(reversed(self.entries), 1)]


def failure_message(exc: BaseException) -> str:
    """What the user reads: a typed error's own message, otherwise the exception's name and text."""
    if isinstance(exc, MusubiError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
