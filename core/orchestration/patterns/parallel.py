"""``parallel``: the children as branches, run at once within ``max_concurrency``.

The whole fan-out is declared to ``ctx.preflight`` before any branch starts, so a budget
that cannot hold it stops the step before a single call.  Branches start by ``priority``
(higher first, then their order in the file) as soon as the branches they wait for
(``after``) are done; a branch whose dependency failed is skipped.  A branch waiting for
others gets their outputs appended to its input.

Join rules: ``all`` (every branch must succeed), ``first`` (the first success wins; the
rest are cancelled), ``majority`` (more than half), ``quorum`` (``quorum`` of them).  As
soon as the rule is met the branches still running are cancelled; as soon as it cannot be
met any more the step fails, naming how many succeeded and how many were needed.  A
:class:`RunStop` in any branch cancels the others and propagates.
"""

from __future__ import annotations

import asyncio

from core.orchestration.contracts import ProviderError, StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import run_child, subtree_agents


def _needed(join: str, n: int, quorum: int | None) -> int:
    return {"all": n, "first": 1, "majority": n // 2 + 1, "quorum": quorum or n}[join]


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Run the branches; see the module docstring for the join rules."""
    o = step.options
    branches = {c.id: c for c in step.children}
    order = list(branches)
    prio = o.get("priority", {})
    after: dict[str, list[str]] = {b: list(o.get("after", {}).get(b, ())) for b in order}
    need = _needed(o.get("join", "all"), len(order), o.get("quorum"))
    limit = int(o.get("max_concurrency", 4))

    await ctx.preflight([a for c in step.children for a in subtree_agents(c)])

    results: dict[str, StepResult] = {}
    running: dict[asyncio.Task[StepResult], str] = {}
    pending = list(order)

    def ready() -> list[str]:
        ok = [b for b in pending if all(d in results for d in after[b])]
        return sorted(ok, key=lambda b: (-prio.get(b, 0), order.index(b)))

    def succeeded() -> list[str]:
        return [b for b in order if b in results and results[b].status == "done"]

    async def branch(bid: str) -> StepResult:
        text = input_text
        for d in after[bid]:
            text += f"\n\n## Output of {d}\n{results[d].output}"
        try:
            return await run_child(branches[bid], text, ctx)
        except ProviderError as exc:
            return StepResult("", status="failed", reason=f"{exc.provider} {exc.kind}: {exc}")

    try:
        while pending or running:
            for bid in ready():
                if len(running) >= limit:
                    break
                failed_dep = next((d for d in after[bid] if results[d].status != "done"), None)
                pending.remove(bid)
                if failed_dep is not None:
                    results[bid] = StepResult("", status="failed", reason=f"skipped: {failed_dep} did not succeed")
                    continue
                running[asyncio.ensure_future(branch(bid))] = bid
            if len(succeeded()) >= need:
                break
            still = len(pending) + len(running)
            if len(succeeded()) + still < need:
                break
            if not running:
                continue  # only skipped branches were "started": look again
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            # Branches finishing together are taken in file order, so a replay (recorded answers come
            # back at once) picks the same winner.
            for t in sorted(done, key=lambda t: order.index(running[t])):
                results[running.pop(t)] = t.result()  # a RunStop propagates from here
    finally:
        for t in running:
            t.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    wins = succeeded()
    if len(wins) < need:
        fails = "; ".join(f"{b}: {results[b].reason}" for b in order if b in results and results[b].status != "done")
        return StepResult("", status="failed", reason=(
            f"join '{o.get('join', 'all')}' not reached: {len(wins)} of {len(order)} branches succeeded, "
            f"{need} needed ({fails or 'no branch finished'})"))
    if o.get("join") == "first":
        first = next(b for b in results if b in wins)  # results are in the order the branches finished
        r = results[first]
        return StepResult(r.output, r.artefacts, reason=f"first to finish: {first}")
    cancelled = [b for b in order if b not in results]
    out = "\n\n".join(f"## {b}\n{results[b].output}" for b in wins)
    arts = tuple(a for b in wins for a in results[b].artefacts)
    why = f"cancelled once the join was met: {', '.join(cancelled)}" if cancelled else None
    return StepResult(out, arts, reason=why)
