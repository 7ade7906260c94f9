"""Former entry point of the ``musubi`` console script, kept for installs made before it moved.

The script now runs :func:`tui.cli.main`: the CLI loads its command modules lazily, so a
bare ``musubi`` reaches the TUI without the argv pre-parser this module used to hold.
"""

from __future__ import annotations

from tui.cli import main

__all__ = ["main"]
