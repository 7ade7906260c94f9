"""``musubi tune ...``: fine-tuning (issue 19; docs/finetune.md).

Two blocks, one per feature of issue 19: the local embedder (``embedder``, ``list``, ``activate``,
``rollback``, ``delete``) and provider fine-tuning (``dataset``, ``submit``, ``status``, ``cancel``).
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
    "musubi tune embedder --budget 900",
)


# -- local embedder (issue 19) ------------------------------------------------------------------------


def _measures(m: dict[str, Any]) -> str:
    if m.get("r10") is None:
        return "-"
    return f"R@1 {m['r1']:.3f}  R@10 {m['r10']:.3f}  MRR {m['mrr']:.3f}"


@cli_group.command("embedder", epilog=example("musubi tune embedder", "musubi tune embedder --budget 1800 --detach",
                                              "musubi --project shop tune embedder --json"))
@click.option("--budget", metavar="SECONDS", default="600", show_default=True,
              help="Training time budget (60 to 86,400 s); training stops there and the model is judged as is.")
@click.option("--detach", is_flag=True, help="Print the job id and return at once; the job runs in the engine.")
@pass_state
def embedder(state: CliState, budget: str, detach: bool) -> None:
    """Tune the search embedder on this project's own pairs, and activate it only if it is better.

    Pairs come from accepted trace links, docstrings and commit messages; files are split between
    training and a held-out set. The tuned model replaces the serving one only when its held-out
    R@10 rises by at least 0.01 and its MRR does not drop; activation re-embeds the index while
    search keeps answering from the old one. Exit 0 when the job is done (activated or kept the
    current model: see the decision), 1 if it failed, was cancelled or interrupted.
    """
    from core.api import calls
    from tui.follow import follow

    client = state.client()
    job = client.call(calls.tune_embed_start(budget))["job"]  # type: ignore[arg-type]  # the engine checks it
    final = follow(state, dict(job), detach=detach)
    if not detach and not state.json and final.get("result"):
        r = final["result"]
        line(f"version {r['version']}: {r['decision']}")


@cli_group.command("list", epilog=example("musubi tune list", "musubi tune list --json"))
@pass_state
def list_(state: CliState) -> None:
    """List the project's tuned embedders, newest first: state, held-out measures, training data, decision."""
    from core.api import calls

    data = state.client().call(calls.tune_embedders())

    def human(d: Any) -> None:
        line(f"project {d['project']}: version {d['serving'] or '0 (the base model)'} serves search")
        table(("V", "STATE", "CURRENT", "TUNED", "PAIRS (train/held-out)", "CREATED (UTC)", "DISK"),
              ((v["version"], v["state"], _measures(v["current"]), _measures(v["tuned"]),
                f"{sum(v['pairs']['train'].values())}/{sum(v['pairs']['held_out'].values())}",
                when(v["created_at"]), _mb(v["files_bytes"] + (v["vectors_bytes"] or 0)))
               for v in d["versions"]), empty="no tuned embedders yet: musubi tune embedder")
        for v in d["versions"][:1]:
            if v["decision"]:
                line(f"version {v['version']}: {v['decision']}")
        vectors = [b for b in [d["base_vectors_bytes"], *(v["vectors_bytes"] for v in d["versions"])] if b]
        files = sum(v["files_bytes"] for v in d["versions"])
        line(f"disk: {len(vectors)} vector folder(s) {_mb(sum(vectors))}, tuned versions' files {_mb(files)}")

    emit(state, data, human)


def _activation(state: CliState, data: Any, detach: bool) -> None:
    from tui.follow import follow

    if not state.json and not detach:
        line(f"re-embedding the index with version {data['version']}; search serves the current model until done")
    follow(state, dict(data["job"]), detach=detach)


@cli_group.command("activate", epilog=example("musubi tune activate 3", "musubi tune activate 0 --detach"))
@click.argument("version", metavar="VERSION")
@click.option("--detach", is_flag=True, help="Print the job id and return at once; the job runs in the engine.")
@pass_state
def activate(state: CliState, version: str, detach: bool) -> None:
    """Serve tuned embedder VERSION (0: the base model); only a version that passed the rule can serve."""
    from core.api import calls

    data = state.client().call(calls.tune_embed_activate(version))  # type: ignore[arg-type]  # the engine checks it
    _activation(state, data, detach)


@cli_group.command("rollback", epilog=example("musubi tune rollback", "musubi tune rollback --json"))
@click.option("--detach", is_flag=True, help="Print the job id and return at once; the job runs in the engine.")
@pass_state
def rollback(state: CliState, detach: bool) -> None:
    """Serve the model that served before the current one (the base model if none)."""
    from core.api import calls

    _activation(state, state.client().call(calls.tune_embed_rollback()), detach)


@cli_group.command("delete", epilog=example("musubi tune delete 2", "musubi --project shop tune delete 2 --json"))
@click.argument("version", metavar="VERSION")
@pass_state
def delete(state: CliState, version: str) -> None:
    """Delete tuned embedder VERSION's files for good (its model, training data and vectors).

    Its record stays: musubi tune list shows it as deleted, with what it was trained on and its measures;
    it can no longer be activated. Refused, changing nothing, for the version serving search (roll
    back or activate another first) and while a job trains or activates it (cancel it first).
    Exit 0 deleted; 1 refused or unknown version; 2 VERSION not a version number (0, the base
    model, cannot be deleted); 4 without embedder.tune.
    """
    from core.api import calls

    data = state.client().call(calls.tune_embed_delete(version))
    emit(state, data, lambda d: line(f"deleted version {d['version']} of project {d['project']}: "
                                     f"{_mb(d['freed_bytes'])} freed; its record stays in: musubi tune list"))


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


def _mb(n: int) -> str:
    """Bytes as megabytes, one decimal."""
    return f"{n / 1e6:.1f} MB"
