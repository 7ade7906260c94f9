"""Each provider against the fake vendors: streams, usage, retries and their limits, faults,
cancellation and redaction."""

from __future__ import annotations

import asyncio
import logging

import pytest

from connectors.llm.anthropic import AnthropicProvider
from connectors.llm.openai import AzureOpenAIProvider, OpenAICompatibleProvider, OpenAIProvider
from core.orchestration.contracts import ProviderError, TextDelta
from tests.fakes.llm_servers import FakeLLMServer, Reply
from tests.providers.helpers import ANTHROPIC_KEY, OPENAI_KEY, collect, request, settings


@pytest.fixture(params=["openai", "anthropic"])
def vendor(request: pytest.FixtureRequest, fake_openai: FakeLLMServer, fake_anthropic: FakeLLMServer) -> FakeLLMServer:
    """Each test that takes it runs against both vendors."""
    return fake_openai if request.param == "openai" else fake_anthropic


async def test_openai_streams_text_and_the_final_usage_chunk(fake_openai: FakeLLMServer) -> None:
    fake_openai.push(Reply(text="Hi there, friend.", input_tokens=13))
    provider = OpenAIProvider(settings("openai", "openai", fake_openai.base_url, OPENAI_KEY))
    text, done = await collect(provider, request())
    assert text == "Hi there, friend."
    assert (done.usage.input_tokens, done.usage.output_tokens) == fake_openai.usage_reported[0] == (13, 3)
    assert done.stop_reason == "stop" and done.request_id and done.request_id.startswith("req_")
    (seen,) = fake_openai.chat_requests()
    assert seen.path == "/v1/chat/completions" and seen.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert seen.body["stream"] is True and seen.body["stream_options"] == {"include_usage": True}
    assert seen.body["max_completion_tokens"] == 64 and "max_tokens" not in seen.body
    assert seen.body["messages"][0] == {"role": "system", "content": "Be brief."}
    await provider.aclose()


async def test_openai_compatible_sends_max_tokens_and_no_key() -> None:
    fake = FakeLLMServer("openai").start()  # Ollama, vLLM, LM Studio: no key needed
    try:
        provider = OpenAICompatibleProvider(settings("ollama", "openai-compatible", fake.base_url))
        text, done = await collect(provider, request("llama3.1:8b"))
        (seen,) = fake.chat_requests()
        assert "Authorization" not in seen.headers and seen.body["max_tokens"] == 64
        assert "max_completion_tokens" not in seen.body and seen.body["model"] == "llama3.1:8b"
        assert done.usage.output_tokens == fake.usage_reported[0][1]
        await provider.aclose()
    finally:
        fake.stop()


async def test_a_server_that_reports_no_usage_is_refused_not_guessed() -> None:
    fake = FakeLLMServer("openai", default=Reply(omit_usage=True)).start()
    try:
        provider = OpenAICompatibleProvider(settings("lms", "openai-compatible", fake.base_url))
        with pytest.raises(ProviderError) as info:
            await collect(provider, request())
        assert info.value.kind == "malformed" and "usage" in str(info.value) and info.value.answered
        await provider.aclose()
    finally:
        fake.stop()


async def test_azure_deployment_url_api_version_and_api_key(fake_openai: FakeLLMServer) -> None:
    fake_openai.push(Reply(status=429, retry_after="0"), Reply(text="ok"))
    provider = AzureOpenAIProvider(settings("azure", "azure-openai", fake_openai.root, OPENAI_KEY,
                                            api_version="2024-10-21"))
    text, done = await collect(provider, request("prod-gpt54"))
    assert text == "ok" and done.usage.input_tokens == 9
    first, second = fake_openai.chat_requests()  # the 429 (Azure's own body) was retried
    assert second.path == "/openai/deployments/prod-gpt54/chat/completions"
    assert second.query == {"api-version": "2024-10-21"} and second.headers["api-key"] == OPENAI_KEY
    assert "Authorization" not in second.headers and "model" not in second.body
    await provider.aclose()


