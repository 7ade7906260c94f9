"""Scrubbing, line validation, prompt reconstruction and the registry entry (no engine)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.finetune.dataset import (
    MIN_EXAMPLES,
    build_examples,
    count_tokens,
    oversize,
    to_jsonl,
    validate_example,
    validate_jsonl,
)
from core.finetune.prices import TRAINING, training_cost_micros
from core.finetune.records import TuneJob
from core.finetune.register import model_entry
from core.finetune.scrub import scrub
from core.models.registry import ModelSpec, load_registry
from core.orchestration.contracts import AgentSpec

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"


def test_scrub_replaces_every_kind_with_its_marker() -> None:
    text = (f"mail ana.lopez+ci@example.co.uk or bob@corp.example.com; key sk-proj-AbCdEf0123456789xyz "
            f"and AKIAABCDEFGHIJKLMNOP; ghp_0123456789abcdefABCDEF; password = hunter22; "
            f"Authorization: Bearer abcdefgh12345678; {PEM} done")
    out, found = scrub(text)
    assert out == ("mail [email] or [email]; key [secret] and [secret]; [secret]; password = [secret]; "
                   "Authorization: Bearer [REDACTED]; [private key] done")
    assert dict(found) == {"email": 2, "api_key": 3, "assignment": 1, "token": 1, "private_key": 1}


def test_scrub_leaves_ordinary_text_alone() -> None:
    text = "Add a --json flag; the key of the dict is user@host? No: the value at index 3."
    out, found = scrub(text)
    assert out == text and not found


def test_a_private_key_without_its_end_line_is_cut_to_the_end() -> None:
    out, found = scrub("before\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
    assert out == "before\n[private key]" and found["private_key"] == 1


def test_validate_example_names_each_problem() -> None:
    assert validate_example({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                                          {"role": "assistant", "content": "a"}]}) == []
    assert validate_example([]) == ["a line must be an object with exactly one key, messages"]
    assert validate_example({"messages": []}) == ["messages must be a non-empty list"]
    assert validate_example({"messages": [{"role": "robot", "content": "x"}, {"role": "user", "content": " "},
                                          {"role": "system", "content": "late"}]}) == [
        "message 1 has role 'robot'; roles are system, user, assistant",
        "message 2 (user) is empty",
        "a system message may only come first",
        "an example must end with the assistant's answer",
    ]
    assert validate_example({"messages": [{"role": "assistant", "content": "a"}]}) == [
        "an example needs a user message"]


def test_weight_and_name_follow_openais_chat_fine_tuning_input() -> None:
    """OpenAI's API spec (FineTuneChatCompletionRequestAssistantMessage): only an assistant message has a weight,
    "Controls whether the assistant message is trained against (0 or 1)"; the guide's multi-turn example uses it."""
    multi_turn = {"messages": [{"role": "system", "content": "Marv is a factual chatbot that is also sarcastic."},
                               {"role": "user", "content": "What's the capital of France?"},
                               {"role": "assistant", "content": "Paris", "weight": 0},
                               {"role": "user", "content": "Can you be more sarcastic?"},
                               {"role": "assistant", "content": "Paris, as if everyone doesn't know that already.",
                                "weight": 1, "name": "marv"}]}
    assert validate_example(multi_turn) == []
    for bad in ({"role": "user", "content": "u", "weight": 1}, {"role": "assistant", "content": "a", "weight": 2},
                {"role": "assistant", "content": "a", "weight": True}, {"role": "assistant", "content": "a",
                                                                         "weight": 0.5}):
        msgs = [{"role": "user", "content": "u"}, bad] if bad["role"] == "assistant" else \
            [bad, {"role": "assistant", "content": "a"}]
        problems = validate_example({"messages": msgs})
        assert len(problems) == 1 and "only an assistant message may have one, 0 or 1" in problems[0], problems
    named = {"messages": [{"role": "user", "content": "u", "name": 7}, {"role": "assistant", "content": "a"}]}
    assert validate_example(named) == ["message 1 (user) has a name that is not text"]


