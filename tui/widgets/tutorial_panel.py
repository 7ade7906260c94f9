"""The tutorial panel: the current step beside whatever mode the user works in (issue 18).

Every mode screen composes one :class:`TutorialDock` at the right of its body.  It is empty and
hidden until a tutorial runs (so start-up loads no Markdown); then it shows the running
tutorial's current step: its title, its Markdown body, what completes it (a key, a mode, a
palette action, a command to run, engine state), the hint when asked for, and the keys.  When
the tutorial is done it says so, clearly, until the user closes it.

Keys (binding ids, remappable): F9 (app: ``tutorial_panel``) shows the panel and puts the focus
in it, and hides it from there; in the panel **h** hint, **s** skip, **r** restart, **x** leave,
**c** copy the step's command, **d** "I ran it" for a command the engine cannot check, escape back
to the screen.  The session (:mod:`tui.tutorial`) is shared by every screen's dock.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from tui.tutorial import command_text, engine_checked
from tui.workers import WorkerContract

if TYPE_CHECKING:
    from core.api.tutorials import StepView
    from tui.tutorial import TutorialSession

STATE_MARK = {"done": "✔", "skipped": "⤼", "todo": "○"}  # never colour alone: a symbol per state
KEY_HINT = "h hint · s skip · r restart · x leave · esc back · F9 hide"


def session_of(widget: Widget) -> TutorialSession | None:
    """The app's tutorial session (None outside the workstation app, e.g. in a widget test)."""
    return getattr(widget.app, "tutorial", None)


def key_label(key: str) -> str:
    """A Textual key name as the user reads it on the keyboard (``f1`` → F1, ``question_mark`` → ?)."""
    from textual.keys import format_key

    *mods, base = key.split("+")
    shown = base.upper() if base[:1] == "f" and base[1:].isdigit() else format_key(base)
    return "+".join([*mods, shown])


def action_words(action: str, bindings: dict[str, tuple[str, list[str]]]) -> str:
    """A palette action as the user finds it: its name and keys (``Debug (F12)``), else its id."""
    if action not in bindings:
        return action
    name, keys = bindings[action]
    return f"{name} ({', '.join(key_label(k) for k in keys)})"


def how_to_complete(step: StepView, bindings: dict[str, tuple[str, list[str]]] | None = None) -> str:
    """What completes ``step``, in words: the key, the mode, the action, the command or the state.

    ``bindings`` (binding id -> (name, keys), of the app and the shown screen) names a palette action in words.
    """
    from tui.screens.modes import BY_NAME

    kind = step["kind"]
    if kind == "key":
        return f"▸ press {key_label(step['key'] or '')}"
    if kind == "mode":
        spec = BY_NAME.get(step["mode"] or "")
        return f"▸ go to {spec.title} ({spec.fkey.upper()} / {spec.digit})" if spec else f"▸ go to {step['mode']}"
    if kind == "palette":
        return f"▸ run {action_words(step['action'] or '', bindings or {})} from the palette (ctrl+p)"
    if kind == "cli":
        tail = "the engine checks it" if engine_checked(step) else "then press d here"
        return f"▸ in a shell, run:\n  {command_text(step)}\n  ({tail}; c copies it)"
    return "▸ the engine checks the result"


class TutorialScroll(VerticalScroll):
    """The step's text; takes the focus (F9) so the panel's letters work, and scrolls with the arrows."""

    HELP = ("The tutorial panel: the current step and what completes it. h hint · s skip · r restart · "
            "x leave (progress is kept) · c copy the command · d I ran it · escape back to the screen · F9 hide.")


