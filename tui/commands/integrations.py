"""``musubi integrations ...``: connector settings per tenant, pipelines, Entra sign-in (docs/integrations.md).

Secrets (tokens, webhook URLs, signing secrets) are never arguments: ``--secret NAME`` reads
the value from stdin (one line per name, or a hidden prompt on a terminal), so it stays out
of shell history and ``ps``.  The engine keeps them in a 0600 file outside the database and
answers only their names.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from core.api import calls
from core.errors import BadRequest
from tui.output import CliState, emit, example, group, line, pass_state, table

SYSTEM_METAVAR = "{jira|ado|gitlab|github|slack|teams|PLUG-IN}"

cli_group = group(
    "integrations",
    "Connect Jira, Azure DevOps, GitLab, GitHub, Slack and Teams: settings per tenant, secrets kept outside "
    "the database, a connection test with the vendor's own error text, pipeline status.",
    "musubi integrations set jira url=https://acme.atlassian.net email=bot@acme.com --secret token",
    "musubi integrations test jira",
    "musubi integrations list --json",
)


@cli_group.command("list", epilog=example("musubi integrations list", "musubi integrations list --json"))
@pass_state
def list_(state: CliState) -> None:
    """Every system: configured or not, its settings, the names of its stored secrets."""
    data = state.client().call(calls.integrations())

    def human(d: Any) -> None:
        table(("SYSTEM", "CONFIGURED", "SETTINGS", "SECRETS"),
              ((r["system"], "yes" if r["configured"] else "no",
                ", ".join(f"{k}={v}" for k, v in sorted(r["settings"].items())) or "-",
                ", ".join(r["secrets"]) or "-") for r in d["integrations"]))

    emit(state, data, human)


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadRequest(f"{item!r} is not KEY=VALUE; e.g. url=https://acme.atlassian.net.", field="settings")
        out[key] = value
    return out


def _read_secret(name: str) -> str:
    if sys.stdin.isatty():
        return str(click.prompt(f"{name} (hidden)", hide_input=True))
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise BadRequest(f"--secret {name}: stdin gave no value; pipe it in, e.g. "
                         f"`printf %s \"$TOKEN\" | musubi integrations set jira --secret {name}`.", field="secrets")
    return value


@cli_group.command("set", epilog=example(
    "musubi integrations set jira url=https://acme.atlassian.net email=bot@acme.com --secret token",
    "musubi integrations set github repo=acme/app repo_url=https://github.com/acme/app/blob/main",
    "printf %s \"$GITHUB_TOKEN\" | musubi integrations set github --secret token",
    "musubi integrations set jira --unset requirement_type"))
@click.argument("system", metavar=SYSTEM_METAVAR)  # the engine checks it: plug-ins add systems
@click.argument("settings", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--secret", "secrets", multiple=True, metavar="NAME",
              help="Read secret NAME (token, webhook_url, signing_secret, ...) from stdin; repeatable.")
@click.option("--unset", multiple=True, metavar="NAME", help="Remove a setting or secret; repeatable.")
@pass_state
def set_(state: CliState, system: str, settings: tuple[str, ...], secrets: tuple[str, ...],
         unset: tuple[str, ...]) -> None:
    """Set SYSTEM's settings (KEY=VALUE) and secrets (--secret NAME, from stdin) for the tenant."""
    pairs = _pairs(settings)
    hidden = {name: _read_secret(name) for name in secrets}
    if not pairs and not hidden and not unset:
        raise BadRequest("nothing to set: give KEY=VALUE settings, --secret NAME or --unset NAME.", field="settings")
    data = state.client().call(calls.integration_set(system, pairs or None, hidden or None, list(unset) or None))
    emit(state, data, lambda d: line(f"{d['system']}: settings {', '.join(sorted(d['settings'])) or 'none'}; "
                                     f"secrets {', '.join(d['secrets']) or 'none'}."))


