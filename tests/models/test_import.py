"""``musubi models import``: a LiteLLM-format table mapped onto the registry, the diff, the stored override."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from core.errors import BadRequest, PermissionDenied
from core.models.importer import plan_import, slim_table
from core.models.overrides import OverrideStore
from core.models.registry import load_registry
from tests.cli.helpers import Cli
from tests.engine.helpers import Home

TODAY = date(2026, 12, 6)
FIXTURE = Path(__file__).with_name("fixtures") / "litellm_prices_small.json"


def table() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module", autouse=True)
def cfgdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mi", dir="/tmp"))
    old = os.environ.get("MUSUBI_CONFIG_DIR")
    os.environ["MUSUBI_CONFIG_DIR"] = str(d)
    try:
        yield d
    finally:
        if old is None:
            os.environ.pop("MUSUBI_CONFIG_DIR", None)
        else:
            os.environ["MUSUBI_CONFIG_DIR"] = old
        shutil.rmtree(d, ignore_errors=True)


def test_slim_table_keeps_chat_rows_of_supported_providers() -> None:
    t = table()
    t["gpt-7-realtime"] = {**t["gpt-7-nova"]}  # not a text model for agent work
    t["azure/eu/gpt-5.4"] = {**t["azure/gpt-5.4"]}  # a regional copy of azure/gpt-5.4
    rows = slim_table(t)
    assert set(rows) == {"azure/gpt-5.4", "claude-haiku-5-5", "gemini/gemini-3.8-flash", "gpt-6.1-sol", "gpt-7-nova",
                         "gpt-7-nova-mini", "mistral/mistral-medium-3.5"}
    assert "input_cost_per_token_above_272k_tokens_priority" not in rows["azure/gpt-5.4"]  # other service tiers
    assert "supports_prompt_caching" not in rows["azure/gpt-5.4"]


def test_plan_shows_new_changed_and_removed_models() -> None:
    reg = load_registry()
    p = plan_import(reg, table(), "prices.json", TODAY)
    new = {n["model"]: n for n in p["new"]}
    assert set(new) == {"gpt-7-nova"}
    assert new["gpt-7-nova"]["tier"] == "advanced" and new["gpt-7-nova"]["context_window"] == 2_000_000
    changed = {c["model"]: c["changes"] for c in p["changed"]}
    assert changed["gpt-6.1-sol"] == {"input_per_mtok": {"old": "2.0", "new": "1.8"}}
    assert changed["azure/gpt-5.4"] == {"retires_on": {"old": "2027-09-02", "new": "2027-03-01"}}
    assert changed["gemini-3.8-flash"] == {"context_window": {"old": 1048576, "new": 2097152}}
    assert set(changed["mistral-medium-3.5"]) == {"cached_input_per_mtok", "max_output"}
    assert p["unchanged"] == 1  # claude-haiku-5-5, long-context tier included
    removed = {r["model"] for r in p["removed"]}
    assert {"gpt-5.4", "claude-sonnet-5-5", "mistral-large-4"} <= removed
    assert "gemini-2.5-pro" not in removed and "ollama/llama3.1:8b" not in removed  # retired / local
    assert [s["key"] for s in p["skipped"]] == ["gpt-7-nova-mini"]
    # Applying the entries gives a registry with the table's figures, and keeps what the table does not say.
    reg2 = load_registry(overlays=[("import", p["entries"])])
    sol = reg2.get("gpt-6.1-sol")
    assert sol.input_per_mtok == Decimal("1.8") and sol.tier == "advanced" and sol.origin == "import"
    assert sol.long_context is not None and sol.long_context.threshold == 272_000
    assert sol.source == "imported from prices.json (gpt-6.1-sol)" and sol.prices_checked == TODAY
    nova = reg2.get("gpt-7-nova")
    assert nova.tokenizer == "o200k_base" and "reasoning" in nova.capabilities and "long_context" in nova.capabilities
    assert reg2.get("azure/gpt-5.4").retires_on == date(2027, 3, 1)
    assert reg2.get("mistral-medium-3.5").replacement == "mistral-large-4"
    # The same table again changes nothing.
    again = plan_import(reg2, table(), "prices.json", TODAY)
    assert again["new"] == [] and again["changed"] == [] and again["entries"] == []


def test_a_new_model_already_retired_is_not_added() -> None:
    t = table()
    t["gpt-7-nova"]["deprecation_date"] = "2026-11-01"
    p = plan_import(load_registry(), t, "x", TODAY)
    assert p["new"] == [] and {"key": "gpt-7-nova", "reason": "retired on 2026-11-01: not added"} in p["skipped"]


def test_a_deprecation_date_in_the_past_retires_the_model() -> None:
    t = table()
    t["gpt-6.1-sol"]["deprecation_date"] = "2026-12-01"
    t["gpt-6.1-sol"]["successor_model"] = "gpt-7-nova"
    reg = load_registry(overlays=[("import", plan_import(load_registry(), t, "x", TODAY)["entries"])])
    m = reg.get("gpt-6.1-sol")
    assert m.status_on(TODAY) == "retired" and m.replacement == "gpt-7-nova"


@pytest.mark.parametrize(("bad", "needle"), [
    ([], "JSON object"),
    ({"gpt-x": {"litellm_provider": "bedrock", "mode": "chat"}}, "no chat model"),
    ({"gpt-x": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 10, "input_cost_per_token": "lots",
                "output_cost_per_token": 1}}, "not a number"),
    ({"gpt-x": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 10, "input_cost_per_token": -1,
                "output_cost_per_token": 1}}, ">= 0"),
    ({"gpt-x": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 10, "input_cost_per_token": 1e-6,
                "output_cost_per_token": 1e-6, "deprecation_date": "soon"}}, "not a date"),
])
def test_bad_tables_are_refused_with_the_reason(bad: Any, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        plan_import(load_registry(), bad, "x", TODAY)


def test_override_store_is_atomic_and_rejects_a_broken_file(tmp_path: Path) -> None:
    s = OverrideStore(tmp_path)
    assert s.read("tenant", "acme") == {"entries": [], "imported": []}
    s.write("tenant", "acme", {"entries": [{"id": "gpt-5.4", "input_per_mtok": "1"}], "imported": []})
    assert s.read("tenant", "acme")["entries"][0]["id"] == "gpt-5.4"
    assert not list((tmp_path / "registry").glob("*.tmp"))
    s.path("user").write_text("{broken")
    from core.models.registry import ConfigError

    with pytest.raises(ConfigError, match="(?i)move it aside"):
        s.read("user")


# -- through the engine ---------------------------------------------------------------------


def test_import_dry_run_then_write_audited_and_per_tenant(eng: Home) -> None:
    t = eng.new_tenant("imp", {"mem": "member"})
    other = eng.new_tenant("imp2")
    owner = eng.client(t)
    body = {"table": slim_table(table()), "source": "prices.json"}
    dry = owner.post("/v1/models/import", {**body, "dry_run": True})
    assert dry["written"] is False and [n["model"] for n in dry["new"]] == ["gpt-7-nova"]
    assert "gpt-7-nova" not in {m["id"] for m in owner.get("/v1/models")["models"]}  # a dry run changes nothing
    with pytest.raises(PermissionDenied, match="quotas.manage"):
        eng.client(t, as_user="mem").post("/v1/models/import", body)
    assert eng.audit(t, outcome="denied", action="models.import")[-1]["actor"] == "mem"
    r = owner.post("/v1/models/import", body)
    assert r["written"] is True and r["scope"] == "tenant"
    listed = {m["id"]: m for m in owner.get("/v1/models")["models"]}
    assert listed["gpt-7-nova"]["origin"] == "import" and listed["gpt-6.1-sol"]["input_per_mtok"] == "1.8"
    assert listed["azure/gpt-5.4"]["retires_on"] == "2027-03-01"
    audit = eng.audit(t, action="models.import")[-1]
    assert audit["details"]["new"] == ["gpt-7-nova"] and "gpt-6.1-sol" in audit["details"]["changed"]
    # Another tenant does not see this tenant's import.
    assert "gpt-7-nova" not in {m["id"] for m in eng.client(other).get("/v1/models")["models"]}
    # The estimate and the router use the tenant's registry.
    e = owner.post("/v1/cost/estimate", {"models": ["gpt-7-nova"], "texts": [{"text": "hello"}], "task": "summarise"})
    assert e["models"][0]["model"] == "gpt-7-nova"
    # So does the price of usage posted without a cost (docs/quotas.md#pricing); the other tenant has no price.
    nova = listed["gpt-7-nova"]
    rec = owner.post("/v1/usage", {"model": "gpt-7-nova", "input_tokens": 1000, "output_tokens": 100})
    want = Decimal(nova["input_per_mtok"]) * 1000 + Decimal(nova["output_per_mtok"]) * 100  # micro-dollars
    assert rec["priced"] is True and Decimal(rec["cost_usd"]) * 1_000_000 == want.quantize(Decimal(1), ROUND_HALF_UP)
    assert eng.client(other).post("/v1/usage", {"model": "gpt-7-nova", "input_tokens": 1})["priced"] is False
    # Importing the same table again: nothing to write.
    again = owner.post("/v1/models/import", body)
    assert again["new"] == [] and again["changed"] == [] and again["written"] is False


def test_user_scope_needs_the_system_role(eng: Home) -> None:
    t = eng.new_tenant("impu", {"adm": "admin"})
    body = {"table": slim_table(table()), "source": "prices.json", "scope": "user"}
    with pytest.raises(PermissionDenied, match="system role"):
        eng.client(t, as_user="adm").post("/v1/models/import", body)
    with pytest.raises(BadRequest, match="scope"):
        eng.client(t).post("/v1/models/import", {**body, "scope": "planet"})
    with pytest.raises(BadRequest, match="source"):
        eng.client(t).post("/v1/models/import", {**body, "source": ""})


def test_cli_import_and_list_status(cli: Cli, tmp_path: Path) -> None:
    cli.ok("tenant", "create", "impcli")
    out = cli.ok("--tenant", "impcli", "models", "import", str(FIXTURE), "--dry-run").out
    assert "gpt-7-nova" in out and "changed" in out and "dry run: nothing written" in out
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    r = cli("--tenant", "impcli", "models", "import", str(bad))
    assert r.rc == 2 and "is not JSON" in r.err and "Traceback" not in r.err
    r = cli("--tenant", "impcli", "models", "import", "ftp://example.com/x.json")
    assert r.rc == 2 and "http(s)" in r.err
    r = cli("--tenant", "impcli", "models", "import", "http://127.0.0.1:9/none.json")
    assert r.rc == 2 and "cannot fetch" in r.err
    j = cli.ok("--tenant", "impcli", "models", "import", str(FIXTURE), "--json").json()
    assert j["written"] is True
