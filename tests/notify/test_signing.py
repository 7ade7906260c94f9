"""The engine's inbound checks on vendor-published examples (core/integrations/signing.py)."""

from __future__ import annotations

from core.integrations.signing import SignatureVerifier, gitlab_token_ok

# Slack's own worked example ("Verifying requests from Slack", api.slack.com/authentication/
# verifying-requests-from-slack): secret, timestamp, raw body and the signature Slack computes.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = "1531420618"
SLACK_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
              b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
              b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F"
              b"96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def headers(ts: str = SLACK_TS, sig: str = SLACK_SIG) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def test_slacks_documented_example_verifies_once() -> None:
    v = SignatureVerifier(SLACK_SECRET, clock=lambda: int(SLACK_TS) + 10)
    assert v.check(SLACK_BODY, headers()) is None
    assert (v.check(SLACK_BODY, headers()) or "").startswith("replayed")


def test_one_changed_byte_or_an_old_timestamp_is_refused() -> None:
    v = SignatureVerifier(SLACK_SECRET, clock=lambda: int(SLACK_TS))
    assert v.check(SLACK_BODY.replace(b"foobar", b"foobaz"), headers()) == "signature mismatch"
    late = SignatureVerifier(SLACK_SECRET, clock=lambda: int(SLACK_TS) + 301)
    assert (late.check(SLACK_BODY, headers()) or "").startswith("stale")
    assert v.check(SLACK_BODY, {"X-Slack-Signature": SLACK_SIG}) is not None
    assert v.check(SLACK_BODY, headers(ts="soon")) == "X-Slack-Request-Timestamp is not a number"


def test_gitlab_token_is_exact_and_empty_never_matches() -> None:
    assert gitlab_token_ok("s3cret", "s3cret")
    assert not gitlab_token_ok("s3cret", "s3cret ")
    assert not gitlab_token_ok("s3cret", None)
    assert not gitlab_token_ok("", "")
