"""Starting one TUI process for a remote session: its argv, a clean environment, the token pipe.

The environment is built from nothing: a few variables of the server's own (``PATH``,
``HOME``, ``PYTHONPATH`` …, which the operator set) plus ``TERM`` and ``COLORTERM`` derived
from what the client asked for.  Nothing else a client sends (SSH ``env`` requests, browser
query strings) reaches the child.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# The server's variables a TUI process needs (set by whoever started `musubi serve`).
KEPT = ("PATH", "HOME", "USER", "LOGNAME", "TZ", "PYTHONPATH", "MUSUBI_CONFIG_DIR", "LANG", "LC_ALL")
_TERM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
DEFAULT_TERM = "xterm-256color"


def term_of(requested: str | None) -> str:
    """The client's terminal type when it looks like one (a name, no paths or escapes), else a safe default."""
    return requested if requested and _TERM.match(requested) else DEFAULT_TERM


def colorterm_of(term: str, client_colorterm: str | None) -> str | None:
    """``truecolor`` when the client says so (its COLORTERM), or its TERM names a direct-colour terminal.

    Most SSH clients do not send COLORTERM; then the TUI detects colours from TERM
    (256 colours for ``xterm-256color``), which every modern terminal renders.
    """
    if client_colorterm in ("truecolor", "24bit") or term.endswith(("-direct", "-truecolor")):
        return "truecolor"
    return None


def child_env(term: str, colorterm: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a TUI process."""
    env = {k: os.environ[k] for k in KEPT if os.environ.get(k)}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")  # box drawing needs UTF-8 whatever the server's locale
    env["TERM"] = term
    if colorterm:
        env["COLORTERM"] = colorterm
    env.update(extra or {})
    return env


def token_pipe(token: str) -> int:
    """A pipe's read end holding ``token`` (written and closed on our side), for the child to inherit."""
    r, w = os.pipe()
    try:
        os.write(w, token.encode("ascii"))  # far below the pipe's buffer: never blocks
    finally:
        os.close(w)
    os.set_inheritable(r, False)  # only the child it is passed to (pass_fds) gets it
    return r


def tui_argv(home: Path, tenant: str, user: str, token_fd: int, *, no_animations: bool = False) -> list[str]:
    """The command of one remote session's TUI process (``python -m tui.remote``)."""
    argv = [sys.executable, "-m", "tui.remote", "--home", str(home), "--tenant", tenant, "--user", user,
            "--token-fd", str(token_fd)]
    if no_animations:
        argv.append("--no-animations")
    return argv
