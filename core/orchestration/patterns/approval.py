"""``approval``: a human gate over the one child step that produces the artefact.

The child runs, then ``ctx.approval`` waits for a decision on its artefact (the last one
it produced, else its output).  ``approve`` passes the output on; ``reject`` ends the step
``rejected`` with who decided and why; ``request_changes`` runs the child again (a new
sub-step ``<id>~rev<n>``, so nothing is replayed) with the reviewer's comment and the
previous answer, at most ``max_revisions`` times, then stops.  Every revision is a new
gate (``<gate>~rev<n>``), so an answered gate is never asked again.  A timeout is raised by
the context as ``RunStop(code="gate_timeout")`` and is never caught here: the gate fails
closed, never approving on its own.  Any decision other than the three is a rejection.
"""

from __future__ import annotations

from core.orchestration.contracts import Artefact, StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import run_child


def _revision_input(original: str, previous: str, comment: str) -> str:
    return (f"{original}\n\n## Your previous answer\n{previous}\n\n## A reviewer asked for changes\n"
            f"{comment or '(no comment given)'}\n\nAnswer again in full, with those changes made.")


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Produce, ask, and revise on request; see the module docstring."""
    o = step.options
    producer = step.children[0]
    gate = str(o.get("gate") or step.id)
    limit = int(o.get("max_revisions", 2))
    timeout = o.get("timeout_s")
    text = input_text
    rev = 0
    while True:
        res = await run_child(producer, text, ctx, producer.id if rev == 0 else f"{producer.id}~rev{rev}")
        if res.status != "done":
            return res
        artefact = res.artefacts[-1] if res.artefacts else Artefact("text", gate, res.output)
        name = gate if rev == 0 else f"{gate}~rev{rev}"
        d = await ctx.approval(name, artefact, timeout_s=timeout)
        if d.decision == "approve":
            return StepResult(res.output, res.artefacts, reason=f"approved by {d.by} at gate {name}")
        if d.decision == "request_changes":
            if rev >= limit:
                return StepResult(res.output, res.artefacts, status="stopped", reason=(
                    f"changes requested at gate {name} by {d.by} after {rev} revisions; the limit is "
                    f"max_revisions = {limit}. Last comment: {d.comment or '(none)'}"))
            ctx.note(f"gate {name}: {d.by} requested changes; revision {rev + 1} of at most {limit}")
            rev += 1
            text = _revision_input(input_text, res.output, d.comment)
            continue
        why = f"rejected by {d.by} at gate {name}" if d.decision == "reject" else (
            f"gate {name} got the unknown decision {d.decision!r} from {d.by}; treated as a rejection")
        return StepResult(res.output, res.artefacts, status="rejected",
                          reason=why + (f": {d.comment}" if d.comment else ""))
