"""The Musubi workstation app: six modes, global keys with ids, palette commands, colour setup.

Screens live in :mod:`tui.screens`; services in :mod:`tui.context`.  This module
stays small and cheap to import: the Admin screen, help and debug screens are
imported only when first shown, and the engine connection starts after the first
frame is painted (:class:`tui.context.EngineLink` runs in a worker).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.screen import ModalScreen, Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from core.config import current_dir
from core.errors import MusubiError
from core.paths import HomePaths
from core.wire import Identity
from tui.config import config_path, detect_color_system, load_settings
from tui.context import AppContext, AsyncEngineClient, ConnState, EngineLink
from tui.failsafe import (
    CRASH_EXIT,
    TERMINAL_LOST_EXIT,
    TerminalWatch,
    crash_log_dirs,
    crash_message,
    write_crash_log,
)
from tui.screens.base import STYLES
from tui.screens.dashboard import DashboardScreen
from tui.screens.modes import BY_NAME, MODES
from tui.state import SavedState, state_path
from tui.tutorial import TutorialChecked, TutorialSession

# Worker groups whose interruption would leave the user unsure what happened.
WORK_GROUPS = frozenset({"admin-write", "audit-export", "audit-verify"})
TERMINAL_CHECK_S = 1.0  # how often to ask whether the terminal hung up (one poll(2), no read)


def _admin_screen() -> Screen[Any]:
    from tui.screens.admin.screen import (
        AdminScreen,  # lazy: DataTable, plot and forms load on first use
    )

    return AdminScreen()


def _cost_screen() -> Screen[Any]:
    from tui.screens.cost import CostScreen  # lazy: the selection list, tree and estimate table

    return CostScreen()


def _trace_screen() -> Screen[Any]:
    from tui.screens.trace import (
        TraceScreen,  # lazy: the tree, preview and filters load on first use
    )

    return TraceScreen()


def _search_screen() -> Screen[Any]:
    # lazy: the results table and preview load on first use
    from tui.screens.search import SearchScreen

    return SearchScreen()


def _tutorials_screen() -> Screen[Any]:
    from tui.screens.tutorials import (
        TutorialsScreen,  # lazy: the catalogue table loads on first use
    )

    return TutorialsScreen()


def _tenant_provider() -> type:
    from tui.widgets.palette import TenantCommands

    return TenantCommands


def _mode_bindings() -> list[BindingType]:
    # Priority: a mode key is taken in the order the terminal sent it, before the keys after it are
    # handed to the old screen, so "3" then a quick "cart" types "cart" into the Search screen.
    # check_action lets digits through to a focused text field instead (they type there).
    return [Binding(m.keys, f"mode('{m.name}')", m.title, id=m.binding_id, show=False, priority=True) for m in MODES]


# The widgets whose typed characters are text, not keys (digits in them are not mode keys).  Only Input:
# the app shows no TextArea, and importing one would pull tree_sitter onto start-up; add it here if one comes.
TEXT_FIELDS: tuple[type[Widget], ...] = (Input,)


def _typing_in(screen: Screen[Any]) -> bool:
    """Whether the focused widget of ``screen`` takes typed text (there, digits are text, not mode keys)."""
    return isinstance(screen.focused, TEXT_FIELDS)


class MusubiApp(App[int], inherit_bindings=False):
    """Full-screen workstation.  Construct with an :class:`AppContext`; see :func:`run`."""

    TITLE = "Musubi Workstation"
    # Absolute, so subclasses defined elsewhere (tests, benchmarks) find the styles too.  Admin
    # and dialog styles load with their screens, keeping start-up CSS parsing small.
    CSS_PATH = [STYLES / "app.tcss"]
    MODES: ClassVar[dict[str, Any]] = {
        "dashboard": DashboardScreen,
        "trace": _trace_screen,
        "search": _search_screen,
        "cost": _cost_screen,
        "tutorials": _tutorials_screen,
        "admin": _admin_screen,
    }
    DEFAULT_MODE = "dashboard"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide"), (150, "-xwide")]
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {_tenant_provider}
    BINDINGS: ClassVar[list[BindingType]] = [
        # Second keys for terminals that take the first (VS Code keeps F1 and ctrl+p for itself).
        # Priority: F1 opens help inside dialogs too (a modal screen cuts the app's other bindings off).
        Binding("f1,question_mark", "help", "Help", id="help", priority=True),
        Binding("ctrl+p", "command_palette", "Commands", id="command_palette", show=False, priority=True),
        Binding("colon", "command_palette", "Commands", id="command_palette_alt", show=False),  # not in inputs
        *_mode_bindings(),
        Binding("f8", "switch_tenant", "Tenant", id="tenant_switch"),
        Binding("f9", "tutorial_panel", "Tutorial", id="tutorial_panel", show=False),
        Binding("f10", "toggle_maximize", "Maximise", id="maximize"),
        Binding("f12", "debug_info", "Debug", id="debug_info", show=False),
        Binding("ctrl+r", "reconnect", "Reconnect", id="reconnect", show=False),
        Binding("q,ctrl+q", "request_quit", "Quit", id="quit"),
        Binding("ctrl+c", "help_quit", show=False, system=True),
    ]

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.crash: BaseException | None = None  # the first uncaught exception, if any
        self.crash_log: Path | None = None
        self.terminal_lost = False
        ctx.attach(self)
        self.link = EngineLink(ctx)
        self.tutorial = TutorialSession(self)  # the running tutorial watches every mode (tui/tutorial.py)
        self._apply_color(ctx.color.system)
        if not ctx.animations:
            self.animation_level = "none"
        if ctx.settings.theme:
            self.theme = ctx.settings.theme if ctx.settings.theme in self.available_themes else self.theme
        elif ctx.color.system == "16":
            self.theme = "ansi-dark"  # the terminal's own 16 colours beat a lossy downgrade of RGB
        if ctx.settings.keymap:
            self.set_keymap(ctx.settings.keymap)

    def _apply_color(self, system: str) -> None:
        # Textual reads TEXTUAL_COLOR_SYSTEM and NO_COLOR once at import/construction; our
        # decision (flag > config > NO_COLOR > COLORTERM/TERM) replaces both for this app.
        from rich.color import ColorSystem
        from textual.filter import Monochrome, NoColor

        if system == "none":
            if not self.no_color:
                self._filters.append(Monochrome())
            self.no_color = True
            return
        self._filters = [f for f in self._filters if not isinstance(f, Monochrome | NoColor)]
        self.no_color = False
        self.console._color_system = {
            "truecolor": ColorSystem.TRUECOLOR,
            "256": ColorSystem.EIGHT_BIT,
            "16": ColorSystem.STANDARD,
        }[system]

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        if driver.__module__ == "textual.drivers.linux_driver" and driver.__name__ == "LinuxDriver":
            from tui.driver import HangupSafeDriver  # Unix only: imports termios

            return HangupSafeDriver
        return driver

    # -- lifecycle ------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.ctx.conn_changed.subscribe(self, self._conn_changed)
        self.ctx.engine_event.subscribe(self, self._engine_event)
        if self.ctx.saved.warning:
            self.notify(self.ctx.saved.warning, title="Saved context", severity="warning", timeout=10)
        mode = self.ctx.saved.section("app").get("mode")
        if isinstance(mode, str) and mode in BY_NAME and mode != self.DEFAULT_MODE:
            self.call_after_refresh(self.switch_mode, mode)  # where the user left off (musubi --fresh: not)
        if self.ctx.settings.theme and self.ctx.settings.theme not in self.available_themes:
            self.notify(f"config.toml: unknown theme {self.ctx.settings.theme!r}; using {self.theme}.", severity="warning")
        # Connect only after the first frame is on screen: the user never waits for the engine.
        self.call_after_refresh(self.start_link)
        self.call_after_refresh(self.run_worker, self._check_keymap, thread=True, group="keymap-check", exit_on_error=False)
        if not self.is_headless:
            self._terminal = TerminalWatch(_terminal_fds())
            self._terminal_timer = self.set_interval(TERMINAL_CHECK_S, self._check_terminal)

    def _check_terminal(self) -> None:
        if self._terminal.gone():
            # Nobody can see or answer anything any more: end as a SIGHUP would have.
            self._terminal_timer.stop()
            self.terminal_lost = True
            self.exit(return_code=TERMINAL_LOST_EXIT)

    # -- crashes --------------------------------------------------------------------------

    def record_crash(self, error: BaseException) -> None:
        """Write ``error`` to the crash log (the first one creates it, later ones append)."""
        if self.crash is None:
            self.crash = error
        logs = getattr(getattr(self.ctx.api, "paths", None), "logs", None)
        self.crash_log = write_crash_log(error, crash_log_dirs(logs), self._crash_facts, self.crash_log) or self.crash_log

    def _crash_facts(self) -> str:
        from tui.screens.debug import as_text, debug_info

        return as_text(debug_info(self.ctx, (self.size.width, self.size.height), self.theme))

    def _handle_exception(self, error: Exception) -> None:
        # Textual's hook for an exception nothing handled: it sets exit code 1 and ends the app.
        self.record_crash(error)
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        # Textual would print a full traceback with locals over the user's shell; the crash
        # log has it, and run_app prints a short message naming the log instead.
        self.bell()
        self._close_messages_no_wait()

    @work(name="engine-link", group="engine-link", exclusive=True, exit_on_error=False)
    async def start_link(self) -> None:
        """(Re)start following the engine; a newer link replaces the old one."""
        await self.link.run()

    def _check_keymap(self) -> None:
        from tui.screens.bindings import all_binding_ids

        unknown = sorted(set(self.ctx.settings.keymap) - all_binding_ids())
        if unknown:
            self.call_from_thread(
                self.notify,
                f"config.toml [keymap] names unknown binding ids: {', '.join(unknown)}. "
                "F1 lists the ids that work on each screen.",
                title="Keymap",
                severity="warning",
                timeout=12,
            )

    def _conn_changed(self, state: ConnState) -> None:
        previous = getattr(self, "_last_conn", "connecting")
        self._last_conn = state.name
        if state.name == "connected" and previous in ("reconnecting", "down"):
            self.notify("Reconnected to the engine; live updates resumed.", title="Engine")
        elif state.name in ("reconnecting", "down") and previous != state.name:
            title = "Engine down" if state.name == "down" else "Engine connection lost"
            retry = f" Retrying in {state.retry_in:.0f}s." if state.retry_in else ""
            self.notify(f"{state.reason}{retry}", title=title, severity="warning")

    def _engine_event(self, ev: dict[str, Any]) -> None:
        self.tutorial.engine_event(ev)
        if ev.get("type") == "quota.alert":
            who = f" for {ev['user']}" if ev.get("user") else ""
            pct = float(ev.get("threshold") or 0) * 100
            self.notify(
                f"{ev.get('metric')} per {ev.get('period')}{who} reached {pct:.0f}% of its limit "
                f"({ev.get('used')} of {ev.get('limit')}).",
                title="Quota alert",
                severity="warning",
                timeout=10,
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "engine-link":
            self.notify(f"engine link stopped: {event.worker.error}; press ctrl+r.", severity="error")
        elif event.state == WorkerState.ERROR and event.worker.group.startswith("tutorial") and event.worker.error:
            # The session's workers catch engine refusals themselves; anything else is shown, not lost.
            failure = self.ctx.failures.add("TutorialSession", event.worker.description, event.worker.error)
            self.notify(failure.message, title="Tutorial", severity="error")

    def on_tutorial_checked(self, message: TutorialChecked) -> None:
        self.tutorial.checked(message.answer)

    # -- actions --------------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            # check_action needs to know whether the key being handled is a character (a digit
            # typed into a field) or not (F2…F7 switch modes from anywhere).
            self._printable_key = event.is_printable
            binding = self._binding_for(event)
            try:
                await super().on_event(event)
            finally:
                self._printable_key = False
            self.tutorial.saw_key(event.key, event.character, binding)
            return
        await super().on_event(event)

    def _binding_for(self, event: events.Key) -> str | None:
        """The id of the binding ``event`` runs here (None for text typed into a field, or no binding)."""
        if event.is_printable and _typing_in(self.screen):
            return None
        active = self.screen.active_bindings.get(event.key)
        return active.binding.id if active is not None and active.enabled else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Under a dialog, global keys must not switch modes or quit behind the user's back.
        if action in ("mode", "switch_tenant", "request_quit", "toggle_maximize") and isinstance(self.screen, ModalScreen):
            return False
        # A digit or ? typed into a text field is text; mode and help keys are priority bindings: decline here.
        return not (action in ("mode", "help") and getattr(self, "_printable_key", False) and _typing_in(self.screen))

    async def action_mode(self, name: str) -> None:
        if name in BY_NAME and self.current_mode != name:
            await self.switch_mode(name)

    def switch_mode(self, mode: str) -> AwaitMount:
        self.ctx.saved.update("app", mode=mode)  # kept for the next launch (tui.state)
        shown = super().switch_mode(mode)
        self.tutorial.saw_mode(mode)
        return shown

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen, key_rows, widget_help

        screen = self.screen
        if isinstance(screen, HelpScreen):  # F1 again closes it (the app's priority binding comes first)
            screen.dismiss(None)
            return
        name, text = widget_help(screen.focused, screen)
        title = BY_NAME[self.current_mode].title if self.current_mode in BY_NAME else type(screen).__name__
        if isinstance(screen, ModalScreen):  # a dialog: its own title after the mode's
            dialog = next(iter(screen.query(".dialog-title").results(Static)), None)
            title += f" ▸ {dialog.render() if dialog is not None else 'dialog'}"
        self.push_screen(HelpScreen(title, name, text, str(getattr(screen, "HELP", "")), key_rows(screen)))

    def action_debug_info(self) -> None:
        from tui.screens.debug import DebugScreen, debug_info

        if isinstance(self.screen, DebugScreen):
            return
        self.push_screen(DebugScreen(debug_info(self.ctx, (self.size.width, self.size.height), self.theme)))

    def action_toggle_maximize(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        # The nearest maximisable widget at or above the focus: a scroll view inside a panel (Trace's
        # details) is not maximisable itself, and Textual would give up instead of looking further up.
        node = screen.focused
        while node is not None and node is not screen and not node.allow_maximize:
            node = node.parent if isinstance(node.parent, Widget) else None
        if node is None or node is screen or not screen.maximize(node):
            self.notify("Nothing here can be maximised; press tab to focus a panel first.", severity="warning")

    def action_reconnect(self) -> None:
        self.notify("Reconnecting to the engine (starting it if needed)…", title="Engine")
        self.link.reconnect_now()

    def action_switch_tenant(self) -> None:
        from tui.screens.tenant_picker import TenantPicker

        def chosen(name: str | None) -> None:
            if name:
                self.action_switch_tenant_to(name)

        self.push_screen(TenantPicker(), chosen)

    def action_switch_tenant_to(self, name: str, remember: bool = True) -> None:
        """Work in tenant ``name``; ``remember``: the next launch opens in it (a tutorial's sandbox is not)."""
        if name == self.ctx.tenant:
            return
        self.ctx.api.identity.tenant = name
        if remember:
            self.ctx.saved.update("app", tenant=name)
        self.ctx.whoami, self.ctx.quotas = None, None
        self.ctx.set_conn(ConnState("connecting", f"switching to tenant {name}"))
        self.link = EngineLink(self.ctx)
        self.start_link()
        self.notify(f"Switched to tenant {name}.", title="Tenant")

    def action_tutorial_panel(self) -> None:
        """F9: into the running tutorial's panel (shown if hidden) and out of it; with none running, mode 5."""
        from tui.widgets.tutorial_panel import TutorialDock

        docks = self.screen.query(TutorialDock)
        if not self.tutorial.active or not docks:
            if self.current_mode != "tutorials" and not isinstance(self.screen, ModalScreen):
                self.call_later(self.action_mode, "tutorials")
            self.notify("No tutorial is running: pick one in Tutorials (5) and press enter.", title="Tutorial")
            return
        docks.first().jump()

    def running_work(self) -> list[str]:
        """Descriptions of work a quit would interrupt."""
        work = [w.description or w.name for w in self.workers if w.group in WORK_GROUPS and w.is_running]
        if self.ctx.api.writes_in_flight and not work:
            work.append(f"{self.ctx.api.writes_in_flight} change(s) on their way to the engine")
        return work

    def action_request_quit(self) -> None:
        work = self.running_work()
        if not work:
            self.exit(0)
            return
        from tui.screens.modals import ConfirmModal

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit(0)

        body = "Still running:\n" + "\n".join(f" • {w}" for w in work) + "\n\nThe engine finishes accepted changes on its own."
        self.push_screen(ConfirmModal("Quit while work is running?", body, "Quit"), answer)

    def _watched(self, binding_id: str | None, run: Any) -> Any:
        """``run`` as a palette command that also tells a running tutorial which action ran."""
        if binding_id is None:
            return run

        def go() -> Any:
            self.tutorial.saw_action(binding_id)
            return run()

        return go

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for m in MODES:
            yield SystemCommand(m.title, f"{m.fkey.upper()} / {m.digit}: {m.summary}",
                                self._watched(m.binding_id, partial(self.action_mode, m.name)))
        # this screen's actions, each with its key (and a ✗ if not allowed): a mode screen's, or a
        # dialog's that has its own (the Search screen's embedder versions)
        actions = getattr(screen, "palette_actions", None)
        if callable(actions):
            for a in actions():
                yield SystemCommand(a.title, a.help, self._watched(a.id, a.run))
        from tui.tutorial import palette_commands

        for title, help_text, binding_id, run in palette_commands(self):
            yield SystemCommand(title, help_text, self._watched(binding_id, run))
        w = self._watched
        yield SystemCommand("Switch tenant", "F8: pick another tenant you belong to",
                            w("tenant_switch", self.action_switch_tenant))
        yield SystemCommand("Debug info", "F12: versions, paths, engine and terminal facts to copy",
                            w("debug_info", self.action_debug_info))
        yield SystemCommand("Reconnect to engine", "ctrl+r: retry now, starting the engine if needed",
                            w("reconnect", self.action_reconnect))
        yield SystemCommand("Help", "F1: help for the focused widget and this screen's keys", w("help", self.action_help))
        for cmd in super().get_system_commands(screen):
            if cmd.title not in ("Quit", "Keys"):
                yield cmd
        yield SystemCommand("Quit", "q / ctrl+q: leave the workstation (asks first when work is running)", self.action_request_quit)

    async def on_unmount(self) -> None:
        self.ctx.saved.save()  # best effort: a home one cannot write loses only the context
        await self.ctx.api.close()


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): one file for the nameless user
        return "_"