@cli_group.command(epilog=example("musubi integrations test jira", "musubi integrations test github --json"))
@click.argument("system", metavar=SYSTEM_METAVAR)  # the engine checks it: plug-ins add systems
@pass_state
def test(state: CliState, system: str) -> None:
    """One authenticated call to SYSTEM; on failure, the vendor's own error text (exit 1)."""
    data = state.client().call(calls.integration_test(system))
    emit(state, data, lambda d: line(f"{d['system']}: connected "
                                     + ", ".join(f"{k} {v}" for k, v in d["detail"].items() if k != "system")))


@cli_group.command(epilog=example('musubi integrations notify slack "Deploy done" --title "shop"',
                                  'musubi integrations notify teams "Nightly run failed" --title "shop" --json'))
@click.argument("system", type=click.Choice(("slack", "teams")))
@click.argument("text")
@click.option("--title", default="Musubi", show_default=True, help="The message's title.")
@click.option("--target", metavar="CHANNEL", help="Slack channel ID (default: the 'channel' setting) or 'webhook'; "
              "Teams: 'graph' for the Graph channel, else the webhook.")
@pass_state
def notify(state: CliState, system: str, text: str, title: str, target: str | None) -> None:
    """Send one message through SYSTEM: checks a webhook end to end (Teams has no other test)."""
    data = state.client().call(calls.integration_notify(system, title, text, target))
    emit(state, data, lambda d: line(f"{d['system']}: sent to {d['target']}" + (f" (id {d['id']})" if d["id"] else "")))


@cli_group.command(epilog=example("musubi integrations pipeline github --ref main",
                                  "musubi integrations pipeline gitlab --ref 3f2a... --project group/app --json"))
@click.argument("system", type=click.Choice(("gitlab", "ado", "github")))
@click.option("--ref", required=True, help="A branch name or a commit SHA.")
@click.option("--project", "project_key", metavar="KEY", help="The remote project (default: the 'project' or "
              "'repo' setting).")
@pass_state
def pipeline(state: CliState, system: str, ref: str, project_key: str | None) -> None:
    """CI runs (GitLab pipelines, Azure Pipelines, GitHub Actions) for a branch or commit."""
    data = state.client().call(calls.pipeline_status(system, ref, project_key))

    def human(d: Any) -> None:
        table(("RUN", "NAME", "STATE", "VENDOR STATUS", "URL"),
              ((r["id"], r["name"], r["state"], r["vendor_status"], r["url"]) for r in d["runs"]),
              empty=f"no runs for {d['ref']}")

    emit(state, data, human)


# -- notify (issue 17): who a Slack user is in musubi (approve/reject buttons) -----------------------


def _users_table(d: Any) -> None:
    table(("SYSTEM", "EXTERNAL USER", "MUSUBI USER"), ((r["system"], r["external"], r["user"]) for r in d["users"]),
          empty="no users mapped: Slack buttons are refused for everyone")


@cli_group.command("map-user", epilog=example("musubi integrations map-user slack U0123ABCD alice",
                                              "musubi integrations map-user teams 00aa11bb-2222-3333-4444-555566667777 "
                                              "alice",
                                              "musubi integrations map-user slack U0123ABCD --remove"))
@click.argument("system", type=click.Choice(("slack", "teams")))
@click.argument("external", metavar="EXTERNAL_ID")
@click.argument("user", required=False)
@click.option("--remove", is_flag=True, help="Remove the mapping of EXTERNAL_ID.")
@pass_state
def map_user(state: CliState, system: str, external: str, user: str | None, remove: bool) -> None:
    """Act for EXTERNAL_ID (a Slack user id; a Teams user's Entra object id) as musubi USER when they click
    approve/reject (RBAC is USER's)."""
    if remove == bool(user):
        raise BadRequest("give the musubi USER to map to, or --remove (not both).")
    data = state.client().call(calls.integration_map_user(system, external, None if remove else user))
    emit(state, data, _users_table)


@cli_group.command(epilog=example("musubi integrations users", "musubi integrations users --json"))
@pass_state
def users(state: CliState) -> None:
    """The tenant's Slack/Teams user → musubi user mapping."""
    emit(state, state.client().call(calls.integration_users()), _users_table)


# -- run pipelines (issue 17 gaps): the CI pipeline of the ref a run built on -------------------------


