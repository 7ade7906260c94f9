"""The files / fine-tuning client (connectors/llm/finetune.py) against the fake: wire shapes, retries, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from connectors.llm.openai import AzureOpenAIProvider, OpenAIProvider
from core.finetune.contracts import FineTuneApi, FineTuneError
from core.orchestration.contracts import ProviderSettings
from tests.fakes.finetune_server import FineTuneFake
from tests.finetune.helpers import KEY

FAST = {"retry_base_s": 0.01, "max_attempts": 2, "max_retry_wait_s": 1.0}


def run(test: Callable[[FineTuneFake], Awaitable[Any]], key: str = KEY) -> Any:
    async def main() -> Any:
        async with FineTuneFake(KEY) as fake:
            return await test(fake)

    return asyncio.run(main())


def openai(fake: FineTuneFake, key: str = KEY) -> tuple[OpenAIProvider, FineTuneApi]:
    p = OpenAIProvider(ProviderSettings("openai", "openai", base_url=fake.url + "/v1", api_key=key, extra=FAST))
    return p, p.finetune_client()


def test_upload_create_poll_events_and_cancel() -> None:
    async def go(fake: FineTuneFake) -> None:
        p, c = openai(fake)
        try:
            fid = await c.upload("d-1.jsonl", b'{"messages": []}\n')
            up = fake.requests[-1]
            assert up.path == "/v1/files" and up.headers["Authorization"] == f"Bearer {KEY}"
            assert fake.contents[fid] == b'{"messages": []}\n' and fake.files[fid]["filename"] == "d-1.jsonl"
            job = await c.create(fid, "gpt-4.1-mini", 2, "billing")
            assert json.loads(fake.requests[-1].body) == {"training_file": fid, "model": "gpt-4.1-mini",
                                                          "hyperparameters": {"n_epochs": 2}, "suffix": "billing"}
            assert job.status == "validating_files" and job.fine_tuned_model is None
            seen = [(await c.get(job.id)).status for _ in range(4)]
            assert seen == ["queued", "running", "succeeded", "succeeded"]
            done = await c.get(job.id)
            assert done.fine_tuned_model == f"ft:gpt-4.1-mini:org-fake:billing:{job.id[-8:]}"
            assert done.trained_tokens == 4_242
            events = await c.events(job.id)
            assert events[0]["message"] == "The job has successfully completed" and events[0]["level"] == "info"
            with pytest.raises(FineTuneError) as e:
                await c.cancel(job.id)  # already done
            assert e.value.kind == "validation" and "already completed" in e.value.message
        finally:
            await p.aclose()

    run(go)


def test_a_failed_job_carries_the_vendor_error_object() -> None:
    async def go(fake: FineTuneFake) -> None:
        fake.script = ["validating_files", "failed"]
        p, c = openai(fake)
        try:
            job = await c.create(await c.upload("d.jsonl", b"x\n"), "gpt-4.1-mini", 1, None)
            failed = await c.get(job.id)
            assert failed.status == "failed"
            assert failed.error == {"code": "invalid_training_file", "param": "training_file",
                                    "message": "The job failed due to an invalid training file. Expected file to "
                                               "have JSONL format."}
        finally:
            await p.aclose()

    run(go)


def test_429_waits_retry_after_then_succeeds_and_gives_up_after_the_attempts() -> None:
    async def go(fake: FineTuneFake) -> None:
        p, c = openai(fake)
        try:
            job = await c.create(await c.upload("d.jsonl", b"x\n"), "gpt-4.1-mini", 1, None)
            body = {"error": {"message": "Rate limit reached", "type": "requests", "param": None,
                              "code": "rate_limit_exceeded"}}
            fake.fail(429, headers={"Retry-After": "0"}, body=body, path="/fine_tuning/jobs/")
            assert (await c.get(job.id)).status == "queued"
            assert fake.count("GET", "/fine_tuning/jobs/") == 2  # refused once, asked again
            # a wait of 7 s is more than this client may wait (max_retry_wait_s): it reports the wait instead
            fake.fail(429, headers={"Retry-After": "7"}, body=body, path="/fine_tuning/jobs/", times=5)
            with pytest.raises(FineTuneError) as e:
                await c.get(job.id)
            assert e.value.kind == "rate_limited" and e.value.retry_after_s == 7.0
        finally:
            await p.aclose()

    run(go)


def test_401_is_an_auth_error_and_the_key_is_never_in_it() -> None:
    wrong = "sk-wrong-key-0123456789abcdef"

    async def go(fake: FineTuneFake) -> None:
        p, c = openai(fake, wrong)
        try:
            with pytest.raises(FineTuneError) as e:
                await c.upload("d.jsonl", b"x\n")
            assert e.value.kind == "auth" and e.value.status == 401
            assert "Incorrect API key provided" in e.value.message
            assert wrong not in e.value.message and wrong not in json.dumps(e.value.to_dict())
        finally:
            await p.aclose()

    run(go)


def test_azure_sends_api_version_and_api_key_on_every_call() -> None:
    async def go(fake: FineTuneFake) -> None:
        p = AzureOpenAIProvider(ProviderSettings("az", "azure-openai", base_url=fake.url, api_key=KEY,
                                                 api_version="2024-10-21", extra=FAST))
        c = p.finetune_client()
        try:
            job = await c.create(await c.upload("d.jsonl", b"x\n"), "gpt-4.1-mini", 1, None)
            await c.get(job.id)
            await c.events(job.id, 5)
            assert [r.path for r in fake.requests] == [
                "/openai/files", "/openai/fine_tuning/jobs", f"/openai/fine_tuning/jobs/{job.id}",
                f"/openai/fine_tuning/jobs/{job.id}/events"]
            for r in fake.requests:
                assert r.query["api-version"] == "2024-10-21" and r.headers["api-key"] == KEY
                assert "Authorization" not in r.headers
            assert fake.requests[-1].query["limit"] == "5"
        finally:
            await p.aclose()

    run(go)


def test_azure_without_api_version_is_refused_by_the_fake() -> None:
    async def go(fake: FineTuneFake) -> None:
        p = AzureOpenAIProvider(ProviderSettings("az", "azure-openai", base_url=fake.url, api_key=KEY, extra=FAST))
        c = p.finetune_client()
        c._path = lambda path: path  # type: ignore[method-assign]  # what a client forgetting api-version sends
        try:
            with pytest.raises(FineTuneError) as e:
                await c.get("ftjob-x")
            assert e.value.status == 404
        finally:
            await p.aclose()

    run(go)
