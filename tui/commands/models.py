"""``musubi models list|show|route|import`` and ``musubi models allowed show|set|clear``."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import click

from core.api import calls
from core.models.kinds import CONTENT_KINDS, TASK_KINDS, TIERS
from tui.output import CliState, emit, example, fields, group, line, pass_state, table

if TYPE_CHECKING:
    from core.api.responses import Allowed, Imported, ModelEntry, ModelList, Routed

cli_group = group(
    "models",
    "The model registry: prices per million tokens with their source and date, context windows, "
    "capability tiers; the tenant's allowed models; the router's choice for a task.",
    "musubi models list",
    "musubi models show claude-sonnet-5",
    "musubi models route --task review --input-tokens 40000",
    "musubi models allowed set gpt-5.4 claude-sonnet-5-5",
    "musubi models import model_prices_and_context_window.json --dry-run",
)

# Lifecycle status as a symbol and a word (the word alone carries the meaning without colour).
STATUS_MARK = {"active": "● active", "preview": "◇ preview", "legacy": "○ legacy", "deprecated": "▲ deprecated",
               "retired": "✕ retired"}
FETCH_TIMEOUT_S = 30
MAX_TABLE_BYTES = 64 * 1024 * 1024


def _usd(v: str) -> str:
    """A price per million tokens as a plain number: "2", "0.075", "0" (never "2.0")."""
    return "0" if v in ("0", "0.0") else f"{float(v):g}"


def _long_context(lc: dict[str, Any]) -> str:
    return (f"above {lc['threshold']:,} prompt tokens: in {_usd(lc['input_per_mtok'])} / cached "
            f"{_usd(lc['cached_input_per_mtok'])} / out {_usd(lc['output_per_mtok'])} $/M (every token of the request)")


@cli_group.command("list", epilog=example("musubi models list", "musubi models list --all --provider google",
                                          "musubi models list --stale 90", "musubi models list --provider anthropic --json"))
@click.option("--provider", metavar="P", help="Only this provider (openai, azure, anthropic, google, mistral, ollama).")
@click.option("--tier", type=click.Choice(TIERS), help="Only this capability tier.")
@click.option("--all", "show_all", is_flag=True, help="Include retired models (hidden by default).")
@click.option("--stale", type=click.IntRange(min=0), metavar="DAYS",
              help="Only models whose prices were not checked within DAYS days.")
@pass_state
def list_(state: CliState, provider: str | None, tier: str | None, show_all: bool, stale: int | None) -> None:
    """Every known model with its lifecycle status: shipped data, config.toml and imports."""
    data = state.client().call(calls.models_list())
    today = date.fromisoformat(data["today"])
    cutoff = today - timedelta(days=stale) if stale is not None else None
    data["models"] = [
        m for m in data["models"]
        if (not provider or m["provider"] == provider) and (not tier or m["tier"] == tier)
        and (show_all or stale is not None or m.get("status") != "retired")
        and (cutoff is None or date.fromisoformat(m["prices_checked"]) < cutoff)
    ]

    def human(d: ModelList) -> None:
        what = f"prices not checked since {cutoff}" if cutoff else ("all models" if show_all else "models")
        table(
            ("ID", "STATUS", "PROVIDER", "TIER", "CONTEXT", "MAX OUT", "IN $/M", "CACHED $/M", "OUT $/M", "TOKENS",
             "ALLOWED", "CHECKED"),
            ((m["id"], STATUS_MARK.get(m.get("status", "active"), m.get("status")), m["provider"], m["tier"],
              f"{m['context_window']:,}", f"{m['max_output']:,}",
              _usd(m["input_per_mtok"]), _usd(m["cached_input_per_mtok"]), _usd(m["output_per_mtok"]),
              "exact" if m["exact_tokens"] else "estimate", m["allowed"], m["prices_checked"]) for m in d["models"]),
            title=f"{what} of tenant {d['tenant']}" + (" (allowed set pinned)" if d["allowed"] else ""),
            empty="no model matches.", justify_right=("CONTEXT", "MAX OUT", "IN $/M", "CACHED $/M", "OUT $/M"),
        )
        notes = [m["lifecycle_note"] for m in d["models"] if m.get("lifecycle_note") and m.get("status") != "active"]
        for n in notes:
            line(n)
        if not show_all and cutoff is None:
            line("retired models are hidden: musubi models list --all shows them.")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi models show gpt-5.4", "musubi models show azure/gpt-5.4 --json"))
@click.argument("model_id", metavar="ID")
@pass_state
def show(state: CliState, model_id: str) -> None:
    """One model by id or alias (an unknown name lists close matches)."""
    data = state.client().call(calls.model_show(model_id))
    keys = ["id", "status", "lifecycle_note", "replacement", "deprecated_on", "retires_on", "provider", "aliases",
            "tier", "capabilities", "context_window", "max_output", "input_per_mtok", "cached_input_per_mtok",
            "output_per_mtok", "long_context", "tokenizer", "exact_tokens", "deployment", "base_url", "prices_checked",
            "source", "lifecycle_source", "origin", "allowed"]

    def human(d: ModelEntry) -> None:
        view: dict[str, Any] = dict(d)
        for k in ("input_per_mtok", "cached_input_per_mtok", "output_per_mtok"):
            view[k] = _usd(view[k])  # the same figure `models list` prints
        for k in ("context_window", "max_output"):
            view[k] = f"{view[k]:,}"
        if d.get("long_context"):
            view["long_context"] = _long_context(d["long_context"])
        if d.get("status"):
            view["status"] = STATUS_MARK.get(d["status"], d["status"])
        for k in ("aliases", "capabilities"):
            if k in view:
                view[k] = ", ".join(view[k]) or "-"
        fields(view, [k for k in keys if k in view], title=f"model {d['id']}")

    emit(state, data, human)


def read_table(source: str) -> Any:
    """The JSON table at ``source``: a file, or an http(s) URL fetched once with a timeout."""
    if source.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        req = urllib.request.Request(source, headers={"User-Agent": "musubi-models-import"})
        try:
            with urllib.request.urlopen(req, timeout=FETCH_TIMEOUT_S) as resp:  # noqa: S310 (scheme checked above)
                raw = resp.read(MAX_TABLE_BYTES + 1)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise click.UsageError(f"cannot fetch {source}: {getattr(exc, 'reason', exc)}. "
                                   "Check the URL, or download the file and import it.") from None
    elif "://" in source:
        raise click.UsageError(f"{source}: only http(s) URLs or local files can be imported.")
    else:
        try:
            with open(source, "rb") as f:
                raw = f.read(MAX_TABLE_BYTES + 1)
        except OSError as exc:
            raise click.UsageError(f"cannot read {source}: {exc.strerror}.") from None
    if len(raw) > MAX_TABLE_BYTES:
        raise click.UsageError(f"{source} is larger than {MAX_TABLE_BYTES // (1024 * 1024)} MB; is it a price table?")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise click.UsageError(f"{source} is not JSON ({exc}); expected LiteLLM's "
                               "model_prices_and_context_window.json format.") from None


@cli_group.command("import", epilog=example(
    "musubi models import model_prices_and_context_window.json --dry-run",
    "musubi models import https://mirror.example.com/litellm/model_prices_and_context_window.json",
    "musubi models import prices.json --scope user --json",
))
@click.argument("source", metavar="FILE|URL")
@click.option("--dry-run", is_flag=True, help="Show the diff; change nothing.")
@click.option("--scope", type=click.Choice(("tenant", "user")), default="tenant", show_default=True,
              help="tenant: this tenant's override (needs quotas.manage); user: the engine owner's, for every tenant.")
@pass_state
def import_(state: CliState, source: str, dry_run: bool, scope: str) -> None:
    """Refresh prices, windows and retirement dates from a LiteLLM-format price table.

    Nothing is fetched unless SOURCE is a URL.  The diff lists new models, changed
    figures and models the table no longer lists; without --dry-run it is stored as
    the override of SCOPE (audited).
    """
    from core.models.importer import slim_table

    slim = slim_table(read_table(source))
    data = state.client().call(calls.models_import(slim, source, scope, dry_run))

    def human(d: Imported) -> None:
        rows: list[tuple[str, str, str]] = []
        for n in d["new"]:
            rows.append(("new", n["model"], f"{n['provider']}, tier {n['tier']}, in {_usd(n['input_per_mtok'])} / out "
                         f"{_usd(n['output_per_mtok'])} $/M, window {n['context_window']:,}"
                         + (f", retires {n['retires_on']}" if n.get("retires_on") else "")))
        for ch in d["changed"]:
            rows.append(("changed", ch["model"], "; ".join(f"{k}: {v['old']} -> {v['new']}" for k, v in ch["changes"].items())))
        for r in d["removed"]:
            rows.append(("not listed", r["model"], r["note"]))
        table(("CHANGE", "MODEL", "WHAT"), rows, title=f"import from {d['source']} ({d['scope']} scope)",
              empty="nothing to change: the registry already matches the table.", wrap=("WHAT",))
        line(f"{d['unchanged']} model(s) unchanged, {len(d['skipped'])} row(s) skipped.")
        if d["written"]:
            line(f"written to {d['override']} (audited as models.import).")
        elif d["dry_run"]:
            line("dry run: nothing written. Run again without --dry-run to store it.")

    emit(state, data, human)


@cli_group.command(epilog=example(
    "musubi models route --task implementation --input-tokens 120000",
    "musubi models route --task classify --input-tokens 800 --json",
))
@click.option("--task", type=click.Choice(TASK_KINDS), required=True, help="The kind of work.")
@click.option("--input-tokens", type=click.IntRange(min=0), required=True, metavar="N",
              help="Input size in o200k_base tokens (what `musubi cost estimate` counts).")
@click.option("--kind", type=click.Choice(CONTENT_KINDS), default="code", show_default=True,
              help="What the input is (sizes estimated tokenizers).")
@click.option("--all", "show_all", is_flag=True, help="Also list every rejected model and why.")
@pass_state
def route(state: CliState, task: str, input_tokens: int, kind: str, show_all: bool) -> None:
    """Which model the router picks for TASK, with fallbacks and the reasons."""
    data = state.client().call(calls.models_route(task, input_tokens, kind))

    def human(d: Routed) -> None:
        for ln in d["explanation"]:
            line(ln)
        rows = [("choice", d["choice"])] + [(f"fallback {i + 1}", f) for i, f in enumerate(d["fallbacks"])]
        if show_all:
            rows += [("rejected", r) for r in d["rejected"]]
        table(("ROLE", "MODEL", "PROVIDER", "TIER", "INPUT", "OUTPUT", "COST USD", "WHY NOT"),
              ((role, c["model"], c["provider"], c["tier"], f"{c['input_tokens']:,}", f"{c['output_tokens']:,}",
                c["cost_usd"], c.get("rejected")) for role, c in rows),
              justify_right=("INPUT", "OUTPUT", "COST USD"), wrap=("WHY NOT",))

    emit(state, data, human)


allowed = group(
    "allowed",
    "The models this tenant may use (pinned by an admin: needs 'quotas.manage'; audited). "
    "No pin means every model is allowed.",
    "musubi models allowed show",
    "musubi models allowed set gpt-5.4 claude-sonnet-5",
    "musubi models allowed clear",
)
cli_group.add_command(allowed)


def _show_allowed(d: Allowed) -> None:
    if d["allowed"]:
        line(f"tenant {d['tenant']} may use: {', '.join(d['allowed'])}.")
    else:
        line(f"tenant {d['tenant']} may use every model (no pin).")


@allowed.command("show", epilog=example("musubi models allowed show --json"))
@pass_state
def allowed_show(state: CliState) -> None:
    """The tenant's pinned models."""
    emit(state, state.client().call(calls.models_allowed()), _show_allowed)


@allowed.command("set", epilog=example("musubi models allowed set gpt-5.4 sonnet"))
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@pass_state
def allowed_set(state: CliState, models: tuple[str, ...]) -> None:
    """Pin the tenant to MODEL... (ids or aliases; replaces the previous pin)."""
    emit(state, state.client().call(calls.models_allow(list(models))), _show_allowed)


@allowed.command("clear", epilog=example("musubi models allowed clear"))
@pass_state
def allowed_clear(state: CliState) -> None:
    """Remove the pin: every model is allowed again."""
    emit(state, state.client().call(calls.models_allow_all()), _show_allowed)
