"""The running tutorial, watched from every mode (issue 18; docs/tui.md#tutorials).

One :class:`TutorialSession` lives on the app, so a tutorial keeps watching while the user works
in other modes ("reach the Trace screen", "approve the gate on the Dashboard").  The engine owns
the tutorial and the progress (``/v1/tutorials``, core/api/tutorials.py); this module only
observes what the engine cannot see and reports it:

- ``key`` steps: the app hands every key it receives to :meth:`TutorialSession.saw_key`;
- ``mode`` steps: the app reports each mode switch (:meth:`saw_mode`), and a step whose mode is
  already shown when it becomes current completes at once;
- ``palette`` steps: the action's binding id, run from the command palette or by its key
  (:meth:`saw_action`);
- ``cli`` steps with a check and ``state`` steps: the engine checks them (``tutorials.check``)
  against the sandbox; a watcher (an app worker on the event loop, never blocking it) asks once
  a second and at once after each audit event, and answers by message (:class:`TutorialChecked`);
  a ``cli`` step without a check is reported done by :meth:`confirm` (the user says they ran it).

While a tutorial runs, the app works in the tutorial's sandbox tenant (the engine creates it on
start) and goes back to the user's own tenant when they leave it or finish.  Nothing here blocks
the event loop: every engine call runs in a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from textual.message import Message

from core.api import calls
from core.errors import MusubiError

if TYPE_CHECKING:
    from textual.signal import Signal

    from core.api.tutorials import Checked, Progress, StepView, TutorialShown
    from tui.app import MusubiApp

POLL_S = 1.0  # how often an engine-checked step is asked about while it is current
ENGINE_CHECKED = ("state",)  # plus cli steps that carry a check


class TutorialChecked(Message):
    """The engine's answer to a step check, delivered to the app by the watcher."""

    def __init__(self, answer: Checked) -> None:
        super().__init__()
        self.answer = answer


def key_matches(step_key: str, key: str, character: str | None) -> bool:
    """Whether a pressed key (Textual's name and character) is the key a step asks for."""
    from textual.keys import _character_to_key

    wanted = step_key.strip().lower()
    if key == wanted:
        return True
    return character is not None and (character == step_key or _character_to_key(character) == wanted)


def engine_checked(step: StepView) -> bool:
    """A step the engine checks against the sandbox (the watcher polls it)."""
    return step["kind"] in ENGINE_CHECKED or (step["kind"] == "cli" and step["check"] is not None)


def command_text(step: StepView) -> str:
    """The shell command a ``cli`` step asks for, as the user types it."""
    import shlex

    return "musubi " + " ".join(shlex.quote(a) for a in step["command"] or [])


