"""Every key, mode and palette action the shipped tutorials name exists in the workstation (issue 18).

A tutorial step that asks for a key nothing is bound to, a mode that is not in the mode table or a
palette action no binding carries could never complete: this test fails instead.  Read from the
files themselves (tutorials/content, through the loader), and from the app's own tables
(tui.screens.modes, tui.screens.bindings, the palette's actions).
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.keys import _character_to_key

from tui.screens.bindings import all_bindings
from tui.screens.modes import BY_NAME
from tutorials.loader import load_all

TUTORIALS = load_all()
STEPS = [(t.id, s) for t in TUTORIALS.values() for s in t.steps]
# Keys that work without a binding of ours: Textual's own (closing dialogs, moving focus, palette keys).
TEXTUAL_KEYS = {"escape", "tab", "shift+tab", "enter", "up", "down", "left", "right", "pageup", "pagedown",
                "home", "end", "space", "backspace"}


def bound_keys() -> set[str]:
    keys: set[str] = set()
    for b in all_bindings().values():
        keys |= {k.strip() for k in b.key.split(",")}
    return keys


def test_the_tutorials_are_shipped() -> None:
    assert len(TUTORIALS) >= 4 and {"first-steps"} <= set(TUTORIALS)
    assert {s.kind for _, s in STEPS} >= {"key", "mode", "palette", "cli", "state"}


@pytest.mark.parametrize(("tutorial", "step"), [(t, s) for t, s in STEPS], ids=[f"{t}:{s.id}" for t, s in STEPS])
def test_every_key_mode_and_action_a_step_names_exists(tutorial: str, step: Any) -> None:
    kind = step.kind
    keys = bound_keys() | TEXTUAL_KEYS
    if kind == "key":
        key = step.key
        assert key in keys or _character_to_key(key) in keys, f"{tutorial}: no binding for key {key!r}"
    elif kind == "mode":
        assert step.mode in BY_NAME, f"{tutorial}: no mode {step.mode!r}"
    elif kind == "palette":
        assert step.action in all_bindings(), f"{tutorial}: no action {step.action!r}"
    solution = step.solution
    for key in solution.keys:
        assert key in keys or _character_to_key(key) in keys or key in {m.digit for m in BY_NAME.values()}, (
            f"{tutorial}: the solution presses {key!r}, which nothing is bound to")
    if solution.palette:
        assert solution.palette in all_bindings(), f"{tutorial}: the solution runs unknown action {solution.palette!r}"


def test_the_check_fails_for_a_step_naming_what_does_not_exist() -> None:
    """The reference check can fail: a made-up action is not among the bindings, a made-up mode not a mode."""
    assert "no_such_action" not in all_bindings()
    assert "workflows" not in BY_NAME
    assert "f13" not in bound_keys()
