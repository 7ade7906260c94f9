"""``musubi engine start|stop|status``: the engine process of this ``$MUSUBI_HOME``."""

from __future__ import annotations

from typing import Any

import click

from core.lifecycle import engine_status, start_engine, stop_engine
from tui.output import CliState, emit, example, fields, group, line, pass_state

cli_group = group(
    "engine",
    "Start, stop and inspect the engine process (one per MUSUBI_HOME).",
    "musubi engine start",
    "musubi engine status --json",
    "musubi --home /tmp/mh engine stop",
    "musubi engine reload",
)

_HEALTH_KEYS = ("pid", "version", "home", "socket", "database", "schema_version", "started_at", "tenants",
                "subscribers", "commits", "user", "quarantined_groups", "quarantine_dir")


@cli_group.command(epilog=example("musubi engine start"))
@pass_state
def start(state: CliState) -> None:
    """Start the engine in the background, or report the one already running."""
    info = start_engine(state.paths())

    def human(d: dict[str, Any]) -> None:
        verb = "started" if d.get("started") else "joined the one another command was starting" if d.get("joined") \
            else "already running"
        line(f"engine {verb}: pid {d.get('pid')} on {d.get('socket')} (since {d.get('started_at')})")

    emit(state, info, human)


@cli_group.command(epilog=example("musubi engine stop"))
@pass_state
def stop(state: CliState) -> None:
    """Stop the engine gracefully (flushes every write); removes a stale socket if none runs."""
    info = stop_engine(state.paths())

    def human(d: dict[str, Any]) -> None:
        if d.get("stopped"):
            how = " with SIGTERM: its socket was gone" if d.get("via") == "signal" else ""
            line(f"engine stopped (pid {d.get('pid')}){how}.")
        else:
            extra = f"; removed stale {', '.join(d['cleaned'])}" if d.get("cleaned") else ""
            line(f"no engine was running for {state.paths().home}{extra}.")

    emit(state, info, human)


@cli_group.command(epilog=example("musubi engine status --json"))
@pass_state
def status(state: CliState) -> None:
    """Show whether the engine runs. Exit 0 either way: read "running" (true/false).

    A socket or pid file left by a crashed engine is listed under "stale"; the
    next start (or `musubi engine stop`) cleans it.  An engine found through its
    pid lock that does not answer (its socket was deleted, or it is starting) is
    running with "answering": false.
    """
    info = engine_status(state.paths())

    def human(d: dict[str, Any]) -> None:
        if d.get("running") and not d.get("answering"):
            fields(d, ["running", "answering", "problem", "pid", "home", "socket"], title="engine")
            line("it holds the home's lock; a deleted socket is re-created within a second. "
                 "Stop it with: musubi engine stop")
        elif d.get("running"):
            fields(d, ["running", *[k for k in _HEALTH_KEYS if k in d]], title="engine")
            if d.get("quarantined_groups"):
                line(f"warning: {d['quarantined_groups']} journaled write group(s) the database refused are set aside "
                     f"in {d.get('quarantine_dir')} (see the engine log and "
                     "`musubi audit list --action engine.quarantine`).")
        else:
            fields(d, ["running", "home", "socket", "pid", "stale"], title="engine")
            line("not running; it starts on the next command, or now with: musubi engine start")

    emit(state, info, human)


@cli_group.command(epilog=example("musubi engine reload", "musubi engine reload --keep-env --json"))
@click.option("--keep-env", is_flag=True,
              help="Send no variables: the engine keeps the provider variables it already has.")
@pass_state
def reload(state: CliState, keep_env: bool) -> None:
    """Re-read config.toml and the provider variables of this shell; running calls are not disturbed.

    The engine outlives the shell that started it, so a changed OPENAI_API_KEY (and the other
    provider variables, docs/providers.md) reaches it only this way: the values set here
    replace the engine's, and an unset one is unset there too.  A bad config.toml is refused
    (exit 2) and changes nothing.  `kill -HUP <engine pid>` re-reads config.toml only.
    """
    from core.api import calls
    from core.api.providers import RELOAD_VARIABLES
    from core.config import env

    sent = None if keep_env else {name: value for name in RELOAD_VARIABLES if (value := env(name))}
    data = state.client().call(calls.engine_reload(sent))

    def human(d: Any) -> None:
        names = ", ".join(d["providers"]) or "none"
        line(f"providers reloaded (generation {d['generation']}): {names}.")
        if d["previous_in_flight"]:
            line(f"{d['previous_in_flight']} call(s) still run on the previous settings; they finish undisturbed.")

    emit(state, data, human)
