"""One worker contract for the screens: no failure of a background engine call goes unseen.

Screens run engine calls in Textual workers with ``exit_on_error=False`` (a refused request
must not end the app).  Without more, an exception the worker does not catch itself only
sets the worker's state to ERROR, and nobody is told.  :class:`WorkerContract` is the mixin
every mode screen (and the tenant picker) carries: it handles ``Worker.StateChanged`` and
turns every failed worker — a typed :class:`~core.errors.MusubiError` or any other
exception — into an error notification and an entry in the failure log that F12 shows.
Failures a worker catches itself (to show them in place) go through :meth:`report_failure`
so they reach the same log.  Widgets that run their own workers (the Admin panes) carry the
same mixin: Textual tells a worker's state only to the node that started it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.worker import Worker, WorkerState

from tui.context import app_ctx


class WorkerContract:
    """Mixin for screens whose workers call the engine: every failure is shown and logged.

    ``WORKER_TITLES`` maps a worker group to the notification title (what failed, in the
    user's words); a group without one is titled by the worker's description or group.
    Must come before the Textual base class in the bases, so its handler is the one found.
    """

    WORKER_TITLES: ClassVar[dict[str, str]] = {}

    def report_failure(
        self, exc: BaseException, title: str, *, notify: bool = True, timeout: float = 10, where: str | None = None
    ) -> None:
        """Log ``exc`` for F12 and (unless ``notify`` is false) show it as an error notification.

        ``where`` names the failed call in the log (default: this screen's or widget's class).
        Call it on the app's thread; a thread worker goes through ``app.call_from_thread``.
        """
        node: Any = self
        failure = app_ctx(node).failures.add(where or type(node).__name__, title, exc)
        node.log.error(failure.line())
        if notify:
            node.notify(failure.message, title=title, severity="error", timeout=timeout)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.ERROR or worker.error is None:
            return
        self.report_failure(worker.error, self.failure_title(worker, worker.error), where=self.failure_where(worker))
        self.worker_failed(worker)

    def failure_title(self, worker: Worker[Any], exc: BaseException) -> str:
        """The notification title of a failed worker: what failed, in the user's words."""
        return self.WORKER_TITLES.get(worker.group) or worker.description or worker.group

    def failure_where(self, worker: Worker[Any]) -> str:
        """Where the F12 log says the failure happened (default: the class of this screen or widget)."""
        return type(self).__name__

    def worker_failed(self, worker: Worker[Any]) -> None:
        """Called after a failed worker was reported; a screen left waiting on it can recover here."""

