"""Command groups of the ``musubi`` CLI, one module per group (see ``tui/cli.py``)."""
