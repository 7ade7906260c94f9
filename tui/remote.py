"""``python -m tui.remote``: the workstation for one remote session, started by ``musubi serve``.

The session token comes on an inherited pipe (``--token-fd``): read once, the pipe closed, the
token kept only in the engine client's identity.  Never an environment variable or argument,
which any local process could set or read (docs/remote.md#session-tokens).  This process runs
as the server's OS user, so editors are off and exports are confined to
``$MUSUBI_HOME/exports/remote/USER-HASH/``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import sys
from pathlib import Path

TOKEN_PREFIX = "mst_"
MAX_TOKEN = 512


def read_token(fd: int) -> str:
    """The token written on pipe ``fd`` (then closed); SystemExit with a message when there is none."""
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_TOKEN + 1)
    except OSError as exc:
        raise SystemExit(f"musubi: cannot read the session token from descriptor {fd}: {exc.strerror}. "
                         "This program is started by `musubi serve`, not by hand.") from None
    token = data.decode("ascii", "replace").strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN:
        raise SystemExit("musubi: no session token on the pipe. This program is started by `musubi serve`.")
    return token


def take_terminal() -> None:
    """Make the pty on stdin this process's controlling terminal (SSH sessions), so the kernel sends it
    SIGWINCH when the window size changes.  ``musubi serve`` starts it in a new session for this; done
    here rather than in a ``preexec_fn``, which is not safe in a server with threads."""
    if not os.isatty(0):
        return  # the browser mode talks over pipes
    import fcntl
    import termios

    with contextlib.suppress(OSError):
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def user_folder(user: str) -> str:
    """A folder name for ``user``'s exports: readable, never ``.``/``..``, distinct for distinct names."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", user)[:40]
    return f"{safe}-{hashlib.sha256(user.encode()).hexdigest()[:8]}"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments ``musubi serve`` gives, read the token, run the workstation."""
    p = argparse.ArgumentParser(prog="python -m tui.remote", description=__doc__)
    p.add_argument("--home", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--token-fd", type=int, required=True)
    p.add_argument("--no-animations", action="store_true")
    args = p.parse_args(argv)
    token = read_token(args.token_fd)
    take_terminal()
    from core import exports
    from tui import editor

    editor.REMOTE = True
    # This process runs as the server's OS user: exports go to the remote user's own folder only.
    exports.confine(Path(args.home) / "exports" / "remote" / user_folder(args.user))
    from tui.app import run

    return run(args.home, args.tenant, None, None, args.no_animations, fresh=False, session=token,
               session_user=args.user)


if __name__ == "__main__":
    sys.exit(main())