def test_validate_jsonl_goes_line_by_line() -> None:
    good = json.dumps({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]})
    n, bad = validate_jsonl(f"{good}\n{{not json\n\n{json.dumps({'messages': [{'role': 'user', 'content': 'u'}]})}")
    assert n == 1
    assert [b["line"] for b in bad] == [2, 3, 4]
    assert bad[0]["problems"][0].startswith("not JSON")
    assert bad[1]["problems"] == ["an empty line"]
    assert bad[2]["problems"] == ["an example must end with the assistant's answer"]


def _rows() -> dict[str, list[dict[str, Any]]]:
    t = datetime(2026, 12, 1, 10, 0, 0)
    run = {"run_id": "r-000000000001", "feature": "add a flag, ask dev@example.com", "workflow": "w", "project": ""}
    steps = [
        {"run_id": run["run_id"], "path": "1", "parent": None, "ord": 1, "status": "done", "output": "the plan"},
        {"run_id": run["run_id"], "path": "2", "parent": None, "ord": 2, "status": "done", "output": "x"},
    ]

    def call(path: str, label: str, response: str, outcome: str = "ok", agent: str = "coder") -> dict[str, Any]:
        return {"run_id": run["run_id"], "call_key": f"{run['run_id']}:{path}:{label}:1", "step_path": path,
                "outcome": outcome, "response": response, "sent_at": t, "agent": agent}

    def art(aid: str, content: str, state: str, path: str = "2") -> dict[str, Any]:
        return {"artefact_id": aid, "run_id": run["run_id"], "step_path": path, "content": content, "state": state,
                "created_at": t}

    return {
        "runs": [run], "run_steps": steps,
        "run_calls": [call("1", "reply", "the plan", agent="writer"), call("2/1", "draft", "old answer", "failed"),
                      call("2/1", "draft", "the diff sk-ant-0123456789abcdef")],
        "run_artefacts": [art("a-1", "the diff sk-ant-0123456789abcdef", "approved"),
                          art("a-2", "the diff sk-ant-0123456789abcdef", "applied"),  # the same example again
                          art("a-3", "not approved", "proposed"), art("a-4", "nobody said this", "approved"),
                          art("a-5", "the plan", "refused", path="1")],
    }


def test_examples_are_rebuilt_from_the_producing_call_and_the_step_input() -> None:
    coder = AgentSpec("coder", "coder", "Write the change for {feature} from: {input}", "implementation")
    built = build_examples(_rows(), lambda run: {"coder": coder})
    assert built.examples == [{"messages": [
        {"role": "system", "content": "Write the change for add a flag, ask [email] from: the plan"},
        {"role": "user", "content": "the plan"},
        {"role": "assistant", "content": "the diff [secret]"},
    ]}]
    assert built.sources == [{"run": "r-000000000001", "artefact": "a-1"}]
    assert dict(built.skipped) == {"duplicate": 1, "no_producing_call": 1}
    assert dict(built.scrubbed) == {"email": 2, "api_key": 2}
    assert built.problems == []


def test_an_unknown_agent_or_workflow_leaves_the_artefact_out() -> None:
    built = build_examples(_rows(), lambda run: None)
    assert built.examples == [] and dict(built.skipped) == {"agent_unknown": 2, "no_producing_call": 1}


def test_an_example_emptied_by_nothing_but_whitespace_fails_validation() -> None:
    rows = _rows()
    rows["run_steps"][0]["output"] = "   "
    rows["runs"][0]["feature"] = "   "
    coder = AgentSpec("coder", "coder", "{input}", "implementation")
    built = build_examples(rows, lambda run: {"coder": coder})
    assert built.examples == []
    assert built.problems[0]["problems"] == ["message 1 (system) is empty", "message 2 (user) is empty"]


