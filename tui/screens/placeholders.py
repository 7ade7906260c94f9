"""Tutorials: a screen a later issue fills.  Until then it says, honestly,
what it will hold and what works today — no fake data."""

from __future__ import annotations

from textual.app import ComposeResult

from tui.screens.base import ModeScreen
from tui.widgets.empty_state import EmptyState


class TutorialsScreen(ModeScreen):
    MODE = "tutorials"
    HELP = "Tutorials: guided lessons with checked steps. Not built yet."

    def compose_body(self) -> ComposeResult:
        yield EmptyState(
            "Tutorials — no lessons yet: the tutorial content ships with a later release.",
            [
                "Short guided lessons (first spec, first agent run, quotas for a team).",
                "Each step is checked against the engine, so you know when you got it right.",
            ],
            [
                "Press F1 on any screen for its keys, and ctrl+p for every command.",
                "Read docs/tui.md for first run, keys, the config file and SSH tips.",
            ],
            id="tutorials-empty",
        )
