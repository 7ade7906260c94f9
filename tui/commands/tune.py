"""``musubi tune ...``: fine-tuning (issue 19; docs/finetune.md).

Two parts, each in its labelled block below (merged from two branches): provider fine-tuning
(``tune dataset|submit|status|cancel``) and the local embedder.
"""

from __future__ import annotations

from typing import Any

import click

from core.api.calls import path_segment
from tui.output import CliState, emit, example, fields, group, line, pass_state, table, when

cli_group = group(
    "tune",
    "Fine-tuning: chat datasets from approved run artefacts trained at OpenAI or Azure OpenAI, and the local "
    "embedder adapted to the team's code.",
    "musubi tune dataset --base-model gpt-4.1-mini",
    "musubi tune submit d-0123456789ab --provider openai",
    "musubi tune status t-0123456789ab --json",
)


# -- provider fine-tuning (issue 19) ---------------------------------------------------------------


@cli_group.command(epilog=example("musubi tune dataset --base-model gpt-4.1-mini",
                                  "musubi tune dataset --base-model azure/gpt-4.1-mini --epochs 2 --json"))
@click.option("--base-model", required=True, metavar="MODEL",
              help="The registry model to fine-tune (it prices the training; see docs/finetune.md#prices).")
@click.option("--epochs", metavar="N", help="Passes over the data the training will make (1 to 50; default 3).")
@pass_state
def dataset(state: CliState, base_model: str, epochs: str | None) -> None:
    """Build a chat fine-tuning dataset from the approved artefacts of the runs you can see.

    Secrets and e-mail addresses are scrubbed, every line is validated, and the training tokens
    and cost are estimated and checked against the tenant's quotas (a refusal exits 3 and
    stores nothing). Inside a project only that project's runs count."""
    body: dict[str, Any] = {"base_model": base_model}
    if epochs is not None:
        body["epochs"] = epochs
    data = state.client().post("/v1/tune/datasets", body)

    def human(d: dict[str, Any]) -> None:
        line(f"dataset {d['id']}: {d['examples']} examples, {d['tokens']:,} tokens x {d['epochs']} epochs = "
             f"{d['trained_tokens']:,} trained tokens, about ${d['est_cost_usd']} on {d['base_model']}.")
        scrubbed = ", ".join(f"{k} {v}" for k, v in sorted(d["scrubbed"].items())) or "nothing"
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(d["skipped"].items())) or "none"
        line(f"scrubbed: {scrubbed}; artefacts left out: {skipped}; file: {d['path']}")
        line(f"Submit it with: musubi tune submit {d['id']} --provider "
             f"{'azure' if d['base_model'].startswith('azure/') else 'openai'}")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi tune submit d-0123456789ab --provider openai",
                                  "musubi tune submit d-0123456789ab --provider azure --suffix billing --json"))
@click.argument("dataset_id", metavar="DATASET")
@click.option("--provider", required=True, type=click.Choice(["openai", "azure"]),
              help="Where to train: OpenAI or Azure OpenAI (the provider configured in this engine).")
@click.option("--epochs", metavar="N", help="Override the dataset's epochs (1 to 50).")
@click.option("--suffix", metavar="TEXT", help="Up to 18 letters, digits, - or _ in the fine-tuned model's name.")
@click.option("--poll-ms", metavar="MS", help="How often the engine asks the provider (default 30,000 ms).")
@pass_state
def submit(state: CliState, dataset_id: str, provider: str, epochs: str | None, suffix: str | None,
           poll_ms: str | None) -> None:
    """Upload DATASET and start a fine-tuning job at the provider (an engine job polls it).

    On success the fine-tuned model is added to the tenant's model registry with its prices
    and lifecycle. Needs quotas.manage."""
    body: dict[str, Any] = {"dataset": dataset_id, "provider": provider}
    for k, v in (("epochs", epochs), ("suffix", suffix), ("poll_ms", poll_ms)):
        if v is not None:
            body[k] = v
    data = state.client().post("/v1/tune/jobs", body)

    def human(d: dict[str, Any]) -> None:
        line(f"fine-tuning job {d['id']} queued at {d['provider_name']} on {d['base_model']} "
             f"({d['epochs']} epochs, about ${d['est_cost_usd']}); engine job {d['job']}.")
        line(f"Follow it with: musubi tune status {d['id']}")

    emit(state, data, human)


_SHOWN = ["id", "state", "vendor_status", "provider", "provider_name", "base_model", "dataset", "epochs", "job",
          "file_id", "vendor_job_id", "fine_tuned_model", "registered_model", "trained_tokens", "est_cost_usd",
          "cost_usd", "error", "created_by", "created_at", "finished_at"]


@cli_group.command(epilog=example("musubi tune status", "musubi tune status t-0123456789ab --json"))
@click.argument("tune_id", metavar="[JOB]", required=False)
@click.option("--limit", metavar="N", help="At most N jobs (1 to 1,000), newest first.")
@pass_state
def status(state: CliState, tune_id: str | None, limit: str | None) -> None:
    """Show fine-tuning JOB with the provider's latest events, or list the jobs you can see."""
    client = state.client()
    if tune_id is None:
        data = client.get("/v1/tune/jobs", {"limit": limit} if limit else None)
    else:
        data = client.get(f"/v1/tune/jobs/{path_segment(tune_id)}")

    def human(d: dict[str, Any]) -> None:
        if tune_id is None:
            table(("ID", "STATE", "VENDOR", "PROVIDER", "BASE", "MODEL", "CREATED (UTC)"),
                  ((j["id"], j["state"], j["vendor_status"] or "-", j["provider"], j["base_model"],
                    j["registered_model"] or "-", when(j["created_at"])) for j in d["jobs"]),
                  empty="no fine-tuning jobs; start one with: musubi tune submit DATASET --provider openai")
            return
        j = d["jobs"][0]
        fields({**j, "error": f"{j['error']['code']}: {j['error']['message']}" if j["error"] else None}, _SHOWN)
        for e in d.get("events") or []:
            line(f"  [{e.get('level')}] {e.get('message')}")
        if d.get("events_note"):
            line(d["events_note"])

    emit(state, data, human)


@cli_group.command(epilog=example("musubi tune cancel t-0123456789ab"))
@click.argument("tune_id", metavar="JOB")
@pass_state
def cancel(state: CliState, tune_id: str) -> None:
    """Cancel fine-tuning JOB: its engine job stops and cancels the provider's job."""
    data = state.client().post(f"/v1/tune/jobs/{path_segment(tune_id)}/cancel")

    def human(d: dict[str, Any]) -> None:
        line(f"cancelling fine-tuning job {d['id']}; see it with: musubi tune status {d['id']}")

    emit(state, data, human)
