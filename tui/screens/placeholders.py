"""Search and Tutorials: screens later issues fill.  Until then each says, honestly,
what it will hold and what works today — no fake data."""

from __future__ import annotations

from textual.app import ComposeResult

from tui.screens.base import ModeScreen
from tui.widgets.empty_state import EmptyState


class SearchScreen(ModeScreen):
    MODE = "search"
    HELP = "Search: semantic search over your registered projects. Not built yet."

    def compose_body(self) -> ComposeResult:
        yield EmptyState(
            "Search — nothing to search yet: the code index is not part of this release.",
            [
                "Semantic and keyword search over the registered projects of this tenant.",
                "Results with file, line and the spec they trace to; live as you type.",
            ],
            [
                "Register the repositories search will index: musubi project add PATH",
                "See what is registered: musubi project list",
            ],
            id="search-empty",
        )


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
