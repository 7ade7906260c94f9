"""``musubi context "TASK TEXT" --budget TOKENS --model M``: the project's best code for a task, in a token budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.api import calls
from tui.output import CliState, MusubiCommand, emit, example, line, pass_state, table, warn

if TYPE_CHECKING:
    from core.api.responses import ContextPack


def _human(d: ContextPack) -> None:
    if d["text"]:
        click.echo(d["text"], nl=False)
    else:
        warn("nothing fits: no search result, or none fits the budget (see the left-out list).")
    exact = "exact" if d["exact"] else f"estimated ({d['tokenizer']})"
    table(("PATH", "LINES", "SYMBOLS", "SCORE", "TOKENS"),
          ((b["path"], f"{b['start_line']}-{b['end_line']}", ", ".join(b["symbols"]) or "-", f"{b['score']:.3f}",
            b["tokens"]) for b in d["included"]),
          title="Included", empty="nothing included", justify_right=("SCORE", "TOKENS"))
    if d["omitted"]:
        table(("PATH", "LINES", "SCORE", "WHY"),
              ((o["path"], f"{o['start_line']}-{o['end_line']}", f"{o['score']:.3f}",
                o["reason"] + (f": {o['detail']}" if o["detail"] else "")) for o in d["omitted"]),
              title="Left out", justify_right=("SCORE",), wrap=("WHY",))
    line(f"{d['used']:,} of {d['budget']:,} tokens used ({exact} for {d['model']}), {d['remaining']:,} left.")


@click.command(
    "context",
    cls=MusubiCommand,
    epilog=example('musubi context "add a retry to the invoice job" --budget 8000 --model gpt-5.4',
                   'musubi context "where is the session token checked" --budget 4000 --model sonnet --json',
                   'musubi context "parse the config" --budget 2000 --model gpt-5.4 --path "core/**" --k 40'),
)
@click.argument("task", metavar='"TASK TEXT"')
@click.option("--budget", metavar="TOKENS", required=True, help="Tokens the pack may use (1 to 10,000,000).")
@click.option("--model", metavar="M", required=True, help="Model whose tokenizer counts (id or alias: musubi models "
              "list).")
@click.option("--k", "k", metavar="N", default="20", show_default=True, help="Search results to pack from, 1 to 100.")
@click.option("--path", "glob", metavar="GLOB", help="Only files matching GLOB (relative to the project root).")
@click.option("--lang", metavar="L", help="Only chunks of this language (python, markdown, typescript, ...).")
@pass_state
def cli_group(state: CliState, task: str, budget: str, model: str, k: str, glob: str | None,
              lang: str | None) -> None:
    """Pack the project's best code for a task into a token budget, with a manifest.

    Searches the project's index (index first with: musubi index), de-duplicates, merges adjacent
    chunks, orders them by file and line, and counts tokens as the model's tokenizer does. Prints
    the pack, then what was included and what was left out and why.
    """
    emit(state, state.client().call(calls.context(task, budget, model, k, glob, lang)), _human)
