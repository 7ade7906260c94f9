"""Chat fine-tuning examples from approved run artefacts (OpenAI's JSONL chat format), validated and counted.

A run records each model call's *answer* (``run_calls.response``) but not its prompt, so the
prompt is rebuilt from what the run did keep (docs/finetune.md#what-goes-into-a-dataset):

- the artefact (``run_artefacts``, state ``approved`` or ``applied``) sits at its gate's step;
  the call that produced it is the last completed call in that step's subtree whose answer is
  the artefact's text;
- that call's agent, looked up in the run's workflow, gives the instructions (its
  ``system_prompt`` rendered with the run's feature and the step's input, as the run did);
- the step's input is the output of the step before it among its siblings (sequential runs
  pass each output on), else the run's feature.

One example is ``{"messages": [system: instructions, user: the input, assistant: the artefact]}``
with every text scrubbed (:mod:`core.finetune.scrub`).  No I/O here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.finetune.scrub import scrub
from core.orchestration.contracts import AgentSpec

MIN_EXAMPLES = 10  # OpenAI: "The minimum number of examples you can provide for fine-tuning is 10" (SFT guide)
MAX_FILE_BYTES = 512_000_000  # OpenAI's files API: "Individual files can be up to 512 MB" (the smaller reading of MB)
ROLES = ("system", "user", "assistant")
APPROVED = ("approved", "applied")

Agents = Callable[[dict[str, Any]], Mapping[str, AgentSpec] | None]
"""The agents of a run's workflow (the run's row -> name -> spec), None when the workflow is gone."""


@dataclass
class Built:
    """What :func:`build_examples` made of the rows."""

    examples: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, str]] = field(default_factory=list)  # run and artefact of each example
    skipped: Counter[str] = field(default_factory=Counter)  # why artefacts were left out
    scrubbed: Counter[str] = field(default_factory=Counter)  # replacements by kind
    problems: list[dict[str, Any]] = field(default_factory=list)  # lines that failed validation


def _key(path: str) -> list[Any]:
    return [int(x) if x.isdigit() else x for x in path.split("/")]


def _step_input(steps: Mapping[str, dict[str, Any]], path: str) -> str:
    """The output of the sibling before ``path`` (what a sequential parent passed on), else ''."""
    me = steps.get(path)
    if me is None:
        return ""
    before = [s for s in steps.values() if s.get("parent") == me.get("parent") and int(s["ord"]) < int(me["ord"])
              and s.get("status") == "done"]
    if not before:
        return ""
    return str(max(before, key=lambda s: int(s["ord"])).get("output") or "")


def _producer(calls: Iterable[dict[str, Any]], path: str, content: str) -> dict[str, Any] | None:
    mine = [c for c in calls if c.get("outcome") == "ok" and (c["step_path"] == path
                                                               or c["step_path"].startswith(path + "/"))
            and (c.get("response") or "").strip() == content.strip()]
    return max(mine, key=lambda c: (c["sent_at"], c["call_key"])) if mine else None


def build_examples(rows: Mapping[str, Sequence[dict[str, Any]]], agents: Agents) -> Built:
    """Examples from the approved artefacts in ``rows`` (as ``Storage.runs_load`` returns them)."""
    from core.orchestration.spec import render_prompt

    out = Built()
    runs = {r["run_id"]: r for r in rows.get("runs", ())}
    steps: dict[str, dict[str, dict[str, Any]]] = {}
    for s in rows.get("run_steps", ()):
        steps.setdefault(s["run_id"], {})[s["path"]] = s
    calls: dict[str, list[dict[str, Any]]] = {}
    for c in rows.get("run_calls", ()):
        calls.setdefault(c["run_id"], []).append(c)
    seen: set[str] = set()
    arts = sorted(rows.get("run_artefacts", ()), key=lambda a: (a["created_at"], a["artefact_id"]))
    for art in arts:
        if art.get("state") not in APPROVED:
            continue
        run = runs.get(art["run_id"])
        if run is None:
            out.skipped["run_missing"] += 1
            continue
        call = _producer(calls.get(run["run_id"], ()), art["step_path"], art["content"])
        if call is None:
            out.skipped["no_producing_call"] += 1
            continue
        spec = (agents(run) or {}).get(call["agent"])
        if spec is None:
            out.skipped["agent_unknown"] += 1
            continue
        given = _step_input(steps.get(run["run_id"], {}), art["step_path"])
        try:
            instructions = render_prompt(spec, feature=run["feature"], input=given)
        except (KeyError, IndexError, ValueError):
            out.skipped["prompt_unrenderable"] += 1
            continue
        messages = []
        for role, text in (("system", instructions), ("user", given or run["feature"]),
                           ("assistant", art["content"])):
            clean, found = scrub(text)
            out.scrubbed.update(found)
            messages.append({"role": role, "content": clean.strip()})
        example = {"messages": messages}
        line = json.dumps(example, ensure_ascii=False, sort_keys=True)
        if line in seen:
            out.skipped["duplicate"] += 1
            continue
        problems = validate_example(example)
        if problems:
            out.problems.append({"line": len(out.examples) + len(out.problems) + 1, "run": run["run_id"],
                                 "artefact": art["artefact_id"], "problems": problems})
            continue
        seen.add(line)
        out.examples.append(example)
        out.sources.append({"run": run["run_id"], "artefact": art["artefact_id"]})
    return out


def validate_example(example: object) -> list[str]:
    """What is wrong with one line of a chat fine-tuning file (empty: nothing)."""
    if not isinstance(example, dict) or set(example) != {"messages"}:
        return ["a line must be an object with exactly one key, messages"]
    msgs = example["messages"]
    if not isinstance(msgs, list) or not msgs:
        return ["messages must be a non-empty list"]
    problems = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or set(m) - {"role", "content", "name", "weight"} or "role" not in m:
            problems.append(f"message {i + 1} must be an object with role and content")
            continue
        if m["role"] not in ROLES:
            problems.append(f"message {i + 1} has role {m['role']!r}; roles are {', '.join(ROLES)}")
        # OpenAI's chat fine-tuning input: only an assistant message has a weight, 0 (not trained on) or 1
        # (FineTuneChatCompletionRequestAssistantMessage in OpenAI's API spec); name is a string.
        weight = m.get("weight", 1)
        if "weight" in m and (m["role"] != "assistant" or isinstance(weight, bool) or weight not in (0, 1)):
            problems.append(f"message {i + 1} ({m['role']}) has weight {weight!r}; only an assistant message may "
                            "have one, 0 or 1")
        if "name" in m and not isinstance(m["name"], str):
            problems.append(f"message {i + 1} ({m['role']}) has a name that is not text")
        content = m.get("content")
        if not isinstance(content, str) or not content.strip():
            problems.append(f"message {i + 1} ({m['role']}) is empty")
    roles = [m.get("role") for m in msgs if isinstance(m, dict)]
    if "system" in roles[1:]:
        problems.append("a system message may only come first")
    if "user" not in roles:
        problems.append("an example needs a user message")
    if not roles or roles[-1] != "assistant":
        problems.append("an example must end with the assistant's answer")
    return problems


def validate_jsonl(text: str) -> tuple[int, list[dict[str, Any]]]:
    """Validate a whole file line by line: (good lines, [{line, problems}]); the vendor's minimum is not checked."""
    good, bad = 0, []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            bad.append({"line": n, "problems": ["an empty line"]})
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            bad.append({"line": n, "problems": [f"not JSON ({exc.msg})"]})
            continue
        problems = validate_example(obj)
        if problems:
            bad.append({"line": n, "problems": problems})
        else:
            good += 1
    return good, bad


def oversize(text: str, limit: int = MAX_FILE_BYTES) -> str | None:
    """Why the file ``text`` is too large to upload (None: it is not)."""
    size = len(text.encode("utf-8"))
    return None if size <= limit else f"the dataset would be {size:,} bytes; the provider takes files up to {limit:,}"


def count_tokens(examples: Sequence[dict[str, Any]], encoding: str) -> int:
    """Tokens of the examples as one epoch trains them: each message's content plus the chat format's overhead."""
    from core.models.tokens import chat_overhead, count_exact

    total = 0
    for ex in examples:
        msgs = ex["messages"]
        total += sum(count_exact(m["content"], encoding) for m in msgs) + chat_overhead(len(msgs))
    return total


def to_jsonl(examples: Sequence[dict[str, Any]]) -> str:
    """The examples as a JSONL file (one object a line, UTF-8 kept)."""
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
