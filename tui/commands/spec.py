"""``musubi spec lint``: EARS checks of the requirements in a repository."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.api import calls
from core.errors import EXIT_ERROR
from tui.commands.trace import repo_path
from tui.output import CliState, emit, example, group, line, pass_state, table

if TYPE_CHECKING:
    from core.api.responses import SpecLint

cli_group = group(
    "spec",
    "Work with specs (requirements, design, tasks) in the MUSUBI layout (storage/specs, storage/design, "
    "storage/tasks) or the Kiro layout (.kiro/specs/<feature>/).",
    "musubi spec lint",
    "musubi spec lint ~/src/shop --json",
)


@cli_group.command(epilog=example("musubi spec lint", "musubi spec lint --strict", "musubi spec lint ~/src/shop --json"))
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too (default: only errors fail).")
@pass_state
@click.pass_context
def lint(ctx: click.Context, state: CliState, path: str | None, strict: bool) -> None:
    """Check every requirement against the five EARS patterns and the ID rules.

    Errors: no SHALL, a broken pattern, duplicate or malformed IDs, references to
    IDs that exist nowhere. Warnings: ambiguous words (should, could, might, may,
    will, can, must) and vague terms (whole words only), fewer than 5 or more
    than 50 words, no acceptance criteria. Exit 1 when there are errors.
    """
    d = state.client().call(calls.spec_lint(repo_path(ctx, path)))

    def human(d: SpecLint) -> None:
        table(("WHERE", "SEVERITY", "RULE", "MESSAGE", "FIX"),
              [(f"{f['path']}:{f['line']}", f["severity"], f["rule"], f["message"], f["hint"]) for f in d["findings"]],
              empty="no findings." if d["requirements"] else "no requirements found: nothing was linted.",
              wrap=("MESSAGE", "FIX"))
        line(f"{d['requirements']} requirement(s) in {d['spec_files']} spec file(s): "
             f"{d['errors']} error(s), {d['warnings']} warning(s).")

    emit(state, d, human)
    # Spec files found but nothing recognised is an error finding (spec.nothing-recognised): exit 1.
    if d["errors"] or (strict and d["warnings"]):
        ctx.exit(EXIT_ERROR)
