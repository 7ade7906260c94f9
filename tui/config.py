"""Settings of the workstation: ``config.toml`` in the platform config dir, plus colour detection.

The file is optional.  When it is missing the defaults below apply and pydantic
is never imported (building a pydantic validator costs ~200 ms, more than half
of a bare Textual app's start-up).  When it exists it is parsed with
:mod:`tomllib` and validated by pydantic against :class:`Settings`; any mistake
becomes a :class:`ConfigError` whose message names the file, the key and the fix.

Example ``config.toml``::

    theme = "nord"             # any Textual theme; default textual-dark (ansi-dark at 16 colours)
    color_system = "256"       # auto | truecolor | 256 | 16 | none
    animations = false

    [keymap]                   # binding id = "key[,key...]"; ids are listed by F1 and docs/tui.md
    mode_admin = "f7,a"
    quit = "ctrl+q"

    [engine]
    retry_max_s = 30
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import BadRequest

ColorChoice = Literal["auto", "truecolor", "256", "16", "none"]
COLOR_CHOICES: tuple[str, ...] = ("auto", "truecolor", "256", "16", "none")
CONFIG_NAME = "config.toml"

# TERM values whose terminals render 24-bit colour even when COLORTERM is missing
# (SSH forwards TERM but not COLORTERM).
_TRUECOLOR_TERMS = ("xterm-kitty", "alacritty", "wezterm", "foot", "xterm-ghostty", "contour", "iterm2")
_TRUECOLOR_PROGRAMS = ("iTerm.app", "WezTerm", "vscode", "ghostty", "Tabby", "Hyper")


class ConfigError(BadRequest):
    """``config.toml`` cannot be read or does not validate; the message says where and how to fix it."""

    code = "bad_config"


@dataclass
class EngineSettings:
    """How the app talks to the engine."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic only

    retry_initial_s: float = 0.5
    """First wait after the engine connection is lost; doubles on each failure."""
    retry_max_s: float = 15.0
    """Longest wait between reconnection attempts."""
    poll_s: float = 15.0
    """How often quota headroom is re-read while connected (events also refresh it)."""


@dataclass
class Settings:
    """Everything ``config.toml`` may set.  Unknown keys are errors, so typos do not pass silently."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic only

    theme: str | None = None
    """Textual theme name; None picks textual-dark, or ansi-dark when only 16 colours are available."""
    color_system: ColorChoice = "auto"
    """Force a colour system; ``auto`` detects it from COLORTERM and TERM. ``--color-system`` wins."""
    animations: bool = True
    """False turns animations off (as ``--no-animations`` does), useful over slow links."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id -> comma-separated keys, e.g. ``mode_admin = "f7,a"``."""
    engine: EngineSettings = field(default_factory=EngineSettings)
    """Connection behaviour."""


def config_path() -> Path:
    """Where ``config.toml`` is looked for (``MUSUBI_CONFIG_DIR`` overrides the platform dir)."""
    from core.paths import config_dir

    return config_dir() / CONFIG_NAME


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_settings(data: Mapping[str, Any], source: str) -> Settings:
    """Validate already-parsed TOML data; raise :class:`ConfigError` naming each bad key."""
    import pydantic  # lazy: only paid for when a config file exists

    try:
        return pydantic.TypeAdapter(Settings).validate_python(dict(data))
    except pydantic.ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = _format_loc(tuple(err.get("loc", ())))
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            msg = str(err.get("msg", "invalid value"))
            if err.get("type") in ("extra_forbidden", "unexpected_keyword_argument"):
                msg, shown = "unknown setting (check the spelling)", ""
            lines.append(f"  - {loc}: {msg}{shown}")
        raise ConfigError(
            f"config file {source} is invalid:\n" + "\n".join(lines) + "\n"
            "Fix those keys (see docs/tui.md, section 'Config file') or move the file aside."
        ) from None


def load_settings(path: Path | None = None) -> Settings:
    """Read ``config.toml``; defaults when it does not exist."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}. Check its permissions.") from None
    import tomllib  # lazy: most users have no config file

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}. Fix the syntax or move the file aside.") from None
    return parse_settings(data, str(path))


@dataclass(frozen=True)
class ColorDecision:
    """The colour system the app renders with, and why (shown on the debug screen)."""

    system: str  # truecolor | 256 | 16 | none
    reason: str


def detect_color_system(
    env: Mapping[str, str] | None = None, flag: str | None = None, configured: str = "auto"
) -> ColorDecision:
    """Pick the colour system: ``--color-system``, then config, then NO_COLOR, then COLORTERM and TERM.

    Command-line and config settings override NO_COLOR, as https://no-color.org asks.
    """
    env = os.environ if env is None else env
    if flag:
        if flag not in COLOR_CHOICES or flag == "auto":
            raise BadRequest(f"--color-system {flag!r} is not one of truecolor, 256, 16, none.", field="color_system")
        return ColorDecision(flag, "--color-system")
    if configured != "auto":
        return ColorDecision(configured, "config.toml color_system")
    if env.get("NO_COLOR"):
        return ColorDecision("none", "NO_COLOR is set")
    colorterm = env.get("COLORTERM", "").lower()
    if colorterm in ("truecolor", "24bit"):
        return ColorDecision("truecolor", f"COLORTERM={colorterm}")
    term = env.get("TERM", "")
    if not term or term == "dumb":
        return ColorDecision("none" if term == "dumb" else "16", f"TERM={term or '(unset)'}")
    if term.endswith("-direct") or term.startswith(_TRUECOLOR_TERMS):
        return ColorDecision("truecolor", f"TERM={term}")
    program = env.get("TERM_PROGRAM", "")
    if program in _TRUECOLOR_PROGRAMS:
        return ColorDecision("truecolor", f"TERM_PROGRAM={program}")
    if "256color" in term:
        return ColorDecision("256", f"TERM={term} (no COLORTERM; SSH drops it)")
    return ColorDecision("16", f"TERM={term}")
