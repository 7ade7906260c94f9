"""``python -m tui``: the same as the ``musubi`` command."""

from tui.cli import main

main()
