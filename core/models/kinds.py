"""Names shared by the engine, the CLI and the TUI (no heavy imports: the CLI loads this for --help)."""

from __future__ import annotations

TIERS: tuple[str, ...] = ("basic", "standard", "advanced", "frontier")
TASK_KINDS: tuple[str, ...] = (
    "requirements", "design", "tasks", "implementation", "review", "test", "summarise", "classify",
)
CONTENT_KINDS: tuple[str, ...] = ("code", "prose", "cjk")
