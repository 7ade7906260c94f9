"""Teams: Workflows webhook (202 with an empty body is success), Graph only with a delegated token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.http import AuthError, ValidationError
from connectors.teams import TeamsConnector, adaptive_card, token_kind
from core.integrations.contracts import IntegrationError, Message
from tests.connectors.fakes_fixtures import fast_policy
from tests.fakes.teams import TeamsFake, fake_jwt

MSG = Message("Run 42 failed", "Tests failed in shop", (("run", "42"),), ("Open run", "https://m/runs/42"),
              severity="danger")
DELEGATED = fake_jwt({"scp": "ChannelMessage.Send", "aud": "https://graph.microsoft.com"})
APP_ONLY = fake_jwt({"roles": ["Teamwork.Migrate.All"], "aud": "https://graph.microsoft.com"})


@pytest.fixture
async def teams() -> AsyncIterator[TeamsFake]:
    async with TeamsFake() as fake:
        yield fake


async def test_webhook_202_with_empty_body_is_success(teams: TeamsFake) -> None:
    conn = TeamsConnector({}, {"webhook_url": teams.webhook_url}, policy=fast_policy())
    try:
        d = await conn.send(MSG)
    finally:
        await conn.close()
    assert d.target == "webhook"
    card = teams.cards[0]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["version"] == "1.4" and card["content"]["body"][0]["color"] == "Attention"
    assert teams.count("POST", "/workflows/") == 1  # a 202 is not retried as if it failed


async def test_webhook_errors_carry_the_text_and_hide_the_sig(teams: TeamsFake) -> None:
    conn = TeamsConnector({}, {"webhook_url": teams.webhook_url.replace(teams.sig, "WRONGsigWRONG")},
                          policy=fast_policy())
    try:
        with pytest.raises(AuthError, match="Shared Access") as err:
            await conn.send(MSG)
    finally:
        await conn.close()
    assert "WRONGsigWRONG" not in err.value.message and teams.cards == []


async def test_a_payload_that_is_not_a_card_is_refused_by_the_fake(teams: TeamsFake) -> None:
    conn = TeamsConnector({}, {"webhook_url": teams.webhook_url}, policy=fast_policy())
    try:
        with pytest.raises(ValidationError, match="not an Adaptive Card"):
            await conn.hook.request("POST", teams.webhook_url, json={"text": "legacy MessageCard text"})
    finally:
        await conn.close()


async def test_graph_posts_with_a_delegated_token_and_refuses_app_only(teams: TeamsFake) -> None:
    settings = {"graph_url": teams.url, "team": "T1", "channel": "19:abc@thread.tacv2"}
    conn = TeamsConnector(settings, {"graph_token": DELEGATED}, policy=fast_policy())
    app = TeamsConnector(settings, {"graph_token": APP_ONLY}, policy=fast_policy())
    try:
        d = await conn.send(MSG, "graph")
        with pytest.raises(IntegrationError, match="app-only"):
            await app.send(MSG, "graph")
        with pytest.raises(IntegrationError, match="app-only"):
            await app.test()
    finally:
        await conn.close()
        await app.close()
    assert d.target == "T1/19:abc@thread.tacv2" and teams.graph_messages[0]["body"]["contentType"] == "html"
    assert "<b>Run 42 failed</b>" in teams.graph_messages[0]["body"]["content"]
    assert teams.count("POST", "/v1.0/") == 1  # the app-only token never left the machine


async def test_graph_refusal_from_the_server_is_an_auth_error(teams: TeamsFake) -> None:
    odd = fake_jwt({"roles": ["x"], "scp_missing": True})
    assert token_kind(odd) == "app" and token_kind("opaque") == "unknown" and token_kind(DELEGATED) == "delegated"
    conn = TeamsConnector({"graph_url": teams.url, "team": "T", "channel": "C"}, {"graph_token": "opaque-token"},
                          policy=fast_policy())
    try:
        with pytest.raises(AuthError, match="Access token is empty|Missing role"):
            await conn.send(MSG, "graph")
    finally:
        await conn.close()


def test_card_shape_and_missing_secrets() -> None:
    card = adaptive_card(Message("t", "x"))
    assert card["type"] == "message" and "actions" not in card["attachments"][0]["content"]
    with pytest.raises(IntegrationError, match="webhook_url"):
        TeamsConnector({}, {})
