"""The TUI's fake engine against a real one: the same typed calls, the same shapes, the same values and refusals.

A TUI test passes against the fake (tests/tui/fakes.py); this test is what makes that
mean something: every scenario of tests/tui/contract.py runs on the fake and on a real
engine in a temporary home, and for each call both must answer (or refuse with the same
typed error, HTTP status and exit code), every answer must have the route's response
shape (no missing and no extra key), and the values the scenario picks must be equal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.async_client import AsyncEngineClient
from core.wire import Identity
from tests.engine.helpers import Home
from tests.engine.test_api_models import _exactly
from tests.trace.fixture import build_repo
from tests.tui.contract import Step, route_for, run_scenarios
from tests.tui.fakes import FakeEngineApi


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repo(tmp_path_factory.mktemp("contract") / "webshop")


@pytest.fixture(scope="module")
def real_steps(repo: Path) -> Iterator[list[Step]]:
    h = Home()
    try:
        h.start()
        api = AsyncEngineClient(h.paths, Identity(cwd="/"))

        async def run() -> list[Step]:
            try:
                return await run_scenarios(api, str(repo))
            finally:
                await api.close()

        yield asyncio.run(run())
    finally:
        h.cleanup()


@pytest.fixture(scope="module")
def fake_steps(repo: Path) -> list[Step]:
    fake = FakeEngineApi()
    fake.code.project = None  # the real engine's client runs in /, inside no registered project
    return asyncio.run(run_scenarios(fake, str(repo)))


def test_the_fake_answers_every_call_as_the_engine_does(fake_steps: list[Step], real_steps: list[Step]) -> None:
    assert [s.name for s in fake_steps] == [s.name for s in real_steps]
    for fake, real in zip(fake_steps, real_steps, strict=True):
        assert fake.error == real.error, f"{fake.name}: fake {fake.error or 'answered'}, engine {real.error or 'ok'}"
        assert fake.values == real.values, f"{fake.name}: fake {fake.values!r}, engine {real.values!r}"


@pytest.mark.parametrize("side", ["fake", "real"])
def test_every_answer_has_the_routes_response_shape(
    side: str, fake_steps: list[Step], real_steps: list[Step]
) -> None:
    steps = fake_steps if side == "fake" else real_steps
    for s in steps:
        if s.error is None:
            route = route_for(s.call.method, s.call.path)
            try:
                _exactly(s.answer, route.response)
            except Exception as exc:
                raise AssertionError(f"{side} {s.name} ({s.call.method} {s.call.path}): {exc}") from None


def test_the_scenarios_cover_every_kind_of_refusal(real_steps: list[Step]) -> None:
    statuses = {s.error["http_status"] for s in real_steps if s.error}
    assert {400, 403, 404, 409, 429} <= statuses
    assert sum(s.error is None for s in real_steps) >= 20


def test_a_fake_that_answers_a_write_with_ok_true_fails_the_contract(repo: Path, real_steps: list[Step]) -> None:
    """The check can fail: a fake answering a member add with ``{"ok": True}`` (the old fake) is caught."""

    class OldFake(FakeEngineApi):
        async def _send(self, method: str, path: str, body: Any, query: Any) -> Any:
            return {"ok": True} if method != "GET" else await super()._send(method, path, body, query)

    steps = asyncio.run(run_scenarios(OldFake(), str(repo)))
    member_add = next(s for s in steps if s.name == "member add")
    with pytest.raises(Exception, match="user|tenant|ok"):
        _exactly(member_add.answer, route_for("POST", "/v1/members").response)
    assert [s.error for s in steps] != [s.error for s in real_steps]
