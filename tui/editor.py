"""Opening a file in the user's editor from the TUI: the command line, and handing the terminal over."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class EditorProblem:
    """Why the editor did not run, worded for a notification."""

    message: str
    severity: Literal["warning", "error"]


def editor_command(path: str, line: int) -> list[str]:
    """``$VISUAL`` or ``$EDITOR`` (split as a shell would; ``vi`` when unset) at ``line`` of ``path``."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return [*shlex.split(editor), f"+{line}", path]


# Set by tui/remote.py: a remote session (musubi serve) runs as the server's OS user, so an
# editor (with its shell escapes) would hand the remote user that OS user's shell.
REMOTE = False


def run_in_terminal(app: Any, cmd: list[str]) -> EditorProblem | None:
    """Suspend ``app``, run ``cmd`` in the terminal, resume; ``None`` when it ran."""
    from textual.app import SuspendNotSupported

    if REMOTE:
        return EditorProblem(f"Editors are off in a remote session (musubi serve); open {cmd[-1]} at line "
                             f"{cmd[-2][1:]} in your own checkout.", "warning")

    try:
        with app.suspend():
            subprocess.run(cmd, check=False)
    except SuspendNotSupported:
        return EditorProblem(f"This terminal cannot hand over to an editor; open {cmd[-1]} at line {cmd[-2][1:]} "
                             "yourself.", "warning")
    except OSError as exc:
        return EditorProblem(f"Cannot run {cmd[0]!r}: {exc.strerror}. Set $EDITOR.", "error")
    return None
