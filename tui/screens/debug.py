"""F12: versions, paths, engine and terminal facts, ready to paste into a bug report."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.context import AppContext
from tui.screens.base import DIALOG_CSS


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def debug_info(ctx: AppContext, size: tuple[int, int], theme: str) -> list[tuple[str, str]]:
    """The facts as (label, value) rows; plain text so it pastes anywhere."""
    env = os.environ
    h: dict[str, Any] = ctx.health or {}
    conn = ctx.conn
    engine = f"{conn.symbol} {conn.name}" + (f" — {conn.reason}" if conn.reason else "")
    keymap = ", ".join(f"{k}={v}" for k, v in sorted(ctx.settings.keymap.items())) or "(defaults)"
    cfg = ctx.config_file
    return [
        ("musubi", _version("musubi-workstation")),
        ("textual", _version("textual")),
        ("python", f"{platform.python_version()} ({sys.implementation.name})"),
        ("platform", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("MUSUBI_HOME", str(ctx.api.paths.home)),
        ("engine socket", str(ctx.api.paths.socket)),
        ("engine", engine),
        ("engine pid", str(h.get("pid", "—"))),
        ("engine version", str(h.get("version", "—"))),
        ("schema version", str(h.get("schema_version", "—"))),
        ("tenant / user", f"{ctx.tenant} / {ctx.user}"),
        ("terminal size", f"{size[0]}×{size[1]}"),
        ("colour system", f"{ctx.color.system} ({ctx.color.reason})"),
        ("TERM", env.get("TERM", "(unset)")),
        ("COLORTERM", env.get("COLORTERM", "(unset)")),
        ("NO_COLOR", "set" if env.get("NO_COLOR") else "(unset)"),
        ("inside tmux", "yes" if env.get("TMUX") else "no"),
        ("over SSH", "yes" if env.get("SSH_CONNECTION") or env.get("SSH_TTY") else "no"),
        ("theme", theme),
        ("animations", "on" if ctx.animations else "off"),
        ("config file", f"{cfg} ({'found' if cfg and cfg.exists() else 'not present; defaults'})" if cfg else "(none)"),
        ("keymap", keymap),
        *ctx.failures.rows(),
    ]


def as_text(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


class DebugScreen(ModalScreen[None]):
    """Shows :func:`debug_info`; c copies it to the clipboard through the terminal (OSC 52)."""

    CSS_PATH = DIALOG_CSS

    BINDINGS = [
        Binding("c", "copy", "Copy to clipboard", id="debug_copy"),
        Binding("escape,f12,q", "close", "Close", id="debug_close"),
    ]
    HELP = (
        "Debug info for bug reports. **c** copies it with OSC 52, which works over SSH when the "
        "terminal allows clipboard writes (in tmux: `set -g set-clipboard on`)."
    )

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__(classes="dialog-screen")
        self.text = as_text(rows)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="debug-dialog"):
            yield Static("Debug info", classes="dialog-title")
            with VerticalScroll(id="debug-scroll"):
                yield Static(self.text, id="debug-text", markup=False)
            yield Static("c copy (OSC 52) · escape close", classes="dialog-hint")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify("Copied debug info to the clipboard (OSC 52).", title="Copied")

    def action_close(self) -> None:
        self.dismiss(None)
