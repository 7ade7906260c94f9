"""A small form dialog for the admin screens: text fields and choices, checked before sending.

The engine validates everything again; the checks here only save a round trip
and name the problem next to the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from core import names
from core.errors import BadRequest
from tui.context import app_ctx
from tui.screens.base import DIALOG_CSS

Validator = Callable[[str], str | None]


def _names_check(check: Callable[[str], str]) -> Validator:
    """A validator from core.names, so the form and the engine apply the same rule."""

    def validate(value: str) -> str | None:
        try:
            check(value)
        except BadRequest as exc:
            return exc.message
        return None

    return validate


tenant_name_error = _names_check(names.tenant_name)
user_name_error = _names_check(names.user_name)


def limit_error(value: str) -> str | None:
    v = value.replace("_", "").replace(",", "").strip()
    try:
        if float(v) < 0:
            return "a limit is >= 0"
    except ValueError:
        return "a limit is a number: whole tokens/requests, or dollars like 12.50 for cost_usd"
    return None


def alerts_error(value: str) -> str | None:
    if not value.strip():
        return None
    for part in value.split(","):
        try:
            f = float(part)
        except ValueError:
            return f"{part.strip()!r} is not a fraction; write thresholds like 0.8,1.0"
        if not 0 < f <= 10:
            return "each threshold is a fraction of the limit in (0, 10], e.g. 0.8"
    return None


# An export form's "--force": an existing file is kept (the export refused) unless the user chooses to
# replace it; the file is written by this app under core.exports' rules (docs/tui.md#exports).
REPLACE_CHOICES = (("keep it (refuse)", "keep"), ("replace it", "replace"))


@dataclass
class FormField:
    """One field: free text (``choices`` empty) or a choice among ``choices`` (label, value)."""

    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    choices: Sequence[tuple[str, str]] = field(default_factory=tuple)
    validate: Validator | None = None
    required: bool = True
    password: bool = False  # a secret: typed masked, sent once, never shown back


class FormModal(ModalScreen[dict[str, str] | None]):
    """Dismisses with ``{field name: value}`` on submit, None on cancel; nothing is sent from here."""

    CSS_PATH = DIALOG_CSS

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form_cancel"),
        Binding("ctrl+s", "submit", "Submit", id="form_submit"),
    ]
    HELP = (
        "Fill the fields; **enter** in a text field or **ctrl+s** submits, **escape** cancels. "
        "tab / shift+tab move between fields. Problems are named under the form."
    )

    def __init__(self, title: str, fields: Sequence[FormField], submit_label: str = "Save", intro: str = "",
                 extensions: Mapping[str, str] | None = None) -> None:
        """``extensions`` (format -> file extension): the ``path`` field's extension follows the ``format`` choice."""
        super().__init__(classes="dialog-screen")
        self._title = title
        self._fields = list(fields)
        self._submit = submit_label
        self._intro = intro
        self._extensions = dict(extensions or {})

    def compose(self) -> ComposeResult:
        # Compact one-line fields, each under its label, in a scroll of bounded height: at 80×24 every
        # field and both buttons are on screen (issue 15 item 3; a bordered field took four lines).
        blink = app_ctx(self).animations
        with Vertical(classes="dialog", id="form-dialog"):
            yield Static(self._title, classes="dialog-title", markup=False)
            if self._intro:
                yield Static(self._intro, classes="dialog-body", markup=False)
            with VerticalScroll(id="form-fields"):
                for f in self._fields:
                    yield Label(f.label, classes="field-label")
                    if f.choices:
                        yield Select(
                            [(label, value) for label, value in f.choices],
                            value=f.value if f.value in [v for _, v in f.choices] else Select.NULL,
                            allow_blank=not f.required,
                            id=f"field-{f.name}",
                            compact=True,
                        )
                    else:
                        inp = Input(f.value, placeholder=f.placeholder, id=f"field-{f.name}", compact=True,
                                    password=f.password)
                        inp.cursor_blink = blink  # a blinking cursor repaints twice a second: costly over SSH
                        yield inp
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._submit} (ctrl+s)", id="submit", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self._fields:
            w = self.query_one(f"#field-{f.name}")
            if isinstance(w, Select):
                out[f.name] = "" if w.value is Select.NULL else str(w.value)
            elif isinstance(w, Input):
                out[f.name] = w.value.strip()
        return out

    def problem(self, values: dict[str, str]) -> str | None:
        """The first problem with the values, named by field label, or None."""
        for f in self._fields:
            v = values.get(f.name, "")
            if not v:
                if f.required:
                    return f"{f.label.rstrip(':')}: required"
                continue
            if f.validate and (err := f.validate(v)):
                return f"{f.label.rstrip(':')}: {err}"
        return None

    def action_submit(self) -> None:
        values = self.values()
        err = self.problem(values)
        if err:
            self.query_one("#form-error", Static).update(err)
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()

    def on_mount(self) -> None:
        first: Any = self.query("Input, Select").first()
        first.focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "field-format" or not self._extensions or event.value is Select.NULL:
            return
        paths = self.query("#field-path").results(Input)
        for inp in paths:
            follow_extension(inp, self._extensions.get(str(event.value), ""), set(self._extensions.values()))


def follow_extension(inp: Input, ext: str, known: set[str]) -> None:
    """Give the file name in ``inp`` the extension ``ext`` if it has one of the ``known`` ones (or none)."""
    value = inp.value.strip()
    if not value or not ext:
        return
    current = PurePath(value).suffix.lstrip(".")
    if current == ext:
        return
    if current in known:
        inp.value = value[: -len(current)] + ext
    elif not current:
        inp.value = f"{value}.{ext}"
