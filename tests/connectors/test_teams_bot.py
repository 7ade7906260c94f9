"""The Teams bot's outbound side: the card it posts, the token it fetches, where that token may go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.teams import TeamsConnector, adaptive_card
from core.integrations.botauth import service_url_allowed
from core.integrations.contracts import IntegrationError, Message
from tests.connectors.fakes_fixtures import fast_policy
from tests.fakes.botframework import BotFrameworkFake

GATE = Message("Approval needed: run r-1", "Gate plan waits.", (("Run", "r-1"),),
               buttons=(("Approve", "approve", "r-1|plan|" + "a" * 64), ("Reject", "reject", "r-1|plan|" + "a" * 64)),
               severity="warning")


@pytest.fixture
async def bf() -> AsyncIterator[BotFrameworkFake]:
    async with BotFrameworkFake() as fake:
        yield fake


def settings(bf: BotFrameworkFake, **extra: str) -> dict[str, Any]:
    return {"bot_app_id": bf.app_id, "bot_service_url": bf.service_url, "bot_conversation": "19:c@thread.tacv2",
            "bot_service_hosts": "127.0.0.1", "bot_token_url": bf.token_url, **extra}


async def test_the_approval_card_goes_through_the_bot_with_submit_buttons(bf: BotFrameworkFake) -> None:
    conn = TeamsConnector(settings(bf), {"bot_app_secret": bf.app_secret}, policy=fast_policy())
    try:
        sent = await conn.send(GATE)
    finally:
        await conn.close()
    assert sent.target == "bot:19:c@thread.tacv2" and sent.id.startswith("1:")
    seen = next(r for r in bf.requests if r.path.startswith("/v3/"))
    assert seen.headers["Authorization"] == f"Bearer {bf.tokens[0]}"
    assert seen.method == "POST" and bf.activities[0]["conversation"] == "19:c@thread.tacv2"
    card = bf.activities[0]["activity"]["attachments"][0]["content"]
    assert card["version"] == "1.4"
    assert [a["data"] for a in card["actions"]][2] == {"musubi": "gate", "run": "r-1", "gate": "plan",
                                                       "decision": "request_changes", "sha": "a" * 64}
    assert "actions" not in adaptive_card(GATE)["attachments"][0]["content"]  # a webhook card has no buttons


async def test_the_token_never_goes_to_a_host_off_the_allow_list(bf: BotFrameworkFake) -> None:
    conn = TeamsConnector(settings(bf, bot_service_hosts="smba.trafficmanager.net"),
                          {"bot_app_secret": bf.app_secret}, policy=fast_policy())
    try:
        with pytest.raises(IntegrationError, match="allow-list") as err:
            await conn.send(GATE)
        with pytest.raises(IntegrationError, match="allow-list"):
            await conn.reply("https://evil.example/", "19:c", None, "hi")
    finally:
        await conn.close()
    assert err.value.kind == "config"
    assert bf.requests == [] and bf.tokens == []  # refused before a token was even asked for


async def test_a_wrong_secret_is_an_auth_error_without_the_secret(bf: BotFrameworkFake) -> None:
    conn = TeamsConnector(settings(bf), {"bot_app_secret": "wrong-SECRET-1"}, policy=fast_policy())
    try:
        with pytest.raises(Exception) as err:
            await conn.send(GATE)
    finally:
        await conn.close()
    assert getattr(err.value, "kind", "") == "auth" and "invalid_client" in str(err.value)
    assert "wrong-SECRET-1" not in str(err.value) and bf.activities == []


async def test_connection_test_gets_a_token(bf: BotFrameworkFake) -> None:
    conn = TeamsConnector(settings(bf), {"bot_app_secret": bf.app_secret}, policy=fast_policy())
    try:
        answer = await conn.test()
    finally:
        await conn.close()
    assert answer["account"] == f"bot {bf.app_id}" and len(bf.tokens) == 1 and bf.activities == []


@pytest.mark.parametrize(("url", "ok"), [
    ("https://smba.trafficmanager.net/emea/", True), ("http://smba.trafficmanager.net/emea/", False),
    ("https://smba.trafficmanager.net.evil.example/", False), ("https://user@smba.trafficmanager.net/", False),
    ("http://127.0.0.1:9/", True), ("http://localhost:9/", False), ("not a url", False),
])
def test_service_url_allow_list(url: str, ok: bool) -> None:
    assert service_url_allowed(url, ("smba.trafficmanager.net", "127.0.0.1")) is ok
