"""What the Search screen says about its embedder (issue 19): the serving line and the versions' rows.

Plain functions over ``GET /v1/tune/embedders`` (``core.api.tune_embed.TunedEmbedders``) and job
rows, so they are tested without an app.  Every state is a symbol and a word, never colour alone.
docs/finetune.md and docs/tui.md#search describe what they show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core import limits
from tui.screens import dashboard_jobs

if TYPE_CHECKING:
    from core.api.tune_embed import Measures, TunedEmbedder, TunedEmbedders

BASE_MODEL = "all-MiniLM-L6-v2"
KINDS = ("tune.embed", "tune.activate")
# version state -> (symbol, word); the rule's reason is in the version's decision
STATES: dict[str, tuple[str, str]] = {
    "active": ("●", "active"), "ready": ("○", "ready"), "rejected": ("✘", "kept out"),
    "retired": ("◌", "retired"), "training": ("↻", "training"), "failed": ("✘", "failed"),
    "cancelled": ("⊘", "cancelled"), "interrupted": ("↯", "interrupted"), "stopped": ("■", "stopped"),
    "deleted": ("∅", "deleted"),
}


def measures(m: Measures | Mapping[str, Any] | None) -> str:
    """``R@1 0.500 R@10 0.800 MRR 0.610``, or ``-`` when not measured."""
    if not m or m.get("r10") is None:
        return "-"
    return f"R@1 {m['r1']:.3f} R@10 {m['r10']:.3f} MRR {m['mrr']:.3f}"


def serving(data: TunedEmbedders) -> str:
    """Which model serves search: the base model, or tuned version N with its held-out R@10 and MRR."""
    v = next((v for v in data["versions"] if v["version"] == data["serving"]), None)
    if not data["serving"] or v is None:
        return f"base {BASE_MODEL}"
    m = v["tuned"]
    held = f" · held-out R@10 {m['r10']:.3f} MRR {m['mrr']:.3f}" if m.get("r10") is not None else ""
    return f"tuned v{v['version']}{held}"


def line(data: TunedEmbedders | None, job: Mapping[str, Any] | None, problem: str | None = None) -> str:
    """The Search screen's embedder line: what serves, then the running tuning/activation job."""
    if problem:
        return f"Embedder: {problem}"
    if data is None:
        return "Embedder: loading…"
    text = f"Embedder: {serving(data)}"
    if job is not None:
        text += " · " + job_words(job)
    return text + " · v versions"


def job_words(job: Mapping[str, Any]) -> str:
    """``↻ training 3/9 steps`` while it runs; ``✔ activation done`` or ``✘ training failed: why`` after."""
    state = str(job.get("state"))
    sym = dashboard_jobs.STATES.get(state, ("?", ""))[0]
    word = "activation" if job.get("kind") == "tune.activate" else "training"
    if state in dashboard_jobs.ACTIVE:
        done = dashboard_jobs.progress(job)
        return f"{sym} {word} {state}" + (f" {done}" if done else "")
    if state == "failed":
        return f"{sym} {word} failed: {job.get('error') or 'no reason given'}"
    return f"{sym} {word} {state}"


def pairs(v: TunedEmbedder) -> str:
    """Training pairs per kind (held-out after the slash): ``link 3/1 docstring 40/9 commit 12/2``."""
    train, held = v["pairs"].get("train") or {}, v["pairs"].get("held_out") or {}
    kinds = [k for k in ("link", "docstring", "commit") if train.get(k) or held.get(k)]
    kinds += sorted(k for k in {*train, *held} if k not in kinds)
    return " ".join(f"{k} {train.get(k, 0)}/{held.get(k, 0)}" for k in kinds) or "-"


def state(v: TunedEmbedder, serving_version: int) -> str:
    sym, word = STATES.get(v["state"], ("?", v["state"]))
    return f"{'▶' if v['version'] == serving_version else ' '}{sym} {word}"


def rows(data: TunedEmbedders) -> list[tuple[str, ...]]:
    """Table rows: version, state (▶ serving), created, pairs train/held-out, base and tuned R@1/R@10/MRR."""
    out: list[tuple[str, ...]] = []
    for v in data["versions"]:
        train, held = (sum((v["pairs"].get(side) or {}).values()) for side in ("train", "held_out"))
        out.append((f"v{v['version']}", state(v, data["serving"]), v["created_at"][:10], f"{train}/{held}",
                    _short(v["current"]), _short(v["tuned"])))
    return out


def _short(m: Measures) -> str:
    if m.get("r10") is None:
        return "-"
    return f"{m['r1']:.2f}/{m['r10']:.2f}/{m['mrr']:.2f}"


def details(v: TunedEmbedder | None, serving_version: int) -> str:
    """The selected version in full: measures before and after, and why it was activated or kept out."""
    if v is None:
        return ("No tuned versions yet: t tunes the embedder on this project's pairs (trace links, docstrings, "
                "commit messages); it serves only if held-out R@10 rises by 0.01 and MRR does not drop.")
    serves = " (serving)" if v["version"] == serving_version else ""
    lines = [f"v{v['version']}{serves} · {STATES.get(v['state'], ('?', v['state']))[1]} · by {v['created_by']}",
             f"base  {measures(v['current'])}", f"tuned {measures(v['tuned'])}",
             f"pairs train/held-out: {pairs(v)}"]
    if v.get("decision"):
        lines.append(str(v["decision"]))
    return "\n".join(lines)


def default_budget() -> int:
    """The engine's default training budget in seconds (the request model's own default)."""
    from core.api.tune_embed import TuneEmbedStart  # msgspec only, as core.api.calls

    return int(TuneEmbedStart().budget_s)


def budget_error(value: str) -> str | None:
    """Why ``value`` is not a training budget in seconds (None: it is one); the engine checks it again."""
    text = value.replace(",", "").replace("_", "").strip()
    lo, hi = int(limits.TUNE_BUDGET_S.lo), int(limits.TUNE_BUDGET_S.hi)
    if not text.isdigit():
        return f"the budget is whole seconds, {lo:,} to {hi:,} (e.g. 900)"
    if not lo <= int(text) <= hi:
        return f"the budget is {lo:,} to {hi:,} seconds, not {int(text):,}"
    return None


def ours(job: Mapping[str, Any], project: str | None) -> bool:
    """A tuning or activation job of ``project`` (its params name the project)."""
    params = job.get("params") or {}
    return job.get("kind") in KINDS and bool(project) and project in (job.get("project"), params.get("project"))


def version_name(version: int) -> str:
    """``tuned v3``, or ``base all-MiniLM-L6-v2`` for version 0."""
    return f"tuned v{version}" if version else f"base {BASE_MODEL}"


def rollback_target(data: TunedEmbedders) -> str:
    """What a rollback serves (the engine's rule, core/tune/service.py): the retired version activated last,
    or the base model when none was."""
    retired = [v for v in data["versions"] if v["state"] == "retired" and v.get("activated_at")]
    last = max(retired, key=lambda v: str(v["activated_at"]))["version"] if retired else 0
    return version_name(last)


def switch_words(target: str, data: TunedEmbedders) -> str:
    """The confirm's body: what an activation or a rollback to ``target`` does, and what serves meanwhile."""
    now = version_name(data["serving"])
    return (f"The index is re-embedded with {target} as a job (its progress shows in this dialog). Search keeps "
            f"answering from the current index ({now}) until the job is done, then switches to {target}.")
