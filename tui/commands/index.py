"""``musubi index [PATH]``: build or update the project's code index (docs/search.md#indexing)."""

from __future__ import annotations

import click

from tui.output import CliState, MusubiCommand, abspath, example, pass_state


@click.command(
    "index",
    cls=MusubiCommand,
    epilog=example("musubi index", "musubi index ~/src/shop --detach", "musubi index --force --json"),
)
@click.argument("path", metavar="[PATH]", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--detach", is_flag=True, help="Print the job id and return at once; the job runs in the engine.")
@click.option("--force", is_flag=True, help="Embed every chunk again (a new model, or a suspect index).")
@pass_state
def cli_group(state: CliState, path: str | None, detach: bool, force: bool) -> None:
    """Index the project's code for search: only files whose content changed are chunked and embedded.

    PATH is a folder inside a registered project (default: the project you are in). A progress bar
    follows the job; the job keeps running in the engine if the terminal goes (see musubi jobs).
    Exit 0 when the index is up to date, 1 if the job failed, was cancelled or interrupted.
    """
    from core.api import calls
    from tui.follow import follow

    job = state.client().call(calls.index_start(abspath(path) if path is not None else None, force))["job"]
    follow(state, dict(job), detach=detach)
