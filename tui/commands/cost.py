"""``musubi cost estimate|workflows``: what a run would cost before it starts."""

from __future__ import annotations

import glob as globmod
import os
from collections.abc import Mapping
from typing import Any

import click

from core.api import calls
from core.models.kinds import TASK_KINDS
from tui.output import CliState, abspath, emit, example, group, line, pass_state, table, warn

cli_group = group(
    "cost",
    "Estimate a run before it starts: exact token counts per file (estimates with a band where the "
    "provider publishes no tokenizer), cost low / expected / high, context fit and quota headroom per model.",
    "musubi cost estimate --model gpt-6.1-sol --model claude-sonnet-5-5 --glob 'src/**/*.py' --workflow implement",
    "musubi cost estimate --model gemini-3.5-flash-lite --file README.md --task summarise --json",
    "musubi cost workflows",
)


def expand(files: tuple[str, ...], globs: tuple[str, ...]) -> list[str]:
    """Absolute paths of ``files`` plus every regular file ``globs`` match (``**`` recurses); no duplicates."""
    out: dict[str, None] = {}
    for f in files:
        p = abspath(f)
        if not os.path.exists(p):
            raise click.UsageError(f"--file {f}: no such file.")
        if os.path.isdir(p):
            raise click.UsageError(f"--file {f} is a directory; use --glob '{f.rstrip('/')}/**/*' for a tree.")
        out[p] = None
    for g in globs:
        hits = [h for h in sorted(globmod.glob(os.path.expanduser(g), recursive=True)) if os.path.isfile(h)]
        if not hits:
            raise click.UsageError(f"--glob {g!r} matches no file (quote it so the shell does not expand it).")
        for h in hits:
            out[abspath(h)] = None
    return list(out)


def _tok(t: dict[str, Any]) -> str:
    if t["exact"]:
        return f"{t['tokens']:,}"
    return f"~{t['tokens']:,} ({t['low']:,}-{t['high']:,})"


def _range(d: dict[str, int]) -> str:
    """``expected (min-max)`` over the three bounds (cached input is largest at *low*, 0 at *high*)."""
    vals = (d["low"], d["expected"], d["high"])
    lo, hi = min(vals), max(vals)
    return f"{d['expected']:,}" if lo == hi else f"{d['expected']:,} ({lo:,}-{hi:,})"


def _short(name: str) -> str:
    try:
        rel = os.path.relpath(name)
    except ValueError:
        return name
    return rel if not rel.startswith("..") else name


def render(d: Mapping[str, Any]) -> None:
    """The human form of an estimate: files, then one row per model, then notes."""
    families = list(dict.fromkeys(fam for f in d["files"] for fam in f["tokens"]))
    table(["FILE", "BYTES", *[fam.upper() for fam in families]],
          ([_short(f["name"]), f"{f['bytes']:,}", *[_tok(f["tokens"][fam]) if fam in f["tokens"] else "-" for fam in families]]
           for f in d["files"]),
          title=f"{d['totals']['files']} file(s), {d['totals']['bytes']:,} bytes", empty="no files (prompts only).",
          justify_right=("BYTES",))
    what = f"workflow {d['workflow']}" if d.get("workflow") else f"task {d.get('task')}"
    steps = " -> ".join(s["task"] for s in d["steps"])
    table(("MODEL", "INPUT", "CACHED", "OUTPUT", "COST USD (LOW-HIGH)", "FITS", "QUOTA"),
          (_model_row(m) for m in d["models"]),
          title=f"estimate for {what} ({steps})", justify_right=("INPUT", "CACHED", "OUTPUT"), wrap=("QUOTA",))
    if any(not m["exact_tokens"] for m in d["models"]):
        line("* estimated tokens: no offline tokenizer is published for this model; the range is the estimate band.")
    src = {s["output_source"] for m in d["models"] for s in m["steps"]}
    line("expected output: " + ("your ledger history (median; high = p90)" if src == {"history"} else
                                "per-task defaults until the ledger has history" if src == {"default"} else
                                "ledger history where there is enough, else per-task defaults") + ".")
    for m in d["models"]:
        if m.get("does_not_fit"):
            line(f"{m['model']} does not fit: {m['does_not_fit']}.")
        if m.get("chunking"):
            line(f"{m['model']}: {m['chunking']}.")
    r = d.get("retrieval")
    if r:
        for mid, p in r["models"].items():
            line(f"retrieval context for {mid}: {p['used']:,} of {r['budget']:,} tokens, {p['included']} block(s) "
                 f"from {len(p['files'])} file(s) (an actual pack: musubi context).")
    for a in d.get("assumptions", []):
        line(f"assumed {a}")
    for w in d.get("warnings", []):
        warn(w)
    for s in d.get("skipped", []):
        warn(f"skipped {_short(s['name'])}: {s['reason']}")


