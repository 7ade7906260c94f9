"""The audit-text switch's redaction (core/orchestration/audittext.py) on secrets as vendors document them."""

from __future__ import annotations

from core.orchestration.audittext import MASK, prompt_text, redact
from core.orchestration.contracts import ChatMessage

# AWS's own documented example credentials file (docs.aws.amazon.com, "Configuration and credential file settings").
AWS_FILE = """[default]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFI/K7MDENG/bPxRfiCYEXAMPLEKEY
region = us-west-2"""


def test_documented_secret_shapes_are_masked_and_ordinary_text_is_kept() -> None:
    out = redact(AWS_FILE)
    assert "AKIAIOSFODNN7EXAMPLE" not in out and "wJalrXUtnFI" not in out
    assert "region = us-west-2" in out and out.count(MASK) == 2
    env = ("OPENAI_API_KEY=sk-proj-abcDEF1234567890xyz\nANTHROPIC_API_KEY=sk-ant-api03-AbCdEf0123456789\n"
           "GITHUB_TOKEN: ghp_0123456789abcdefABCDEF0123\nDB_PASSWORD='hunter2hunter2'\nDEBUG=true")
    out = redact(env)
    for secret in ("sk-proj-abc", "sk-ant-api03", "ghp_0123", "hunter2hunter2"):
        assert secret not in out, (secret, out)
    assert "DEBUG=true" in out
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    assert jwt not in redact(f"Authorization: Bearer {jwt}")
    # A configured key of no known shape is masked wherever it appears (the provider keys are passed in).
    assert redact("our gateway key is 7f3a9c0e21d4", ["7f3a9c0e21d4"]) == f"our gateway key is {MASK}"
    plain = "Add a --json flag to musubi runs list; keep the table for humans."
    assert redact(plain) == plain


def test_the_prompt_is_every_message_with_its_role() -> None:
    msgs = [ChatMessage("system", "You are a reviewer."), ChatMessage("user", "Review token=abcd1234efgh")]
    text = prompt_text(msgs)
    assert text == "system: You are a reviewer.\n\nuser: Review token=abcd1234efgh"
    assert redact(text).endswith(f"user: Review token={MASK}")


def test_text_details_only_with_the_switch_on_and_cut_to_the_limit() -> None:
    from types import SimpleNamespace
    from typing import Any

    from core.orchestration.audittext import AUDIT_TEXT_MAX, text_details

    svc: Any = SimpleNamespace(settings={"on": {"audit_text": True}, "off": {"audit_text": False}}, hub=None)
    msgs = [ChatMessage("user", "hi")]
    assert text_details(svc, "off", msgs, "x") == {} and text_details(svc, "nobody", msgs, "x") == {}
    got = text_details(svc, "on", msgs, "y" * (AUDIT_TEXT_MAX + 5))
    assert got["prompt"] == "user: hi" and len(got["output"]) == AUDIT_TEXT_MAX
    assert got["output_truncated_chars"] == 5 and "prompt_truncated_chars" not in got
    assert "output" not in text_details(svc, "on", msgs, None)  # a failed call: the prompt only
