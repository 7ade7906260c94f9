"""``python -m tui``: the same as the ``musubi`` command (the TUI when bare, else the CLI)."""

from tui.cli import main

main()
