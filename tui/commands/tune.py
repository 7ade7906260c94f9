"""``musubi tune ...``: fine-tuning (docs/finetune.md).

Two blocks, one per feature of issue 19: the local embedder (``embedder``, ``list``, ``activate``,
``rollback``) and provider fine-tuning.
"""

from __future__ import annotations

from typing import Any

import click

from tui.output import CliState, emit, example, group, line, pass_state, table, when

cli_group = group(
    "tune",
    "Fine-tuning: adapt the local search embedder to the project's code, and provider fine-tuning jobs from "
    "approved run artefacts.",
    "musubi tune embedder --budget 900",
    "musubi tune list",
    "musubi tune rollback --json",
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
        table(("V", "STATE", "CURRENT", "TUNED", "PAIRS (train/held-out)", "CREATED (UTC)"),
              ((v["version"], v["state"], _measures(v["current"]), _measures(v["tuned"]),
                f"{sum(v['pairs']['train'].values())}/{sum(v['pairs']['held_out'].values())}",
                when(v["created_at"])) for v in d["versions"]), empty="no tuned embedders yet: musubi tune embedder")
        for v in d["versions"][:1]:
            if v["decision"]:
                line(f"version {v['version']}: {v['decision']}")

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