def _model_row(m: dict[str, Any]) -> tuple[str, ...]:
    name = m["model"] + ("" if m["exact_tokens"] else " *")
    if m.get("does_not_fit"):
        return (name, "-", "-", "-", "-", "does not fit", "-")
    return (name, _range(m["input_tokens"]), _range(m["cached_input_tokens"]), _range(m["output_tokens"]),
            f"{m['cost_usd']['expected']} ({m['cost_usd']['low']}-{m['cost_usd']['high']})",
            "yes" if m["fits"] else f"no: {m['max_chunks']} chunks", _quota(m))


def _quota(m: dict[str, Any]) -> str:
    if m.get("does_not_fit"):
        return "-"
    if m["trips"]:
        return "would trip " + ", ".join(m["trips"])
    if m["trips_high"]:
        return "may trip " + ", ".join(m["trips_high"]) + " (high)"
    if not m["quotas"]:
        return "no quotas"
    tight = min(m["quotas"], key=lambda q: q["headroom_after"]["high"])
    return f"ok; {tight['metric']}/{tight['period']} {tight['headroom_after']['high']:.0%} left (high)"


@cli_group.command(epilog=example(
    "musubi cost estimate --model gpt-5.4 --glob 'src/**/*.py' --workflow implement",
    "musubi cost estimate --model claude-opus-5-5 --model gpt-6-astra --file spec.md --workflow spec",
    "musubi cost estimate --model gemini-3.5-flash-lite --file notes.md --task summarise --json",
))
@click.option("--model", "models", multiple=True, required=True, metavar="M", help="Model id or alias (repeatable).")
@click.option("--file", "files", multiple=True, metavar="F", help="A file to include (repeatable).")
@click.option("--glob", "globs", multiple=True, metavar="G", help="Files matching a glob, '**' recursing (repeatable; quote it).")
@click.option("--workflow", metavar="W", help="Price every step of workflow W (see: musubi cost workflows).")
@click.option("--task", type=click.Choice(TASK_KINDS), help="Price one call of this task kind (default: implementation).")
@click.option("--retrieval-tokens", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Tokens of retrieved context each step adds (code search budget).")
@click.option("--retrieval-task", metavar="TEXT", help="Count the retrieved context as an actual pack of the "
              "project's code for TEXT (needs the project indexed: musubi index), per model's tokenizer.")
@click.option("--retrieval-budget", metavar="N", help="Token budget of that pack (with --retrieval-task).")
@click.option("--no-cache", is_flag=True, help="Assume no prompt-cache hits (the high bound always does).")
@pass_state
def estimate(state: CliState, models: tuple[str, ...], files: tuple[str, ...], globs: tuple[str, ...],
             workflow: str | None, task: str | None, retrieval_tokens: int, retrieval_task: str | None,
             retrieval_budget: str | None, no_cache: bool) -> None:
    """Tokens, cost range, context fit and quota headroom per model, with a per-file breakdown."""
    if workflow and task:
        raise click.UsageError("give --workflow or --task, not both.")
    if (retrieval_task is None) != (retrieval_budget is None):
        raise click.UsageError("give --retrieval-task TEXT and --retrieval-budget N together.")
    if retrieval_task is not None and retrieval_tokens:
        raise click.UsageError("give --retrieval-tokens (a guess) or --retrieval-task with --retrieval-budget "
                               "(an actual pack), not both.")
    paths = expand(files, globs)
    if not paths and not workflow and retrieval_task is None:
        raise click.UsageError("nothing to estimate: give --file/--glob, a --workflow whose prompts to price, "
                               "or --retrieval-task with --retrieval-budget.")
    call = calls.cost_estimate(list(models), paths, workflow=workflow or None, task=None if workflow else task,
                               retrieval_tokens=retrieval_tokens, cache=not no_cache, retrieval_task=retrieval_task,
                               retrieval_budget=retrieval_budget)
    emit(state, state.client().call(call), render)


@cli_group.command(epilog=example("musubi cost workflows", "musubi cost workflows --json"))
@pass_state
def workflows(state: CliState) -> None:
    """The built-in workflows an estimate can price."""
    data = state.client().call(calls.cost_workflows())
    emit(state, data, lambda d: table(("WORKFLOW", "STEPS", "DESCRIPTION"),
                                      ((w["name"], " -> ".join(w["steps"]), w["description"]) for w in d["workflows"]),
                                      wrap=("DESCRIPTION",)))