def _run_pipeline_text(d: Any) -> None:
    where = f"{d['system'] or '-'} {d['ref'] or '(no ref)'}" + (f" @ {d['sha'][:12]}" if d.get("sha") else "")
    line(f"run {d['run']}: {d['state']} ({where}, {d['source'] or 'nothing recorded'})")
    if d["pipeline"]:
        line(f"  {d['pipeline']['name'] or 'pipeline'} {d['pipeline']['id']}: {d['pipeline']['vendor_status']}  "
             f"{d['pipeline']['url']}")
    elif d["message"]:
        line(f"  {d['message']}")


@cli_group.command("run-pipeline", epilog=example("musubi integrations run-pipeline r-0123456789ab",
                                                  "musubi integrations run-pipeline r-0123456789ab --json"))
@click.argument("run_id", metavar="RUN")
@pass_state
def run_pipeline(state: CliState, run_id: str) -> None:
    """The git ref RUN built on and its newest CI pipeline: not_configured, no_ref, no_pipeline, running,
    passed, failed, canceled or error (the vendor's text)."""
    emit(state, state.client().call(calls.run_pipeline(run_id)), _run_pipeline_text)


@cli_group.command("link-run", epilog=example("musubi integrations link-run r-0123456789ab feature/login",
                                              "musubi integrations link-run r-0123456789ab main --system github"))
@click.argument("run_id", metavar="RUN")
@click.argument("ref")
@click.option("--system", type=click.Choice(("gitlab", "github", "ado")),
              help="The CI system (default: the tenant's configured one).")
@pass_state
def link_run(state: CliState, run_id: str, ref: str, system: str | None) -> None:
    """Show the pipeline of REF (a branch, tag or commit) for RUN instead of the ref it started on."""
    emit(state, state.client().call(calls.run_pipeline_link(run_id, ref, system)), _run_pipeline_text)


# -- Entra sign-in (issue 17 gaps): delegated tokens for Teams (Graph) and Azure DevOps ---------------


@cli_group.command("login", epilog=example("musubi integrations login teams", "musubi integrations login ado --json",
                                           "musubi integrations login teams --no-wait --json"))
@click.argument("system", type=click.Choice(("teams", "ado")))
@click.option("--no-wait", is_flag=True, help="Print the code and return; see the outcome with --status.")
@click.option("--status", "status_only", is_flag=True, help="Only show how the last sign-in went.")
@pass_state
def login(state: CliState, system: str, no_wait: bool, status_only: bool) -> None:
    """Sign the engine in to Entra ID for SYSTEM by device code (works over SSH: open the address anywhere).

    The engine keeps the token cache in the tenant's 0600 secrets file and refreshes it silently.
    --json prints JSON Lines: the code and address at once, then (unless --no-wait) the outcome.
    Exits 1 when the sign-in failed or the code expired.
    """
    import time

    client = state.client()

    def show(d: Any, human: Any) -> None:  # --json: one compact JSON object per line (JSON Lines)
        click.echo(json.dumps(d, ensure_ascii=False)) if state.json else human(d)

    if status_only:
        show(client.call(calls.integration_login_status(system)), _login_text)
        return
    started = client.call(calls.integration_login(system))
    show(started, lambda d: line(d["message"] or f"Open {d['verification_uri']} and enter {d['user_code']}."))
    if no_wait:
        return
    while True:
        time.sleep(2)
        now = client.call(calls.integration_login_status(system))
        if now["state"] != "pending" or now["user_code"] != started["user_code"]:
            break
    show(now, _login_text)
    if now["state"] != "signed_in":
        raise SystemExit(1)


def _login_text(d: Any) -> None:
    if d["state"] == "signed_in":
        line(f"{d['system']}: signed in" + (f" as {d['account']}" if d["account"] else "") + "; the engine refreshes "
             "the token itself.")
    elif d["state"] == "pending":
        line(f"{d['system']}: waiting for the code {d['user_code']} at {d['verification_uri']} "
             f"(until {d['expires_at']}).")
    elif d["state"] == "failed":
        line(f"{d['system']}: sign-in failed: {d['error']}")
    else:
        line(f"{d['system']}: not signed in; run: musubi integrations login {d['system']}")