def test_tokens_and_training_cost() -> None:
    ex = [{"messages": [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "hi"}]}]
    n = count_tokens(ex, "o200k_base")
    assert n == 2 + 1 + 4 * 2 + 3  # "hello world" is 2 tokens, "hi" 1; 4 per message (PER_MESSAGE), 3 per request
    assert training_cost_micros(1_000_000, TRAINING["gpt-4.1-mini"]) == 5_000_000
    assert to_jsonl(ex).count("\n") == 1 and MIN_EXAMPLES == 10
    text = to_jsonl(ex)
    assert oversize(text) is None and oversize(text, limit=len(text.encode())) is None
    assert oversize(text, limit=10) == f"the dataset would be {len(text.encode()):,} bytes; the provider takes " \
                                       "files up to 10"


def test_the_registered_entry_takes_the_fine_tuned_prices_and_the_base_lifecycle() -> None:
    reg = load_registry({}, None, [])
    base = reg.get("azure/gpt-4.1-mini")
    now = datetime(2026, 12, 6)
    rec = TuneJob("t-000000000001", "acme", "", "d-000000000001", "azure", "azure-openai", base.id, "gpt-4.1-mini",
                  3, "j-1", "submitted", 0, "ana", now, now, vendor_job_id="ftjob-1")
    entry = model_entry(rec, base, TRAINING[base.id], "gpt-4.1-mini.ft-abc", date(2026, 12, 6))
    spec = ModelSpec.model_validate(entry)
    assert spec.id == "azure/gpt-4.1-mini.ft-abc" and spec.deployment == "gpt-4.1-mini.ft-abc"
    # Azure bills a deployed fine-tuned model per token at the base model's rate (plus hosting per hour).
    assert (spec.input_per_mtok, spec.output_per_mtok, spec.cached_input_per_mtok) == (
        base.input_per_mtok, base.output_per_mtok, base.cached_input_per_mtok)
    assert "UNCONFIRMED" in spec.source and "1.70/hour" in spec.source
    # OpenAI prices a fine-tuned model above its base: the fine-tuned rates of its pricing page.
    openai = reg.get("gpt-4.1-mini")
    ft = ModelSpec.model_validate(model_entry(rec, openai, TRAINING[openai.id], "ft:gpt-4.1-mini:acme::x",
                                              date(2026, 12, 6)))
    assert (ft.input_per_mtok, ft.output_per_mtok, ft.cached_input_per_mtok) == (
        Decimal("0.80"), Decimal("3.20"), Decimal("0.20"))
    assert (spec.retires_on, spec.deprecated_on, spec.status) == (base.retires_on, base.deprecated_on, base.status)
    assert spec.replacement == base.id and "ftjob-1" in (spec.lifecycle_source or "")


def test_the_vendors_own_examples_pass() -> None:
    # OpenAI's fine-tuning guide's chat example line (as quoted at
    # https://gptteams.ai/developer/rest-How-to-POST-a-fine-tuning-job-to-OpenAI-API-using-the-correct-file-format)
    line = ('{"messages": [{"role": "system", "content": "Marv is a factual chatbot that is also sarcastic."}, '
            '{"role": "user", "content": "What\'s the capital of France?"}, '
            '{"role": "assistant", "content": "Paris, as if everyone doesn\'t know that already."}]}')
    assert validate_jsonl(line) == (1, [])
    for m in json.loads(line)["messages"]:
        assert scrub(m["content"]) == (m["content"], scrub("")[1])  # nothing in it looks like a secret
    # A fine_tuning.job as the SDK types it (fields of openai.FineTuning.Jobs.FineTuningJob), failed.
    from connectors.llm.finetune import _job

    job = _job({"object": "fine_tuning.job", "id": "ftjob-abc123", "model": "gpt-4o-mini-2024-07-18",
                "created_at": 1721764800, "finished_at": 1721765400, "fine_tuned_model": None,
                "organization_id": "org-123", "result_files": [], "status": "failed", "validation_file": None,
                "training_file": "file-abc123", "trained_tokens": None, "hyperparameters": {"n_epochs": 3},
                "error": {"code": "invalid_training_file", "message": "bad", "param": "training_file"}, "seed": 1})
    assert (job.status, job.fine_tuned_model, job.error) == (
        "failed", None, {"code": "invalid_training_file", "message": "bad", "param": "training_file"})