class TutorialSession:
    """The tutorial the user runs (at most one), its progress, and the panel's visibility.

    Changes are announced on :attr:`changed` (a Textual signal owned by the app); the panel on
    each mode screen and the Tutorials screen repaint from it.
    """

    def __init__(self, app: MusubiApp) -> None:
        from textual.signal import Signal

        self.app = app
        self.changed: Signal[str] = Signal(app, "tutorial-changed")
        self.shown: TutorialShown | None = None  # the running tutorial, steps with placeholders filled
        self.progress: Progress | None = None
        self.visible = True  # the panel beside each mode (F9 hides and shows it)
        self.hints: set[str] = set()  # steps whose hint the user asked for
        self.note = ""  # the last check's detail, or what is happening
        self.error: str | None = None  # the last failed call, in words
        self.home_tenant: str | None = None  # the tenant to go back to
        self.busy = False  # a start, skip or reset is on its way
        self.checks = 0  # engine checks answered (tests read it)
        self._reported: set[tuple[str, str]] = set()  # (tutorial, step) completions sent
        self._kick = asyncio.Event()

    # -- what is shown ----------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.shown is not None

    @property
    def step(self) -> StepView | None:
        """The current step (the first neither done nor skipped), or None when done."""
        if self.shown is None or self.progress is None or self.progress["current"] is None:
            return None
        return next((s for s in self.shown["steps"] if s["id"] == self.progress["current"]), None)

    @property
    def step_id(self) -> str | None:
        step = self.step
        return step["id"] if step is not None else None

    @property
    def finished(self) -> bool:
        return self.progress is not None and self.progress["state"] == "done"

    def position(self) -> tuple[int, int]:
        """(1-based index of the current step, number of steps)."""
        if self.shown is None:
            return 0, 0
        ids = [s["id"] for s in self.shown["steps"]]
        cur = self.progress["current"] if self.progress else None
        return (ids.index(cur) + 1 if cur in ids else len(ids)), len(ids)

    def _publish(self, what: str = "step") -> None:
        self.changed.publish(what)

    # -- starting and leaving ---------------------------------------------------------------

    def start(self, tutorial: str) -> None:
        """Start or resume ``tutorial`` (in a worker): sandbox, steps, then into the sandbox tenant."""
        self.app.run_worker(self._start(tutorial), group="tutorial", exclusive=True, exit_on_error=False,
                            description="Start tutorial")

    async def _start(self, tutorial: str, reset: bool = False) -> None:
        api = self.app.ctx.api
        self.busy, self.error = True, None
        self._reported.clear()  # a restarted tutorial reports its steps again
        self._publish("busy")
        try:
            if reset:
                await api.call(calls.tutorial_reset(tutorial))
            started = await api.call(calls.tutorial_start(tutorial))
            shown = await api.call(calls.tutorial_show(tutorial))
        except MusubiError as exc:
            self.busy, self.error = False, exc.message
            self._failed(exc, "Tutorial")
            return
        if self.home_tenant is None or not self._is_sandbox(self.app.ctx.tenant):
            self.home_tenant = self.app.ctx.tenant
        self.shown, self.progress, self.busy = shown, started["progress"], False
        self.hints, self.visible = set(), True
        now = started["completed_now"]
        self.note = f"Already done: {', '.join(now)}." if now else ("Resumed where you left off." if
                                                                      started["resumed"] else "")
        self.app.action_switch_tenant_to(started["sandbox"]["tenant"], remember=False)
        self._publish("started")
        self._step_began()
        self.app.run_worker(self._watch(), group="tutorial-watch", exclusive=True, exit_on_error=False,
                            description="Tutorial check")

    def _is_sandbox(self, tenant: str) -> bool:
        return tenant.startswith("tut-")

    def leave(self) -> None:
        """Stop watching (the progress stays in the engine: starting again resumes) and go home."""
        if self.shown is None:
            return
        self.shown, self.progress, self.note = None, None, ""
        self.app.workers.cancel_group(self.app, "tutorial-watch")
        self._go_home()
        self._publish("left")

    def _go_home(self) -> None:
        if self.home_tenant and self.app.ctx.tenant != self.home_tenant:
            self.app.action_switch_tenant_to(self.home_tenant, remember=False)

    def restart(self) -> None:
        """Clean the sandbox, forget the progress and start over (a fresh sandbox tenant)."""
        if self.shown is None:
            return
        self.app.run_worker(self._start(self.shown["id"], reset=True), group="tutorial", exclusive=True,
                            exit_on_error=False, description="Restart tutorial")

    def skip(self) -> None:
        """Skip the current step (counted as not done)."""
        step = self.step
        if self.shown is not None and step is not None:
            self._send(calls.tutorial_skip(self.shown["id"], step["id"]), "Skip step")

    def confirm(self) -> None:
        """The user ran the command of a ``cli`` step the engine cannot check: report it done."""
        step = self.step
        if step is not None and step["kind"] == "cli" and not engine_checked(step):
            self._complete(step)

    def show_hint(self) -> None:
        step = self.step
        if step is not None:
            self.hints.add(step["id"])
            self._publish("hint")

    def toggle(self) -> None:
        self.visible = not self.visible
        self._publish("visible")

    # -- observations -------------------------------------------------------------------------

    def saw_key(self, key: str, character: str | None, binding_id: str | None) -> None:
        """A key the app received (and the id of the binding it ran, if any)."""
        step = self.step
        if step is None:
            return
        if step["kind"] == "key" and step["key"] and key_matches(step["key"], key, character):
            self._complete(step)
        elif binding_id:
            self.saw_action(binding_id)

    def saw_mode(self, mode: str) -> None:
        step = self.step
        if step is not None and step["kind"] == "mode" and step["mode"] == mode:
            self._complete(step)

    def saw_action(self, binding_id: str) -> None:
        step = self.step
        if step is not None and step["kind"] == "palette" and step["action"] == binding_id:
            self._complete(step)

    def engine_event(self, ev: dict[str, Any]) -> None:
        """Something happened in the engine: an engine-checked step is asked about now, not in a second."""
        if ev.get("type") == "audit" or str(ev.get("type", "")).startswith(("job.", "run.")):
            self._kick.set()

    def _step_began(self) -> None:
        """A new current step: one already satisfied (its mode is shown) completes at once."""
        step = self.step
        if step is not None and step["kind"] == "mode" and self.app.current_mode == step["mode"]:
            self._complete(step)
        self._kick.set()

    # -- talking to the engine ----------------------------------------------------------------

    def _complete(self, step: StepView) -> None:
        assert self.shown is not None
        key = (self.shown["id"], step["id"])
        if key in self._reported:
            return  # already on its way: a key pressed twice reports once
        self._reported.add(key)
        self._send(calls.tutorial_complete(self.shown["id"], step["id"]), "Tutorial step", key)

    def _send(self, call: Any, title: str, reported: tuple[str, str] | None = None) -> None:
        self.app.run_worker(self._apply_call(call, title, reported), group="tutorial-step", exit_on_error=False,
                            description=title)

    async def _apply_call(self, call: Any, title: str, reported: tuple[str, str] | None) -> None:
        try:
            answer = await self.app.ctx.api.call(call)
        except MusubiError as exc:
            self._reported.discard(reported or ("", ""))  # not recorded: the next try may report it again
            self.error = exc.message
            self._failed(exc, title)
            return
        self.error = None
        self.note = ""
        self.set_progress(answer["progress"])

    def set_progress(self, progress: Progress) -> None:
        """A newer progress from the engine: move on, and finish when the tutorial is done."""
        if self.shown is None or progress["tutorial"] != self.shown["id"]:
            return
        before = self.progress["current"] if self.progress else None
        self.progress = progress
        self.shown = {**self.shown, "steps": [
            {**s, "state": "done" if s["id"] in progress["done"] else "skipped" if s["id"] in progress["skipped"]
             else "todo"} for s in self.shown["steps"]]}
        if progress["state"] == "done":
            self.note = "All steps done. The sandbox was cleaned up."
            self.app.workers.cancel_group(self.app, "tutorial-watch")
            self._go_home()
            self._publish("done")
            return
        self._publish("step")
        if progress["current"] != before:
            self._step_began()

    def checked(self, answer: Checked) -> None:
        """The watcher's answer (on the app's thread, by message)."""
        self.checks += 1
        step = self.step
        if step is not None and answer["step"] == step["id"]:
            self.note = "" if answer["ok"] else answer["detail"]
        self.set_progress(answer["progress"])

    async def _watch(self) -> None:
        """Ask the engine about the current engine-checked step, one question at a time, until done.

        The next question is asked only after the previous answer came (a slow link never piles
        them up); an audit event asks at once.
        """
        while self.shown is not None and not self.finished:
            step = self.step
            if step is not None and engine_checked(step) and not self.busy:
                try:
                    answer = await self.app.ctx.api.call(calls.tutorial_check(self.shown["id"], step["id"]))
                except MusubiError as exc:
                    if self.error != exc.message:  # the same failure once, not every second
                        self.error = exc.message
                        self._failed(exc, "Tutorial check", notify=False)
                        self._publish("error")
                else:
                    self.error = None
                    self.app.post_message(TutorialChecked(answer))
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=POLL_S)

    def _failed(self, exc: MusubiError, title: str, notify: bool = True) -> None:
        failure = self.app.ctx.failures.add("TutorialSession", title, exc)
        if notify:
            self.app.notify(failure.message, title=title, severity="error", timeout=8)
        self._publish("error")