async def test_azure_entra_token_is_sent_as_bearer(fake_openai: FakeLLMServer) -> None:
    fake_openai.api_key = None

    async def token() -> str:
        return "entra-token-abc123"

    provider = AzureOpenAIProvider(settings("azure", "azure-openai", fake_openai.root, "client-secret-xyz",
                                            auth="entra", tenant_id="t", client_id="c"), token_provider=token)
    await collect(provider, request("dep"))
    (seen,) = fake_openai.chat_requests()
    assert seen.headers["Authorization"] == "Bearer entra-token-abc123"
    assert "api-key" not in seen.headers  # the client secret never goes to Azure OpenAI
    await provider.aclose()


async def test_entra_through_msal_client_credentials() -> None:
    from connectors.llm.entra import SCOPE, EntraTokenProvider

    class App:  # msal.ConfidentialClientApplication's method, as msal answers
        def __init__(self, result: dict[str, str]) -> None:
            self.result = result
            self.scopes: list[str] | None = None

        def acquire_token_for_client(self, scopes: list[str]) -> dict[str, str]:
            self.scopes = scopes
            return self.result

    good = App({"access_token": "tok", "token_type": "Bearer"})
    assert await EntraTokenProvider("az", "t", "c", "secret-999", app=good)() == "tok" and good.scopes == [SCOPE]
    bad = App({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret secret-999"})
    with pytest.raises(ProviderError) as info:
        await EntraTokenProvider("az", "t", "c", "secret-999", app=bad)()
    assert info.value.kind == "auth" and "AADSTS7000215" in str(info.value) and "secret-999" not in str(info.value)


@pytest.mark.parametrize(("authority", "kind", "says"), [
    ("http://127.0.0.1:1", "auth", "should consist of an https url"),  # msal's own refusal, no network
    ("https://127.0.0.1:1", "connection", "Entra ID cannot be reached"),  # discovery fails to connect
])
async def test_entra_with_real_msal_failures_are_typed(authority: str, kind: str, says: str) -> None:
    from connectors.llm.entra import EntraTokenProvider

    provider = EntraTokenProvider("az", "tenant1", "client1", "secret-abc-123", authority_host=authority)
    with pytest.raises(ProviderError) as info:
        await provider()
    assert info.value.kind == kind and says in str(info.value) and "secret-abc-123" not in str(info.value)


async def test_anthropic_streams_named_events_with_usage(fake_anthropic: FakeLLMServer) -> None:
    fake_anthropic.push(Reply(text="Hi!", input_tokens=25, cache_read_tokens=100))
    # a base URL ending in /v1 (a common slip) still reaches /v1/messages
    provider = AnthropicProvider(settings("anthropic", "anthropic", fake_anthropic.base_url + "/v1", ANTHROPIC_KEY))
    text, done = await collect(provider, request("claude-sonnet-4-6"))
    assert text == "Hi!" and done.stop_reason == "end_turn"
    assert (done.usage.input_tokens, done.usage.output_tokens) == fake_anthropic.usage_reported[0] == (125, 1)
    (seen,) = fake_anthropic.chat_requests()
    assert seen.path == "/v1/messages" and seen.headers["x-api-key"] == ANTHROPIC_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01" and seen.body["system"] == "Be brief."
    assert [m["role"] for m in seen.body["messages"]] == ["user"] and seen.body["max_tokens"] == 64
    assert done.request_id and done.request_id.startswith("req_")
    await provider.aclose()


async def test_429_with_retry_after_then_success(vendor: FakeLLMServer) -> None:
    fake, flavour = vendor, vendor.flavour
    fake.push(Reply(status=429, retry_after="0"), Reply(status=429 if flavour == "openai" else 529), Reply(text="ok"))
    provider = _provider(flavour, fake)
    text, _ = await collect(provider, request())
    assert text == "ok" and len(fake.chat_requests()) == 3
    await provider.aclose()


async def test_retries_stop_at_max_attempts(vendor: FakeLLMServer) -> None:
    fake, flavour = vendor, vendor.flavour
    fake.default = Reply(status=500)
    provider = _provider(flavour, fake)
    with pytest.raises(ProviderError) as info:
        await collect(provider, request())
    err = info.value
    assert err.kind == "upstream" and err.status == 500 and not err.answered and err.request_id
    assert len(fake.chat_requests()) == 3  # max_attempts
    await provider.aclose()


async def test_a_retry_after_beyond_the_cap_is_not_waited(fake_openai: FakeLLMServer) -> None:
    fake_openai.default = Reply(status=429, retry_after="3600")
    provider = OpenAIProvider(settings("openai", "openai", fake_openai.base_url, OPENAI_KEY))
    with pytest.raises(ProviderError) as info:
        await collect(provider, request())
    assert info.value.kind == "rate_limited" and info.value.retry_after_s == 3600
    assert len(fake_openai.chat_requests()) == 1
    await provider.aclose()


async def test_insufficient_quota_is_not_retried(fake_openai: FakeLLMServer) -> None:
    fake_openai.default = Reply(status=429, error_code="insufficient_quota",
                                error_message="You exceeded your current quota, please check your plan and billing "
                                              "details.")
    provider = OpenAIProvider(settings("openai", "openai", fake_openai.base_url, OPENAI_KEY))
    with pytest.raises(ProviderError) as info:
        await collect(provider, request())
    assert info.value.kind == "rate_limited" and "current quota" in str(info.value)
    assert len(fake_openai.chat_requests()) == 1  # waiting does not cure billing
    await provider.aclose()


async def test_401_shows_the_vendors_text_without_the_key(
    vendor: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake, flavour = vendor, vendor.flavour
    wrong = "sk-wrong-key-" + flavour + "-987654"
    provider = _provider(flavour, fake, key=wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as info:
        await collect(provider, request())
    err = info.value
    assert err.kind == "auth" and err.status == 401 and len(fake.chat_requests()) == 1
    assert ("Incorrect API key provided" if flavour == "openai" else "invalid x-api-key") in str(err)
    for shown in (str(err), repr(err), repr(err.args), caplog.text, repr(provider), repr(provider.settings)):
        assert wrong not in shown
    check = await provider.check()
    assert not check.ok and wrong not in check.detail and "401" in check.detail
    await provider.aclose()


async def test_a_dropped_stream_is_answered_true_and_not_retried(vendor: FakeLLMServer) -> None:
    fake, flavour = vendor, vendor.flavour
    fake.push(Reply(text="one two three four", drop_after=2))
    provider = _provider(flavour, fake)
    got: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(request()):
            if isinstance(event, TextDelta):
                got.append(event.text)
    assert info.value.kind == "connection" and info.value.answered is True
    assert "".join(got) == "one two " and len(fake.chat_requests()) == 1
    await provider.aclose()


@pytest.mark.parametrize(("fault", "kind", "answered"), [
    (Reply(text="a b c", malformed_after=1), "malformed", True),  # an unreadable chunk after output
    (Reply(text="a b c", error_after=0), "upstream", False),  # the vendor's error event before any text
])
async def test_a_broken_200_stream_is_a_typed_error_never_retried(
    vendor: FakeLLMServer, fault: Reply, kind: str, answered: bool
) -> None:
    vendor.push(fault)
    provider = _provider(vendor.flavour, vendor)
    with pytest.raises(ProviderError) as info:
        await collect(provider, request())
    assert info.value.kind == kind and info.value.answered is answered
    if fault.error_after is not None:
        assert ("server had an error" if vendor.flavour == "openai" else "Overloaded") in str(info.value)
    assert len(vendor.chat_requests()) == 1  # a 200 stream is never retried by the provider
    await provider.aclose()


async def test_a_slow_answer_times_out(fake_openai: FakeLLMServer) -> None:
    fake_openai.push(Reply(delay_s=3.0))
    provider = OpenAIProvider(settings("openai", "openai", fake_openai.base_url, OPENAI_KEY, max_attempts=1))
    with pytest.raises(ProviderError) as info:
        await collect(provider, request(timeout_s=0.3))
    assert info.value.kind == "timeout" and not info.value.answered
    await provider.aclose()


async def test_cancelling_the_consumer_closes_the_connection(vendor: FakeLLMServer) -> None:
    fake, flavour = vendor, vendor.flavour
    fake.push(Reply(text=" ".join(f"w{i}" for i in range(200)), chunk_delay_s=0.05))
    provider = _provider(flavour, fake)
    first = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(request()):
            if isinstance(event, TextDelta):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.disconnected.wait, 10), "the vendor never saw the disconnect"
    assert fake.completed == 0 and fake.disconnects == 1
    await provider.aclose()


async def test_check_makes_one_tiny_call(fake_openai: FakeLLMServer, fake_anthropic: FakeLLMServer) -> None:
    openai = OpenAIProvider(settings("openai", "openai", fake_openai.base_url, OPENAI_KEY, check_model="gpt-test"))
    result = await openai.check()
    assert result.ok and "gpt-test answered" in result.detail and result.latency_ms is not None
    (seen,) = fake_openai.chat_requests()
    assert seen.body["max_completion_tokens"] == 1
    anthropic = AnthropicProvider(settings("anthropic", "anthropic", fake_anthropic.base_url, ANTHROPIC_KEY))
    listed = await anthropic.check()  # no check model: the model listing proves the key
    assert listed.ok and "v1/models" in listed.detail and fake_anthropic.requests[-1].method == "GET"
    await openai.aclose()
    await anthropic.aclose()


def test_every_provider_keeps_the_contract(tmp_path: object) -> None:
    from pathlib import Path

    from connectors.llm.replay import ReplayProvider
    from core.orchestration.contracts import ChatProvider

    replies = Path(str(tmp_path)) / "r.json"
    replies.write_text('[{"text": "x", "input_tokens": 1, "output_tokens": 1}]', encoding="utf-8")
    made = [
        OpenAIProvider(settings("o", "openai", None, "k-1234")),
        OpenAICompatibleProvider(settings("c", "openai-compatible", "http://127.0.0.1:1/v1")),
        AzureOpenAIProvider(settings("a", "azure-openai", "https://r.openai.azure.com", "k-1234")),
        AnthropicProvider(settings("n", "anthropic", None, "k-1234")),
        ReplayProvider(settings("r", "replay", None, file=str(replies))),
    ]
    for provider in made:
        assert isinstance(provider, ChatProvider) and provider.is_replay is isinstance(provider, ReplayProvider)
    with pytest.raises(ValueError, match="needs base_url"):
        OpenAICompatibleProvider(settings("c", "openai-compatible", None))


def _provider(flavour: str, fake: FakeLLMServer, key: str | None = None) -> OpenAIProvider | AnthropicProvider:
    if flavour == "openai":
        return OpenAIProvider(settings("openai", "openai", fake.base_url, key or OPENAI_KEY))
    return AnthropicProvider(settings("anthropic", "anthropic", fake.base_url, key or ANTHROPIC_KEY))


async def test_the_connection_pool_holds_a_call_per_run_slot_and_is_configurable() -> None:
    """A call holds its connection for the whole streamed answer: the pool must not queue the
    engine's concurrent runs (the HTTP layer's default of 20 did at 50 runs), and pool_size sets it."""
    from connectors.llm.base import DEFAULT_POOL_SIZE
    from core.orchestration.service import RUN_SLOTS

    default = OpenAIProvider(settings("openai", "openai", "http://127.0.0.1:9/v1", OPENAI_KEY))
    sized = OpenAIProvider(settings("openai", "openai", "http://127.0.0.1:9/v1", OPENAI_KEY, pool_size=7))
    try:
        pools = [p.http._session_now().connector for p in (default, sized)]
        assert [c.limit if c else None for c in pools] == [DEFAULT_POOL_SIZE, 7]
        assert DEFAULT_POOL_SIZE >= RUN_SLOTS
    finally:
        await default.aclose()
        await sized.aclose()