class TutorialDock(WorkerContract, Vertical):
    """The running tutorial's current step, docked at the right of every mode's body."""

    DEFAULT_CSS = """
    TutorialDock {
        dock: right; width: 34; height: 1fr; display: none;
        border: round $secondary; border-title-color: $foreground; padding: 0 1;
    }
    TutorialDock.-shown { display: block; }
    TutorialDock:focus-within { border: round $primary; border-title-style: bold; }
    Screen.-wide TutorialDock { width: 42; }
    Screen.-xwide TutorialDock { width: 56; }
    TutorialDock #tut-step-title { text-style: bold; height: auto; }
    TutorialDock TutorialScroll { height: 1fr; }
    TutorialDock TutorialScroll Markdown { margin: 0; padding: 0; }
    TutorialDock #tut-step-how { height: auto; margin-top: 1; }
    TutorialDock #tut-step-note { height: auto; color: $text-muted; }
    TutorialDock #tut-step-keys { height: auto; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "hint", "Hint", id="tutorial_hint"),
        Binding("s", "skip", "Skip", id="tutorial_skip"),
        Binding("r", "restart", "Restart", id="tutorial_restart"),
        Binding("x", "leave", "Leave", id="tutorial_leave"),
        Binding("c", "copy", "Copy cmd", id="tutorial_copy"),
        Binding("d", "ran", "I ran it", id="tutorial_ran"),
        Binding("escape", "back", "Back", id="tutorial_back"),
    ]

    def __init__(self) -> None:
        super().__init__(id="tutorial-dock")
        self._built = False
        self._body = ""  # the Markdown shown (re-rendered only when it changes)
        # Paints run one after another, never cancelled: an exclusive worker cancelled inside
        # Markdown.update left a half-mounted child whose task never ended, so the screen never
        # settled again (seen under load in the tutorial replay tests).
        self._paint_lock = asyncio.Lock()
        self.return_focus: Widget | None = None

    def on_mount(self) -> None:
        session = session_of(self)
        if session is not None:
            session.changed.subscribe(self, self._changed)
            self._changed("mount")

    def compose(self) -> ComposeResult:
        yield from ()  # built on first use (_build): a screen with no tutorial running loads no Markdown

    async def _build(self) -> None:
        from textual.widgets import Markdown

        self._built = True
        await self.mount_all([
            Static("", id="tut-step-title", markup=False),
            TutorialScroll(Markdown("", id="tut-step-body"), Static("", id="tut-step-hint", markup=False),
                           id="tut-scroll"),
            Static("", id="tut-step-how", markup=False),
            Static("", id="tut-step-note", markup=False),
            Static(KEY_HINT, id="tut-step-keys", markup=False),
        ])

    def _changed(self, _what: str) -> None:
        session = session_of(self)
        shown = session is not None and session.active and session.visible
        self.set_class(shown, "-shown")
        if shown:
            self._paint()

    @work(group="tutorial-paint", exit_on_error=False)
    async def _paint(self) -> None:
        async with self._paint_lock:  # each paint reads the session when it runs: the last one shows the newest
            await self._paint_now()

    async def _paint_now(self) -> None:
        from textual.widgets import Markdown

        session = session_of(self)
        if session is None or session.shown is None:
            return
        if not self._built:
            await self._build()
        n, total = session.position()
        self.border_title = f"Tutorial · {session.shown['title']}"
        step = session.step
        title = self.query_one("#tut-step-title", Static)
        how = self.query_one("#tut-step-how", Static)
        hint = self.query_one("#tut-step-hint", Static)
        if session.finished and session.progress is not None:
            p = session.progress
            skipped = f", {len(p['skipped'])} skipped" if p["skipped"] else ""
            title.update(f"✔ Done: all {total} steps{skipped}")
            body = (f"You finished **{session.shown['title']}**. The sandbox was cleaned up and you are back "
                    "in your own tenant.\n\nPress **x** to close this panel, or **5** for the next tutorial.")
            how.update("✔ tutorial complete")
            hint.update("")
        elif step is not None:
            title.update(f"Step {n}/{total} · {step['title']}")
            body = step["body"]
            how.update(how_to_complete(step, self._binding_words()))
            hint.update(Content.assemble(("Hint: ", "bold"), step["hint"] or "no hint for this step")
                        if step["id"] in session.hints else "")
        else:
            title.update("…")
            body = ""
        note = session.error or session.note
        self.query_one("#tut-step-note", Static).update(("✘ " if session.error else "") + note if note else "")
        if body != self._body:
            self._body = body
            await self.query_one("#tut-step-body", Markdown).update(body)
            self.query_one(TutorialScroll).scroll_home(animate=False)

    def _binding_words(self) -> dict[str, tuple[str, list[str]]]:
        """Binding id -> (name, keys) over the app, this screen and its widgets (the keys after any keymap)."""
        out: dict[str, tuple[str, list[str]]] = {}
        for node in (self.app, self.screen, *self.screen.walk_children()):
            for key, bindings in node._bindings.key_to_bindings.items():
                for b in bindings:
                    if b.id:
                        name, keys = out.setdefault(b.id, ((b.description or b.id).removeprefix("✗"), []))
                        if key not in keys:
                            keys.append(key)
        return out

    # -- keys ---------------------------------------------------------------------------------

    def jump(self) -> None:
        """F9: show the panel and focus it; from inside, hide it and give the focus back."""
        session = session_of(self)
        if session is None:
            return
        if not session.visible:
            session.toggle()
            self.call_after_refresh(self._focus_in)
        elif self.has_focus_within:
            self.action_back()
            session.toggle()
        else:
            self._focus_in()

    def _focus_in(self) -> None:
        if not self.has_focus_within:
            self.return_focus = self.screen.focused
        scroll = self.query(TutorialScroll)
        if scroll:
            scroll.first().focus()

    def action_back(self) -> None:
        target = self.return_focus
        self.return_focus = None
        if target is not None and target.is_attached and target.display:
            target.focus()
        else:
            self.screen.focus_next()
            if self.has_focus_within:
                self.screen.set_focus(None)

    def action_hint(self) -> None:
        if (s := session_of(self)) is not None:
            s.show_hint()

    def action_skip(self) -> None:
        if (s := session_of(self)) is not None:
            s.skip()

    def action_restart(self) -> None:
        if (s := session_of(self)) is not None:
            s.restart()

    def action_leave(self) -> None:
        if (s := session_of(self)) is not None:
            self.action_back()
            s.leave()

    def action_ran(self) -> None:
        s = session_of(self)
        step = s.step if s is not None else None
        if s is None or step is None or step["kind"] != "cli" or engine_checked(step):
            self.notify("d is for a command step the engine cannot check; this step completes by itself.",
                        severity="warning")
            return
        s.confirm()

    def action_copy(self) -> None:
        s = session_of(self)
        step = s.step if s is not None else None
        if step is None or step["kind"] != "cli":
            self.notify("This step has no command to copy.", severity="warning")
            return
        self.app.copy_to_clipboard(command_text(step))  # OSC 52: works over SSH
        self.notify("Command copied (OSC 52).", title="Tutorial")
