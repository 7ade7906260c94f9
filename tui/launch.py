"""Entry point of the ``musubi`` console script: a bare ``musubi`` opens the TUI at once.

Importing the full CLI (click, every command module, the sync engine client) costs
about 200 ms, which a user who only wants the workstation would wait for before the
first frame.  So this module, which imports nothing heavy, recognises an invocation
made only of the root options the TUI understands and starts the app directly; any
other command line — a subcommand, ``--help``, ``--json``, a bad value, anything it
does not recognise — goes to :func:`tui.cli.main` untouched, so behaviour and error
messages stay the CLI's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

_VALUE_OPTIONS = {"--home": "home", "--tenant": "tenant", "--as": "as_user", "--project": "project", "--color-system": "color_system"}
_FLAGS = ("--no-animations",)
_COLOR_SYSTEMS = ("truecolor", "256", "16", "none")


class TuiArgs(NamedTuple):
    home: str | None
    tenant: str | None
    as_user: str | None
    color_system: str | None
    no_animations: bool


def bare_tui_options(argv: Sequence[str]) -> TuiArgs | None:
    """The TUI's options when ``argv`` holds nothing else; None means "let the CLI decide"."""
    opts: dict[str, str | None] = {}
    no_animations = False
    i = 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        if name in _FLAGS and not eq:
            no_animations = True
            i += 1
            continue
        if name not in _VALUE_OPTIONS:
            return None
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None  # a missing value: the CLI words that error
            value = argv[i + 1]
            i += 1
        i += 1
        if not value or (name == "--color-system" and value not in _COLOR_SYSTEMS):
            return None
        opts[_VALUE_OPTIONS[name]] = value
    # The CLI reads these environment variables for its options; do the same.  The TUI takes
    # its project from the current folder, as the CLI's launcher does, so --project is not passed.
    return TuiArgs(
        opts.get("home") or os.environ.get("MUSUBI_HOME") or None,
        opts.get("tenant") or os.environ.get("MUSUBI_TENANT") or None,
        opts.get("as_user"),
        opts.get("color_system"),
        no_animations,
    )


def main() -> None:
    """``musubi``: the workstation when run bare, otherwise the CLI."""
    opts = bare_tui_options(sys.argv[1:])
    if opts is None:
        from tui.cli import main as cli_main

        cli_main()
        return
    from tui.app import run

    sys.exit(run(*opts))