def palette_commands(app: MusubiApp) -> list[tuple[str, str, str, Any]]:
    """(title, help, binding id, run) of the tutorial's palette entries: F9 always, the rest while one runs."""
    from tui.widgets.tutorial_panel import TutorialDock

    session = app.tutorial
    out: list[tuple[str, str, str, Any]] = [
        ("Tutorial: panel", "F9: into the running tutorial's panel and out of it (hides it); none running: mode 5",
         "tutorial_panel", app.action_tutorial_panel)]
    if not session.active:
        return out

    def on_dock(action: str) -> Any:
        def run() -> None:
            docks = app.screen.query(TutorialDock)
            if docks:
                getattr(docks.first(), f"action_{action}")()

        return run

    out += [
        ("Tutorial: hint", "h in the tutorial panel: show the current step's hint", "tutorial_hint", session.show_hint),
        ("Tutorial: skip step", "s in the tutorial panel: skip the current step (counted as not done)",
         "tutorial_skip", session.skip),
        ("Tutorial: restart", "r in the tutorial panel: clean the sandbox and start over", "tutorial_restart",
         session.restart),
        ("Tutorial: leave", "x in the tutorial panel: stop watching; your progress is kept (enter in mode 5 resumes)",
         "tutorial_leave", on_dock("leave")),
    ]
    step = session.step
    if step is not None and step["kind"] == "cli":
        out.append(("Tutorial: copy command", "c in the tutorial panel: copy the step's command (OSC 52)",
                    "tutorial_copy", on_dock("copy")))
        if not engine_checked(step):
            out.append(("Tutorial: I ran it", "d in the tutorial panel: the command ran; go to the next step",
                        "tutorial_ran", session.confirm))
    return out
