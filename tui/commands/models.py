"""``musubi models list|show|route`` and ``musubi models allowed show|set|clear``."""

from __future__ import annotations

from typing import Any

import click

from core.client import seg
from core.models.kinds import CONTENT_KINDS, TASK_KINDS, TIERS
from tui.output import CliState, emit, example, fields, group, line, pass_state, table

cli_group = group(
    "models",
    "The model registry: prices per million tokens with their source and date, context windows, "
    "capability tiers; the tenant's allowed models; the router's choice for a task.",
    "musubi models list",
    "musubi models show claude-sonnet-5",
    "musubi models route --task review --input-tokens 40000",
    "musubi models allowed set gpt-5.4 claude-sonnet-5",
)


def _usd(v: str) -> str:
    return "0" if v in ("0", "0.0") else f"{float(v):g}"


@cli_group.command("list", epilog=example("musubi models list", "musubi models list --provider anthropic --json"))
@click.option("--provider", metavar="P", help="Only this provider (openai, azure, anthropic, google, mistral, ollama).")
@click.option("--tier", type=click.Choice(TIERS), help="Only this capability tier.")
@pass_state
def list_(state: CliState, provider: str | None, tier: str | None) -> None:
    """Every known model: shipped data plus your config.toml [[models]]."""
    data = state.client().get("/v1/models")
    data["models"] = [m for m in data["models"] if (not provider or m["provider"] == provider) and (not tier or m["tier"] == tier)]

    def human(d: dict[str, Any]) -> None:
        table(
            ("ID", "PROVIDER", "TIER", "CONTEXT", "MAX OUT", "IN $/M", "CACHED $/M", "OUT $/M", "TOKENS", "ALLOWED", "CHECKED"),
            ((m["id"], m["provider"], m["tier"], f"{m['context_window']:,}", f"{m['max_output']:,}",
              _usd(m["input_per_mtok"]), _usd(m["cached_input_per_mtok"]), _usd(m["output_per_mtok"]),
              "exact" if m["exact_tokens"] else "estimate", m["allowed"], m["prices_checked"]) for m in d["models"]),
            title=f"models of tenant {d['tenant']}" + (" (allowed set pinned)" if d["allowed"] else ""),
            empty="no model matches.", justify_right=("CONTEXT", "MAX OUT", "IN $/M", "CACHED $/M", "OUT $/M"),
        )

    emit(state, data, human)


@cli_group.command(epilog=example("musubi models show gpt-5.4", "musubi models show azure/gpt-5.4 --json"))
@click.argument("model_id", metavar="ID")
@pass_state
def show(state: CliState, model_id: str) -> None:
    """One model by id or alias (an unknown name lists close matches)."""
    data = state.client().get(f"/v1/models/{seg(model_id)}")
    keys = ["id", "provider", "aliases", "tier", "context_window", "max_output", "input_per_mtok",
            "cached_input_per_mtok", "output_per_mtok", "long_context", "tokenizer", "exact_tokens", "deployment",
            "base_url", "prices_checked", "source", "origin", "allowed"]
    emit(state, data, lambda d: fields(d, [k for k in keys if k in d], title=f"model {d['id']}"))


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
    data = state.client().post("/v1/models/route", {"task": task, "input_tokens": input_tokens, "kind": kind})

    def human(d: dict[str, Any]) -> None:
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


def _show_allowed(d: dict[str, Any]) -> None:
    if d.get("allowed"):
        line(f"tenant {d['tenant']} may use: {', '.join(d['allowed'])}.")
    else:
        line(f"tenant {d.get('tenant', '')} may use every model (no pin).")


@allowed.command("show", epilog=example("musubi models allowed show --json"))
@pass_state
def allowed_show(state: CliState) -> None:
    """The tenant's pinned models."""
    emit(state, state.client().get("/v1/models/allowed"), _show_allowed)


@allowed.command("set", epilog=example("musubi models allowed set gpt-5.4 sonnet"))
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@pass_state
def allowed_set(state: CliState, models: tuple[str, ...]) -> None:
    """Pin the tenant to MODEL... (ids or aliases; replaces the previous pin)."""
    emit(state, state.client().put("/v1/models/allowed", {"models": list(models)}), _show_allowed)


@allowed.command("clear", epilog=example("musubi models allowed clear"))
@pass_state
def allowed_clear(state: CliState) -> None:
    """Remove the pin: every model is allowed again."""
    emit(state, state.client().delete("/v1/models/allowed"), _show_allowed)
