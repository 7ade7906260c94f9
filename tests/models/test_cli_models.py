"""``musubi models`` and ``musubi cost`` through the real command, against a real engine."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import EXIT_DENIED, EXIT_ERROR, EXIT_USAGE
from core.models.tokens import count_exact
from tests.cli.helpers import Cli

CORPUS = Path(__file__).with_name("corpus")


def test_models_list_and_show(cli: Cli) -> None:
    r = cli.ok("models", "list", "--json")
    ids = [m["id"] for m in r.json()["models"]]
    assert len(ids) >= 15 and "gpt-5.4" in ids
    human = cli.ok("models", "list", "--provider", "anthropic").out
    assert "claude-opus-5" in human and "gpt-5.4" not in human and "estimate" in human
    show = cli.ok("models", "show", "azure/gpt-5.4", "--json").json()
    assert show["provider"] == "azure" and show["deployment"] == "gpt-5.4"
    assert "source" in cli.ok("models", "show", "haiku").out


def test_unknown_model_exits_1_with_suggestions(cli: Cli) -> None:
    r = cli("models", "show", "gpt-5.44")
    assert r.rc == EXIT_ERROR and "Did you mean: gpt-5.4" in r.err and "Traceback" not in r.err
    j = cli("models", "show", "gpt-5.44", "--json")
    assert j.json()["error"]["code"] == "unknown_model"


def test_route_explains_its_choice(cli: Cli) -> None:
    r = cli.ok("models", "route", "--task", "review", "--input-tokens", "40000")
    assert "needs tier 'advanced'" in r.out and "fallback 1" in r.out
    j = cli.ok("models", "route", "--task", "classify", "--input-tokens", "500", "--all", "--json").json()
    assert j["tier"] == "basic" and j["rejected"]
    bad = cli("models", "route", "--task", "dance", "--input-tokens", "5")
    assert bad.rc == EXIT_USAGE


def test_allowed_set_show_clear(cli: Cli) -> None:
    tenant = "cli-pin"
    cli.ok("tenant", "create", tenant)
    assert "every model" in cli.ok("--tenant", tenant, "models", "allowed", "show").out
    r = cli.ok("--tenant", tenant, "models", "allowed", "set", "gpt-5.4", "sonnet", "--json").json()
    assert r["allowed"] == ["claude-sonnet-5-5", "gpt-5.4"]
    denied = cli("--tenant", tenant, "cost", "estimate", "--model", "gpt-5.5", "--workflow", "spec")
    assert denied.rc == EXIT_DENIED and "not allowed" in denied.err
    cli.ok("--tenant", tenant, "models", "allowed", "clear")
    assert cli.ok("--tenant", tenant, "models", "allowed", "show", "--json").json()["allowed"] is None


def test_cost_estimate_per_file_breakdown(cli: Cli) -> None:
    r = cli.ok("cost", "estimate", "--model", "gpt-5.4", "--model", "claude-sonnet-5", "--glob", str(CORPUS / "*.py"),
               "--file", str(CORPUS / "prose_en.txt"), "--workflow", "implement", "--json")
    d = r.json()
    names = {Path(f["name"]).name: f for f in d["files"]}
    assert set(names) == {"code_py.py", "prose_en.txt"}
    assert names["code_py.py"]["tokens"]["o200k_base"]["tokens"] == count_exact((CORPUS / "code_py.py").read_text())
    assert [m["model"] for m in d["models"]] == ["gpt-5.4", "claude-sonnet-5"]
    human = cli.ok("cost", "estimate", "--model", "gpt-5.4", "--model", "claude-sonnet-5",
                   "--glob", str(CORPUS / "*.py"), "--task", "review").out
    assert "code_py.py" in human and "claude-sonnet-5 *" in human and "estimated tokens" in human
    assert json.dumps(d)  # plain JSON all the way down


def test_cost_estimate_bad_input(cli: Cli, tmp_path: Path) -> None:
    assert cli("cost", "estimate", "--model", "gpt-5.4").rc == EXIT_USAGE  # nothing to estimate
    r = cli("cost", "estimate", "--model", "gpt-5.4", "--glob", str(tmp_path / "*.nothing"))
    assert r.rc == EXIT_USAGE and "matches no file" in r.err
    r = cli("cost", "estimate", "--model", "gpt-5.4", "--file", str(tmp_path))
    assert r.rc == EXIT_USAGE and "directory" in r.err
    r = cli("cost", "estimate", "--model", "gpt-5.4", "--file", str(CORPUS / "code_py.py"), "--workflow", "spec",
            "--task", "review")
    assert r.rc == EXIT_USAGE
    r = cli("cost", "estimate", "--model", "nope-model", "--file", str(CORPUS / "code_py.py"), "--json")
    assert r.rc == EXIT_ERROR and r.json()["error"]["code"] == "unknown_model"


def test_cost_workflows(cli: Cli) -> None:
    assert "implementation -> review -> test" in cli.ok("cost", "workflows").out


def test_usage_record_with_a_task_kind(cli: Cli) -> None:
    r = cli.ok("usage", "record", "--model", "gpt-5.4", "--input-tokens", "100", "--output-tokens", "40",
               "--task", "review", "--json")
    assert r.json()["recorded"]
    assert cli("usage", "record", "--model", "gpt-5.4", "--input-tokens", "1", "--output-tokens", "1",
               "--task", "dance").rc == EXIT_USAGE
