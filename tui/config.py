"""The TUI's view of ``config.toml``, plus colour detection.

The file, its schema and its loader live in :mod:`core.config`, shared with the
engine (which reads ``[[models]]`` and ``[routing]`` from the same file): the TUI
accepts exactly what the engine accepts.  This module keeps the names the app
uses (``Settings``, :func:`load_settings`) and decides the colour system.

When the file is missing the defaults apply and pydantic is never imported on
the first-frame path (see :func:`core.config.load_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.config import (
    COLOR_CHOICES,
    ConfigError,
    EngineSettings,
    config_path,
    load_config,
)
from core.config import Config as Settings
from core.config import env as env_var
from core.errors import BadRequest

__all__ = ["ColorDecision", "ConfigError", "EngineSettings", "Settings", "config_path", "detect_color_system",
           "load_settings"]

# TERM values whose terminals render 24-bit colour even when COLORTERM is missing
# (SSH forwards TERM but not COLORTERM).
_TRUECOLOR_TERMS = ("xterm-kitty", "alacritty", "wezterm", "foot", "xterm-ghostty", "contour", "iterm2")
_TRUECOLOR_PROGRAMS = ("iTerm.app", "WezTerm", "vscode", "ghostty", "Tabby", "Hyper")


def load_settings(path: Path | None = None) -> Settings:
    """Read ``config.toml`` (every section, as the engine does); defaults when it does not exist."""
    return load_config(path)


@dataclass(frozen=True)
class ColorDecision:
    """The colour system the app renders with, and why (shown on the debug screen)."""

    system: str  # truecolor | 256 | 16 | none
    reason: str


def detect_color_system(
    env: Mapping[str, str] | None = None, flag: str | None = None, configured: str = "auto"
) -> ColorDecision:
    """Pick the colour system: ``--color-system``, then config, then NO_COLOR, then COLORTERM and TERM.

    Command-line and config settings override NO_COLOR, as https://no-color.org asks.  The
    variables and their order are listed in :data:`core.config.ENVIRONMENT`.
    """

    def var(name: str) -> str:
        return env_var(name, env) or ""

    if flag:
        if flag not in COLOR_CHOICES or flag == "auto":
            raise BadRequest(f"--color-system {flag!r} is not one of truecolor, 256, 16, none.", field="color_system")
        return ColorDecision(flag, "--color-system")
    if configured != "auto":
        return ColorDecision(configured, "config.toml color_system")
    if var("NO_COLOR"):
        return ColorDecision("none", "NO_COLOR is set")
    colorterm = var("COLORTERM").lower()
    if colorterm in ("truecolor", "24bit"):
        return ColorDecision("truecolor", f"COLORTERM={colorterm}")
    term = var("TERM")
    if not term or term == "dumb":
        return ColorDecision("none" if term == "dumb" else "16", f"TERM={term or '(unset)'}")
    if term.endswith("-direct") or term.startswith(_TRUECOLOR_TERMS):
        return ColorDecision("truecolor", f"TERM={term}")
    program = var("TERM_PROGRAM")
    if program in _TRUECOLOR_PROGRAMS:
        return ColorDecision("truecolor", f"TERM_PROGRAM={program}")
    if "256color" in term:
        return ColorDecision("256", f"TERM={term} (no COLORTERM; SSH drops it)")
    return ColorDecision("16", f"TERM={term}")
