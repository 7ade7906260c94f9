"""``musubi providers list|test`` and ``musubi engine reload`` through a real engine whose
environment points at the fake vendors.

The engine finds providers through the ``musubi.providers`` entry points.  The shared venv
sees pyproject's new entry points only after a reinstall; until then this module runs the
engine with a TEST-ONLY metadata shim on its PYTHONPATH (a ``.dist-info`` folder declaring
the same entry points, written to a temp dir), so the real discovery path
(importlib.metadata) is what is tested.  Nothing in the product knows about the shim.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.orchestration.contracts import PROVIDER_ENTRY_POINTS
from tests.cli.helpers import Cli, short_home
from tests.engine.helpers import poll
from tests.fakes.llm_servers import FakeLLMServer, Reply
from tests.providers.helpers import ANTHROPIC_KEY, ENTRY_POINTS, OPENAI_KEY

WRONG_KEY = "sk-ant-wrong-key-000111222"


def _shim_path(tmp: Path) -> str | None:
    """A test-only dist-info declaring the provider entry points, when the venv lacks them."""
    installed = {ep.name for ep in importlib.metadata.entry_points(group=PROVIDER_ENTRY_POINTS)}
    if set(ENTRY_POINTS) <= installed:
        return None
    info = tmp / "musubi_test_providers-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: musubi-test-providers\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[musubi.providers]\n" + "".join(f"{k} = {v}\n" for k, v in ENTRY_POINTS.items()))
    return str(tmp)


@pytest.fixture
def engine(fake_openai: FakeLLMServer, fake_anthropic: FakeLLMServer) -> Iterator[tuple[Cli, dict[str, str], Path]]:
    home, scratch = short_home(), Path(tempfile.mkdtemp(prefix="mp", dir="/tmp"))
    config_dir = scratch / "config"
    config_dir.mkdir()
    env = {"MUSUBI_CONFIG_DIR": str(config_dir), "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake_openai.base_url,
           "ANTHROPIC_API_KEY": WRONG_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url}
    shim = _shim_path(scratch / "shim")
    if shim:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), shim) if p)
    cli = Cli(home)
    try:
        cli.ok("engine", "start", env=env)
        yield cli, env, config_dir / "config.toml"
    finally:
        cli.stop()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (OPENAI_KEY, ANTHROPIC_KEY, WRONG_KEY):
            assert secret not in text


def test_list_test_and_reload_against_the_fakes(engine: tuple[Cli, dict[str, str], Path],
                                                fake_openai: FakeLLMServer, fake_anthropic: FakeLLMServer) -> None:
    cli, env, config = engine
    listed = cli("providers", "list", "--json", env=env)
    assert listed.rc == 0, str(listed)
    rows = {p["name"]: p for p in listed.json()["providers"]}
    assert rows["openai"]["status"] == rows["anthropic"]["status"] == "ready"
    assert rows["openai"]["key_set"] and rows["openai"]["base_url"] == fake_openai.base_url
    human = cli.ok("providers", "list", env=env)
    assert "no provider for azure models: set AZURE_OPENAI_ENDPOINT" in human.out

    tested = cli("providers", "test", "--json", env=env)
    assert tested.rc == 1, str(tested)  # anthropic's key is wrong
    results = {r["name"]: r for r in tested.json()["results"]}
    assert results["openai"]["ok"] and "answered" in results["openai"]["detail"]
    assert not results["anthropic"]["ok"] and "401: invalid x-api-key" in results["anthropic"]["detail"]
    assert len(fake_openai.chat_requests()) == 1 and len(fake_anthropic.chat_requests()) == 1
    assert fake_openai.chat_requests()[0].body["max_completion_tokens"] == 1
    human_test = cli("providers", "test", env=env)
    assert human_test.rc == 1 and "FAILED" in human_test.out and "invalid x-api-key" in human_test.out

    # a reload while a call is in flight: the call finishes on the old settings, undisturbed
    import threading

    fake_openai.push(Reply(text="slow but sure", hold=True))  # in flight until released, however slow the machine
    before = len(fake_openai.chat_requests())
    slow: dict[str, object] = {}
    caller = threading.Thread(target=lambda: slow.update(r=cli("providers", "test", "openai", "--json", env=env)))
    caller.start()
    try:
        fake_openai.wait_for(lambda f: len(f.chat_requests()) == before + 1, "the slow call reaching the vendor")
        during = cli.js("engine", "reload", "--keep-env", env=env)
    finally:
        fake_openai.release()
        caller.join(120)
    assert not caller.is_alive(), "the slow call never returned"
    assert during["previous_in_flight"] == 1 and during["generation"] == 1
    finished = slow["r"].json()  # type: ignore[attr-defined]
    # the fake counts a completion on its own thread after its last byte: wait for it, not for a guessed time
    fake_openai.wait_for(lambda f: f.completed == before + 1, "the slow call's stream end")
    assert finished["ok"] and fake_openai.disconnects == 0

    # the shell's corrected variable reaches the running engine through reload
    fixed = {**env, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    reloaded = cli.js("engine", "reload", env=fixed)
    assert reloaded["generation"] == 2 and reloaded["providers"] == ["openai", "anthropic"]
    assert cli.js("providers", "test", "anthropic", env=fixed)["ok"] is True

    # the providers and their keys are the engine user's: acting as someone else is refused
    for args in (("engine", "reload"), ("providers", "test")):
        refused = cli.fails(4, "--as", "bob", *args, env=fixed)
        assert "only the OS user who runs the engine" in refused.err
    assert cli.js("providers", "list", env=fixed)["generation"] == 2

    # a bad config file is refused and changes nothing
    config.write_text('[providers.openai]\ntimeout_s = "soon"\n', encoding="utf-8")
    bad = cli.fails(2, "engine", "reload", env=fixed)
    assert str(config) in bad.err and "timeout_s" in bad.err
    assert cli.js("providers", "list", env=fixed)["generation"] == 2

    # SIGHUP re-reads the file (and keeps the variables of the last reload)
    config.write_text("[providers.openai]\nenabled = false\n", encoding="utf-8")
    os.kill(int(cli.paths.pidfile.read_text().split()[0]), signal.SIGHUP)
    now = poll(lambda: (d := cli.js("providers", "list", env=fixed))["generation"] == 3 and d, timeout=60, interval=0.1)
    assert [p["name"] for p in now["providers"]] == ["anthropic"]
    assert cli.js("providers", "test", env=fixed)["ok"] is True  # the reloaded key is still the engine's

    # keys appear in no answer, no audit event, no log line
    audit = cli.ok("audit", "list", "--json", env=fixed)
    assert "engine.reload" in audit.out and "provider.test" in audit.out
    logs = "".join(p.read_text(errors="replace") for p in cli.paths.logs.glob("*") if p.is_file())
    _no_secret(listed.out, tested.out, human.out, human_test.out, bad.err, audit.out, logs)


def test_with_nothing_configured_the_list_says_what_to_set(engine: tuple[Cli, dict[str, str], Path]) -> None:
    cli, env, _config = engine
    bare = {k: v for k, v in env.items() if not k.startswith(("OPENAI", "ANTHROPIC"))}
    bare.update({"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "OPENAI_BASE_URL": "", "ANTHROPIC_BASE_URL": ""})
    assert cli.js("engine", "reload", env=bare)["providers"] == []
    data = cli.js("providers", "list", env=bare)
    hints = {h["provider"]: h["hint"] for h in data["hints"]}
    assert data["providers"] == [] and "set OPENAI_API_KEY" in hints["openai"]
    assert "set ANTHROPIC_API_KEY" in hints["anthropic"] and "musubi engine reload" in hints["anthropic"]
    human = cli("providers", "test", env=bare)
    assert human.rc == 0 and "no provider is configured" in human.out
