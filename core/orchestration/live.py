"""What a step has said so far: the live tail of its stream, else its recorded output (docs/runs.md#output).

While a step's calls stream, the run service keeps the last :data:`~core.api.runs.OUTPUT_TAIL`
characters of the step's stream in memory (one :class:`LiveTail` per running step, dropped when the
step or the attempt ends), counting every character streamed so ``run.output`` events and
``GET /v1/runs/{id}/output`` agree on offsets.  Once the step is over, its output comes from the
record: the step's own ``output`` (top-level steps), else its completed calls' responses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.api.runs import OUTPUT_TAIL
from core.engine.access import Caller, suspended_read_check
from core.errors import NotFound

if TYPE_CHECKING:
    from core.orchestration.records import RunData
    from core.orchestration.service import RunService


class LiveTail:
    """The tail of one running step's stream, and how many characters it streamed in all."""

    __slots__ = ("end", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0  # characters held in parts
        self.end = 0  # characters streamed in all

    def add(self, text: str) -> None:
        # Appends are O(1); the held text is cut back to the tail only when it doubled (amortised).
        self.parts.append(text)
        self.size += len(text)
        self.end += len(text)
        if self.size > 2 * OUTPUT_TAIL:
            kept = "".join(self.parts)[-OUTPUT_TAIL:]
            self.parts, self.size = [kept], len(kept)

    def tail(self) -> str:
        return "".join(self.parts)[-OUTPUT_TAIL:]


def step_not_found(d: RunData, path: str) -> NotFound:
    known = sorted(d.steps)
    shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
    return NotFound(f"run {d.run.id} has no step {path!r}; its steps: {shown or 'none yet'}. See them with: "
                    f"musubi runs show {d.run.id}", resource=f"run:{d.run.id}", code="step_not_found")


async def output(svc: RunService, ctx: Caller, run_id: str, path: str) -> dict[str, Any]:
    """``GET /v1/runs/{id}/output``: step ``path``'s output so far (see the module doc)."""
    suspended_read_check(svc.r.state, ctx)
    d = await svc._details(svc.get(ctx, run_id))
    st = d.steps.get(path)
    if st is None:
        raise step_not_found(d, path)
    base = {"run": d.run.id, "step": path, "status": st.status}
    live = svc.live.get((d.run.id, path))
    if live is not None:
        text = live.tail()
        return {**base, "source": "live", "text": text, "offset": live.end - len(text), "end": live.end,
                "truncated": live.end > len(text)}
    whole = st.output
    if whole is None:
        done = sorted((c for c in d.calls.values() if c.step_path == path and c.outcome == "ok"),
                      key=lambda c: (c.sent_at, c.key))
        parts = [c.response or "" for c in done]
        if not parts and d.run.state in ("done", "cancelled"):  # its calls were let go of memory: read them
            parts = await svc.r.read(svc.r.storage.run_step_responses, d.run.id, path)
        whole = "\n\n".join(parts) if parts else None
    if whole is None:
        return {**base, "source": "none", "text": "", "offset": 0, "end": 0, "truncated": False}
    text = whole[-OUTPUT_TAIL:]
    return {**base, "source": "record", "text": text, "offset": len(whole) - len(text), "end": len(whole),
            "truncated": len(whole) > len(text)}
