"""``sequential``: the children in order, each one's output the next one's input.

On a failed child (a provider error that survived the provider's own retries, or a
child that reports ``failed``): ``stop`` ends the step failed; ``continue`` notes it and
passes the last good output on; ``retry`` runs the child again, up to ``retries`` more
times, each attempt a new sub-step (``<id>~retry<n>``) so its calls are new calls.  A
child that is ``rejected`` or ``stopped`` always ends the sequence with its reason, and a
:class:`RunStop` always propagates (budgets, quotas and gate timeouts are never retried).
"""

from __future__ import annotations

from core.orchestration.contracts import Artefact, ProviderError, StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import run_child


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Run the children in order; see the module docstring for ``on_error``."""
    on_error = step.options.get("on_error", "stop")
    attempts = 1 + (int(step.options.get("retries", 1)) if on_error == "retry" else 0)
    text = input_text
    artefacts: list[Artefact] = []
    skipped: list[str] = []
    for child in step.children:
        res = StepResult(output="", status="failed", reason="not run")
        for attempt in range(attempts):
            label = child.id if attempt == 0 else f"{child.id}~retry{attempt}"
            try:
                res = await run_child(child, text, ctx, label)
            except ProviderError as exc:
                res = StepResult(output="", status="failed", reason=f"{exc.provider} {exc.kind}: {exc}")
            if res.status != "failed":
                break
            if attempt + 1 < attempts:
                ctx.note(f"step {child.id} failed ({res.reason}); retrying ({attempt + 1} of {attempts - 1})")
        if res.status in ("rejected", "stopped"):
            return StepResult(text, tuple(artefacts), status=res.status, reason=f"step {child.id}: {res.reason}")
        if res.status == "failed":
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            why = f"step {child.id} failed{tries}: {res.reason}"
            if on_error != "continue":
                return StepResult(text, tuple(artefacts), status="failed", reason=why)
            ctx.note(f"{why}; continuing with the previous output (on_error = continue)")
            skipped.append(why)
            continue
        text = res.output
        artefacts += res.artefacts
    return StepResult(text, tuple(artefacts), reason="; ".join(skipped) or None)
