"""The engine's cost routes read the caller's own workflows: the project's .musubi/ and the user config dir."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import BadRequest
from tests.engine.conftest import eng  # noqa: F401  (module-scoped engine on a short home)
from tests.engine.helpers import Home


@pytest.fixture(scope="module", autouse=True)
def cfgdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="wc", dir="/tmp"))
    (d / "workflows.toml").write_text('[workflow.mine]\ndescription = "user"\nsteps = [ { agent = "summariser" } ]\n')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSUBI_CONFIG_DIR", str(d))  # the engine inherits it when it starts
        yield d
    shutil.rmtree(d, ignore_errors=True)


def test_project_and_user_workflows_are_listed_and_estimated(eng: Home, tmp_path: Path) -> None:  # noqa: F811
    repo = tmp_path / "repo"
    (repo / ".musubi").mkdir(parents=True)
    (repo / ".musubi" / "workflows.toml").write_text(
        '[workflow.ours]\ndescription = "project"\n'
        'steps = [ { agent = "code-reviewer" }, { agent = "test-engineer" } ]\n'
        '[workflow.review]\ndescription = "project review"\nsteps = [ { agent = "code-reviewer" } ]\n')
    t = eng.new_tenant("wfp")
    owner = eng.client(t)
    owner.post("/v1/projects", {"path": str(repo), "name": "shop"})
    inside = eng.client(t, cwd=str(repo))
    got = {w["name"]: w for w in inside.get("/v1/cost/workflows")["workflows"]}
    assert got["ours"]["steps"] == ["review", "test"] and got["mine"]["steps"] == ["summarise"]
    assert got["review"]["description"] == "project review"
    outside = {w["name"]: w for w in owner.get("/v1/cost/workflows")["workflows"]}
    assert "ours" not in outside and "mine" in outside and outside["review"]["description"] != "project review"
    r = inside.post("/v1/cost/estimate", {"models": ["gpt-5.4"], "texts": [{"name": "n", "text": "x"}],
                                          "workflow": "ours"})
    assert [s["task"] for s in r["steps"]] == ["review", "test"]
    (repo / ".musubi" / "workflows.toml").write_text('[workflow.ours]\nsteps = [ { agent = "ghost" } ]\n')
    with pytest.raises(BadRequest) as e:
        inside.post("/v1/cost/estimate", {"models": ["gpt-5.4"], "texts": [{"name": "n", "text": "x"}],
                                          "workflow": "ours"})
    assert e.value.code == "bad_workflow_file"
    assert f"{repo}/.musubi/workflows.toml" in e.value.message and "(line 2): no agent 'ghost'" in e.value.message