def run(
    home: str | None = None,
    tenant: str | None = None,
    as_user: str | None = None,
    color_system: str | None = None,
    no_animations: bool = False,
    fresh: bool = False,
    session: str | None = None,
    session_user: str | None = None,
) -> int:
    """Start the workstation; returns the process exit code.  Bad config prints a message, not a traceback.

    The context of the last session (mode, tenant, filters, tabs) is restored unless ``fresh``;
    an explicit ``tenant`` (``--tenant``, ``MUSUBI_TENANT``) wins over the saved one.  ``session``
    is a remote session's token (``tui/remote.py``, docs/remote.md): the engine then knows the
    caller as ``session_user``, whose saved context is used, in the session's one tenant.
    """
    try:
        settings = load_settings()
        color = detect_color_system(flag=color_system, configured=settings.color_system)
        paths = HomePaths.resolve(home)
    except MusubiError as exc:
        print(f"musubi: {exc.message}", file=sys.stderr)
        return exc.exit_code
    from core.identity.store import LiveSession

    saved = SavedState(state_path(paths.home, as_user or session_user or _os_user()), fresh=fresh)
    if tenant is None and isinstance(saved.section("app").get("tenant"), str):
        tenant = saved.section("app")["tenant"]
    # A remote session acts as its own user: never send the server OS user's `musubi login` session.
    ident = Identity(tenant=tenant, as_user=as_user, cwd=current_dir(), session=session,
                     sso_source=None if session else LiveSession(paths.home))
    ctx = AppContext(
        AsyncEngineClient(paths, ident),  # cwd "/" in a deleted folder: no project
        settings,
        color,
        animations=settings.animations and not no_animations,
        config_file=config_path(),
        saved=saved,
    )
    return run_app(MusubiApp(ctx))


def run_app(app: MusubiApp) -> int:
    """Run ``app`` in this terminal; the exit code.

    A crash exits 1 with its traceback in a log file whose path is printed once
    the terminal is restored; a terminal that hung up exits 129 and prints nothing.
    """
    try:
        result = app.run()
    except Exception as exc:  # raised outside Textual's handler (starting or stopping the driver)
        app.record_crash(exc)
        result = None
    if app.crash is not None:
        if not app.terminal_lost:
            with contextlib.suppress(OSError):  # the terminal may be gone too
                print(crash_message(app.crash, app.crash_log), file=sys.stderr)
        return CRASH_EXIT
    if app.return_code:
        return app.return_code
    return int(result or 0)


def _terminal_fds() -> list[int]:
    """The descriptors Textual reads keys from and draws on (stdin and stderr)."""
    fds = []
    for stream in (sys.__stdin__, sys.__stderr__):
        try:
            if stream is not None:
                fds.append(stream.fileno())
        except (OSError, ValueError):
            continue  # closed or not a real file: nothing to watch there
    return fds
