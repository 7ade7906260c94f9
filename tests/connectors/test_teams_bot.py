"""The Teams bot's outbound side: the card it posts, the token it fetches, where that token may go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors import teamsbot
from connectors.http import HttpError
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


# -- the token cache (connectors/teamsbot.py TokenCache) ------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The process's token cache replaced by one on a clock the test moves."""
    c = Clock()
    monkeypatch.setattr(teamsbot, "TOKENS", teamsbot.TokenCache(clock=c))
    return c


async def deliver(bf: BotFrameworkFake, secret: str | None = None) -> None:
    """One delivery as the engine makes it: a connector built for it, closed after it."""
    conn = TeamsConnector(settings(bf), {"bot_app_secret": secret or bf.app_secret}, policy=fast_policy())
    try:
        await conn.send(GATE)
    finally:
        await conn.close()


def v3_calls(bf: BotFrameworkFake) -> list[str]:
    return [r.method for r in bf.requests if r.path.startswith("/v3/")]


async def test_deliveries_share_one_token_until_shortly_before_it_expires(bf: BotFrameworkFake, clock: Clock) -> None:
    await asyncio.gather(*(deliver(bf) for _ in range(3)))  # at once: still one token request
    for _ in range(2):
        await deliver(bf)
    assert len(bf.tokens) == 1 and len(bf.activities) == 5
    assert {r.headers["Authorization"] for r in bf.requests if r.path.startswith("/v3/")} == {f"Bearer {bf.tokens[0]}"}
    clock.now += 3599 - 301  # expires_in 3599: still more than 5 minutes left
    await deliver(bf)
    assert len(bf.tokens) == 1
    clock.now += 2  # now less than 5 minutes left: renewed before it runs out
    await deliver(bf)
    assert len(bf.tokens) == 2 and bf.requests[-1].headers["Authorization"] == f"Bearer {bf.tokens[1]}"
    with pytest.raises(HttpError, match="invalid_client"):  # another secret is never served the cached token
        await deliver(bf, "wrong-SECRET-2")
    assert len(bf.tokens) == 2


async def test_a_short_lifetime_keeps_half_and_no_lifetime_is_not_cached(bf: BotFrameworkFake, clock: Clock) -> None:
    bf.expires_in = 60
    await deliver(bf)
    clock.now += 29
    await deliver(bf)
    assert len(bf.tokens) == 1
    clock.now += 2
    await deliver(bf)
    assert len(bf.tokens) == 2
    bf.expires_in = None  # an answer without a lifetime: used once, never cached
    clock.now += 31
    await deliver(bf)
    await deliver(bf)
    assert len(bf.tokens) == 4


async def test_a_401_gets_one_fresh_token_and_one_retry(bf: BotFrameworkFake, clock: Clock) -> None:
    await deliver(bf)
    bf.revoke()  # the cached token is refused now (rotated secret, token revoked)
    await deliver(bf)
    assert len(bf.tokens) == 2 and len(bf.activities) == 2  # posted once, with the new token
    assert v3_calls(bf) == ["POST", "POST", "POST"]  # ok; 401; the retry
    bf.deny_all = True
    with pytest.raises(HttpError) as err:
        await deliver(bf)
    assert err.value.kind == "auth" and err.value.status == 401
    assert "Authorization has been denied" in str(err.value)
    assert len(bf.tokens) == 3 and v3_calls(bf)[3:] == ["POST", "POST"]  # one refresh, one retry, no loop
    for token in bf.tokens:
        assert token not in str(err.value)


# -- updating a card in place (Update Activity) ---------------------------------------------------

DECIDED = Message("Gate plan of run r-1: approved", "Approved by alice.", (("By", "alice"),), severity="good")


async def test_update_card_replaces_the_activity_and_maps_the_connectors_errors(bf: BotFrameworkFake) -> None:
    conn = TeamsConnector(settings(bf), {"bot_app_secret": bf.app_secret}, policy=fast_policy())
    conv = "19:c@thread.tacv2"
    try:
        sent = await conn.send(GATE)
        assert await conn.update_card(bf.service_url, conv, sent.id, DECIDED) == sent.id
        put = next(r for r in bf.requests if r.method == "PUT")
        assert put.path == f"/v3/conversations/{conv}/activities/{sent.id}"
        assert put.headers["Authorization"] == f"Bearer {bf.tokens[0]}"
        shown = bf.posted[(conv, sent.id)]
        assert shown["id"] == sent.id and "actions" not in shown["attachments"][0]["content"]
        with pytest.raises(HttpError) as missing:
            await conn.update_card(bf.service_url, conv, "1:nope", DECIDED)
        with pytest.raises(HttpError) as other_conv:
            await conn.update_card(bf.service_url, "19:other@thread.tacv2", sent.id, DECIDED)
        bf.deleted.add(sent.id)
        with pytest.raises(HttpError) as deleted:
            await conn.update_card(bf.service_url, conv, sent.id, DECIDED)
        with pytest.raises(IntegrationError, match="allow-list"):
            await conn.update_card("https://evil.example/", conv, sent.id, DECIDED)
    finally:
        await conn.close()
    assert (missing.value.status, missing.value.kind) == (404, "not_found")
    assert "ActivityNotFoundInConversation" in str(missing.value) or "does not exist" in str(missing.value)
    assert other_conv.value.status == 404 and "Conversation not found" in str(other_conv.value)
    assert deleted.value.status == 403 and "Unknown" in str(deleted.value)
    assert len(bf.updates) == 1 and len(bf.tokens) == 1
