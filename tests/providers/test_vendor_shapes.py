"""The stream parsers on the vendors' recorded wire shapes, delivered in awkward pieces.

The payloads follow streams recorded from the real APIs (the Anthropic SDK's streaming
fixtures; an api.openai.com chat stream with ``service_tier`` and ``obfuscation`` fields),
with our own ids and text: unknown fields, ``ping`` with a space in its JSON, a tool-use
block (``input_json_delta``) to ignore, cache counts and a ``cache_creation`` object, a final
event without its blank line, ``\\r\\n`` line ends, and reads that split events anywhere.
"""

from __future__ import annotations

import pytest

from connectors.llm.anthropic import AnthropicProvider
from connectors.llm.openai import OpenAIProvider
from tests.connectors.scripted_server import Reply, ScriptedServer
from tests.providers.helpers import collect, request, settings

ANTHROPIC_TOOL_STREAM = """event: message_start
data: {"type":"message_start","message":{"id":"msg_01Shape","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],"stop_reason":null,"stop_sequence":null,"stop_details":null,"usage":{"input_tokens":377,"cache_creation_input_tokens":10,"cache_read_input_tokens":5,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me look "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"that up."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01Shape","name":"lookup","caller":{"type":"direct"},"input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"q\\": \\"x"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null,"stop_details":null},"usage":{"output_tokens":65}}

event: message_stop
data: {"type":"message_stop"}"""  # noqa: E501  (one wire event per line, as sent)

OPENAI_RECORDED_STREAM = """data: {"id":"chatcmpl-Shape","object":"chat.completion.chunk","created":1761564674,"model":"gpt-5.4-2026-03-05","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"q1"}

data: {"id":"chatcmpl-Shape","object":"chat.completion.chunk","created":1761564674,"model":"gpt-5.4-2026-03-05","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"Sure."},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"2c6Xq1"}

data: {"id":"chatcmpl-Shape","object":"chat.completion.chunk","created":1761564674,"model":"gpt-5.4-2026-03-05","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null,"obfuscation":"a"}

data: {"id":"chatcmpl-Shape","object":"chat.completion.chunk","created":1761564674,"model":"gpt-5.4-2026-03-05","service_tier":"default","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":3,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"8618FsxJD2gV"}

data: [DONE]

"""  # noqa: E501


def _pieces(text: str, size: int, crlf: bool) -> tuple[bytes, ...]:
    data = (text.replace("\n", "\r\n") if crlf else text).encode()
    return tuple(data[i:i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize(("size", "crlf"), [(1, False), (37, True), (4096, False)])
async def test_anthropic_recorded_shape(server: ScriptedServer, size: int, crlf: bool) -> None:
    server.script("/v1/messages", Reply(stream_chunks=_pieces(ANTHROPIC_TOOL_STREAM, size, crlf)))
    provider = AnthropicProvider(settings("anthropic", "anthropic", server.url, "sk-ant-x-123"))
    text, done = await collect(provider, request("claude-sonnet-4-6"))
    assert text == "Let me look that up."  # the tool-use block's JSON is not answer text
    # input = 377 uncached + 10 cache writes + 5 cache reads; output = the last cumulative count
    assert (done.usage.input_tokens, done.usage.output_tokens, done.stop_reason) == (392, 65, "tool_use")
    await provider.aclose()


@pytest.mark.parametrize(("size", "crlf"), [(1, True), (53, False)])
async def test_openai_recorded_shape(server: ScriptedServer, size: int, crlf: bool) -> None:
    server.script("/v1/chat/completions", Reply(stream_chunks=_pieces(OPENAI_RECORDED_STREAM, size, crlf)))
    provider = OpenAIProvider(settings("openai", "openai", server.url + "/v1", "sk-x-123456"))
    text, done = await collect(provider, request("gpt-5.4"))
    assert text == "Sure." and done.stop_reason == "length"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (10, 5)  # prompt_tokens already hold cached
    await provider.aclose()
