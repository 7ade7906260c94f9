"""Bot Framework JWT checks on their own (core/integrations/botauth.py): key cache, refetch limits, metadata."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.integrations import botauth
from tests.fakes.botframework import BotFrameworkFake, submit_activity
from tests.fakes.threaded import threaded


@pytest.fixture(scope="module")
def bf() -> Iterator[BotFrameworkFake]:
    with threaded(BotFrameworkFake) as f:
        yield f


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def check(bf: BotFrameworkFake, keys: botauth.BotKeys, token: str) -> dict[str, object]:
    return botauth.verify(f"Bearer {token}", submit_activity(bf.service_url, {}), keys, bf.app_id, ("127.0.0.1",))


def test_keys_are_cached_and_refetched_after_the_ttl(bf: BotFrameworkFake) -> None:
    clock = Clock()
    keys = botauth.BotKeys(bf.openid_url, clock=clock)
    assert check(bf, keys, bf.sign())["aud"] == bf.app_id
    check(bf, keys, bf.sign())
    assert keys.fetches == 1
    clock.t += botauth.KEYS_TTL_S
    check(bf, keys, bf.sign())
    assert keys.fetches == 2


def test_an_unknown_kid_refetches_at_most_every_few_seconds(bf: BotFrameworkFake) -> None:
    clock = Clock()
    keys = botauth.BotKeys(bf.openid_url, clock=clock)
    check(bf, keys, bf.sign())
    for _ in range(3):
        with pytest.raises(botauth.BotRefused, match="does not publish"):
            check(bf, keys, bf.sign(kid="made-up"))
    assert keys.fetches == 1  # made-up kids inside MIN_REFETCH_S never reach the Bot Framework
    clock.t += botauth.MIN_REFETCH_S
    with pytest.raises(botauth.BotRefused, match="does not publish"):
        check(bf, keys, bf.sign(kid="made-up"))
    assert keys.fetches == 2


def test_metadata_without_rs256_and_unreachable_metadata_refuse(bf: BotFrameworkFake) -> None:
    bf.algs[:] = ["ES256"]
    try:
        with pytest.raises(botauth.BotRefused, match="does not list RS256"):
            check(bf, botauth.BotKeys(bf.openid_url), bf.sign())
    finally:
        bf.algs[:] = ["RS256"]
    with pytest.raises(botauth.BotRefused, match="cannot fetch"):
        check(bf, botauth.BotKeys("http://127.0.0.1:9/v1/.well-known/openidconfiguration"), bf.sign())


def test_a_none_or_hs256_token_is_refused(bf: BotFrameworkFake) -> None:
    import jwt

    keys = botauth.BotKeys(bf.openid_url)
    forged = jwt.encode({"iss": botauth.ISSUER, "aud": bf.app_id, "serviceUrl": bf.service_url, "exp": 4102444800},
                        "k" * 32, algorithm="HS256", headers={"kid": bf.kid})
    with pytest.raises(botauth.BotRefused, match="not RS256"):
        check(bf, keys, forged)
    with pytest.raises(botauth.BotRefused, match="not a signed JWT"):
        check(bf, keys, "abc")


def test_a_token_without_exp_is_refused_naming_the_claim(bf: BotFrameworkFake) -> None:
    import jwt

    claims = {"iss": botauth.ISSUER, "aud": bf.app_id, "serviceUrl": bf.service_url}
    token = jwt.encode(claims, bf.key, algorithm="RS256", headers={"kid": bf.kid})
    with pytest.raises(botauth.BotRefused, match="token lacks the 'exp' claim") as info:
        check(bf, botauth.BotKeys(bf.openid_url), token)
    assert info.value.code == "bad_token" and token not in info.value.message
