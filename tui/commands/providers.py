"""``musubi providers list|test|stats``: the engine's LLM providers (docs/providers.md)."""

from __future__ import annotations

from typing import Any

import click

from core.api import calls
from core.errors import EXIT_ERROR
from tui.output import CliState, emit, example, group, line, pass_state, table

cli_group = group(
    "providers",
    "The engine's LLM providers (OpenAI, Azure OpenAI, Anthropic, OpenAI-compatible, replay): what is configured "
    "and whether each answers.",
    "musubi providers list",
    "musubi providers test --json",
    "musubi providers test anthropic",
)


@cli_group.command("list", epilog=example("musubi providers list", "musubi providers list --json"))
@pass_state
def list_(state: CliState) -> None:
    """List the configured providers (never a key), and what to set for models no provider serves."""
    data = state.client().call(calls.providers_list())

    def human(d: Any) -> None:
        if d["config_error"]:
            line(f"config.toml has an error, so only the variables apply: {d['config_error']}")
        table(("NAME", "KIND", "STATUS", "SERVES", "BASE URL", "KEY", "SOURCE"),
              ((p["name"], p["label"], p["status"], ", ".join(p["serves"] + p["models"]) or "-",
                p["base_url"] or "(default)", "set" if p["key_set"] else "-", p["source"]) for p in d["providers"]),
              empty="no provider is configured", wrap=("SOURCE",))
        for p in d["providers"]:
            if p["problem"]:
                line(f"{p['name']}: {p['problem']}")
        for h in d["hints"]:
            line(f"no provider for {h['provider']} models: {h['hint']}.")
        if d["in_flight"]:
            line(f"{d['in_flight']} call(s) in flight.")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi providers test", "musubi providers test openai --json"))
@click.argument("name", required=False)
@pass_state
@click.pass_context
def test(ctx: click.Context, state: CliState, name: str | None) -> None:
    """Make one tiny call per provider (or to NAME) and show each answer; exit 1 if any failed.

    A failure shows the vendor's own error text, with keys redacted.  The call costs a few
    tokens (one output token) on the provider's cheapest chat model.
    """
    data = state.client().call(calls.providers_test(name))

    def human(d: Any) -> None:
        table(("NAME", "KIND", "RESULT", "MS", "DETAIL"),
              ((r["name"], r["label"], "ok" if r["ok"] else "FAILED",
                "-" if r["latency_ms"] is None else f"{r['latency_ms']:.0f}", r["detail"]) for r in d["results"]),
              empty="no provider is configured (see: musubi providers list)", justify_right=("MS",), wrap=("DETAIL",))

    emit(state, data, human)
    if not data["ok"]:
        ctx.exit(EXIT_ERROR)


@cli_group.command(epilog=example("musubi providers stats", "musubi providers stats --json"))
@pass_state
def stats(state: CliState) -> None:
    """p50/p95/p99 latency of this tenant's model calls per provider and model (since the engine started)."""
    data = state.client().call(calls.provider_stats())

    def human(rows: Any) -> None:
        table(("PROVIDER", "MODEL", "CALLS", "P50 MS", "P95 MS", "P99 MS"),
              ((r["provider"], r["model"], f"{r['count']:,}", f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}",
                f"{r['p99_ms']:.0f}") for r in rows),
              empty="no model calls in this tenant since the engine started",
              justify_right=("CALLS", "P50 MS", "P95 MS", "P99 MS"))

    emit(state, data, human)
